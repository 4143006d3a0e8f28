"""``freshet backfill name@version``: a new feature version's history, from
the event log into the online store, while the edge keeps writing live.

The rule (README, "Backfill"): a version marked ``backfill = true`` in
``features.toml`` is written by the edge under a batch marker of its own,
``<batchId>|<name@version>``, and the edge's ``POST /v1/backfill`` applies
logged batches under that same marker. Whichever comes second for a batch
finds it applied, so every batch counts once: one the old spec logged, one
retried across the deploy, one a backfill already applied. The edge folds
and applies (with ``core``, into whichever store it runs: Redis, MongoDB or
the Durable Object); core reads the log into whole batches (through the
extension, as for replay), and here they only move, whole batches per
request.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass

from freshet._edge import admin_token as edge_admin_token
from freshet._edge import refusal
from freshet._freshet import StoreUnavailable, log_batches
from freshet._log import EDGE_DEFAULT_LOOKBACK, now_ms, open_log

# One request's NDJSON at most: well under the edge's 512 KiB body limit.
CHUNK_BYTES = 256 * 1024


@dataclass
class BackfillReport:
    """What one run did: ``batches`` read from the log, of which ``live``
    were logged by the edge's current spec (its live writes covered them);
    per (batch, entity), ``applied`` now and ``duplicates`` found applied
    (live, or by an earlier run)."""

    feature: str
    batches: int = 0
    live: int = 0
    applied: int = 0
    duplicates: int = 0
    requests: int = 0

    def lines(self) -> list[str]:
        return [
            f"backfill {self.feature}: {self.batches} logged batches in {self.requests} request(s)",
            f"  {self.live} logged by the live spec (already written live)",
            f"  {self.applied} entity updates applied, {self.duplicates} found applied before",
        ]


def backfill(
    feature: str,
    *,
    edge: str,
    admin_token: str | None = None,
    log: str | os.PathLike[str] | None = None,
    read_token: str | None = None,
    start: int | None = None,
    end: int | None = None,
    timeout: float = 60.0,
    s3_endpoint: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> BackfillReport:
    """Gives ``feature`` (``name@version``, marked ``backfill = true`` in the
    spec the edge runs) its history: the log's batches received in
    ``[start, end]`` (ms; by default the whole log, for the edge a year
    back) are sent to ``edge``'s ``POST /v1/backfill`` with ``admin_token``
    (or ``$FRESHET_ADMIN_TOKEN``). ``log`` is where the log is read from: the
    edge itself by default (with ``read_token``), a folder or
    ``s3://bucket/prefix``. Safe to run again, and to stop and rerun: what
    was applied is found applied.

    Raises :class:`StoreUnavailable` when the edge refuses (the message is
    the edge's: a feature not marked for backfill, a bad token) or cannot
    write, :class:`LogUnavailable` or :class:`CorruptLog` for the log."""
    import httpx

    token = edge_admin_token(admin_token, "backfill")
    source = open_log(log if log is not None else edge, read_token=read_token, timeout=timeout,
                      s3_endpoint=s3_endpoint)  # fmt: skip
    if start is None and source.needs_start:
        start = now_ms() - EDGE_DEFAULT_LOOKBACK
    url = f"{edge.rstrip('/')}/v1/backfill"
    report = BackfillReport(feature)
    with httpx.Client(timeout=timeout, headers={"authorization": f"Bearer {token}"}) as client:
        for body in _requests(log_batches(source.pieces(start, end)), chunk_bytes):
            try:
                # Gzipped: the edge reads gzip or plain, and its body limit counts what is sent.
                r = client.post(url, params={"feature": feature}, content=gzip.compress(body, 6),
                                headers={"content-type": "application/x-ndjson"})  # fmt: skip
            except httpx.HTTPError as e:
                raise StoreUnavailable(f"{url}: {type(e).__name__}: {e}") from e
            if r.status_code != 200:
                raise StoreUnavailable(f"{url}: {r.status_code} {refusal(r.content)}")
            done = r.json()
            report.requests += 1
            report.batches += int(done["batches"])
            report.live += int(done["live"])
            report.applied += int(done["applied"])
            report.duplicates += int(done["duplicates"])
    return report


def _requests(batches: Iterator[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """Request bodies of whole batches, each at most ``chunk_bytes`` unless
    one batch is larger: a batch is never split across two requests (the
    second half would find the batch applied)."""
    body = bytearray()
    for batch in batches:
        if body and len(body) + len(batch) > chunk_bytes:
            yield bytes(body)
            body.clear()
        body += batch
    if body:
        yield bytes(body)
