#!/usr/bin/env bash
# Seed 2's platform at its size (issue 23): a generated population of seed
# 2's shape (SEED2_USERS users, 10,000 by default, and a quarter as many
# items) written to a redis-server of this script through core's apply
# path, one batch per watch (core/examples/seed2/): bytes per user, item
# and (user, item) pair, batch markers included, and the store at seed 2's
# 2M users. Then, on that population, seed 2's reads (one user; its /rank:
# the user, 100 items and the 100 pairs) through the Python reader and the
# serving API under `wrangler dev` (python/bench/seed2_reads.py), SEED2_N
# calls each (2,000 by default). And MongoDB's documents of a sample of the
# same population (core's updates applied to SecantusDB; BSON sizes,
# python/bench/seed2_mongo.py). Writes the "Seed 2 at scale" section of
# BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis python node worker >&2
USERS=${SEED2_USERS:-10000}
N=${SEED2_N:-2000}
own_redis

step "seed 2: generate and load $USERS users (core/examples/seed2/)"
MONGO_UPDATES="$TMP/mongo-updates.ndjson" # own_redis's folder, removed at exit
OUT=$(SEED2_MONGO=$MONGO_UPDATES cargo run -q --release -p freshet-core --example seed2 -- "$USERS" "redis://127.0.0.1:$REDIS_PORT")
echo "$OUT"

step "seed 2: reads on the population, $N calls each (python/bench/seed2_reads.py)"
bash scripts/install-python.sh >&2
# The store was written in layout 2 only: mark it so, as a deployment does
# once (`freshet migrate`), so reads look for nothing in layout 1.
"$TOOLS/venv/bin/freshet" migrate --url "redis://127.0.0.1:$REDIS_PORT/0?prefix=s2" --spec examples/media/features.toml >&2
build_worker >&2
step "seed 2: MongoDB's documents of a sample (python/bench/seed2_mongo.py)"
MONGO=$(cd python/bench && "$TOOLS/venv/bin/python" seed2_mongo.py "$MONGO_UPDATES")
echo "$MONGO"
READS=$(cd python/bench && "$TOOLS/venv/bin/python" seed2_reads.py "$REDIS_PORT" "$USERS" "$N")
echo "$READS"
TABLE=$(echo "$READS" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.strip()]
print("| read | through | p50 | p95 | p99 | calls |")
print("|---|---|---:|---:|---:|---:|")
for r in rows:
    ms = ["%.2f ms" % (r[k] / 1000) for k in ("p50_us", "p95_us", "p99_us")]
    print("| %s | %s | %s | %s | %s | %d |" % (r["area"], r["name"], *ms, r["n"]))
print("| /rank, seed 2 (its own figure) | its API | 3.2 ms | 4.8 ms | | |")
')
echo "$TABLE"
# shellcheck disable=SC2016 # backquotes are Markdown here
printf '%s\n\n%s\n\nReads on that population, a random user and 100 random items a call, side by side in one run (python/bench/seed2_reads.py: the Python reader in-process, the serving API under `wrangler dev` on the same redis-server, one keep-alive client):\n\n%s\n\nMachine: %s cores, %s GiB (this sandbox); `scripts/bench-seed2.sh` (SEED2_USERS=%s, SEED2_N=%s); load average %s at the end.\n' \
  "$OUT" "$MONGO" "$TABLE" "$(nproc)" "$(awk '/MemTotal/ { printf "%d", $2 / 1048576 }' /proc/meminfo)" "$USERS" "$N" "$(cut -d' ' -f1 /proc/loadavg)" |
  python3 scripts/bench_section.py seed2
