"""Bad input and faults: an unknown name fails before any I/O; a store that
is down or hung fails with StoreUnavailable within the timeout, never with
silent defaults; state that does not decode fails with CorruptState naming
its key; a spec that differs from the edge's is caught."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import freshet
from freshet import _freshet
from freshet.drift import drift

from conftest import READ_TOKEN, SPEC, Edge, MongoServer, RedisServer, silent_server, start_redis, stop


@pytest.fixture
def hung() -> Iterator[tuple[socket.socket, int]]:
    server, port = silent_server()
    server.setblocking(False)
    yield server, port
    server.close()


def accepted(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:{port}/0", "mongodb://127.0.0.1:{port}/db",
                                    "http://127.0.0.1:{port}"])  # fmt: skip
def test_unknown_names_fail_before_any_io(hung: tuple[socket.socket, int], scheme: str) -> None:
    server, port = hung
    with freshet.FeatureStore(SPEC, scheme.format(port=port), timeout=5) as store:
        start = time.monotonic()
        with pytest.raises(freshet.UnknownFeature, match="entity `user` has no feature `nope`"):
            store.get_online_features("user", ["cid-1"], ["pageviews", "nope"])
        with pytest.raises(freshet.UnknownFeature, match="unknown entity `shop`"):
            store.get_online_features("shop", ["s1"])
        with pytest.raises(freshet.UnknownFeature, match="`popularity_7d`"):
            store.get_ranking_features("cid-1", ["p1"], ["popularity_7d"])
        with pytest.raises(freshet.UnknownFeature, match="`pageviews@2`"):
            asyncio.run(store.get_online_features_async("user", ["cid-1"], ["pageviews@2"]))
        with pytest.raises(freshet.UnknownFeature, match="entity `user_product` has no feature `pageviews`"):
            store.get_ranking_features("cid-1", ["p1"], pair_features=["pageviews"])
        with pytest.raises(freshet.UnknownFeature, match="unknown entity `ghost`"):
            store.get_ranking_features("cid-1", ["p1"], pair_entity="ghost")
        with pytest.raises(ValueError, match="`user` is not a composite entity of `user` and `product`"):
            store.get_ranking_features("cid-1", ["p1"], pair_entity="user")
        with pytest.raises(ValueError, match="no composite entity of `user` and `user`"):
            asyncio.run(store.get_ranking_features_async("cid-1", ["c2"], item_entity="user", pair_features=[]))
        with pytest.raises(TypeError, match="user_id is one non-empty id"):
            store.get_ranking_features("", ["p1"], pair_features=[])
        assert time.monotonic() - start < 0.5
    assert not accepted(server), "the store was contacted"


def test_composite_ids_split_back_and_refuse_what_they_cannot_be() -> None:
    for parts in (["u", "i"], ["u|i", "j"], ["u", "i|j"], ["%", "|"], ["%7C", "%25"], ["a", "b", "c"]):
        ident = freshet.composite_id(parts)
        assert freshet.split_composite_id(ident) == parts
    assert freshet.composite_id(["cid|1", "p%1"]) == "cid%7C1|p%251"
    for bad in ("a||b", "a%", "a%7c|b", "a%41|b", ""):
        with pytest.raises(ValueError, match="is not a composite id"):
            freshet.split_composite_id(bad)
    for parts in ([], ["one"], ["a", ""]):
        with pytest.raises(ValueError, match="two or more parts, each a non-empty id"):
            freshet.composite_id(parts)
    spec = freshet.Spec(SPEC.read_text())
    assert spec.parts("user_product") == ["user", "product"] and spec.parts("user") == []
    assert spec.compose_ids("user_product", {"user": ["u", "u"], "product": ["p|1", "p2"]}) == ["u|p%7C1", "u|p2"]
    with pytest.raises(ValueError, match="`user_product` ids need the `product` ids"):
        spec.compose_ids("user_product", {"user": ["u"]})
    with pytest.raises(ValueError, match="differ in length"):
        spec.compose_ids("user_product", {"user": ["u"], "product": ["a", "b"]})


def test_a_bad_spec_names_the_feature(tmp_path: Path) -> None:
    bad = tmp_path / "features.toml"
    bad.write_text(SPEC.read_text().replace('agg = "count"', 'agg = "median"', 1))
    with pytest.raises(freshet.InvalidSpec, match="feature `pageviews@1`: unknown aggregation `median`"):
        freshet.FeatureStore(bad, "redis://127.0.0.1:1")


# URLs the edge refuses for FRESHET_STORE, and what each is told: the reader
# reads the same store, by the same rule (core's parser), and never guesses a
# database or drops an option it does not know.
REFUSED_URLS = [
    ("mongodb://127.0.0.1:{port}", "the MongoDB URL needs a database after the host (/db)"),
    ("mongodb://127.0.0.1:{port}/", "the MongoDB URL needs a database after the host (/db)"),
    ("mongodb://127.0.0.1:{port}/a.b", "the MongoDB URL needs a database after the host (/db)"),
    ("mongodb+srv://u:hunter2@cluster0.example.net/fs", "mongodb+srv:// is not supported"),
    ("mongodb://a:1,b:2/fs", "several MongoDB hosts are a replica set's: add replicaSet=<name>"),
    ("mongodb://u@127.0.0.1:{port}/fs", "the MongoDB URL has a user name but no password"),
    ("mongodb://a:1,b:2/fs?replicaSet=rs0&directConnection=true", "directConnection=true names one server"),
    ("redis+cluster://127.0.0.1:{port}/1", "a Redis Cluster has database 0 only"),
    ("mongodb://127.0.0.1:{port}/fs?authMechanism=SCRAM-SHA-1", "the only MongoDB authMechanism is SCRAM-SHA-256"),
    ("redis://127.0.0.1:{port}/x", "the Redis database (after /) must be a number"),
    ("redis://u:hunter2@127.0.0.1:99999/0", "the Redis port must be a number from 1 to 65535"),
    ("rediss://127.0.0.1:{port}/0?prefix=a:b", "the only Redis URL option is prefix="),
    ("redis://127.0.0.1:{port}/0?prefix=", "the only Redis URL option is prefix="),
    ("redis://127.0.0.1:{port}/0?socket_timeout=1", "the only Redis URL option is prefix="),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_store_urls_the_edge_refuses_are_refused_before_any_io(
    hung: tuple[socket.socket, int], url: str, why: str
) -> None:
    server, port = hung
    url = url.format(port=port)
    with pytest.raises(ValueError, match="^invalid store URL: " + re.escape(why)) as refused:
        freshet.FeatureStore(SPEC, url)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match=re.escape(why)):
        drift(url, spec=SPEC)
    assert not accepted(server), "the store was contacted"


def test_a_store_url_gives_what_the_edge_reads_from_it() -> None:
    # The key prefix (`fs` unless `?prefix=`) and the database, as the edge reads them.
    assert _freshet.redis_key_prefix("redis://127.0.0.1:1/0") == "fs"
    assert _freshet.redis_key_prefix("rediss://u:p@127.0.0.1:1/2?prefix=t_1") == "t_1"
    assert _freshet.mongo_database("mongodb://u:p@127.0.0.1:1/shop?authSource=admin") == "shop"


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:{port}/0", "mongodb://127.0.0.1:{port}/db",
                                    "http://127.0.0.1:{port}"])  # fmt: skip
def test_a_hung_store_fails_within_the_timeout(hung: tuple[socket.socket, int], scheme: str) -> None:
    _, port = hung
    with freshet.FeatureStore(SPEC, scheme.format(port=port), read_token="t", timeout=0.3) as store:
        start = time.monotonic()
        with pytest.raises(freshet.StoreUnavailable):
            store.get_online_features("user", ["cid-1"], ["pageviews"])
        assert time.monotonic() - start < 1.5

        async def read() -> None:
            async with store:
                await store.get_online_features_async("user", ["cid-1"], ["pageviews"])

        start = time.monotonic()
        with pytest.raises(freshet.StoreUnavailable):
            asyncio.run(read())
        assert time.monotonic() - start < 1.5


def test_redis_stopped_mid_run_then_back(tmp_root: Path) -> None:
    server = start_redis(tmp_root)
    url = server.url()
    redis.Redis(port=server.port).hset("fs:{user:cid-1}", mapping={"_ts:pageviews@1": 5, "pageviews@1": 3})
    try:
        with freshet.FeatureStore(SPEC, url, timeout=0.5) as store:
            assert store.get_online_features("user", ["cid-1"], ["pageviews"])[0]["pageviews"].value == 3
            stop(server.proc)
            start = time.monotonic()
            with pytest.raises(freshet.StoreUnavailable, match="Redis: ConnectionError"):
                store.get_online_features("user", ["cid-1"], ["pageviews"])
            with pytest.raises(freshet.StoreUnavailable):
                store.get_ranking_features("cid-1", ["p1"])
            assert time.monotonic() - start < 1.5
            # Back on the same port: the next read works (empty store, defaults).
            server = start_redis(tmp_root, server.port)
            assert store.get_online_features("user", ["cid-1"], ["pageviews"])[0]["pageviews"].value == 0
    finally:
        stop(server.proc)


def test_mongodb_stopped_mid_run(mongo_server: MongoServer, tmp_root: Path) -> None:
    # A second, throwaway server: the session's keeps serving the other tests.
    import subprocess

    from conftest import SECANTUSD, free_port, spawn, wait_port

    port = free_port()
    data = tmp_root / f"mongo-mid-{port}"
    data.mkdir()
    log = tmp_root / f"secantusd-{port}.log"
    proc: subprocess.Popen[bytes] = spawn([str(SECANTUSD), "--host", "127.0.0.1", "--port", str(port),
                                           "--storage-path", str(data), "--standalone"], log)  # fmt: skip
    try:
        wait_port(port, proc, "SecantusDB", log)
        with freshet.FeatureStore(SPEC, f"mongodb://127.0.0.1:{port}/fs?directConnection=true", timeout=1) as store:
            assert store.get_online_features("user", ["cid-1"], ["pageviews"])[0]["pageviews"].value == 0
            stop(proc)
            start = time.monotonic()
            with pytest.raises(freshet.StoreUnavailable, match="MongoDB"):
                store.get_online_features("user", ["cid-1"], ["pageviews"])
            assert time.monotonic() - start < 3
    finally:
        stop(proc)


def test_wrong_mongodb_password_is_unavailable_not_defaults(mongo_server: MongoServer) -> None:
    with (
        freshet.FeatureStore(SPEC, mongo_server.url(password="wrong"), timeout=2) as store,
        pytest.raises(freshet.StoreUnavailable, match="MongoDB"),
    ):
        store.get_online_features("user", ["cid-1"], ["pageviews"])


def test_a_corrupt_hash_names_its_key(redis_server: RedisServer) -> None:
    prefix = "c_" + secrets.token_hex(3)
    r = redis.Redis(port=redis_server.port)
    r.hset(f"{prefix}:{{user:bad}}", mapping={"_ts:pageviews@1": 5, "pageviews@1": "many"})
    r.zadd(f"{prefix}:{{user:badset}}:recent_products@1", {"no-space-here": 5})
    r.hset(f"{prefix}:{{user:badset}}", mapping={"_ts:recent_products@1": 5})
    with freshet.FeatureStore(SPEC, redis_server.url(prefix)) as store:
        with pytest.raises(freshet.CorruptState, match=rf"^{prefix}:\{{user:bad\}}: .*pageviews@1: `many`"):
            store.get_online_features("user", ["ok", "bad"], ["pageviews"])

        async def read_async() -> None:
            async with store:
                await store.get_online_features_async("user", ["badset"], ["recent_products"])

        with pytest.raises(freshet.CorruptState, match=rf"^{prefix}:\{{user:badset\}}: .*recent_products@1"):
            asyncio.run(read_async())
        # As on the edge, one bad field fails the whole hash (it is decoded as a
        # whole), never turning into defaults; other entities still read.
        with pytest.raises(freshet.CorruptState):
            store.get_online_features("user", ["bad"], ["searches"])
        assert store.get_online_features("user", ["ok"], ["searches"])[0]["searches"].value == 0


def test_a_corrupt_mongodb_document_names_its_id_and_field(mongo_server: MongoServer) -> None:
    """The rule Redis follows: a field that is there but does not decode fails
    the read, naming the document and the field; one never written reads as
    its default."""
    import pymongo

    bad, never = "bad-" + secrets.token_hex(3), "never-" + secrets.token_hex(3)
    with pymongo.MongoClient(mongo_server.url()) as client:
        client.get_default_database()["user_features"].insert_many([
            {"_id": bad, "_ts": {"pageviews@1": 5, "recent_products@1": 5}, "pageviews@1": "many",
             "recent_products@1": [{"t": 5, "id": "e1", "v": "p1"}, {"t": 4, "v": "p2"}]},
            {"_id": never, "_ts": {"pageviews@1": 5}},
        ])  # fmt: skip
    with freshet.FeatureStore(SPEC, mongo_server.url()) as store:
        match = rf'^user_features document "{bad}": .*field `pageviews@1` is a string, not an integer'
        with pytest.raises(freshet.CorruptState, match=match):
            store.get_online_features("user", [never, bad], ["pageviews"])

        async def read_async() -> None:
            async with store:
                await store.get_online_features_async("user", [bad], ["recent_products"])

        match = rf'^user_features document "{bad}": .*field `recent_products@1.1.id` is missing'
        with pytest.raises(freshet.CorruptState, match=match):
            asyncio.run(read_async())
        assert store.get_online_features("user", [never], ["pageviews"])[0]["pageviews"].value == 0


def test_a_wrong_read_token_is_refused(redis_edge: tuple[Edge, str]) -> None:
    edge, _ = redis_edge
    with (
        freshet.FeatureStore(SPEC, edge.base, read_token="not-" + READ_TOKEN) as store,
        pytest.raises(freshet.StoreUnavailable, match="401"),
    ):
        store.get_online_features("user", ["cid-1"])


def test_check_spec_compares_with_the_edge(redis_edge: tuple[Edge, str], tmp_path: Path) -> None:
    edge, url = redis_edge
    health = edge.get("/health")
    with freshet.FeatureStore(SPEC, url, edge_url=edge.base) as store:
        check = store.check_spec()
        assert check.matches and check.edge == health["spec"] == store.spec.hash
    changed = tmp_path / "features.toml"
    changed.write_text(SPEC.read_text().replace('ttl = "1d"', 'ttl = "2d"', 1))
    with freshet.FeatureStore(changed, edge.base, read_token=READ_TOKEN) as store:
        check = store.check_spec()
        assert not check.matches and check.edge == health["spec"] != check.local
    with (
        freshet.FeatureStore(SPEC, url) as store,
        pytest.raises(ValueError, match="no edge to compare with"),
    ):
        store.check_spec()
