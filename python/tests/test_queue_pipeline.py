"""The queue pipeline (`FRESHET_PIPELINE=queue`) under `wrangler dev`, which runs
Cloudflare Queues locally: shop traffic, each batch sent until taken and once
more, goes through the queue to the worker's own consumer while the store
stops answering for longer than its timeout and comes back. Ingest answers
202 throughout; the consumer's failed messages are delivered again; once the
log holds every batch, `freshet consistency` against it is 100%: nothing
lost, nothing doubled."""

from __future__ import annotations

import json
import secrets
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis
from test_cluster import Sender

import freshet

from conftest import READ_TOKEN, SPEC, Edge, MongoServer, RedisServer, iso, now_ms, start_edge, start_redis, stop

ADMIN = "admin-" + secrets.token_hex(6)


def logged_batches(edge: Edge) -> int:
    req = urllib.request.Request(f"{edge.base}/v1/events?from={now_ms() - 86_400_000}",
                                 headers={"authorization": f"Bearer {READ_TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(r.headers["freshet-batches"])


def admin(edge: Edge, method: str) -> Any:
    req = urllib.request.Request(f"{edge.base}/v1/dead-letters", method=method, data=b"" if method == "POST" else None,
                                 headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def click(client: str, n: int) -> dict[str, Any]:
    return {"id": f"e-{client}-{n}", "type": "product_click", "timestamp": iso(now_ms() - 1000), "clientId": client,
            "payload": {"productId": "prod-q", "component": "ProductCard"}}  # fmt: skip


def clicks(edge: Edge, client: str) -> int:
    value = edge.get(f"/v1/features/user/{client}?names=clicks_product_card")["features"]["clicks_product_card"]
    return int(value["value"] or 0)


def test_every_batch_counts_once_through_the_queue_while_the_store_stops_and_comes_back(tmp_root: Path) -> None:
    redis = start_redis(tmp_root)
    url = redis.url("q_" + secrets.token_hex(4))
    edge = start_edge(tmp_root, url, extra_vars={"FRESHET_PIPELINE": "queue", "FRESHET_STORE_TIMEOUT_MS": "1000"})
    try:
        assert edge.get("/health")["pipeline"] == "queue"
        sender = Sender(edge)
        sender.start()
        try:
            time.sleep(1.5)
            # The store stops answering (its timeout is 1 s): ingest goes on.
            redis.proc.send_signal(signal.SIGSTOP)
            taken = sender.batches
            time.sleep(3)
            assert sender.batches > taken, "ingest waited for the store"
            redis.proc.send_signal(signal.SIGCONT)
            time.sleep(1.5)
        finally:
            sender.stopping.set()
            sender.join(timeout=300)
        assert sender.error is None, sender.error
        assert sender.refused == 0
        # The consumer catches up: every batch in the log, once.
        deadline = time.monotonic() + 60
        while logged_batches(edge) < sender.batches and time.monotonic() < deadline:
            time.sleep(0.5)
        assert logged_batches(edge) == sender.batches
        report = freshet.consistency(100_000, url=url, log=edge.base, read_token=READ_TOKEN, spec=SPEC,
                                     start=freshet._log.now_ms() - 7 * 86_400_000)  # fmt: skip
        assert report.mismatches == [] and report.match_rate == 1.0, report.mismatches[:5]
        assert report.compared["user:pageviews"] >= len(sender.users) // 2
        log = edge.log.read_text(errors="replace")
        print(f"{sender.batches} batches; consumer failures logged: {log.count('queue message')}")
        assert "queue message" in log, "no message failed while the store was stopped"
    finally:
        stop(edge.proc)
        redis.proc.send_signal(signal.SIGCONT)
        stop(redis.proc)


def test_on_mongodb_a_delivery_is_folded_per_entity_and_every_batch_counts_once(
    tmp_root: Path, mongo_server: MongoServer
) -> None:
    """Shop traffic through the queue to MongoDB, each batch sent twice: the
    consumer writes each delivery's deltas of one entity as one fold
    (`core::encode::mongo::folded_update`), and a fold holding a batch
    applied before goes again delta by delta."""
    url = mongo_server.url()
    edge = start_edge(tmp_root, url, extra_vars={"FRESHET_PIPELINE": "queue"})
    try:
        sender = Sender(edge)
        sender.start()
        time.sleep(4)
        sender.stopping.set()
        sender.join(timeout=300)
        assert sender.error is None, sender.error
        deadline = time.monotonic() + 60
        while logged_batches(edge) < sender.batches and time.monotonic() < deadline:
            time.sleep(0.5)
        assert logged_batches(edge) == sender.batches
        report = freshet.consistency(100_000, url=url, log=edge.base, read_token=READ_TOKEN, spec=SPEC,
                                     start=now_ms() - 7 * 86_400_000)  # fmt: skip
        assert report.mismatches == [] and report.match_rate == 1.0, report.mismatches[:5]
        assert report.compared["user:pageviews"] >= len(sender.users) // 2
    finally:
        stop(edge.proc)


def test_a_message_the_store_refuses_is_a_dead_letter_that_holds_up_nothing_and_applies_once_fixed(
    tmp_root: Path, redis_server: RedisServer
) -> None:
    prefix = "d_" + secrets.token_hex(4)
    url = redis_server.url(prefix)
    edge = start_edge(tmp_root, url, admin_token=ADMIN, extra_vars={"FRESHET_PIPELINE": "queue"})
    r = redis.Redis(port=redis_server.port)
    try:
        # A visitor whose feature hash is not a hash: every write to it is refused (WRONGTYPE).
        poisoned = f"{prefix}:{{user:cid-poisoned}}:2"
        r.set(poisoned, "not a hash")
        edge.post_events([click("cid-poisoned", 0)], batch_id="poisoned-1")
        fine = 3
        for n in range(fine):
            edge.post_events([click("cid-fine", n)], batch_id=f"fine-{n}")
        # The others apply; the poisoned message is tried max_retries times (a second apart), then kept.
        deadline = time.monotonic() + 60
        while edge.get("/health")["deadLetters"] != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        consumer = [line for line in edge.log.read_text(errors="replace").splitlines() if "queue" in line.lower()]
        assert edge.get("/health")["deadLetters"] == 1, "\n".join(consumer[-20:])
        deadline = time.monotonic() + 30
        while clicks(edge, "cid-fine") < fine and time.monotonic() < deadline:
            time.sleep(0.2)
        assert clicks(edge, "cid-fine") == fine
        assert admin(edge, "GET")["count"] == 1
        # Still refused: kept, and said why.
        again = admin(edge, "POST")
        assert again["applied"] == 0 and "WRONGTYPE" in again["failed"][0]["error"], again
        # Fixed: applied once, and the log replayed equals the store.
        r.delete(poisoned)
        assert admin(edge, "POST") == {"applied": 1, "failed": []}
        assert edge.get("/health")["deadLetters"] == 0
        report = freshet.consistency(100_000, url=url, log=edge.base, read_token=READ_TOKEN, spec=SPEC,
                                     start=now_ms() - 86_400_000)  # fmt: skip
        assert report.mismatches == [] and report.match_rate == 1.0, report.mismatches[:5]
        assert clicks(edge, "cid-poisoned") == 1
    finally:
        stop(edge.proc)
