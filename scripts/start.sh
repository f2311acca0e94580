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
say "starting the gateway (moorage up)"
moorage up --data-dir "$DATA" &
gateway=$!
trap 'kill $gateway 2>/dev/null; wait $gateway 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do [ -S "$DATA/docker.sock" ] && break; sleep 0.1; done
sleep 0.3
say "running a busybox container through the gateway"
docker --context moorage run --rm moorage-lab/busybox echo "hello through Moorage"

cat <<MSG

Moorage is running in front of ${DOCKER_HOST:-unix:///var/run/docker.sock}.
  docker --context moorage ps          # or: docker context use moorage
  audit log: $DATA/audit.jsonl
  users, teams, roles: $DATA/users.yaml (see docs/gateway.md)
Press Ctrl-C to stop the gateway; remove the lab engine with: .venv/bin/moorage lab down
MSG
wait "$gateway"
