"""Erasure under `wrangler dev`, on each store (README, "Erasure"): after
traffic from several visitors, anonymous and signed in, with pairs, one
person is erased; then the whole store is scanned (every Redis key, every
MongoDB document, every Durable Object's SQLite file) and the persisted R2
log's objects are read back byte by byte, and none holds their ids; everyone
else is unchanged, the log still replays to the store (`freshet consistency`
at 100%), and nothing of theirs comes back: a retried batch and a late event
stay dropped, a later visit counts from zero. And an erasure while the person
keeps sending: no event lost or doubled."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import freshet

from conftest import (
    READ_TOKEN,
    SPEC,
    WRITE_KEY,
    Edge,
    MongoServer,
    RedisCluster,
    RedisServer,
    iso,
    now_ms,
    start_edge,
    stop,
)

ADMIN = "admin-" + secrets.token_hex(8)
IDENTITY_SECRET = "id-secret-" + secrets.token_hex(8)
STORES = ["durable-object", "redis", "mongodb"]


def identity(user: str) -> str:
    """A token the site's server would issue (freshet/server): HMAC-SHA256 of `user.expiry`."""
    signed = f"{user}.{now_ms() // 1000 + 600}"
    mac = hmac.new(IDENTITY_SECRET.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def post(edge: Edge, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"{edge.base}/v1/ingest", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "x-freshet-key": WRITE_KEY},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def visit(batch_id: str, client: str, t: int, product: str, user: str | None = None) -> dict[str, Any]:
    """A page view, a category view and a click on `product` (a pair), at `t`."""
    events: list[dict[str, Any]] = [
        {"id": f"{batch_id}-v", "type": "page_view", "timestamp": iso(t), "clientId": client},
        {"id": f"{batch_id}-k", "type": "viewed_category", "timestamp": iso(t), "clientId": client,
         "payload": {"category": "lenses"}},
        {"id": f"{batch_id}-c", "type": "product_click", "timestamp": iso(t), "clientId": client,
         "payload": {"productId": product}},
    ]  # fmt: skip
    body: dict[str, Any] = {"batchId": batch_id, "sentAt": iso(now_ms()), "events": events}
    if user:
        body["identity"] = identity(user)
        for e in events:
            e["userId"] = user
    return body


@pytest.fixture
def erasing(request: Any, tmp_root: Path) -> Iterator[tuple[Edge, str, Path]]:
    """The edge on one store with erasure on; yields it, its store URL and its persisted state."""
    store = request.param
    if store == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url("e_" + secrets.token_hex(4))
    elif store == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        url = cluster.url("e_" + secrets.token_hex(4))
    elif store == "mongodb":
        mongo: MongoServer = request.getfixturevalue("mongo_server")
        url = mongo.url()
    else:
        url = store
    persist = tmp_root / f"erasure-{secrets.token_hex(4)}"
    extra = {"FRESHET_IDENTITY_SECRET": IDENTITY_SECRET, "FRESHET_STORE_TIMEOUT_MS": "1500"}
    edge = start_edge(tmp_root, url, persist=persist, admin_token=ADMIN, extra_vars=extra)
    yield edge, url, persist
    stop(edge.proc)


def store_text(url: str, persist: Path) -> bytes:
    """The whole store as bytes to search: every Redis key under the prefix
    (on every node of a cluster), every MongoDB document, every Durable
    Object's SQLite file."""
    if url.startswith(("redis://", "redis+cluster://")):
        import redis

        prefix = url.split("prefix=")[1]
        hosts = url.split("://")[1].split("?")[0].split("/")[0].split(",")
        if url.startswith("redis+cluster://"):
            first = int(hosts[0].split(":")[1])
            hosts = [f"127.0.0.1:{p}" for p in range(first, first + 6)]
        keys = []
        for host in hosts:
            with redis.Redis(host=host.split(":")[0], port=int(host.split(":")[1])) as r:
                # The masters hold every key; a replica may lag a moment.
                if r.info("replication")["role"] == "master":
                    keys += r.scan_iter(match=f"{prefix}:*", count=1000)
        return b"\n".join(keys)
    if url.startswith("mongodb://"):
        import pymongo

        with pymongo.MongoClient(url) as c:
            db = c.get_default_database()
            return "\n".join(
                json.dumps(doc, default=str) for name in db.list_collection_names() for doc in db[name].find()
            ).encode()
    return b"\n".join(p.read_bytes() for p in (persist / "v3" / "do").rglob("*.sqlite"))


def entities_held(persist: Path) -> int:
    """Durable Objects of the feature store that hold a document."""
    held = 0
    for path in (persist / "v3" / "do").rglob("*.sqlite"):
        if "FeatureEntity" not in str(path):
            continue
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            try:
                held += db.execute("SELECT count(*) FROM doc").fetchone()[0] > 0
            except sqlite3.OperationalError:  # emptied by deleteAll
                pass
    return held


def log_text(persist: Path) -> bytes:
    """Every object of the persisted R2 bucket, gunzipped."""
    out = []
    for path in (persist / "v3" / "r2").rglob("*"):
        if path.is_file() and not path.name.endswith((".sqlite", "-wal", "-shm")):
            data = path.read_bytes()
            out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return b"\n".join(out)


def features(edge: Edge, entity: str, id_: str) -> dict[str, Any]:
    answer: dict[str, Any] = edge.get(f"/v1/features/{entity}/{urllib.request.quote(id_, safe='')}")
    return {k: v["value"] for k, v in answer["features"].items()}


def consistent(edge: Edge) -> None:
    report = freshet.consistency(200, url=edge.base, log=edge.base, read_token=READ_TOKEN, spec=SPEC,
                                 start=now_ms() - 8 * 86_400_000, seed=7)  # fmt: skip
    assert report.mismatches == [] and report.match_rate == 1.0, report.mismatches[:5]


@pytest.mark.parametrize("erasing", [*STORES, "redis-cluster"], indirect=True)
def test_an_erased_person_leaves_no_byte_in_the_store_or_the_log_and_nothing_comes_back(
    erasing: tuple[Edge, str, Path],
) -> None:
    edge, url, persist = erasing
    tag = secrets.token_hex(3)
    user, client, others = f"u-{tag}", f"cid-a{tag}", [f"cid-b{tag}", f"cid-c{tag}"]
    t0 = now_ms() - 3 * 86_400_000
    # Days of visits: the person anonymous, then signed in; two others.
    sent = []
    for day in range(3):
        t = t0 + day * 86_400_000
        for body in (
            visit(f"a{day}{tag}", client, t, "p-1"),
            visit(f"u{day}{tag}", client, t + 60_000, "p-2", user),
            visit(f"b{day}{tag}", others[0], t, "p-1"),
            visit(f"c{day}{tag}", others[1], t, "p-3"),
        ):
            status, answer = post(edge, body)
            assert status == 202 and "skipped" not in answer, answer
            sent.append(body)
    before = {(e, i): features(edge, e, i) for e, i in [("user", others[0]), ("user", others[1]),
              ("product", "p-1"), ("product", "p-2"), ("user_product", f"{others[0]}|p-1")]}  # fmt: skip
    held = entities_held(persist)
    if url == "durable-object":
        assert held >= 9
    else:
        assert user.encode() in store_text(url, persist) and client.encode() in store_text(url, persist)

    # Bad requests change nothing and say why.
    for token, subject, code in (("wrong-token", {"userId": user}, 401), (ADMIN, {"user": user}, 400),
                                 (ADMIN, {}, 400), (ADMIN, {"clientId": ""}, 400)):  # fmt: skip
        req = urllib.request.Request(f"{edge.base}/v1/erasures", data=json.dumps(subject).encode(),
                                     headers={"authorization": f"Bearer {token}"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert refused.value.code == code and json.loads(refused.value.read())["message"], subject
    assert entities_held(persist) == held if url == "durable-object" else user.encode() in store_text(url, persist)
    receipt = freshet.erase(edge=edge.base, user=user, admin_token=ADMIN, wait=0)
    nobody = freshet.erase(edge=edge.base, user=f"nobody-{tag}", client=f"cid-nobody-{tag}", admin_token=ADMIN, wait=0)
    # The store first: the user, the client it signed in from, their pairs
    # (the user's p-1 pair came from the client's at sign-in).
    assert receipt.parts["store"]["state"] == "done" and receipt.parts["log"]["state"] == "pending"
    assert (receipt.parts["store"]["entities"], receipt.parts["composites"]["entities"]) == (2, 3), receipt
    text = store_text(url, persist)
    if url == "durable-object":
        assert entities_held(persist) == held - 5
    else:
        assert user.encode() not in text and client.encode() not in text
    for (entity, id_), values in before.items():
        assert features(edge, entity, id_) == values, (entity, id_)
    # Before the log's rewrite: the export and the training data hold nothing of theirs.
    assert client.encode() in log_text(persist), "rewritten already: the test lost its window"
    export = urllib.request.Request(f"{edge.base}/v1/events?from={t0 - 60_000}",
                                    headers={"authorization": f"Bearer {READ_TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(export, timeout=30) as r:
        lines = r.read()
    assert user.encode() not in lines and client.encode() not in lines
    rows = pd.DataFrame(
        {"user": [user, client, others[0]], "event_timestamp": pd.to_datetime([now_ms()] * 3, unit="ms", utc=True)}
    )
    frame = freshet.get_historical_features(rows, ["user:pageviews", "user:viewed_categories"], edge.base,
                                            read_token=READ_TOKEN, spec=SPEC, start=t0 - 60_000)  # fmt: skip
    assert list(frame["pageviews"]) == [0, 0, 3], frame

    # Nothing comes back: a retried batch, a late one, an event inside the erasure.
    for body in (
        sent[0],
        visit(f"late{tag}", client, t0 - 86_400_000, "p-1"),
        visit(f"soon{tag}", client, now_ms(), "p-1"),
    ):
        status, answer = post(edge, body)
        assert status == 202 and {s["reason"] for s in answer["skipped"]} == {"erased"}, answer
    # Done within the settling and the job: then no byte of their ids anywhere.
    receipt = freshet.erasure_receipt(receipt.id, edge=edge.base, admin_token=ADMIN, wait=60)
    print("\n".join(receipt.lines()))
    # Six visits of three events, and each anonymous day's move to the user
    # (its user and its pair: two `$link` events).
    assert receipt.done and receipt.parts["log"]["events"] == 24, receipt
    nobody = freshet.erasure_receipt(nobody.id, edge=edge.base, admin_token=ADMIN, wait=60)
    assert nobody.done and nobody.nothing_found, nobody
    log = log_text(persist)
    assert user.encode() not in log and client.encode() not in log
    text = store_text(url, persist)
    assert user.encode() not in text and client.encode() not in text
    # A later visit counts from zero, once however often it is sent.
    after = visit(f"new{tag}", client, now_ms(), "p-1")
    for _ in range(2):
        status, answer = post(edge, after)
        assert status == 202 and "skipped" not in answer, answer
    assert features(edge, "user", client)["pageviews"] == 1
    consistent(edge)


class Visitor(threading.Thread):
    """Sends a page view a batch, dated when sent, until stopped; each batch
    until the edge takes it (503 while an erasure settles: sent again, as the
    tracker does). Keeps each batch's event time and whether it was erased."""

    def __init__(self, edge: Edge, client: str) -> None:
        super().__init__(daemon=True)
        self.edge, self.client = edge, client
        self.stopping = threading.Event()
        self.taken: list[tuple[int, bool]] = []
        self.waited = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.stopping.is_set():
                t = now_ms()
                view = {"id": f"{self.client}-{n}", "type": "page_view", "timestamp": iso(t), "clientId": self.client}
                body = {"batchId": f"{self.client}-{n}", "sentAt": iso(t), "events": [view]}
                while True:
                    status, answer = post(self.edge, body)
                    if status == 202:
                        break
                    # As the tracker does: the same batch again, after a while.
                    assert (status, answer["error"]) in ((503, "erasing"), (429, "rate_limited")), answer
                    self.waited += status == 503
                    time.sleep(0.5)
                self.taken.append((t, "skipped" in answer))
                n += 1
                # Under the per-client rate limit (100 per 10 s).
                time.sleep(0.15)
        except BaseException as e:  # reported by the test's thread
            self.error = e


@pytest.mark.parametrize("erasing", STORES, indirect=True)
def test_an_erasure_while_the_person_keeps_sending_loses_and_doubles_nothing(
    erasing: tuple[Edge, str, Path],
) -> None:
    edge = erasing[0]
    client = f"cid-flow{secrets.token_hex(3)}"
    sender = Visitor(edge, client)
    sender.start()
    try:
        time.sleep(1.5)
        receipt = freshet.erase(edge=edge.base, client=client, admin_token=ADMIN, wait=60)
        assert receipt.done, receipt
        time.sleep(1.5)
    finally:
        sender.stopping.set()
        sender.join(timeout=120)
    assert sender.error is None, sender.error
    # Every batch was taken (those sent while it settled, again later);
    # those dated up to the erasure's time are gone, dropped at ingest or
    # swept; each one after counts once, from zero.
    until = pd.Timestamp(receipt.erases_until).value // 1_000_000
    after = [t for t, skipped in sender.taken if t > until]
    assert all(not skipped for t, skipped in sender.taken if t > until)
    assert any(skipped for t, skipped in sender.taken if t <= until)
    assert after and sender.waited > 0, (len(sender.taken), len(after), sender.waited)
    assert features(edge, "user", client)["pageviews"] == len(after), (len(after), len(sender.taken))
    consistent(edge)
