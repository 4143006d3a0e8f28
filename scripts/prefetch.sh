#!/usr/bin/env bash
# Compiles ahead, in the background and at a lower priority, what the parts
# that `make test` runs last would compile (the Leptos example, the npm
# package's wasm, the crate's browser tests and size build): scripts/test.sh
# starts it when the shared builds are done and the parts that mostly wait
# (on the edge, a browser, a store) begin, so the idle core compiles. It
# runs those parts' own scripts with FRESHET_COMPILE_ONLY=1, the same cargo
# commands, so when the parts come they find their builds current. Cargo's
# lock on target/ keeps the two from building the same thing at once.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export FRESHET_COMPILE_ONLY=1 FRESHET_STEP_LOG=
t0=$(date +%s)
for part in leptos sdk sdk-web; do
  nice -n 10 bash "scripts/test-$part.sh"
done
echo "prefetch: compiled ahead for leptos, sdk, sdk-web in $(($(date +%s) - t0)) s"
