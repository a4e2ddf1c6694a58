#!/usr/bin/env bash
# What an npm user gets: every package packed with pnpm, the runner and all sinks
# installed with plain npm into an empty folder, then
#   - the size of node_modules on disk (du, what `du -sh` shows) and in bytes
#     (apparent size, what npm's unpackedSize counts), with the largest packages;
#   - `workos-relay --help`: median wall time of 7 runs, and the modules it loads.
# The same for a baseline commit (default: the state before issue 28's install work),
# built from `git archive` in a temp folder, measured in the same run; then the ratios.
#
#   scripts/install-size.sh [baseline-ref]     # ~3 minutes; "none" skips the baseline
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
baseline="${1:-0de9bbb}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A module counter for --help: counts every file: module Node loads.
cat >"$tmp/count.mjs" <<'JS'
import { registerHooks } from "node:module"
let n = 0
registerHooks({ load(url, ctx, next) { if (url.startsWith("file:")) n++; return next(url, ctx) } })
process.on("exit", () => process.stderr.write(`modules=${n}\n`))
JS

# pack <repo folder> <out folder>: build, pack every published package, npm install.
pack_and_install() {
  local repo="$1" out="$2"
  mkdir -p "$out/tgz" "$out/app"
  (cd "$repo" && pnpm exec turbo run build --output-logs=errors-only >/dev/null &&
    pnpm -r --filter './packages/*' --filter './apps/*' exec pnpm pack --pack-destination "$out/tgz" >/dev/null)
  (cd "$out/app" && echo '{"name":"app","private":true,"type":"module"}' >package.json &&
    npm install --no-audit --no-fund --loglevel=error "$out"/tgz/*.tgz >/dev/null)
}

# measure <label> <out folder>: prints one line of figures, and the top contributors.
measure() {
  local label="$1" app="$2/app"
  local disk bytes
  disk=$(du -sk "$app/node_modules" | cut -f1)
  bytes=$(du -sb "$app/node_modules" | cut -f1)
  local modules
  modules=$(node --max-semi-space-size=2 --import "$tmp/count.mjs" "$app/node_modules/@workos-relay/runner/dist/bin.js" --help 2>&1 >/dev/null | sed -n 's/^modules=//p')
  local help
  help=$(node -e '
    const { execFileSync } = require("node:child_process")
    const times = []
    for (let i = 0; i < 7; i++) {
      const t = process.hrtime.bigint()
      execFileSync(process.argv[1], ["--help"], { stdio: "ignore" })
      times.push(Number(process.hrtime.bigint() - t) / 1e9)
    }
    times.sort((a, b) => a - b)
    console.log(times[3].toFixed(3))
  ' "$app/node_modules/.bin/workos-relay")
  echo "$label: installed $((disk / 1024)) MB on disk, $((bytes / 1048576)) MB apparent; --help ${help} s (median of 7), ${modules} modules"
  echo "$label: largest: $(cd "$app/node_modules" && du -sk -- * | sort -rn | head -6 | awk '{printf "%s %d MB, ", $2, $1/1024}')"
  printf '%s %s %s %s\n' "$disk" "$bytes" "$help" "$modules" >"$2/figures"
}

pack_and_install "$PWD" "$tmp/now"
if [ "$baseline" != none ]; then
  mkdir -p "$tmp/base/repo"
  git archive "$baseline" | tar -x -C "$tmp/base/repo"
  (cd "$tmp/base/repo" && pnpm install --frozen-lockfile --prefer-offline --reporter=silent >/dev/null)
  pack_and_install "$tmp/base/repo" "$tmp/base"
  measure "baseline ($baseline)" "$tmp/base"
fi
measure "this tree" "$tmp/now"
read -r disk bytes help modules <"$tmp/now/figures"
if [ "$baseline" != none ]; then
  read -r bdisk bbytes bhelp bmodules <"$tmp/base/figures"
  node -e '
    const [d, bd, b, bb, h, bh, m, bm] = process.argv.slice(1).map(Number)
    console.log(`ratio this/baseline: disk ${(d / bd).toFixed(2)}x, bytes ${(b / bb).toFixed(2)}x, --help ${(h / bh).toFixed(2)}x, modules ${(m / bm).toFixed(2)}x`)
  ' "$disk" "$bdisk" "$bytes" "$bbytes" "$help" "$bhelp" "$modules" "$bmodules"
fi
node -e '
  const [disk, help] = process.argv.slice(1).map(Number)
  const mb = disk / 1024
  console.log(`targets: installed <= 100 MB on disk: ${mb <= 100 ? "met" : "NOT met"} (${mb.toFixed(1)} MB); --help < 0.3 s: ${help < 0.3 ? "met" : "NOT met"} (${help} s)`)
' "$disk" "$help"
