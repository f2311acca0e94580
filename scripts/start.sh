#!/usr/bin/env bash
# The README's first command: set everything up and run Moorage in front of Docker.
# Uses the engine at DOCKER_HOST (or /var/run/docker.sock) when one answers;
# otherwise starts a lab engine. Then runs the gateway (`moorage up`) in the
# foreground; Ctrl-C stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$REPO"

engine_up() {
  local host="${DOCKER_HOST:-unix:///var/run/docker.sock}"
  [[ "$host" == unix://* ]] || { docker -H "$host" version >/dev/null 2>&1; return; }
  local sock="${host#unix://}"
  [ -S "$sock" ] && curl -fsS --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
}

if engine_up; then
  say "using the Docker engine at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
else
  if ! moorage lab status --json | grep -q '"exists": true'; then
    say "no Docker engine answers: starting a lab engine"
    moorage lab up --nodes 1
  fi
  eval "$(moorage lab env)"
fi
moorage lab image busybox

DATA="${MOORAGE_DATA:-/var/lib/moorage}"
mkdir -p "$DATA"
say "checking the gateway with a busybox container"
moorage up --data-dir "$DATA" > "$DATA/first-run.log" 2>&1 &
gateway=$!
for _ in $(seq 100); do grep -q "Use it:" "$DATA/first-run.log" 2>/dev/null && break; sleep 0.1; done
if ! docker --context moorage run --rm moorage-lab/busybox echo "hello through Moorage"; then
  kill "$gateway" 2>/dev/null || true
  die "the check through the gateway failed; see $DATA/first-run.log"
fi
kill "$gateway"
wait "$gateway" 2>/dev/null || true

cat <<MSG

Moorage runs in front of ${DOCKER_HOST:-unix:///var/run/docker.sock} (Ctrl-C stops it).
  docker --context moorage ps          # or: docker context use moorage
  moorage audit log -f                 # every request, as it happens (.venv/bin/moorage)
  users, teams, roles: $DATA/users.yaml (see docs/gateway.md)
Remove the lab engine afterwards with: .venv/bin/moorage lab down

MSG
# The main job, in the foreground: Ctrl-C reaches the gateway itself.
exec moorage up --data-dir "$DATA"
