#!/usr/bin/env bash
# The core bench (decode + validate + aggregate, 15 and 500 events) and its
# section of BENCHMARKS.md, written from criterion's estimates.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo bench -q -p freshet-core --bench ingest -- --warm-up-time 2 --measurement-time 5 >/dev/null 2>&1
python3 scripts/bench_section.py core <<PY
$(python3 - <<'INNER'
import json, os, platform, subprocess
root = "target/criterion"
def est(group, bench):
    with open(os.path.join(root, group, bench, "new", "estimates.json")) as f:
        e = json.load(f)
    return e["median"]["point_estimate"] / 1000.0  # microseconds
rows = []
for n in (15, 500):
    for enc in ("json", "gzip"):
        us = est("decode_validate_aggregate", f"{enc}/{n}")
        rows.append(f"| {n} events, {enc} | {us:,.1f} µs | {us / n:.2f} µs | {n / us * 1e6:,.0f} |")
v = est("stage_15", "validate"); a = est("stage_15", "aggregate")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
load = os.getloadavg()[0]
print(f"""Decode + validate + aggregate with the example spec (11 features, 2 entities), one
core, median of criterion's samples. Machine: {cpu}, {os.cpu_count()} cores, load average {load:.1f}
while measuring. Command: `bash scripts/bench-core.sh` (or `cargo bench -p freshet-core --bench ingest`).

| batch | per batch | per event | events/s |
|---|---|---|---|
""" + "\n".join(rows) + f"""

Where the time of a 15-event batch goes: validation (JSON parse, limits,
timestamps) {v:.1f} µs, aggregation into deltas {a:.1f} µs. gzip adds the
inflate of the body, the difference between the json and gzip rows.""")
INNER
)
PY
