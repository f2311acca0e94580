#!/usr/bin/env bash
# docker-py's own integration suite, straight at a lab engine and through Moorage,
# and which tests pass on one side only. Not part of CI (it takes 15-25 minutes).
#
#   bash scripts/compat-dockerpy.sh                       # direct, policy off, default policy
#   bash scripts/compat-dockerpy.sh -k network            # extra arguments go to every pytest run
#   COMPAT_MODES="direct off" bash scripts/compat-dockerpy.sh
#   COMPAT_TESTS="tests/integration/api_network_test.py" bash scripts/compat-dockerpy.sh
#
# 1. The tests come from PyPI only: the sdist of the `docker` release pinned in
#    requirements.lock when it ships tests/integration, else the newest release
#    whose sdist does (DOCKERPY_TESTS_FALLBACK, 7.0.0: from 7.1.0 on the sdist
#    leaves the tests out). They run with the pinned client in a venv of their own.
# 2. Each run gets a fresh one-node lab engine (`moorage lab`) holding the offline
#    busybox image under the names the suite uses (it can't pull).
#    direct:  pytest -> dockerd
#    off:     pytest -> moorage up --enforce off --audit-pack off -> dockerd
#    default: pytest -> moorage up (baseline enforced, restricted in audit) -> dockerd
# 3. Tests whose outcome differs from direct are run once more on every side
#    (flaky ones are marked), then scripts/compat_dockerpy.py compares: tests lost
#    and gained, with Moorage's refusals (request, rule) from its audit trail.
#
# Results: $COMPAT_OUT (default $MOORAGE_CACHE/compat-dockerpy/runs/DATE), with
# summary.md. Exit 0 when policy off loses nothing and every test the default
# policy loses is a policy refusal; 1 otherwise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$REPO"

read -r -a MODES <<< "${COMPAT_MODES:-direct off default}"
read -r -a TESTS <<< "${COMPAT_TESTS:-tests/integration}"   # paths or node ids in the suite
TIMEOUT="${COMPAT_TIMEOUT:-180}"              # seconds per test (pytest-timeout)
CACHE="$MOORAGE_CACHE/compat-dockerpy"
PIN="$(sed -n 's/^docker==//p' requirements.lock)"
[ -n "$PIN" ] || die "requirements.lock pins no 'docker' release"
CLIENT_VERSION="${DOCKERPY_VERSION:-$PIN}"
FALLBACK="${DOCKERPY_TESTS_FALLBACK:-7.0.0}"
OUT="${COMPAT_OUT:-$CACHE/runs/$(date +%Y%m%d-%H%M%S)}"
# The names docker-py's integration tests use for their images (TEST_IMG is alpine:3.10).
TAGS="alpine:3.10 alpine:latest busybox:latest hello-world:latest"
mkdir -p "$CACHE/sdist" "$OUT"

