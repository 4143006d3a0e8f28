#!/usr/bin/env bash
# make help: Rust workspace tests (cargo test, clippy as it builds), core for wasm32, the fuzz target
# The Rust workspace: core for wasm32 (the browser's feature set and the
# worker's), every crate's native tests (`cargo test --workspace`: core, the
# tracker's logic, the edge's store tests against a real redis-server, the
# Python binding's Rust side), and a check that the fuzz target compiles
# (`make fuzz` builds and runs it with cargo-fuzz on nightly).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis
# Under `make test` the worker and the tracker package build core for wasm32
# later (FRESHET_CORE_WASM32_LATER=1); alone, this checks it.
if [ "${FRESHET_CORE_WASM32_LATER:-0}" != 1 ]; then
  step "core for wasm32 (the browser's feature set and the worker's)"
  cargo build -q -p freshet-core --target wasm32-unknown-unknown --no-default-features --features wire
  cargo build -q -p freshet-core --target wasm32-unknown-unknown
fi
# Built with clippy's lints (-D warnings; with_clippy in env.sh): every
# target, the benchmarks included (criterion runs each once as a test).
step "workspace tests, linted by clippy as they build"
with_clippy cargo test --workspace --all-targets
with_clippy cargo test --workspace --doc
# A check, not cargo-fuzz's instrumented nightly build: that cost 3 to 7
# minutes of a run from nothing (installing cargo-fuzz, then building core
# again with sanitizer coverage) to learn no more than whether it compiles.
step "the fuzz target compiles (cargo check)"
cargo check -q --manifest-path fuzz/Cargo.toml --no-default-features
