"""The I/O: one round trip per read to Redis (a pipeline), MongoDB (one
``find`` with ``$in`` per collection) or the edge's serving API (``POST
/v1/features/batch``), sync and async. Requests and decoding come from the
read plan (core, through the extension); here bytes only move, and failures
become :class:`StoreUnavailable`."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from freshet._freshet import (
    MAX_BATCH_ITEMS,
    FeatureValue,
    ReadPlan,
    StoreUnavailable,
    is_layout2_store,
    mongo_database,
    redis_cluster,
    redis_key_prefix,
    redis_layout_mark,
)
from freshet._sampling import MongoSampler, RedisSampler, sampled_calls, sampled_updates

Row = dict[str, FeatureValue]
# One part of a read: a plan and the ids it reads. A ranking read has two
# (user, items) or three (and the pairs, one per item).
Part = tuple[ReadPlan, list[str]]
# A part's entities to read again in layout 1: the part's index and the
# positions of its ids.
Old = tuple[int, list[int]]


class Store:
    """One kind of store; ``read`` and ``aread`` return one list of rows per part."""

    kind = ""

    def read(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        raise NotImplementedError

    async def aread(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        raise NotImplementedError

    # The clients, opened on first use; Redis's and httpx's close as below,
    # MongoDB's differently (it overrides both).
    _sync: Any = None
    _async: Any = None

    def close(self) -> None:
        """Closes the sync client."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Closes the async client."""
        if self._async is not None:
            await self._async.aclose()
            self._async = None


def need(module: str, extra: str) -> None:
    """Fails clearly when a store's client library is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(f"reading from {extra} needs {module}: pip install 'freshet[{extra}]'")


# The Redis URL schemes (core's parser decides the rest of the URL).
REDIS_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")


def open_store(
    url: str, *, timeout: float, read_token: str | None, prefix: str | None, drift_sample_rate: float = 0.0
) -> Store:
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        need("redis", "redis")
        return RedisStore(url, timeout=timeout, prefix=prefix, drift_sample_rate=drift_sample_rate)
    if scheme in ("mongodb", "mongodb+srv"):
        need("pymongo", "mongodb")
        return MongoStore(url, timeout=timeout, drift_sample_rate=drift_sample_rate)
    if scheme in ("http", "https"):
        need("httpx", "edge")
        return EdgeStore(url, timeout=timeout, read_token=read_token)
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}: use redis://, rediss://, redis+cluster://, mongodb:// or http(s)://"
    )


def _unavailable(what: str, e: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"{what}: {type(e).__name__}: {e}")


# ---- Redis ----


def _or_error(call: Any) -> Any:
    """The reply, or the server's error reply in its place (as a pipeline gives it)."""
    import redis

    try:
        return call()
    except redis.ResponseError as e:
        return e


def redis_client(url: str, *, timeout: float, asynchronous: bool = False, retry: Any = None) -> Any:
    """A redis-py client for a store URL: ``redis.Redis`` for one server,
    ``RedisCluster`` (sync or async) seeded with every node of a
    ``redis+cluster://`` URL, which splits a pipeline by slot and follows
    ``MOVED`` and ``ASK`` itself. ``?prefix=`` is Freshet's, not redis-py's."""
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    cluster = redis_cluster(url)
    if cluster is None:
        plain = urlunsplit(urlsplit(url)._replace(query=""))
        if retry is not None:
            options["retry"] = retry
        factory = redis.asyncio.Redis if asynchronous else redis.Redis
        return factory.from_url(plain, **options)
    seeds, tls, username, password = cluster
    if asynchronous:
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in seeds],
            username=username,
            password=password,
            ssl=tls,
            **options,
        )
    return redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in seeds],  # type: ignore[no-untyped-call]
        username=username,
        password=password,
        ssl=tls,
        **options,
    )