# ------------------------------------------------------------------ cleanup
LABS=()
GATEWAYS=()
cleanup() {
  local pid lab
  for pid in "${GATEWAYS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${GATEWAYS[@]}"; do
    wait "$pid" 2>/dev/null || true   # the gateway signs its final audit checkpoint
  done
  for lab in "${LABS[@]}"; do
    moorage lab down --name "$lab" >/dev/null 2>&1 || say "could not remove lab $lab: moorage lab down --name $lab"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ the test suite
sdist_has_tests() {  # not grep -q: tar would die of SIGPIPE and pipefail report it
  tar tzf "$1" 2>/dev/null | grep '^[^/]*/tests/integration/conftest.py$' >/dev/null
}

fetch_sdist() {  # VERSION -> path of docker-VERSION.tar.gz in the cache
  local v="$1" f="$CACHE/sdist/docker-$1.tar.gz"
  if [ ! -s "$f" ]; then
    # --no-deps: only this sdist; pip prepares its metadata in an isolated build.
    python -m pip download -q --no-deps --no-binary :all: "docker==$v" -d "$CACHE/sdist" >&2 \
      || die "could not download the docker $v sdist from PyPI"
  fi
  echo "$f"
}

TESTS_VERSION="${DOCKERPY_TESTS_VERSION:-}"
if [ -z "$TESTS_VERSION" ]; then
  TESTS_VERSION="$CLIENT_VERSION"
  if ! sdist_has_tests "$(fetch_sdist "$CLIENT_VERSION")"; then
    say "the docker $CLIENT_VERSION sdist ships no tests/integration; using the docker $FALLBACK sdist's tests"
    TESTS_VERSION="$FALLBACK"
  fi
fi
SDIST="$(fetch_sdist "$TESTS_VERSION")"
sdist_has_tests "$SDIST" || die "$SDIST holds no tests/integration; set DOCKERPY_TESTS_VERSION to a release whose sdist does"
SUITE="$CACHE/suite-$TESTS_VERSION"
if [ ! -f "$SUITE/.complete" ]; then
  # Only tests/ and pytest.ini: with the sdist's docker/ package beside them,
  # pytest's rootdir import would test that copy instead of the pinned client.
  rm -rf "$SUITE" && mkdir -p "$SUITE"
  tar xzf "$SDIST" -C "$SUITE" --strip-components=1 --wildcards '*/tests/*' '*/pytest.ini'
  touch "$SUITE/.complete"
fi

# ---------------------------------------------- a venv for the suite's deps
# The pinned client and its dependencies from requirements.lock; paramiko (the
# suite's helpers import it) and pytest-timeout, pinned here. Kept apart from
# .venv so the project's environment stays as requirements.lock says.
EXTRA=(paramiko==5.1.0 pytest-timeout==2.4.0)
TVENV="$CACHE/venv"
pins="$(grep -E '^(requests|urllib3|certifi|idna|charset-normalizer|pytest|iniconfig|pluggy|packaging)==' requirements.lock)"
want="$(printf '%s\n' "docker==$CLIENT_VERSION" "$pins" "${EXTRA[@]}" | sha256sum | cut -c1-16)"
if [ ! -x "$TVENV/bin/python" ] || [ "$(cat "$TVENV/.stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the venv for docker-py's tests in $TVENV"
  rm -rf "$TVENV"
  "${PYTHON:-python3}" -m venv "$TVENV"
  # shellcheck disable=SC2086
  "$TVENV/bin/python" -m pip install -q "docker==$CLIENT_VERSION" $pins "${EXTRA[@]}"
  echo "$want" > "$TVENV/.stamp"
fi

# ------------------------------------------------------------------ the runs
BASE_IMAGE="moorage-lab/busybox:latest"
ENGINE_VERSION=""
API_VERSION=""

start_lab() {  # MODE; sets ENGINE_HOST to the lab's engine socket URL
  local name="cpy-$1-$$"
  # owner_pid: if this script is killed outright, `moorage lab down --stale`
  # (scripts/test.sh runs it) removes the lab.
  python - "$name" "$$" <<'PY' >&2
import sys
from moorage.lab import Lab
Lab(sys.argv[1]).up(nodes=1, owner_pid=int(sys.argv[2]))
PY
  LABS+=("$name")
  moorage lab image busybox --name "$name" >/dev/null
  ENGINE_HOST="$(moorage lab env --name "$name" | sed -n 's/^export DOCKER_HOST=//p')"
  local t
  for t in $TAGS; do docker -H "$ENGINE_HOST" tag "$BASE_IMAGE" "$t"; done
}

start_gateway() {  # MODE ENGINE_URL; sets GATEWAY_HOST to the gateway's socket URL
  local mode="$1" engine="$2" dir="$OUT/$1/gateway" args=() pid _
  mkdir -p "$dir"
  if [ "$mode" = off ]; then args=(--enforce off --audit-pack off); fi
  moorage up --upstream "$engine" --data-dir "$dir" --listen "$dir/docker.sock" --context '' \
    "${args[@]}" > "$dir/up.log" 2>&1 &
  pid=$!
  GATEWAYS+=("$pid")
  for _ in $(seq 200); do
    curl -fsS --max-time 2 --unix-socket "$dir/docker.sock" http://d/_ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "moorage up exited; see $dir/up.log"
    sleep 0.1
  done
  curl -fsS --max-time 2 --unix-socket "$dir/docker.sock" http://d/_ping >/dev/null \
    || die "moorage up did not answer within 20 s; see $dir/up.log"
  GATEWAY_HOST="unix://$dir/docker.sock"
}

run_pytest() {  # MODE TARGET ENGINE RESULTS_FILE PYTEST_ARGS...
  local mode="$1" target="$2" engine="$3" results="$4"
  shift 4
  mkdir -p "$OUT/$mode/docker-config"
  # A docker config of its own per run: the suite writes contexts beside config.json,
  # and with no config.json anywhere docker-py puts them in ./contexts, shared by all runs.
  [ -f "$OUT/$mode/docker-config/config.json" ] || echo '{}' > "$OUT/$mode/docker-config/config.json"
  rm -rf "$SUITE/contexts"
  rm -f "$results"
  (
    cd "$SUITE"
    env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH \
      DOCKER_HOST="$target" DOCKER_TEST_API_VERSION="$API_VERSION" DOCKER_CONFIG="$OUT/$mode/docker-config" \
      PYTHONPATH="$REPO/scripts" COMPAT_RESULTS="$results" COMPAT_ENGINE_HOST="$engine" \
      COMPAT_BASE_IMAGE="$BASE_IMAGE" COMPAT_TAGS="$TAGS" \
      "$TVENV/bin/python" -m pytest -p no:cacheprovider -p compat_dockerpy --timeout "$TIMEOUT" \
      -o junit_family=xunit2 "$@"
  ) || true   # failing tests are the data here, not an error
}

declare -A TARGET ENGINE
for mode in "${MODES[@]}"; do
  case "$mode" in direct|off|default) ;; *) die "unknown mode '$mode' in COMPAT_MODES (direct, off, default)";; esac
  say "run '$mode': starting a lab engine"
  mkdir -p "$OUT/$mode"
  start_lab "$mode"
  engine="$ENGINE_HOST"
  if [ -z "$API_VERSION" ]; then
    API_VERSION="$(docker -H "$engine" version --format '{{.Server.APIVersion}}')"
    ENGINE_VERSION="$(docker -H "$engine" version --format '{{.Server.Version}}')"
  fi
  target="$engine"
  if [ "$mode" != direct ]; then
    start_gateway "$mode" "$engine"
    target="$GATEWAY_HOST"
  fi
  TARGET[$mode]="$target"
  ENGINE[$mode]="$engine"
  say "run '$mode': docker-py $TESTS_VERSION integration tests against $target (log: $OUT/$mode/pytest.log)"
  started=$(date +%s)
  run_pytest "$mode" "$target" "$engine" "$OUT/$mode/results.jsonl" \
    --junitxml "$OUT/$mode/junit.xml" "${TESTS[@]}" "$@" > "$OUT/$mode/pytest.log" 2>&1
  say "run '$mode' took $(( $(date +%s) - started )) s: $(tail -n 1 "$OUT/$mode/pytest.log")"
