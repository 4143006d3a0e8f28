#!/usr/bin/env bash
# Seed 2's platform at its size (issue 23): a generated population of seed
# 2's shape (SEED2_USERS users, 10,000 by default, and a quarter as many
# items) written to a redis-server of its own through core's apply path, one
# batch per watch (core/examples/seed2.rs); bytes per user, item and (user,
# item) pair, batch markers included, and the store at seed 2's 2M users.
# Writes the "Seed 2 at scale" section of BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis >&2
USERS=${SEED2_USERS:-10000}
OUT=$(cargo run -q --release -p freshet-core --example seed2 -- "$USERS")
echo "$OUT"
printf '%s\n\nMachine: %s cores, %s GiB; load average %s at the end.\n' "$OUT" "$(nproc)" \
  "$(awk '/MemTotal/ { printf "%d", $2 / 1048576 }' /proc/meminfo)" "$(cut -d' ' -f1 /proc/loadavg)" |
  python3 scripts/bench_section.py seed2
