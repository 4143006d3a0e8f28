"""Seed 2's state in MongoDB (BENCHMARKS "Seed 2 at scale"): applies the
updates core/examples/seed2 wrote for a sample of entities (core's
`update_one` of each delta, one batch per watch, in time order) to a
MongoDB wire server of its own (SecantusDB), as the edge sends them
(`upsert`, a duplicate-key error meaning "already applied"), then measures
each document's BSON size (MongoDB's `Object.bsonsize`: what its cache
holds, before WiredTiger's compression on disk), with and without its batch
markers (`_b`). Prints a Markdown table.

Usage: python seed2_mongo.py UPDATES.ndjson
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import bson
import pymongo
from bson.int64 import Int64
from pymongo.errors import DuplicateKeyError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import SECANTUSD, free_port, spawn, stop, wait_port


def int64(value: Any) -> Any:
    """core's JSON as the edge sends it: every integer an Int64 (`json_to_bson`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Int64(value)
    if isinstance(value, dict):
        return {k: int64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [int64(v) for v in value]
    return value


def stats(sizes: list[int]) -> str:
    s = sorted(sizes)
    p99 = s[round((len(s) - 1) * 0.99)]
    return f"{statistics.fmean(s):.0f} / {s[len(s) // 2]} / {p99} B"


def main() -> None:
    updates = Path(sys.argv[1])
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    (tmp / "data").mkdir()
    log = tmp / "secantusd.log"
    proc = spawn([str(SECANTUSD), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(tmp / "data"),
                  "--standalone", "--log-level", "WARNING"], log)  # fmt: skip
    try:
        wait_port(port, proc, "SecantusDB", log)
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient("127.0.0.1", port, directConnection=True)
        db = client["seed2"]
        applied = duplicates = 0
        with updates.open(encoding="utf-8") as f:
            for line in f:
                u = json.loads(line)
                try:
                    db[u["c"]].update_one(u["f"], int64(u["u"]), upsert=True)
                    applied += 1
                except DuplicateKeyError:
                    duplicates += 1
        print(f"MongoDB (SecantusDB, {applied} updates of a sample, {duplicates} duplicates; BSON bytes of "
              "each document, mean / p50 / p99; the media spec without `float = \"f32\"`, which MongoDB "
              "refuses):\n")  # fmt: skip
        print("| per entity | documents | whole document | without its markers (`_b`) |")
        print("|---|---:|---|---|")
        for name, collection in (("user", "user_features"), ("item", "item_features"),
                                 ("user_item pair", "user_item_features")):  # fmt: skip
            whole, bare = [], []
            for doc in db[collection].find({}):
                whole.append(len(bson.encode(doc)))
                doc.pop("_b", None)
                bare.append(len(bson.encode(doc)))
            print(f"| {name} | {len(whole)} | {stats(whole)} | {stats(bare)} |")
        client.close()
    finally:
        stop(proc)


main()
