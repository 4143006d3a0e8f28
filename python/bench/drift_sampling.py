"""What drift sampling costs a Redis read, side by side in one run: the same
FeatureStore read (one user x five features) with `drift_sample_rate` 0
(off), 0.01 (the default) and 1 (every read sampled: the cost of one
sample, paid by 1 read in 100 at the default). One JSON object per
measurement on stdout.

Usage: python drift_sampling.py REDIS_PORT SPEC N
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis
from seed import USER_FEATURES, values, write_redis
from timing import side_by_side, side_by_side_async

import freshet

redis_port, spec, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
v = values(1)
uid = v["user"]["id"]
URL = f"redis://127.0.0.1:{redis_port}/0"
write_redis(redis.Redis(port=redis_port), "fs", v)

rates = {"off (0)": 0.0, "default (0.01)": 0.01, "every read (1)": 1.0}
stores = {name: freshet.FeatureStore(spec, URL, timeout=2, drift_sample_rate=rate) for name, rate in rates.items()}
calls = {name: (lambda s=s: s.get_online_features("user", [uid], USER_FEATURES)) for name, s in stores.items()}
for m in side_by_side(calls, n):
    print(json.dumps({"area": "sync", **m}), flush=True)
for s in stores.values():
    s.close()


async def main() -> None:
    astores = {name: freshet.FeatureStore(spec, URL, timeout=2, drift_sample_rate=r) for name, r in rates.items()}
    acalls = {
        name: (lambda s=s: s.get_online_features_async("user", [uid], USER_FEATURES)) for name, s in astores.items()
    }
    for m in await side_by_side_async(acalls, n):
        print(json.dumps({"area": "async", **m}), flush=True)
    for s in astores.values():
        await s.aclose()


asyncio.run(main())
samples = sum(1 for _ in redis.Redis(port=redis_port).scan_iter("fs:drift:*"))
print(json.dumps({"area": "check", "summary_hashes": samples}), flush=True)
