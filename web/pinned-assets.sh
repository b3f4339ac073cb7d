# Sourced by web/*/build.sh after they set: name, here (their folder, with package.json and
# package-lock.json), root, out (the folder the gateway serves) and files ("destination name:
# path under node_modules"). Fetches the packages pinned in package-lock.json (npm ci checks
# each package's integrity hash; --ignore-scripts runs no install-time code) and copies the
# files to $out. Nothing here is committed: `make assets` runs this on every machine.
# Usage of a build.sh: bash web/<name>/build.sh [--force]

up_to_date() {
  local entry dest
  for entry in "${files[@]}"; do
    dest="$out/${entry%%:*}"
    [[ -f "$dest" ]] || return 1
    # An edit to the pins or to these scripts must rebuild.
    [[ "$dest" -nt "$here/package-lock.json" && "$dest" -nt "$here/package.json" \
      && "$dest" -nt "$here/build.sh" && "$dest" -nt "$root/web/pinned-assets.sh" ]] || return 1
  done
}

if [[ "${1:-}" != "--force" ]] && up_to_date; then
  echo "$name assets: up to date in ${out#"$root"/}"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "$name assets: npm not found; install Node.js 18 or newer (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

echo "$name assets: npm ci (pinned, integrity-checked)"
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
echo "$name assets: built ${#files[@]} files in ${out#"$root"/}"
