#!/usr/bin/env bash
# Fetches the Swagger UI browser files pinned in package-lock.json (npm ci checks each
# package's integrity hash; --ignore-scripts keeps @scarf/scarf's install-time analytics from
# running) and copies them to dataintel/http/static/api-docs, which the gateway serves at
# /docs. Nothing here is committed: `make assets` runs this on every machine.
# Usage: bash web/api-docs/build.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/dataintel/http/static/api-docs"

# destination name <- path under node_modules
files=(
  "swagger-ui-bundle.js:swagger-ui-dist/swagger-ui-bundle.js"
  "swagger-ui.css:swagger-ui-dist/swagger-ui.css"
  # Apache-2.0: the licence and notice travel with the copies we serve and ship.
  "LICENSE.swagger-ui.txt:swagger-ui-dist/LICENSE"
  "NOTICE.swagger-ui.txt:swagger-ui-dist/NOTICE"
  "LICENSE.swagger-ui-bundle.txt:swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt"
)

up_to_date() {
  local entry dest
  for entry in "${files[@]}"; do
    dest="$out/${entry%%:*}"
    [[ -f "$dest" ]] || return 1
    # An edit to the pins or to this script must rebuild.
    [[ "$dest" -nt "$here/package-lock.json" && "$dest" -nt "$here/package.json" \
      && "$dest" -nt "$here/build.sh" ]] || return 1
  done
}

if [[ "${1:-}" != "--force" ]] && up_to_date; then
  echo "api-docs assets: up to date in ${out#"$root"/}"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "api-docs assets: npm not found; install Node.js 18 or newer (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

echo "api-docs assets: npm ci (pinned, integrity-checked)"
(cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn)

# Copy into a sibling folder and swap it in, so a failed copy never leaves a half-built set.
mkdir -p "$(dirname "$out")"
staging="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
for entry in "${files[@]}"; do
  cp "$here/node_modules/${entry#*:}" "$staging/${entry%%:*}"
done
chmod 755 "$staging"
rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
echo "api-docs assets: built ${#files[@]} files in ${out#"$root"/}"
