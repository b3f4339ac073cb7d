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

name="graphiql"
# shellcheck source=../pinned-assets.sh
source "$root/web/pinned-assets.sh"
