#!/usr/bin/env bash
# Every test of the project, as CI runs it (.ci/run calls `make test`).
# Each part adds a scripts/test-<part>.sh; they run after the core checks.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
# Everything printed is kept, so the last line can total the test counts of
# every runner (cargo's "test result:", node's "# pass"/"# fail").
mkdir -p .state
LOG=.state/test.log
exec > >(tee "$LOG") 2>&1
bash scripts/tools.sh rust redis
step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
step "core for wasm32 (the browser's feature set and the worker's)"
cargo build -q -p freshet-core --target wasm32-unknown-unknown --no-default-features --features wire
cargo build -q -p freshet-core --target wasm32-unknown-unknown
step "workspace tests"
cargo test --workspace
step "fuzz target builds"
if rustup run nightly rustc --version >/dev/null 2>&1; then
  bash scripts/tools.sh fuzz
  cargo +nightly fuzz build -s none receive
else
  echo "no nightly toolchain: checking the fuzz target on stable only"
  cargo check --manifest-path fuzz/Cargo.toml
fi
for part in "$ROOT"/scripts/test-*.sh; do
  [ -e "$part" ] || continue
  step "$(basename "$part")"
  bash "$part"
done
sleep 1 # let tee catch up
awk '/^test result:/ { p += $4; f += $6 }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
