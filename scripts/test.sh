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
# The tree must be as the run found it: a test that writes a tracked file (a
# lockfile, a picture) or leaves a file git does not ignore fails the run at
# the end. Compared with the start, so a developer's own uncommitted work
# does not count.
tree_state() { git status --porcelain 2>/dev/null; git diff 2>/dev/null | sha1sum; }
tree_before=$(tree_state)
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
step "the tree is as the run found it (git status)"
tree_after=$(tree_state)
if [ "$tree_after" != "$tree_before" ]; then
  echo "make test changed the tree (a tracked file, or a file git does not ignore):" >&2
  diff <(echo "$tree_before") <(echo "$tree_after") >&2 || true
  exit 1
fi
sleep 1 # let tee catch up
# Totals of every runner: cargo's "test result:", node's "# pass"/"# fail",
# pytest's closing "== N passed, M failed … in Xs ==".
awk '/^test result:/ { p += $4; f += $6 }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     /^=+ .* in [0-9.]+s/ && / (passed|failed)/ {
       for (i = 2; i < NF; i++) {
         w = $(i + 1); sub(/,$/, "", w)
         if (w == "passed") p += $i
         if (w == "failed" || w == "errors" || w == "error") f += $i
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
