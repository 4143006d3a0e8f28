"""``freshet migrate`` on a real redis-server: a store written in layout 1
(before issue 23's layout 2) reads the same before the move (the readers
fall back to layout 1 where layout 2 holds nothing), after it, and once the
store is marked; live batch markers move with the state; an entity the
spec does not know is left and the store is not marked; a second run
moves nothing."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import redis

import freshet
from freshet import _freshet
from freshet.cli import main

from conftest import SPEC, RedisServer, now_ms

MARKER = bytes.fromhex("0123456789abcdef")


def write_layout1(r: redis.Redis, prefix: str, now: int) -> None:
    """Two users and a pair as layout 1 kept them: full names, decimal
    text, window buckets by their start in seconds, zsets for set features,
    and a marker zset (member the marker's 8 bytes, score its expiry, s)."""
    t = now - 60_000
    hour = (t // 3_600_000) * 3_600
    day = (t // 86_400_000) * 86_400
    u1 = f"{prefix}:{{user:cid-a}}"
    r.hset(
        u1,
        mapping={
            "pageviews@1": 7,
            "_ts:pageviews@1": t,
            f"clicks_product_card_7d@1|{day}": 3,
            "_ts:clicks_product_card_7d@1": t,
            f"cart_value_1h@1|{hour}": "12.5",
            "_ts:cart_value_1h@1": t,
            "last_interacted_product@1": '"p-9"',
            "_o:last_interacted_product@1": f"{t}|e-1",
            "_ts:last_interacted_product@1": t,
            "_ts:viewed_categories@1": t,
            "_ts:recent_products@1": t,
        },
    )
    r.zadd(f"{u1}:viewed_categories@1", {"shoes": t, "hats": t - 5})
    r.zadd(f"{u1}:recent_products@1", {'e-1 "p-9"': t, 'e-0 "p-3"': t - 5})
    r.zadd(f"{u1}:b", {MARKER: now // 1000 + 86_400})
    r.hset(f"{prefix}:{{user:cid-b}}", mapping={"searches@1": 2, "_ts:searches@1": t})
    r.hset(
        f"{prefix}:{{user_product:cid-a|p-9}}",
        mapping={"user_product_clicks@1": 4, "_ts:user_product_clicks@1": t},
    )


def values(store: freshet.FeatureStore) -> list[Any]:
    names = ["pageviews", "clicks_product_card_7d", "cart_value_1h", "last_interacted_product",
             "viewed_categories", "recent_products", "searches"]  # fmt: skip
    rows = store.get_online_features("user", ["cid-a", "cid-b", "cid-none"], names)
    pair = store.get_online_features("user_product", ["cid-a|p-9"], ["user_product_clicks"])
    return [{k: v.value for k, v in row.items()} for row in [*rows, *pair]]


def test_a_layout1_store_reads_migrates_and_is_marked(redis_server: RedisServer) -> None:
    prefix = "m_" + secrets.token_hex(3)
    r = redis.Redis(port=redis_server.port)
    now = now_ms()
    write_layout1(r, prefix, now)
    url = redis_server.url(prefix)
    with freshet.FeatureStore(SPEC, url) as store:
        before = values(store)
    assert before[0]["pageviews"] == 7
    assert before[0]["clicks_product_card_7d"] == 3
    assert before[0]["cart_value_1h"] == 12.5
    assert before[0]["last_interacted_product"] == "p-9"
    assert sorted(before[0]["viewed_categories"]) == ["hats", "shoes"]
    assert before[0]["recent_products"] == ["p-9", "p-3"]
    assert before[1]["searches"] == 2 and before[2]["searches"] == 0
    assert before[3]["user_product_clicks"] == 4

    # An entity the spec does not know: left as it is, and the store unmarked.
    r.hset(f"{prefix}:{{shelf:s-1}}", mapping={"_ts:x@1": 1, "x@1": 1})
    assert main(["migrate", "--url", url, "--spec", str(SPEC)]) == 1
    assert r.exists(f"{prefix}:{{shelf:s-1}}") == 1
    assert r.exists(f"{prefix}:layout") == 0
    r.delete(f"{prefix}:{{shelf:s-1}}")

    report = freshet.migrate(url, spec=SPEC)
    assert report.marked and report.moved == 0 and not report.left, report.lines()
    assert r.get(f"{prefix}:layout") == b"2"
    # Nothing of layout 1 is left: hashes, set zsets and the marker zset.
    left = [k for k in r.scan_iter(match=f"{prefix}:*") if b"@" in k or k.endswith(b"}") or k.endswith(b"}:b")]
    assert left == [], left
    # The live marker moved to the entity's marker string, whole.
    assert MARKER in r.get(f"{prefix}:{{user:cid-a}}:2:b")

    with freshet.FeatureStore(SPEC, url) as store:
        assert values(store) == before

        async def read_async() -> list[Any]:
            async with store:
                rows = await store.get_online_features_async("user", ["cid-a"], ["pageviews", "viewed_categories"])
                return [{k: v.value for k, v in row.items()} for row in rows]

        assert asyncio.run(read_async())[0]["pageviews"] == 7

    # A second run finds nothing to move.
    again = freshet.migrate(url, spec=SPEC)
    assert again.moved == 0 and again.marked


def test_the_first_run_moves_every_entity(redis_server: RedisServer) -> None:
    prefix = "m_" + secrets.token_hex(3)
    r = redis.Redis(port=redis_server.port)
    now = now_ms()
    write_layout1(r, prefix, now)
    url = redis_server.url(prefix)
    with freshet.FeatureStore(SPEC, url) as store:
        before = values(store)
    report = freshet.migrate(url, spec=SPEC, now=now)
    assert report.moved == 3 and report.marked, report.lines()
    with freshet.FeatureStore(SPEC, url) as store:
        assert values(store) == before


def test_a_marked_store_reads_no_layout_1(redis_server: RedisServer) -> None:
    prefix = "m_" + secrets.token_hex(3)
    r = redis.Redis(port=redis_server.port)
    write_layout1(r, prefix, now_ms())
    key, value = _freshet.redis_layout_mark_key(prefix)
    r.set(key, value)
    with freshet.FeatureStore(SPEC, redis_server.url(prefix)) as store:
        assert store.get_online_features("user", ["cid-a"], ["pageviews"])[0]["pageviews"].value == 0


def test_a_cluster_url_has_nothing_to_migrate() -> None:
    with pytest.raises(ValueError, match="layout 2 from the start"):
        freshet.migrate("redis+cluster://127.0.0.1:1,127.0.0.1:2", spec=SPEC)
