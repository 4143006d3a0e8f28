"""The Python reader on one Redis and on a Redis Cluster, side by side
(BENCHMARKS "Stores beyond one node"): one user's features, and a ranking
read of one user, 100 items and the 100 (user, item) pairs, whose keys span
the cluster's masters (redis-py's `RedisCluster` sends each master its part
of the pipeline), sync and async. The stores hold what
scripts/bench-cluster.sh's ingest wrote (`cid-bench-*`, `prod-*`). One JSON
object per measurement on stdout.

Usage: python cluster_reads.py ONE_REDIS_URL CLUSTER_URL N
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import side_by_side, side_by_side_async

import freshet

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "features.toml"
one, cluster, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ITEMS = [f"prod-{i}" for i in range(100)]
PAIRS = ["user_product_clicks", "user_product_last_seen"]
stores = {"one-redis": freshet.FeatureStore(SPEC, one), "cluster": freshet.FeatureStore(SPEC, cluster)}


def emit(rows: list[dict[str, object]], read: str, mode: str) -> None:
    for row in rows:
        print(json.dumps({**row, "read": read, "mode": mode}))


emit(side_by_side({k: (lambda s=s: s.get_online_features("user", ["cid-bench-1"])) for k, s in stores.items()}, n),
     "one user", "sync")  # fmt: skip
emit(side_by_side({k: (lambda s=s: s.get_ranking_features("cid-bench-1", ITEMS, pair_features=PAIRS))
                   for k, s in stores.items()}, n), "rank", "sync")  # fmt: skip


async def main() -> None:
    for s in stores.values():
        await s.__aenter__()
    calls = {k: (lambda s=s: s.get_ranking_features_async("cid-bench-1", ITEMS, pair_features=PAIRS))
             for k, s in stores.items()}  # fmt: skip
    emit(await side_by_side_async(calls, n), "rank", "async")
    for s in stores.values():
        await s.__aexit__(None, None, None)


asyncio.run(main())
for s in stores.values():
    s.close()
