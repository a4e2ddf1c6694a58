#!/usr/bin/env bash
# What an npm user does, checked: every package packed with pnpm, the tarballs
# installed with plain npm (Node 24) into an empty folder, then `--help`, `init`, `validate`,
# `demo`, `http` without its optional package, a custom sink in .ts, and a library
# import type-checked with tsc. Fails on any step that fails and on any warning npm
# prints about peer dependencies.
# Prints "npm-install-check: passed" or "npm-install-check: FAILED (<step>)".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
# npm on Node 24 does not always honour npm's own `cafile` for the registry's TLS
# (seen: SELF_SIGNED_CERT_IN_CHAIN behind a proxy with its own CA, then 70 s per
# package falling back to the cache); hand the configured CA to Node itself.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ]; then
  cafile="$(npm config get cafile 2>/dev/null || true)"
  if [ -n "$cafile" ] && [ "$cafile" != "null" ] && [ -f "$cafile" ]; then
    export NODE_EXTRA_CA_CERTS="$cafile"
  fi
fi
root="$PWD"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
step=""
trap 'echo "npm-install-check: FAILED ($step)"' ERR

step="build and pack"
pnpm exec turbo run build --output-logs=errors-only >/dev/null
mkdir -p "$tmp/tgz" "$tmp/app"
pnpm -r --filter './packages/*' --filter './apps/*' exec pnpm pack --pack-destination "$tmp/tgz" >/dev/null

step="npm install"
cd "$tmp/app"
echo '{"name":"app","private":true,"type":"module"}' >package.json
# The library and effect next to the runner, as the README's custom-sink section says;
# typescript for the type check.
npm install --no-audit --no-fund "$tmp"/tgz/*.tgz effect@~4.1.5 typescript@7.0.2 >"$tmp/npm.log" 2>&1 ||
  { cat "$tmp/npm.log"; false; }
step="no peer warnings from npm"
if grep -iE "peer|ERESOLVE" "$tmp/npm.log"; then false; fi

relay=./node_modules/.bin/workos-relay
# `--help` prints the help the build saved (dist/help/): it must be what effect/cli
# renders live, plain and (on a terminal) colored.
step="the saved --help is effect/cli's own"
$relay --help >"$tmp/help.saved"
WORKOS_RELAY_RENDER_HELP=plain $relay --help >"$tmp/help.live"
cmp "$tmp/help.saved" "$tmp/help.live"
WORKOS_RELAY_RENDER_HELP=color $relay --help >"$tmp/help.live-color"
cmp node_modules/@workos-relay/runner/dist/help/color.txt "$tmp/help.live-color"
grep -q "SUBCOMMANDS" "$tmp/help.saved"
step="--help to a reader that went away (EPIPE) exits 0, quietly"
node -e '
  const child = require("node:child_process").spawn(process.argv[1], ["--help"], { stdio: ["ignore", "pipe", "pipe"] })
  child.stdout.destroy()
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += d))
  child.on("exit", (code) => { if (code !== 0 || stderr !== "") { console.error(code, stderr); process.exit(1) } })
' "$relay"

step="init"
$relay init --sinks console,audit-log >/dev/null
test -f relay.yaml
step="validate"
WORKOS_API_KEY=sk_test_ci $relay validate >/dev/null
step="demo"
$relay demo >/dev/null 2>&1

# The HTTP server is an optional peer (its package pulls in redis): without it, a
# config with `http` is an error that says what to install, before anything runs.
step="http without @effect/platform-node names the install"
sed 's/^# http:$/http:/; s/^#   address: /  address: /' relay.yaml >http.yaml
grep -q '^http:' http.yaml
code=0
WORKOS_API_KEY=sk_test_ci $relay validate -c http.yaml >"$tmp/http.out" 2>&1 || code=$?
test "$code" = 2 || { cat "$tmp/http.out"; false; }
grep -q "npm install @effect/platform-node@" "$tmp/http.out" || { cat "$tmp/http.out"; false; }

step="a .ts custom sink"
cat >my-sink.ts <<'TS'
import { Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

export const definition = Sink.define({
  type: "user-changes",
  events: ["dsync.user.*"],
  config: Schema.Struct({ prefix: Schema.String }),
  make: (config) =>
    Effect.succeed({
      batch: { maxEvents: 50, maxWait: "1 second" },
      deliver: (batch) => Effect.sync(() => batch.map((event) => (void config.prefix, void event.data.email, Sink.delivered)))
    })
})
TS
cat >custom.yaml <<'YAML'
source:
  type: workos
  apiKey: ${WORKOS_API_KEY}
sinks:
  users:
    module: ./my-sink.ts
    prefix: "[dsync]"
YAML
WORKOS_API_KEY=sk_test_ci $relay validate -c custom.yaml >/dev/null

step="library import type-checked with tsc"
cat >lib.ts <<'TS'
import { Event, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
export const isUserCreated = (event: Event.Any): event is Event.Of<"dsync.user.created"> =>
  Event.isKnown(event) && event.event === "dsync.user.created"
export const done: Effect.Effect<Sink.Outcome> = Effect.succeed(Sink.delivered)
TS
cat >tsconfig.json <<'JSON'
{ "compilerOptions": { "module": "nodenext", "target": "es2022", "strict": true, "noEmit": true,
  "skipLibCheck": false, "allowImportingTsExtensions": true, "types": [] },
  "files": ["lib.ts", "my-sink.ts"] }
JSON
npx tsc -p tsconfig.json

step=""
trap - ERR
echo "npm-install-check: passed"
