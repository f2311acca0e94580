#!/usr/bin/env bash
# The README's first command: set everything up and run Moorage.
# Uses the Docker engine at DOCKER_HOST (or /var/run/docker.sock) when one
# answers; otherwise starts a lab engine and uses that.
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
say "running a busybox container"
docker run --rm moorage-lab/busybox:latest echo "hello from a container on $DOCKER_HOST"

cat <<MSG

Moorage's engine is ready. Point docker at it:
  eval "\$(.venv/bin/moorage lab env)"
  docker run --rm moorage-lab/busybox echo hi
The gateway (moorage up) will sit in front of it once it lands.
Stop everything with: .venv/bin/moorage lab down
MSG
