# Sourced by the README commands: make this machine able to run Moorage.
# Installs missing Debian packages, creates .venv, installs the pinned
# dependencies and the package. Idempotent and quiet when nothing is missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MOORAGE_CACHE="${MOORAGE_CACHE:-/var/cache/moorage}"
VENV="$REPO/.venv"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run this as root (the lab needs network namespaces and dockerd): sudo $0"
[ -f /etc/debian_version ] || die "this script installs Debian packages; run it on Debian 12"

# Debian packages: the engine (dockerd, containerd, runc, the 20.10 CLI), the
# registry, test-image sources, namespace tooling, the peers the benchmarks use, and the
# directory (OpenLDAP slapd) the identity tests start privately.
PACKAGES=(docker.io containerd runc docker-registry busybox-static debootstrap iproute2
          iptables util-linux hostname ca-certificates curl haproxy docker-compose
          python3 python3-venv slapd postgresql chromium graphviz)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: packages must not start the system's own dockerd/containerd;
  # Moorage starts private ones.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ "$had_policy" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$had_policy" = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# Python: the machine's python3 (3.11+) in a virtual environment, pinned deps.
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed"
stamp="$VENV/.moorage-lock"
want="$(sha256sum "$REPO/requirements.lock" "$REPO/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the virtual environment in .venv"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REPO/requirements.lock"
  # an isolated build: pyproject's license field needs setuptools >= 77, newer than a venv's own
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$REPO"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
mkdir -p "$MOORAGE_CACHE"

# The OpenID provider the identity tests start: npm's oidc-provider (OpenID certified),
# pinned by tests/fixtures/oidc/package-lock.json, installed once into the cache and run
# with Node.js (the machine's, else Debian's).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing Debian packages: nodejs npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
oidc_dir="$MOORAGE_CACHE/oidc"
oidc_want="$(sha256sum "$REPO/tests/fixtures/oidc/package-lock.json" | cut -c1-16)"
if [ "$(cat "$oidc_dir/.moorage-lock" 2>/dev/null)" != "$oidc_want" ]; then
  say "installing the test OpenID provider (npm oidc-provider) into $oidc_dir"
  mkdir -p "$oidc_dir"
  cp "$REPO/tests/fixtures/oidc/package.json" "$REPO/tests/fixtures/oidc/package-lock.json" "$oidc_dir/"
  (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$oidc_want" > "$oidc_dir/.moorage-lock"
fi
export MOORAGE_OIDC_DIR="$oidc_dir"
