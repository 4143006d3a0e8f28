#!/usr/bin/env bash
# Installs and builds the shop as a user would: a copy of ../../npm (as if
# published; `--install-links`, the old copy removed first: TOOLCHAIN.md),
# then `nuxt build`. Skipped when neither the shop's sources nor the package
# changed since the last build. Needs npm/pkg built (npm/build.sh).
set -euo pipefail
cd "$(dirname "$0")"
source ../../scripts/env.sh
[ -f ../../npm/pkg/freshet_sdk_bg.wasm ] || { echo "build the package first: bash npm/build.sh" >&2; exit 1; }
stamp=$( (cd ../.. && find examples/nuxt/app examples/nuxt/server examples/nuxt/nuxt.config.ts examples/nuxt/package.json \
  npm/package.json npm/src npm/pkg -type f -print0 | sort -z | xargs -0 sha1sum) | sha1sum | cut -c1-16)
if [ "$(cat .output/freshet-stamp 2>/dev/null)" = "$stamp" ] && [ -f .output/server/index.mjs ]; then
  echo "examples/nuxt: the build is current" >&2
  exit 0
fi
rm -rf node_modules/freshet
npm install --install-links --no-audit --no-fund --loglevel=error
log=$(mktemp)
npx nuxt build >"$log" 2>&1 || { tail -40 "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
echo "$stamp" > .output/freshet-stamp
echo "examples/nuxt: built into .output/" >&2
