"""The Python reader's benchmark, in-process, against one redis-server and
one SecantusDB: freshet (sync and async) beside raw redis-py and pymongo
reading the same keys. One JSON object per measurement on stdout.

Usage: python reader.py REDIS_PORT MONGO_PORT SPEC N
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import pymongo
import redis
import redis.asyncio
from pymongo import AsyncMongoClient
from seed import ITEM_FEATURES, USER_FEATURES, values, write_mongo, write_redis
from timing import summary

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


def emit(area: str, m: dict[str, Any]) -> None:
    print(json.dumps({"area": area, **m}), flush=True)


def check(res: freshet.OnlineResponse) -> None:
    row = res[0]
    assert row["pageviews"].value == 42 and row["last_interacted_product"].value == "prod-17", row


def timed(call: Any, count: int) -> list[int]:
    for _ in range(min(200, count)):
        call()
    out = []
    for _ in range(count):
        t = time.perf_counter_ns()
        call()
        out.append(time.perf_counter_ns() - t)
    return out


# ---- Redis, one user x five features ----
store = freshet.FeatureStore(spec, REDIS_URL, timeout=2)
check(store.get_online_features("user", [uid], USER_FEATURES))
key = f"fs:{{user:{uid}}}"
emit("redis-user", summary("redis-py hgetall (floor)", timed(lambda: r.hgetall(key), n)))
emit("redis-user", summary("freshet sync", timed(lambda: store.get_online_features("user", [uid], USER_FEATURES), n)))

# ---- Redis, one user + 100 items ----
rank = store.get_ranking_features(uid, item_ids, USER_FEATURES, ITEM_FEATURES)
assert [row["popularity_7d"].value for row in rank.items] == [i["popularity_7d"] for i in v["items"]]
keys = [key] + [f"fs:{{product:{i}}}" for i in item_ids]


def raw_ranking() -> list[Any]:
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(k)
    return pipe.execute()


emit("redis-ranking", summary("redis-py pipeline of 101 hgetall (floor)", timed(raw_ranking, n // 4)))
# Where the reader's time over the floor goes: building the commands and
# decoding the replies into values (core, through the extension), no I/O.
uplan, iplan = store.spec.plan("user", USER_FEATURES), store.spec.plan("product", ITEM_FEATURES)
replies = raw_ranking()


def commands() -> Any:
    return uplan.redis_commands("fs", [uid]), iplan.redis_commands("fs", item_ids)


def decode() -> Any:
    return uplan.decode_redis("fs", [uid], replies[:1]), iplan.decode_redis("fs", item_ids, replies[1:])


emit("cpu", summary("commands for 1 user + 100 items", timed(commands, n // 4)))
emit("cpu", summary("decode 1 user + 100 items into values", timed(decode, n // 4)))
emit("redis-ranking", summary("freshet sync", timed(
    lambda: store.get_ranking_features(uid, item_ids, USER_FEATURES, ITEM_FEATURES), n // 4)))  # fmt: skip


async def async_part() -> None:
    ar = redis.asyncio.Redis(port=redis_port)
    astore = freshet.FeatureStore(spec, REDIS_URL, timeout=2)

    async def atimed(call: Any, count: int) -> list[int]:
        for _ in range(min(200, count)):
            await call()
        out = []
        for _ in range(count):
            t = time.perf_counter_ns()
            await call()
            out.append(time.perf_counter_ns() - t)
        return out

    emit("redis-user", summary("redis.asyncio hgetall (floor)", await atimed(lambda: ar.hgetall(key), n)))
    emit("redis-user", summary("freshet async", await atimed(
        lambda: astore.get_online_features_async("user", [uid], USER_FEATURES), n)))  # fmt: skip

    async def araw_ranking() -> list[Any]:
        pipe = ar.pipeline(transaction=False)
        for k in keys:
            pipe.hgetall(k)
        return await pipe.execute()

    emit("redis-ranking", summary("redis.asyncio pipeline of 101 hgetall (floor)", await atimed(araw_ranking, n // 4)))
    emit("redis-ranking", summary("freshet async", await atimed(
        lambda: astore.get_ranking_features_async(uid, item_ids, USER_FEATURES, ITEM_FEATURES), n // 4)))  # fmt: skip
    await astore.aclose()
    await ar.aclose()

    amongo: Any = AsyncMongoClient(MONGO_URL)
    amstore = freshet.FeatureStore(spec, MONGO_URL, timeout=2)
    coll = amongo.bench.user_features
    emit("mongo-user", summary("pymongo async find_one (floor)", await atimed(lambda: coll.find_one({"_id": uid}), n)))
    emit("mongo-user", summary("freshet async", await atimed(
        lambda: amstore.get_online_features_async("user", [uid], USER_FEATURES), n)))  # fmt: skip
    await amstore.aclose()
    await amongo.close()


# ---- MongoDB, one user x five features ----
mstore = freshet.FeatureStore(spec, MONGO_URL, timeout=2)
check(mstore.get_online_features("user", [uid], USER_FEATURES))
users = mongo.bench.user_features
products = mongo.bench.product_features
emit("mongo-user", summary("pymongo find_one (floor)", timed(lambda: users.find_one({"_id": uid}), n)))
emit("mongo-user", summary("freshet sync", timed(lambda: mstore.get_online_features("user", [uid], USER_FEATURES), n)))


def raw_mongo_ranking() -> Any:
    return users.find_one({"_id": uid}), list(products.find({"_id": {"$in": item_ids}}))


emit("mongo-ranking", summary("pymongo find_one + find $in (floor)", timed(raw_mongo_ranking, n // 4)))
emit("mongo-ranking", summary("freshet sync", timed(
    lambda: mstore.get_ranking_features(uid, item_ids, USER_FEATURES, ITEM_FEATURES), n // 4)))  # fmt: skip

asyncio.run(async_part())
store.close()
mstore.close()
