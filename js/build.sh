#!/usr/bin/env bash
# Builds explorer/static/scatter.js, the atlas panels' point-cloud renderer (regl-scatterplot),
# from the versions pinned in package-lock.json: `bash js/build.sh` rebuilds it, `bash js/build.sh
# --check` rebuilds it in a temporary folder and fails unless it is byte for byte the committed
# file. Needs node and npm (the npm registry); the app itself never needs them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../explorer/static/scatter.js"
licenses="$here/../explorer/static/scatter.LICENSES.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/entry.js" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
lock=$(sha256sum "$here/package-lock.json" | cut -c1-64)
entry=$(sha256sum "$here/entry.js" | cut -c1-64)
version=$(node -p "require('$work/node_modules/regl-scatterplot/package.json').version")
banner="// regl-scatterplot $version (MIT, github.com/flekschas/regl-scatterplot) and its dependencies, bundled by js/build.sh.
// package-lock.json sha256 $lock; entry.js sha256 $entry. Do not edit: rebuild."
(cd "$work" && ./node_modules/.bin/esbuild entry.js --bundle --format=iife --global-name=AtlasScatter \
  --minify --target=es2020 --legal-comments=eof --log-level=warning "--banner:js=$banner" \
  --outfile="$work/scatter.js")
# every bundled package's own license file, in the lock file's order
(cd "$work" && node -e '
  const fs = require("fs"), lock = require("./package-lock.json");
  for (const [path, p] of Object.entries(lock.packages)) {
    if (!path || p.dev) continue;
    const dir = path, file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    process.stdout.write("== " + path.replace(/^node_modules\//, "") + " " + p.version + " (" + p.license + ")\n\n" +
      (file ? fs.readFileSync(dir + "/" + file, "utf8").trim() : "(no license file in the package)") + "\n\n");
  }' > "$work/LICENSES.txt")
if [ "${1:-}" = "--check" ]; then
  if cmp -s "$work/scatter.js" "$out" && cmp -s "$work/LICENSES.txt" "$licenses"; then
    echo "explorer/static/scatter.js and scatter.LICENSES.txt match js/package-lock.json"
  else
    echo "explorer/static/scatter.js or scatter.LICENSES.txt differs from a build of js/package-lock.json: run bash js/build.sh" >&2
    exit 1
  fi
else
  cp "$work/scatter.js" "$out"
  cp "$work/LICENSES.txt" "$licenses"
  echo "wrote $out ($(wc -c < "$out") bytes) and $licenses"
fi
