#!/usr/bin/env bash
# make help: Rust workspace tests (cargo test), core for wasm32, the fuzz target
# The Rust workspace: core for wasm32 (the browser's feature set and the
# worker's), every crate's native tests (`cargo test --workspace`: core, the
# tracker's logic, the edge's store tests against a real redis-server, the
# Python binding's Rust side), and the fuzz target's build.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis
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
