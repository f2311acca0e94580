#!/bin/bash
# Refresh the console's vendored JavaScript from npm (see src/moorage/console/static/VENDORED.md).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent htmx.org@2.0.11 htmx-ext-sse@2.2.4 >/dev/null
for t in *.tgz; do mkdir "${t%.tgz}"; tar xzf "$t" -C "${t%.tgz}" --strip-components=1; done
cp htmx.org-2.0.11/dist/htmx.min.js "$REPO/src/moorage/console/static/htmx.min.js"
cp htmx-ext-sse-2.2.4/dist/sse.min.js "$REPO/src/moorage/console/static/htmx-sse.min.js"
echo "vendored htmx 2.0.11 and htmx-ext-sse 2.2.4"
