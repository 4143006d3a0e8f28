"""Drift sampling in the reader: a share of the reads a model makes straight
from Redis or MongoDB add their served values to the hourly drift summaries, as the
edge does for reads through it (a read through the edge is sampled there,
not here, so nothing counts twice). The summary's increments are core's
(``drift_sample_calls`` for Redis, ``drift_mongo_updates`` for MongoDB:
the statements the edge sends); the writes never hold up the read: a background
thread sends them for sync reads, a task for async ones, and a failed or
backlogged write drops its sample, never the read."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import threading
from typing import Any

from freshet._freshet import DRIFT_ADD_SCRIPT, drift_mongo_index, drift_mongo_updates, drift_sample_calls

log = logging.getLogger("freshet.drift")

# Sampled reads waiting to be written, at most; more are dropped.
MAX_PENDING = 256

Calls = list[tuple[str, list[str]]]


def sampled_values(rate: float, parts: list[Any], rows: list[list[Any]]) -> list[tuple[str, str]] | None:
    """This read's served values (feature key, JSON text), when the read is sampled."""
    if rate <= 0 or random.random() >= rate:
        return None
    values = []
    for (plan, _ids), part_rows in zip(parts, rows, strict=True):
        keys = dict(zip(plan.columns, plan.keys, strict=True))
        for row in part_rows:
            for column, fv in row.items():
                values.append((keys[column], json.dumps(fv.value)))
    return values


def sampled_calls(rate: float, prefix: str, parts: list[Any], rows: list[list[Any]]) -> Calls | None:
    """The Redis calls that add this read's values, when the read is sampled."""
    values = sampled_values(rate, parts, rows)
    return None if values is None else drift_sample_calls(values, prefix)


class Sampler:
    """Sends sampled reads' writes off the read path; the store's writes are
    ``_write`` (sync, on the writer thread) and ``_awrite`` (a task)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Any, Any]] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, client: Any, calls: Any) -> None:
        """Sync reads: hands the calls to the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="freshet-drift", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait((client, calls))
        except queue.Full:
            log.debug("drift sample dropped: %d writes pending", MAX_PENDING)

    def _run(self) -> None:
        while True:
            client, calls = self._queue.get()
            try:
                self._write(client, calls)
            except Exception as e:  # a lost sample must not stop the writer
                log.warning("drift sample not kept: %s", e)
            finally:
                self._queue.task_done()

    def submit_async(self, client: Any, calls: Any) -> None:
        """Async reads: a task on the running loop, not awaited by the read."""
        if len(self._tasks) >= MAX_PENDING:
            return
        task = asyncio.get_running_loop().create_task(self._send_async(client, calls))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_async(self, client: Any, calls: Any) -> None:
        try:
            await self._awrite(client, calls)
        except Exception as e:
            log.warning("drift sample not kept: %s", e)

    async def drain(self) -> None:
        """Waits for the pending async writes (before closing the client)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def flush(self, timeout: float = 2.0) -> None:
        """Waits (a little) for the writer thread's queue to empty."""
        import time

        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _write(self, client: Any, calls: Any) -> None:
        raise NotImplementedError

    async def _awrite(self, client: Any, calls: Any) -> None:
        raise NotImplementedError


class RedisSampler(Sampler):
    """Redis: the summary script's increments, pipelined."""

    # `EVAL` as a plain command: redis-py's cluster pipeline has no `eval`,
    # and routes a command by its key (the summary key's hash tag).
    def _write(self, client: Any, calls: Calls) -> None:
        pipe = client.pipeline(transaction=False)
        for key, args in calls:
            pipe.execute_command("EVAL", DRIFT_ADD_SCRIPT, 1, key, *args)
        pipe.execute()

    async def _awrite(self, client: Any, calls: Calls) -> None:
        pipe = client.pipeline(transaction=False)
        for key, args in calls:
            pipe.execute_command("EVAL", DRIFT_ADD_SCRIPT, 1, key, *args)
        await pipe.execute()


Updates = list[tuple[str, list[bytes]]]


class MongoSampler(Sampler):
    """MongoDB: per feature, one ordered ``update`` of core's statements on
    the drift collection (as the edge sends them), after the collection's
    TTL index is made once per client (the URL's database, as reads use)."""

    def __init__(self, database: str) -> None:
        super().__init__()
        self._database = database
        self._indexed: set[int] = set()

    @staticmethod
    def _commands(updates: Updates) -> list[tuple[str, str, dict[str, Any]]]:
        import bson

        collection, _ = drift_mongo_index()
        return [
            ("update", collection, {"updates": [bson.decode(s) for s in statements], "ordered": True})
            for _key, statements in updates
        ]

    @staticmethod
    def _index() -> tuple[str, str, dict[str, Any]]:
        import bson

        collection, index = drift_mongo_index()
        return ("createIndexes", collection, {"indexes": [bson.decode(index)]})

    def _write(self, client: Any, updates: Updates) -> None:
        db = client.get_database(self._database)
        if id(client) not in self._indexed:
            name, value, kwargs = self._index()
            db.command(name, value, **kwargs)
            self._indexed.add(id(client))
        for name, value, kwargs in self._commands(updates):
            db.command(name, value, **kwargs)

    async def _awrite(self, client: Any, updates: Updates) -> None:
        db = client.get_database(self._database)
        if id(client) not in self._indexed:
            name, value, kwargs = self._index()
            await db.command(name, value, **kwargs)
            self._indexed.add(id(client))
        for name, value, kwargs in self._commands(updates):
            await db.command(name, value, **kwargs)


def sampled_updates(rate: float, parts: list[Any], rows: list[list[Any]]) -> Updates | None:
    """The MongoDB updates that add this read's values, when the read is sampled."""
    values = sampled_values(rate, parts, rows)
    return None if values is None else drift_mongo_updates(values)
