"""The Python reader's benchmark, in-process, against one redis-server and
one SecantusDB: freshet (sync and async) beside raw redis-py and pymongo
reading the same keys, measured side by side. One JSON object per
measurement on stdout.

Usage: python reader.py REDIS_PORT MONGO_PORT SPEC N
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pymongo
import redis
import redis.asyncio
from pymongo import AsyncMongoClient
from seed import ITEM_FEATURES, USER_FEATURES, values, write_mongo, write_redis
from timing import side_by_side, side_by_side_async

import freshet

redis_port, mongo_port, spec, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
v = values(100)
uid, item_ids = v["user"]["id"], [i["id"] for i in v["items"]]
REDIS_URL = f"redis://127.0.0.1:{redis_port}/0"
MONGO_URL = f"mongodb://127.0.0.1:{mongo_port}/bench?directConnection=true"

r = redis.Redis(port=redis_port)
write_redis(r, "fs", v)
mongo = pymongo.MongoClient(MONGO_URL)
write_mongo(mongo.bench, v)


def emit(area: str, results: list[dict[str, Any]]) -> None:
    for m in results:
        print(json.dumps({"area": area, **m}), flush=True)


def check(res: freshet.OnlineResponse) -> None:
    row = res[0]
    assert row["pageviews"].value == 42 and row["last_interacted_product"].value == "prod-17", row


store = freshet.FeatureStore(spec, REDIS_URL, timeout=2)
check(store.get_online_features("user", [uid], USER_FEATURES))
rank = store.get_ranking_features(uid, item_ids, USER_FEATURES, ITEM_FEATURES)
assert [row["popularity_7d"].value for row in rank.items] == [i["popularity_7d"] for i in v["items"]]
key = f"fs:{{user:{uid}}}"
keys = [key] + [f"fs:{{product:{i}}}" for i in item_ids]


def raw_ranking() -> list[Any]:
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(k)
    return pipe.execute()


emit("redis-user", side_by_side({
    "redis-py hgetall (floor)": lambda: r.hgetall(key),
    "freshet sync": lambda: store.get_online_features("user", [uid], USER_FEATURES),
}, n))  # fmt: skip
emit("redis-ranking", side_by_side({
    "redis-py pipeline of 101 hgetall (floor)": raw_ranking,
    "freshet sync": lambda: store.get_ranking_features(uid, item_ids, USER_FEATURES, ITEM_FEATURES),
}, n // 4))  # fmt: skip

# Where the reader's time over the floor goes: building the commands and
# decoding the replies into values (core, through the extension), no I/O.
uplan, iplan = store.spec.plan("user", USER_FEATURES), store.spec.plan("product", ITEM_FEATURES)
replies = raw_ranking()
emit("cpu", side_by_side({
    "commands for 1 user + 100 items": lambda: (uplan.redis_commands("fs", [uid]),
                                                iplan.redis_commands("fs", item_ids)),
    "decode 1 user + 100 items into values": lambda: (uplan.decode_redis("fs", [uid], replies[:1]),
                                                      iplan.decode_redis("fs", item_ids, replies[1:])),
}, n // 4))  # fmt: skip

mstore = freshet.FeatureStore(spec, MONGO_URL, timeout=2)
check(mstore.get_online_features("user", [uid], USER_FEATURES))
users, products = mongo.bench.user_features, mongo.bench.product_features
emit("mongo-user", side_by_side({
    "pymongo find_one (floor)": lambda: users.find_one({"_id": uid}),
    "freshet sync": lambda: mstore.get_online_features("user", [uid], USER_FEATURES),
}, n))  # fmt: skip
emit("mongo-ranking", side_by_side({
    "pymongo find_one + find $in (floor)": lambda: (users.find_one({"_id": uid}),
                                                    list(products.find({"_id": {"$in": item_ids}}))),
    "freshet sync": lambda: mstore.get_ranking_features(uid, item_ids, USER_FEATURES, ITEM_FEATURES),
}, n // 4))  # fmt: skip


async def async_part() -> None:
    ar = redis.asyncio.Redis(port=redis_port)
    astore = freshet.FeatureStore(spec, REDIS_URL, timeout=2)

    async def araw_ranking() -> list[Any]:
        pipe = ar.pipeline(transaction=False)
        for k in keys:
            pipe.hgetall(k)
        return await pipe.execute()

    emit("redis-user", await side_by_side_async({
        "redis.asyncio hgetall (floor)": lambda: ar.hgetall(key),
        "freshet async": lambda: astore.get_online_features_async("user", [uid], USER_FEATURES),
    }, n))  # fmt: skip
    emit("redis-ranking", await side_by_side_async({
        "redis.asyncio pipeline of 101 hgetall (floor)": araw_ranking,
        "freshet async": lambda: astore.get_ranking_features_async(uid, item_ids, USER_FEATURES, ITEM_FEATURES),
    }, n // 4))  # fmt: skip
    await astore.aclose()
    await ar.aclose()

    amongo: Any = AsyncMongoClient(MONGO_URL)
    amstore = freshet.FeatureStore(spec, MONGO_URL, timeout=2)
    coll = amongo.bench.user_features
    emit("mongo-user", await side_by_side_async({
        "pymongo async find_one (floor)": lambda: coll.find_one({"_id": uid}),
        "freshet async": lambda: amstore.get_online_features_async("user", [uid], USER_FEATURES),
    }, n))  # fmt: skip
    await amstore.aclose()
    await amongo.close()


asyncio.run(async_part())
store.close()
mstore.close()
