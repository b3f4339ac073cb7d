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

name="api-docs"
# shellcheck source=../pinned-assets.sh
source "$root/web/pinned-assets.sh"
