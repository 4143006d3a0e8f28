"""Training data throughput (issue 13, point 7): a generated event log
replayed into point-in-time training rows, through the streamed-export path
(plain NDJSON in 1 MiB chunks, as `GET /v1/events` arrives) and through a
folder of gzipped log objects (one per batch, as the edge writes them).
Prints the BENCHMARKS.md section.

Usage: python training.py DIR SPEC [EVENTS] [ROWS]
(`python training.py measure DIR SPEC ROWS PATH` measures one path.)
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

SECOND = 1000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
SPAN = 30 * DAY
PER_BATCH = 20
# Entity rows of the Feast comparison: its file offline store's join does
# not reach the main figure's 100,000 on this machine.
FEAST_ROWS = 1_000
USERS = 20_000
PRODUCTS = 500
FEATURES = ["user:pageviews", "user:clicks_product_card_7d", "product:popularity_7d"]
TYPES = ["page_view", "product_click", "add_to_cart", "viewed_category", "search", "watch"]
WEIGHTS = [40, 30, 5, 15, 5, 5]


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def batch_lines(
    rng: random.Random, head: dict[str, object], received: int, client: str, number: str
) -> tuple[list[str], int]:
    """One batch's NDJSON lines (no newlines), `PER_BATCH` events of `client`
    with the batch fields `head`, and its earliest event time: event times up
    to 5 s before receipt, 1 in 20 up to 2 days (late)."""
    lines = []
    first = received
    for e in range(PER_BATCH):
        t = received - (rng.randrange(2 * DAY) if rng.random() < 0.05 else rng.randrange(5 * SECOND))
        first = min(first, t)
        kind = rng.choices(TYPES, WEIGHTS)[0]
        payload: dict[str, object] = {}
        if kind in ("product_click", "add_to_cart"):
            payload["productId"] = f"prod-{int(rng.paretovariate(1.2)) % PRODUCTS}"
        if kind == "add_to_cart":
            payload["price"] = rng.choice([5, 12.5, 20])
        if kind == "viewed_category":
            payload["category"] = rng.choice(["cameras", "lenses", "bags", "tripods"])
        line = dict(head, id=f"e{number}-{e:02d}", type=kind, timestamp=iso(t), clientId=client,
                    sessionId=f"s-{client}", userId=None, payload=payload)  # fmt: skip
        lines.append(json.dumps(line, separators=(",", ":")))
    return lines, first


def generate(root: Path, events: int, seed: int = 7) -> tuple[Path, int]:
    """The log: batches of 20 events from one visitor each, received evenly
    over 30 days, event times up to 5 s before receipt (1 in 20 up to 2 days:
    late). Written as one NDJSON stream and as one gzipped object per batch."""
    rng = random.Random(seed)
    stream = root / "export.ndjson"
    folder = root / "log"
    batches = events // PER_BATCH
    with stream.open("wb") as out:
        for b in range(batches):
            received = T0 + b * SPAN // batches
            head = {"batchId": f"b{b:08d}", "receivedAt": iso(received), "writeKey": "dev", "verifiedUser": None}
            client = f"cid-{rng.randrange(USERS)}"
            lines, first = batch_lines(rng, head, received, client, f"{b:08d}")
            data = "".join(line + "\n" for line in lines).encode()
            out.write(data)
            hour = time.strftime("%Y/%m/%d/%H", time.gmtime(first // 1000))
            path = folder / "events" / hour / f"{head['batchId']}.ndjson.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress(data, 6))
    return stream, batches


def entity_rows(rows: int, seed: int = 11) -> pd.DataFrame:
    rng = random.Random(seed)
    at = [T0 + rng.randrange(SPAN) for _ in range(rows)]
    return pd.DataFrame(
        {
            "user": [f"cid-{rng.randrange(USERS)}" for _ in range(rows)],
            "product": [f"prod-{int(rng.paretovariate(1.2)) % PRODUCTS}" for _ in range(rows)],
            "event_timestamp": pd.to_datetime(at, unit="ms", utc=True),
        }
    )


def chunks(path: Path, size: int = 1 << 20) -> Iterator[tuple[str, bytes, bool]]:
    with path.open("rb") as f:
        while block := f.read(size):
            yield str(path), block, True
    yield str(path), b"", False


def measure(root: Path, spec_path: Path, rows: int, path: str) -> dict[str, float]:
    """One path, in a process of its own so its peak memory is its own."""
    import freshet
    from freshet._freshet import MAX_LATENESS, replay_log

    spec = freshet.Spec(spec_path.read_text())
    df = entity_rows(rows)
    began = time.perf_counter()
    if path.startswith("stream"):
        as_of = path.split(":")[1]
        pairs = [tuple(f.split(":", 1)) for f in FEATURES]
        at = [int(t) // 1_000_000 for t in df["event_timestamp"].astype("int64")]
        query = (pairs, {"user": df["user"].tolist(), "product": df["product"].tolist()}, at)
        lateness = MAX_LATENESS if as_of == "event_time" else None
        _, _, events = replay_log(spec, [query], chunks(root / "export.ndjson"), as_of, lateness)
    else:
        as_of = path.split(":")[1]
        out = freshet.get_historical_features(df, FEATURES, root / "log", spec=spec, as_of=as_of)
        assert len(out) == rows and (out["pageviews"] > 0).any()
        events = 0
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "events": events, "peak_mb": peak}


PATHS = [
    ("stream:served", "replay of the NDJSON stream in 1 MiB chunks (as the export arrives), `served`"),
    ("stream:event_time", "the same, `event_time`"),
    ("folder:served", "`get_historical_features` from the folder of gzipped objects, `served`"),
    ("folder:event_time", "the same, `event_time`"),
]


def main() -> None:
    if sys.argv[1] == "measure":
        root, spec_path, rows, path = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        print(json.dumps(measure(root, spec_path, rows, path)))
        return
    root, spec_path = Path(sys.argv[1]), Path(sys.argv[2])
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    began = time.perf_counter()
    stream, batches = generate(root, events)
    made = time.perf_counter() - began
    size = stream.stat().st_size
    objects = sum(p.stat().st_size for p in (root / "log").rglob("*.gz"))

    def run(n_rows: int, path: str) -> dict[str, float]:
        cmd = [sys.executable, __file__, "measure", str(root), str(spec_path), str(n_rows), path]
        result: dict[str, float] = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
        return result

    results = [(name, run(rows, path)) for path, name in PATHS]
    small = run(1000, "folder:served")
    small_event_time = run(FEAST_ROWS, "folder:event_time")
    feast = None
    if feast_python := os.environ.get("FEAST_PYTHON"):
        cmd = [feast_python, str(Path(__file__).with_name("feast_training.py")), str(root), str(FEAST_ROWS)]
        feast = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)

    print(
        f"`scripts/bench-training.sh`, CPython {platform.python_version()}, one process per figure "
        f"({platform.machine()}, {os.cpu_count()} cores). A generated log of {events:,} events in "
        f"{batches:,} batches of {PER_BATCH} (one visitor each, {USERS:,} visitors, {PRODUCTS} products), received "
        f"evenly over 30 days, 1 event in 20 late by up to 2 days: {size / 1e6:.0f} MB of NDJSON, "
        f"{objects / 1e6:.0f} MB as {batches:,} gzipped log objects (made in {made:.0f} s, not timed). "
        f"{rows:,} entity rows (a user and a product each, times spread over the 30 days) x 3 features "
        f"({', '.join(FEATURES)}). Each figure covers the whole call: reading, parsing and folding every event "
        "(only the rows' entities' events are aggregated), answering the rows, building the columns (and, from "
        "the folder, listing and ordering the objects by the receive time on their first line). Peak memory is "
        "the process's, Python and pandas included."
    )
    print()
    print("| path | seconds | events / s | rows / s | peak memory |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results:
        s = r["seconds"]
        print(f"| {name} | {s:.2f} | {events / s:,.0f} | {rows / s:,.0f} | {r['peak_mb']:.0f} MB |")
    print()
    print(
        f"1,000 rows from the same folder: {small['seconds']:.2f} s, peak {small['peak_mb']:.0f} MB: the log's "
        "length sets the time, the rows barely do. The event-time view holds the rows' entities' events of the "
        "last 7 days and an hour of the log (the edge's lateness limit) before answering the rows they precede."
    )
    if feast is not None:
        print()
        print(
            f"For orientation, Feast {feast['version']}'s `get_historical_features` (file offline store) on "
            f"{FEAST_ROWS:,} of the same entity rows, over feature rows computed beforehand from the same log (not "
            f"timed: {feast['feature_rows']:,} rows in {feast['precompute']:.0f} s; per user the page-view count "
            "after each page view and the clicks of the 7 days up to each click, per product the same): "
            f"{feast['seconds']:.2f} s, peak {feast['peak_mb']:,.0f} MB, and {feast['rows_out']:,} rows returned of "
            f"{FEAST_ROWS:,}: its file offline store drops an entity row whose entity has feature rows but none in "
            "[row time - ttl, row time] (`_filter_ttl` in feast/infra/offline_stores/dask.py filters the left "
            "join's rows, leaving no empty row behind), where freshet answers the spec's default. "
            f"Freshet on the same {FEAST_ROWS:,} rows, from the gzipped log itself, `event_time` (Feast's view: "
            f"each row sees the feature rows at or before its time): {small_event_time['seconds']:.2f} s, peak "
            f"{small_event_time['peak_mb']:.0f} MB. Feast's join grew with the rows: at 10,000 rows over a "
            "100,000-event log it took 147 s and 11 GB (python/bench/feast_training.py, run by hand), so the "
            f"{rows:,}-row figure above has no Feast counterpart on this 24 GB machine."
        )


if __name__ == "__main__":
    main()
