#!/usr/bin/env bash
# `make bench`: every benchmark of the project; each part's script writes its
# own section of BENCHMARKS.md. Timings on a shared 2-core machine are noisy:
# read the ratios measured side by side in one run, not the absolute figures.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
for part in scripts/bench-core.sh scripts/bench-*.sh; do
  [ -e "$part" ] || continue
  case "$part" in scripts/bench-core.sh) [ "${ran_core:-}" ] && continue; ran_core=1 ;; esac
  step "$(basename "$part")"
  bash "$part"
done
