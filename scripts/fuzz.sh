#!/usr/bin/env bash
# Fuzzes the receive path (fuzz/fuzz_targets/receive.rs: decode, validate,
# aggregate) with cargo-fuzz on the nightly toolchain for FUZZ_SECONDS
# (default 60). `make test` only checks that the target compiles.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
rustup run nightly rustc --version >/dev/null 2>&1 || {
  echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
}
bash scripts/tools.sh fuzz
step "fuzz: receive for ${FUZZ_SECONDS:-60} s"
cargo +nightly fuzz run receive -- -max_total_time="${FUZZ_SECONDS:-60}"
