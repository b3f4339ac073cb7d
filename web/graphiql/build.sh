#!/usr/bin/env bash
# Fetches the GraphiQL browser files pinned in package-lock.json (npm ci checks each
# package's integrity hash) and copies them to dataintel/http/static/graphiql, which the
# gateway serves. Nothing here is committed: `make assets` runs this on every machine.
# Usage: bash web/graphiql/build.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/dataintel/http/static/graphiql"

# destination name <- path under node_modules
files=(
  "react.production.min.js:react/umd/react.production.min.js"
  "react-dom.production.min.js:react-dom/umd/react-dom.production.min.js"
  "graphiql.min.js:graphiql/graphiql.min.js"
  "graphiql.min.css:graphiql/graphiql.min.css"
  # The packages are MIT-licensed; the licence travels with the copies we serve and ship.
  "LICENSE.react.txt:react/LICENSE"
  "LICENSE.react-dom.txt:react-dom/LICENSE"
  "LICENSE.graphiql.txt:graphiql/LICENSE"
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
  echo "graphiql assets: up to date in ${out#"$root"/}"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "graphiql assets: npm not found; install Node.js 18 or newer (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

echo "graphiql assets: npm ci (pinned, integrity-checked)"
(cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn)

# Copy into a sibling folder and swap it in, so a failed copy never leaves a half-built set
# that the gateway would serve.
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
echo "graphiql assets: built ${#files[@]} files in ${out#"$root"/}"