class RedisStore(Store):
    """A pipeline of ``HGETALL`` (and ``ZRANGE`` per named set feature) per
    entity, exactly the commands the edge's Redis adapter sends; on a
    cluster, redis-py's cluster client sends each node its part."""

    kind = "redis"

    def __init__(self, url: str, *, timeout: float, prefix: str | None, drift_sample_rate: float = 0.0) -> None:
        # The edge's rule (core's parser): a URL it refuses is refused here.
        # Its one option, `?prefix=`, is Freshet's, not redis-py's.
        url_prefix = redis_key_prefix(url)
        self.prefix = prefix or url_prefix
        # As given: `redis_client` drops the `?prefix=` redis-py does not know.
        self.url = url
        self.timeout = timeout
        self._sync: Any = None
        self._async: Any = None
        self.drift_sample_rate = drift_sample_rate
        self._sampler = RedisSampler()
        # Seen the store's layout mark: it holds no layout 1 (core's `layout_mark`).
        # A cluster is layout 2 from the start, as the edge takes it.
        self._cluster = redis_cluster(url) is not None
        self._layout2 = self._cluster

    def _client(self, retry_cls: Any, asynchronous: bool) -> Any:
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # One retry on a refused or reset connection (a pooled connection the
        # server closed); none on a timeout, so a slow store fails in `timeout`.
        retry = retry_cls(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        return redis_client(self.url, timeout=self.timeout, asynchronous=asynchronous, retry=retry)

    def _commands(self, parts: list[Part]) -> list[tuple[bytes, ...]]:
        commands: list[tuple[bytes, ...]] = []
        for plan, ids in parts:
            commands.extend(plan.redis_commands(self.prefix, ids))
        if not self._layout2:
            # Until the store is seen marked as wholly in layout 2 (`freshet
            # migrate`), the mark is asked with the reads.
            commands.append(redis_layout_mark(self.prefix))
        return commands

    def _decode(self, parts: list[Part], replies: list[Any], now: int | None) -> tuple[list[list[Row]], list[Old]]:
        """The rows, and the entities to read again in layout 1: those layout
        2 holds nothing of, in a store without the layout mark."""
        if not self._layout2 and is_layout2_store(replies.pop()):
            self._layout2 = True
        out = []
        old: list[Old] = []
        at = 0
        for k, (plan, ids) in enumerate(parts):
            n = plan.commands_per_entity * len(ids)
            mine = replies[at : at + n]
            out.append(plan.decode_redis(self.prefix, ids, mine, now))
            if not self._layout2:
                unwritten = plan.redis_unwritten(mine)
                if unwritten:
                    old.append((k, unwritten))
            at += n
        return out, old

    def _old_commands(self, parts: list[Part], old: list[Old]) -> list[tuple[bytes, ...]]:
        commands: list[tuple[bytes, ...]] = []
        for k, positions in old:
            plan, ids = parts[k]
            commands.extend(plan.redis_commands(self.prefix, [ids[i] for i in positions], layout1=True))
        return commands

    def _decode_old(
        self, parts: list[Part], old: list[Old], replies: list[Any], rows: list[list[Row]], now: int | None
    ) -> None:
        at = 0
        for k, positions in old:
            plan, ids = parts[k]
            some = [ids[i] for i in positions]
            n = plan.layout1_commands_per_entity * len(some)
            decoded = plan.decode_redis(self.prefix, some, replies[at : at + n], now, layout1=True)
            for i, row in zip(positions, decoded, strict=True):
                rows[k][i] = row
            at += n

    def _named(self, commands: list[tuple[bytes, ...]]) -> list[tuple[Any, ...]]:
        """redis-py's cluster client looks commands up by a `str` name."""
        if not self._cluster:
            return commands
        return [(c[0].decode(), *c[1:]) for c in commands]

    def _run(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        commands = self._named(commands)
        if len(commands) == 1:
            # One command (one entity, no set feature): a pipeline would only add its own cost.
            return [_or_error(lambda: self._sync.execute_command(*commands[0]))]
        pipe = self._sync.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    async def _arun(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        import redis

        commands = self._named(commands)
        if len(commands) == 1:
            try:
                reply = await self._async.execute_command(*commands[0])
            except redis.ResponseError as e:
                reply = e
            return [reply]
        pipe = self._async.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    def read(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        import redis
        from redis.retry import Retry

        if self._sync is None:
            self._sync = self._client(Retry, asynchronous=False)
        try:
            rows, old = self._decode(parts, self._run(self._commands(parts)), now)
            if old:
                self._decode_old(parts, old, self._run(self._old_commands(parts, old)), rows, now)
        except redis.RedisError as e:
            raise _unavailable("Redis", e) from e
        calls = sampled_calls(self.drift_sample_rate, self.prefix, parts, rows)
        if calls:
            self._sampler.submit(self._sync, calls)
        return rows

    async def aread(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        import redis
        import redis.asyncio
        from redis.asyncio.retry import Retry

        if self._async is None:
            self._async = self._client(Retry, asynchronous=True)
        try:
            # The client's socket timeouts bound the read (no wait_for: its task costs more than the read).
            rows, old = self._decode(parts, await self._arun(self._commands(parts)), now)
            if old:
                self._decode_old(parts, old, await self._arun(self._old_commands(parts, old)), rows, now)
        except (redis.RedisError, asyncio.TimeoutError) as e:
            raise _unavailable("Redis", e) from e
        calls = sampled_calls(self.drift_sample_rate, self.prefix, parts, rows)
        if calls:
            self._sampler.submit_async(self._async, calls)
        return rows

    def close(self) -> None:
        self._sampler.flush()
        super().close()

    async def aclose(self) -> None:
        await self._sampler.drain()
        await super().aclose()


# ---- MongoDB ----


class MongoStore(Store):
    """One ``find({"_id": {"$in": ids}})`` per collection, projecting only
    the named features and their ``_ts`` entries, read as raw BSON."""

    kind = "mongodb"

    def __init__(self, url: str, *, timeout: float, drift_sample_rate: float = 0.0) -> None:
        # The edge's rule (core's parser): the URL names the database.
        self.database = mongo_database(url)
        self.url = url
        self.timeout = timeout
        self._sync: Any = None
        self._async: Any = None
        self._collections: dict[tuple[int, str], Any] = {}
        self.drift_sample_rate = drift_sample_rate
        self._sampler = MongoSampler(self.database)

    def _options(self) -> dict[str, Any]:
        ms = max(1, int(self.timeout * 1000))
        # timeoutMS bounds each operation as a whole (connection, selection,
        # retries included); the others bound their own steps within it.
        return {
            "timeoutMS": ms,
            "serverSelectionTimeoutMS": ms,
            "connectTimeoutMS": ms,
            "socketTimeoutMS": ms,
        }

    @staticmethod
    def _find_args(plan: ReadPlan, ids: list[str]) -> tuple[dict[str, Any], dict[str, int], int]:
        """The filter, the projection (only the named features and their `_ts`:
        never the document's `_batches` markers, up to 1,000 ids) and the limit."""
        unique = list(dict.fromkeys(ids))
        filt: dict[str, Any] = {"_id": unique[0]} if len(unique) == 1 else {"_id": {"$in": unique}}
        return filt, dict.fromkeys(plan.projection, 1), len(unique)

    def _collection(self, client: Any, plan: ReadPlan) -> Any:
        # Made once per client and collection: building them is a cost every read would pay.
        key = (id(client), plan.collection)
        coll = self._collections.get(key)
        if coll is None:
            from bson.codec_options import CodecOptions
            from bson.raw_bson import RawBSONDocument

            db = client.get_database(self.database)
            coll = db.get_collection(plan.collection, codec_options=CodecOptions(document_class=RawBSONDocument))
            self._collections[key] = coll
        return coll

    def read(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        import pymongo
        from pymongo.errors import PyMongoError

        if self._sync is None:
            self._sync = pymongo.MongoClient(self.url, **self._options())
        out: list[list[Row]] = []
        try:
            for plan, ids in parts:
                if not ids:
                    out.append([])
                    continue
                coll = self._collection(self._sync, plan)
                filt, projection, limit = self._find_args(plan, ids)
                if limit == 1:  # find_one asks for a single batch: the server closes the cursor at once
                    one = coll.find_one(filt, projection)
                    docs = [] if one is None else [one]
                else:
                    docs = list(coll.find(filt, projection, limit=limit))
                out.append(plan.decode_mongo(ids, [d.raw for d in docs], now))
        except PyMongoError as e:
            raise _unavailable("MongoDB", e) from e
        updates = sampled_updates(self.drift_sample_rate, parts, out)
        if updates:
            self._sampler.submit(self._sync, updates)
        return out

    async def aread(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        from pymongo import AsyncMongoClient
        from pymongo.errors import PyMongoError

        if self._async is None:
            self._async = AsyncMongoClient(self.url, **self._options())

        async def one(plan: ReadPlan, ids: list[str]) -> list[Row]:
            if not ids:
                return []
            coll = self._collection(self._async, plan)
            filt, projection, limit = self._find_args(plan, ids)
            if limit == 1:
                one = await coll.find_one(filt, projection)
                docs = [] if one is None else [one]
            else:
                docs = await coll.find(filt, projection, limit=limit).to_list()
            return plan.decode_mongo(ids, [d.raw for d in docs], now)

        try:
            out = list(await asyncio.gather(*(one(plan, ids) for plan, ids in parts)))
        except PyMongoError as e:
            raise _unavailable("MongoDB", e) from e
        updates = sampled_updates(self.drift_sample_rate, parts, out)
        if updates:
            self._sampler.submit_async(self._async, updates)
        return out

    def close(self) -> None:
        self._sampler.flush()
        if self._sync is not None:
            self._sync.close()
            self._collections = {k: c for k, c in self._collections.items() if k[0] != id(self._sync)}
            self._sync = None

    async def aclose(self) -> None:
        await self._sampler.drain()
        if self._async is not None:
            await self._async.close()
            self._collections = {k: c for k, c in self._collections.items() if k[0] != id(self._async)}
            self._async = None


# ---- the edge's serving API ----


class EdgeStore(Store):
    """``POST /v1/features/batch``: one user, many items and their pairs,
    or many items of one entity (``itemEntity``), at most 200 items per
    request."""

    kind = "edge"

    def __init__(self, url: str, *, timeout: float, read_token: str | None) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"content-type": "application/json"}
        if read_token:
            self.headers["authorization"] = f"Bearer {read_token}"
        self._sync: Any = None
        self._async: Any = None

    def _requests(self, parts: list[Part]) -> list[tuple[dict[str, Any], list[tuple[ReadPlan, str]]]]:
        """Bodies to POST, each with the (plan, part of the answer) it holds."""
        if len(parts) == 1:  # many ids of one entity
            (plan, ids) = parts[0]
            return [
                (self._items(plan, ids[i : i + MAX_BATCH_ITEMS]), [(plan, "items")])
                for i in range(0, len(ids), MAX_BATCH_ITEMS)
            ]
        # A ranking read: the user, the items and their pairs together, at
        # most MAX_BATCH_ITEMS items a request (each request names the user:
        # its pairs need it; the first one holds the user's features).
        (uplan, uids), (iplan, iids), *pairs = parts
        requests = []
        for start in range(0, max(len(iids), 1), MAX_BATCH_ITEMS):
            chunk = iids[start : start + MAX_BATCH_ITEMS]
            body: dict[str, Any] = {"userId": uids[0], "userEntity": uplan.entity}
            if uplan.names is not None:
                body["userFeatures"] = uplan.names
            holds = [(uplan, "user")] if start == 0 else []
            if chunk:
                body.update(self._items(iplan, chunk))
                holds.append((iplan, "items"))
                for pplan, _ in pairs:
                    body["pairEntity"] = pplan.entity
                    if pplan.names is not None:
                        body["pairFeatures"] = pplan.names
                    holds.append((pplan, "pairs"))
            requests.append((body, holds))
        return requests

    @staticmethod
    def _items(plan: ReadPlan, ids: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"itemEntity": plan.entity, "itemIds": ids}
        if plan.names is not None:
            body["itemFeatures"] = plan.names
        return body

    @staticmethod
    def _check(status: int, text: bytes) -> None:
        if status == 200:
            return
        try:
            detail = json.loads(text)
        except ValueError:
            detail = text[:200].decode("utf-8", "replace")
        raise StoreUnavailable(f"the edge answered {status}: {detail}")

    def _collect(
        self, parts: list[Part], answers: list[tuple[bytes, list[tuple[ReadPlan, str]]]], now: int | None
    ) -> list[list[Row]]:
        del now  # the edge reads as of its own clock
        by_plan: dict[int, list[Row]] = {id(plan): [] for plan, _ in parts}
        for body, holds in answers:
            for plan, part in holds:
                by_plan[id(plan)].extend(plan.decode_served(body, part))
        return [by_plan[id(plan)] for plan, _ in parts]

    def read(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        import httpx

        if self._sync is None:
            self._sync = httpx.Client(timeout=self.timeout, headers=self.headers)
        answers = []
        for body, holds in self._requests(parts):
            try:
                r = self._sync.post(f"{self.base}/v1/features/batch", content=json.dumps(body))
            except httpx.HTTPError as e:
                raise _unavailable("the edge", e) from e
            self._check(r.status_code, r.content)
            answers.append((r.content, holds))
        return self._collect(parts, answers, now)

    async def aread(self, parts: list[Part], now: int | None) -> list[list[Row]]:
        import httpx

        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self.timeout, headers=self.headers)
        requests = self._requests(parts)
        try:
            responses = await asyncio.gather(
                *(self._async.post(f"{self.base}/v1/features/batch", content=json.dumps(body)) for body, _ in requests)
            )
        except httpx.HTTPError as e:
            raise _unavailable("the edge", e) from e
        answers = []
        for r, (_, holds) in zip(responses, requests, strict=True):
            self._check(r.status_code, r.content)
            answers.append((r.content, holds))
        return self._collect(parts, answers, now)

    def health(self) -> dict[str, Any]:
        import httpx

        try:
            r = httpx.get(f"{self.base}/health", timeout=self.timeout)
        except httpx.HTTPError as e:
            raise _unavailable("the edge", e) from e
        self._check(r.status_code, r.content)
        answer: dict[str, Any] = r.json()
        return answer
