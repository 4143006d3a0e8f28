"""The `## Python reader` section of BENCHMARKS.md from the JSON lines of
reader.py and feast_reader.py. Usage: python report.py RESULTS N FEAST_VERSION"""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
n, feast_version = sys.argv[2], sys.argv[3]
AREAS = {
    "redis-user": "Redis, one user x five features",
    "redis-ranking": "Redis, one user + 100 items (ranking)",
    "mongo-user": "MongoDB (SecantusDB), one user x five features",
    "mongo-ranking": "MongoDB (SecantusDB), one user + 100 items (ranking)",
}


def find(area: str, prefix: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["area"] == area and r["name"].startswith(prefix)), None)


out = [
    f"`scripts/bench-python.sh`, {platform.python_implementation()} {platform.python_version()}, "
    f"{n} calls per row after a warm-up (a quarter for the ranking reads), one call at a time, in-process, "
    "against one redis-server and one SecantusDB on 127.0.0.1, all in the same run. The reader's values were "
    f"checked against the seeded ones first; Feast {feast_version}'s SDK reads the same values from its own "
    "keys on the same redis-server. Times in microseconds.",
    "",
]
for area, title in AREAS.items():
    part = [r for r in rows if r["area"] == area]
    if not part:
        continue
    out += [f"**{title}**", "", "| reader | p50 | p99 | p50 / floor |", "|---|---:|---:|---:|"]
    for r in part:
        floor = next((f for f in part if "floor" in f["name"] and ("async" in f["name"]) == ("async" in r["name"])),
                     None)  # fmt: skip
        ratio = f"{r['p50_us'] / floor['p50_us']:.2f}x" if floor else ""
        out.append(f"| {r['name']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {ratio} |")
    out.append("")

aims = []
for area in ["redis-user", "redis-ranking"]:
    sync, floor = find(area, "freshet sync"), find(area, "redis-py")
    feast = find(area, "feast")
    if sync and floor:
        ratio = sync["p50_us"] / floor["p50_us"]
        aims.append(f"- {AREAS[area]}: freshet sync p50 is {ratio:.2f}x raw redis-py's "
                    f"({'within' if ratio <= 1.5 else 'over'} the 1.5x aim).")  # fmt: skip
    if sync and feast:
        p50, p99 = feast["p50_us"] / sync["p50_us"], feast["p99_us"] / sync["p99_us"]
        ok = p50 >= 5 and p99 >= 5
        aims.append(f"- {AREAS[area]}: Feast's SDK is {p50:.1f}x slower at p50 and {p99:.1f}x at p99 "
                    f"({'meets' if ok else 'misses'} the 5x aim).")  # fmt: skip
cpu = [r for r in rows if r["area"] == "cpu"]
if cpu:
    out += ["Where the reader's time over the floor goes (no I/O, the same run): "
            + "; ".join(f"{r['name']} {r['p50_us']:.0f} us at p50" for r in cpu)
            + ". The floor only fetches the hashes; the reader also turns them into served values "
            "(windows as of now, defaults, ttl staleness) and Python objects.", ""]  # fmt: skip
out += ["Aims (issue 12):", "", *aims]
print("\n".join(out))
