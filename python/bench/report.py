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
    "redis-user": ("Redis, one user x five features", "floor"),
    "redis-ranking": ("Redis, one user + 100 items (ranking)", "floor"),
    "feast-user": (f"Beside Feast {feast_version}'s SDK, Redis, one user x five features", "freshet"),
    "feast-ranking": (f"Beside Feast {feast_version}'s SDK, Redis, one user + 100 items", "freshet"),
    "mongo-user": ("MongoDB (SecantusDB), one user x five features", "floor"),
    "mongo-ranking": ("MongoDB (SecantusDB), one user + 100 items (ranking)", "floor"),
}


def find(area: str, prefix: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["area"] == area and r["name"].startswith(prefix)), None)


def base_of(part: list[dict[str, Any]], r: dict[str, Any], kind: str) -> dict[str, Any] | None:
    if kind == "freshet":
        return next((b for b in part if b["name"].startswith("freshet")), None)
    return next((b for b in part if "floor" in b["name"] and ("async" in b["name"]) == ("async" in r["name"])), None)


out = [
    f"`scripts/bench-python.sh`, {platform.python_implementation()} {platform.python_version()}, in-process, "
    "one call at a time, against one redis-server and one SecantusDB on 127.0.0.1, all in one run. Readers "
    f"compared in a table ran side by side: {n} timed calls each (a quarter for the 100-item reads), "
    "interleaved in 20 rounds after a warm-up, so a change of load on the machine falls on all of them. "
    "Every reader's values were checked against the seeded ones first. Feast's SDK reads the same values "
    "from its own keys on the same redis-server, beside freshet's sync reader in the Feast venv (the same "
    "wheel). The floor is raw redis-py or pymongo fetching the same keys, without computing values; MongoDB "
    "documents carry 100 `_batches` markers as the edge leaves them, which the floor's `find_one` fetches "
    "whole and the reader projects away (it reads only the named features). "
    "Times in microseconds.",
    "",
]
for area, (title, kind) in AREAS.items():
    part = [r for r in rows if r["area"] == area]
    if not part:
        continue
    col = "p50 / floor" if kind == "floor" else "p50 / freshet"
    out += [f"**{title}**", "", f"| reader | p50 | p99 | {col} |", "|---|---:|---:|---:|"]
    for r in part:
        b = base_of(part, r, kind)
        ratio = f"{r['p50_us'] / b['p50_us']:.2f}x" if b else ""
        out.append(f"| {r['name']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {ratio} |")
    out.append("")

cpu = [r for r in rows if r["area"] == "cpu"]
if cpu:
    out += ["Where the reader's time over the floor goes (no I/O, the same run): "
            + "; ".join(f"{r['name']}, {r['p50_us']:.0f} us at p50" for r in cpu)
            + ". The floor only fetches the hashes; the reader also turns them into served values "
            "(windows as of now, defaults, ttl staleness) and Python objects.", ""]  # fmt: skip

aims = []
for area, feast_area in [("redis-user", "feast-user"), ("redis-ranking", "feast-ranking")]:
    title = AREAS[area][0]
    sync, floor = find(area, "freshet sync"), find(area, "redis-py")
    if sync and floor:
        ratio = sync["p50_us"] / floor["p50_us"]
        aims.append(f"- {title}: freshet sync p50 is {ratio:.2f}x raw redis-py's "
                    f"({'within' if ratio <= 1.5 else 'over'} the 1.5x aim).")  # fmt: skip
    mine, feast = find(feast_area, "freshet sync"), find(feast_area, "feast")
    if mine and feast:
        p50, p99 = feast["p50_us"] / mine["p50_us"], feast["p99_us"] / mine["p99_us"]
        ok = p50 >= 5 and p99 >= 5
        aims.append(f"- {title}: Feast's SDK is {p50:.1f}x slower at p50 and {p99:.1f}x at p99 "
                    f"({'meets' if ok else 'misses'} the 5x aim).")  # fmt: skip
out += ["Aims (issue 12):", "", *aims]
print("\n".join(out))
