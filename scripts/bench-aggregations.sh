#!/usr/bin/env bash
# Each aggregation's cost per event (issue 14, point 8): criterion folds a
# 500-event batch into one feature of each kind (core/benches/aggregations.rs);
# and the bytes per entity of seed 2's media spec in Redis
# (core/examples/entity_memory.rs media, on a redis-server it starts).
# Writes the "Aggregations" section of BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis >&2
MEDIA=$(cargo run -q --release -p freshet-core --features bson --example entity_memory -- media)
cargo bench -q -p freshet-core --bench aggregations -- --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1
python3 scripts/bench_section.py aggregations <<PY
$(python3 - <<'INNER'
import json, os, pathlib, re
root = pathlib.Path("target/criterion/aggregate_500")
names = re.findall(r'^\s*\(\s*"([^"]+)",', pathlib.Path("core/benches/aggregations.rs").read_text(), re.M)
rows = []
base = None
for name in names:
    folder = next(p for p in root.iterdir() if (p / "new" / "benchmark.json").exists()
                  and json.loads((p / "new" / "benchmark.json").read_text())["value_str"] == name)
    ns = json.loads((folder / "new" / "estimates.json").read_text())["median"]["point_estimate"] / 500
    base = base or ns
    rows.append(f"| {name} | {ns:,.0f} ns | {ns / base:.1f}x |")
load = os.getloadavg()[0]
print(f"""`scripts/bench-aggregations.sh` (core/benches/aggregations.rs): a 500-event batch of watch events of one
user folded into one feature of each kind by `aggregate`, validation excluded; per event, criterion's median,
one core, {os.cpu_count()} cores, load average {load:.1f} while measuring. The ratio is to `count` in the same run.

| aggregation | per event | vs count |
|---|---:|---:|
""" + "\n".join(rows))
INNER
)

$MEDIA
PY
sed -n '/aggregations:begin/,/aggregations:end/p' BENCHMARKS.md
