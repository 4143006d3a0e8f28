"""Training data throughput (issue 13, point 7): a generated event log
replayed into point-in-time training rows, through the streamed-export path
(plain NDJSON in 1 MiB chunks, as `GET /v1/events` arrives) and through a
folder of gzipped log objects (one per batch, as the edge writes them).
Prints the BENCHMARKS.md section.

Usage: python training.py DIR SPEC [EVENTS] [ROWS]
"""

from __future__ import annotations

import gzip
import json
import platform
import random
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

import freshet
from freshet._freshet import replay_log

SECOND = 1000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
SPAN = 30 * DAY
PER_BATCH = 20
USERS = 20_000
PRODUCTS = 500
FEATURES = ["user:pageviews", "user:clicks_product_card_7d", "product:popularity_7d"]
TYPES = ["page_view", "product_click", "add_to_cart", "viewed_category", "search", "watch"]
WEIGHTS = [40, 30, 5, 15, 5, 5]


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


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
                line = dict(head, id=f"e{b:08d}-{e:02d}", type=kind, timestamp=iso(t), clientId=client,
                            sessionId=f"s-{client}", userId=None, payload=payload)  # fmt: skip
                lines.append(json.dumps(line, separators=(",", ":")) + "\n")
            data = "".join(lines).encode()
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


def main() -> None:
    root, spec_path = Path(sys.argv[1]), Path(sys.argv[2])
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    spec = freshet.Spec(spec_path.read_text())
    began = time.perf_counter()
    stream, batches = generate(root, events)
    made = time.perf_counter() - began
    df = entity_rows(rows)
    pairs = [tuple(f.split(":", 1)) for f in FEATURES]
    at = [int(t) // 1_000_000 for t in df["event_timestamp"].astype("int64")]
    query = (pairs, {"user": df["user"].tolist(), "product": df["product"].tolist()}, at)
    size = stream.stat().st_size
    objects = sum(p.stat().st_size for p in (root / "log").rglob("*.gz"))

    results = []
    for as_of in ("served", "event_time"):
        t = time.perf_counter()
        _, nb, ne = replay_log(spec, [query], chunks(stream), as_of)
        results.append((f"replay of the NDJSON stream in 1 MiB chunks (as the export arrives), `{as_of}`",
                        time.perf_counter() - t, nb, ne))  # fmt: skip
    t = time.perf_counter()
    from_folder = freshet.get_historical_features(df, FEATURES, root / "log", spec=spec)
    results.append(("`get_historical_features` from the folder of gzipped objects, `served`",
                    time.perf_counter() - t, batches, events))  # fmt: skip
    t = time.perf_counter()
    freshet.get_historical_features(df.iloc[:1000], FEATURES, root / "log", spec=spec)
    small = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(from_folder) == rows and (from_folder["pageviews"] > 0).any()

    print(
        f"`scripts/bench-training.sh`, CPython {platform.python_version()}, one process "
        f"({platform.machine()}, {__import__('os').cpu_count()} cores). A generated log of {events:,} events in "
        f"{batches:,} batches of {PER_BATCH} (one visitor each, {USERS:,} visitors, {PRODUCTS} products), received "
        f"evenly over 30 days, 1 event in 20 late by up to 2 days: {size / 1e6:.0f} MB of NDJSON, "
        f"{objects / 1e6:.0f} MB as {batches:,} gzipped log objects (made in {made:.0f} s, not timed below). "
        f"{rows:,} entity rows (a user and a product each, times spread over the 30 days) x 3 features "
        f"({', '.join(FEATURES)}). Each figure covers the whole call: reading, parsing, folding every event "
        "(each is aggregated, then kept only for the rows' entities), answering the rows, building the columns."
    )
    print()
    print("| path | seconds | events / s | rows / s |")
    print("|---|---:|---:|---:|")
    for name, seconds, _, n_events in results:
        print(f"| {name} | {seconds:.2f} | {n_events / seconds:,.0f} | {rows / seconds:,.0f} |")
    print()
    print(
        f"1,000 rows from the same folder: {small:.2f} s: the log's length sets the time, the rows barely do. "
        f"Peak memory of the process: {peak:.0f} MB (the log is {size / 1e6:.0f} MB; only the rows' entities' "
        "documents are kept, and the folder's listing, one key and receive time per object)."
    )


if __name__ == "__main__":
    main()
