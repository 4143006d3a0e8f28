#!/usr/bin/env bash
# Builds the npm package `freshet` from sdk/: cargo (wasm32, release) ->
# wasm-bindgen (web target, name and producers sections removed) -> wasm-opt
# from npm's binaryen (not Debian's: see ../shared/TOOLCHAIN.md) into npm/pkg/.
# SKIP_CARGO=1 reuses the last cargo build.
#
# Measured on the shipped wasm, gzip -9: the tracker at opt-level "z" is
# 12.0 KB, at the workspace's opt-level 3 18.6 KB; built as a cdylib alone it
# is 3 KB smaller than with the rlib type the crate also declares (for tests).
# The opt-level override touches only this crate's fingerprint.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cd "$ROOT"
# One build at a time (`make test` runs two lanes of parts side by side),
# and none when npm/pkg was built from the same sources (.state/npm-pkg.stamp).
if [ "${FRESHET_COMPILE_ONLY:-0}" != 1 ]; then
  if [ -z "${FRESHET_NPM_LOCKED:-}" ]; then
    mkdir -p .state
    exec env FRESHET_NPM_LOCKED=1 flock .state/npm-build.lock bash "$0" "$@"
  fi
  stamp=$(sources_digest sdk/src sdk/Cargo.toml core/src core/Cargo.toml Cargo.lock npm/build.sh)
  if [ "${SKIP_CARGO:-0}" != 1 ] && [ -f npm/pkg/freshet_sdk_bg.wasm ] &&
    [ "$(cat .state/npm-pkg.stamp 2>/dev/null)" = "$stamp" ]; then
    echo "npm/pkg is current" >&2
    exit 0
  fi
fi
if [ "${SKIP_CARGO:-0}" != 1 ]; then
  cargo rustc -q --release -p freshet-sdk --features js --target wasm32-unknown-unknown --crate-type cdylib \
    --config 'profile.release.package.freshet-sdk.opt-level="z"'
fi
# Under `make test`, scripts/prefetch.sh compiles ahead and stops here.
[ "${FRESHET_COMPILE_ONLY:-0}" = 1 ] && exit 0
WASM=target/wasm32-unknown-unknown/release/freshet_sdk.wasm
OUT=npm/pkg
rm -rf "$OUT" && mkdir -p "$OUT"
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir "$OUT" --out-name freshet_sdk "$WASM"
"$WASM_OPT_BIN" -Oz --converge --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$OUT/freshet_sdk_bg.wasm" -o "$OUT/freshet_sdk_bg.wasm"
rm -f "$OUT/.gitignore" "$OUT/package.json"
echo "$stamp" >.state/npm-pkg.stamp
ls -l "$OUT"
