"""The queue pipeline (`FRESHET_PIPELINE=queue`) under `wrangler dev`, which runs
Cloudflare Queues locally: shop traffic, each batch sent until taken and once
more, goes through the queue to the worker's own consumer while the store
stops answering for longer than its timeout and comes back. Ingest answers
202 throughout; the consumer's failed messages are delivered again; once the
log holds every batch, `freshet consistency` against it is 100%: nothing
lost, nothing doubled."""

from __future__ import annotations

import secrets
import signal
import time
import urllib.request
from pathlib import Path

from test_cluster import Sender

import freshet

from conftest import READ_TOKEN, SPEC, Edge, now_ms, start_edge, start_redis, stop


def logged_batches(edge: Edge) -> int:
    req = urllib.request.Request(f"{edge.base}/v1/events?from={now_ms() - 86_400_000}",
                                 headers={"authorization": f"Bearer {READ_TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(r.headers["freshet-batches"])


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
