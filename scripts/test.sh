#!/usr/bin/env bash
# The README's test command: set up what the suite needs, run all of it, clean up.
#   bash scripts/test.sh            # lint, types, unit, integration, e2e
#   bash scripts/test.sh -k swarm   # extra arguments go to pytest
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$REPO"

# A run that was killed half-way leaves labs behind (namespaces, mounts,
# dockerds); remove those whose owning run has died before starting.
say "removing labs left by interrupted runs"
moorage lab down --stale

say "ruff"
ruff check src tests bench
ruff format --check src tests bench
say "mypy --strict"
mypy
say "pytest"
start=$(date +%s)
set +e
python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
say "suite took $(( $(date +%s) - start )) s (pytest exit $rc)"
# Labs the tests made are removed by their fixtures; this catches a crash.
moorage lab down --stale >/dev/null || true
exit "$rc"
