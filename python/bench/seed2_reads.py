"""Seed 2's reads on its population (BENCHMARKS "Seed 2 at scale"): with
the generated users and items in Redis (core/examples/seed2.rs, prefix
`s2`), one user's features and the ranking read of seed 2's `/rank` (the
user, 100 items, the 100 (user, item) pairs), through the Python reader
in-process and through the edge's serving API (`GET /v1/features/user/{id}`,
`POST /v1/features/batch` with `pairFeatures`) under `wrangler dev`, each
against a random user and random items per call. One JSON object per
measurement on stdout.

Usage: python seed2_reads.py REDIS_PORT USERS N   (the tests' conftest starts the worker)
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from timing import side_by_side

import freshet

from conftest import READ_TOKEN, ROOT, start_edge, stop

redis_port, users, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
items = max(users // 4, 100)
SPEC = ROOT / "examples" / "media" / "features.toml"
URL = f"redis://127.0.0.1:{redis_port}/0?prefix=s2"
rng = random.Random(7)


def user() -> str:
    return f"u-{rng.randrange(users)}"


def hundred_items() -> list[str]:
    return [f"v-{i}" for i in rng.sample(range(items), 100)]


store = freshet.FeatureStore(str(SPEC), URL)
tmp = Path(tempfile.mkdtemp())
edge = start_edge(tmp, URL, extra_vars={"FRESHET_SPEC": SPEC.read_text()})
try:
    client = httpx.Client(base_url=edge.base, headers={"authorization": f"Bearer {READ_TOKEN}"})

    def reader_user() -> None:
        row = store.get_online_features("user", [user()])[0]
        assert len(row["user_genre_preferences"].value) == 32

    def reader_rank() -> None:
        got = store.get_ranking_features(user(), hundred_items(), user_entity="user", item_entity="item",
                                         pair_entity="user_item")  # fmt: skip
        assert len(got.items) == 100

    def edge_user() -> None:
        r = client.get(f"/v1/features/user/{user()}")
        assert r.status_code == 200, r.text

    def edge_rank() -> None:
        body = {"userId": user(), "itemIds": hundred_items(), "userEntity": "user", "itemEntity": "item",
                "pairEntity": "user_item"}  # fmt: skip
        r = client.post("/v1/features/batch", json=body)
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == 100

    for area, calls in (("one user", {"Python reader": reader_user, "serving API": edge_user}),
                        ("rank: 1 user + 100 items + 100 pairs",
                         {"Python reader": reader_rank, "serving API": edge_rank})):  # fmt: skip
        for m in side_by_side(calls, n):
            print(json.dumps({"area": area, **m}), flush=True)
finally:
    stop(edge.proc)