done

# Tests that pass on one side only, once more on every side: a flaky test shows.
mapfile -t again < <(python scripts/compat_dockerpy.py differing "$OUT")
if [ "${#again[@]}" -gt 0 ]; then
  say "running the ${#again[@]} test(s) that differ once more on every side"
  for mode in "${MODES[@]}"; do
    run_pytest "$mode" "${TARGET[$mode]}" "${ENGINE[$mode]}" "$OUT/$mode/rerun.jsonl" \
      "${again[@]}" > "$OUT/$mode/rerun.log" 2>&1
  done
fi

# Moorage's own account of what it refused, matched to tests by time.
for mode in "${MODES[@]}"; do
  [ "$mode" = direct ] && continue
  moorage audit log --data-dir "$OUT/$mode/gateway" --json > "$OUT/$mode/audit.jsonl" 2>/dev/null || true
done

set +e
python scripts/compat_dockerpy.py compare "$OUT" --md "$OUT/summary.md" \
  --meta "date=$(date -u +%Y-%m-%d)" \
  --meta "suite=docker $TESTS_VERSION sdist, tests/integration" \
  --meta "client=docker $CLIENT_VERSION (requirements.lock)" \
  --meta "engine=dockerd $ENGINE_VERSION (API $API_VERSION), one lab node per run"
rc=$?
set -e
say "results in $OUT (summary.md, <run>/pytest.log, <run>/results.jsonl, <run>/audit.jsonl)"
exit "$rc"
