"""The event log's sources: the edge's export route (``GET /v1/events``), a
local folder of log objects, and an S3-compatible bucket (R2's S3 API). Each
yields the log as pieces ``(source, bytes, more)`` in receive order; parsing
and replay happen in the extension (core), here bytes only move, and
failures become :class:`LogUnavailable` naming where."""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from freshet._freshet import MAX_EXPORT_SPAN, LogUnavailable, log_received_at

# (source, bytes, more): a whole object, or with more=True a chunk of a
# streamed export whose last line may go on in the next chunk.
Piece = tuple[str, bytes, bool]

SECOND = 1000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
# The edge keeps no index of where its log begins; read this far back by default.
EDGE_DEFAULT_LOOKBACK = 365 * DAY
# Enough of an object to hold its first line (an event is at most 32 KiB).
HEAD_BYTES = 128 * 1024
SUFFIXES = (".ndjson.gz", ".ndjson", ".jsonl.gz", ".jsonl")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LogSource:
    """Where the log is read from; ``pieces`` yields it in receive order."""

    kind = ""
    # Whether reading "from the beginning" needs an explicit start (the edge).
    needs_start = False

    def pieces(self, start: int | None, end: int | None) -> Iterator[Piece]:
        """The batches received in ``[start, end]`` (ms; None: unbounded)."""
        raise NotImplementedError


def open_log(
    log: str | os.PathLike[str],
    *,
    read_token: str | None = None,
    timeout: float = 30.0,
    s3_endpoint: str | None = None,
    page_batches: int | None = None,
) -> LogSource:
    """The source ``log`` names: ``http(s)://`` the edge (with ``read_token``),
    ``s3://bucket/prefix``, or a local folder (a path or ``file://``)."""
    if isinstance(log, os.PathLike):
        return FolderLog(Path(log))
    scheme = urlsplit(log).scheme
    if scheme in ("http", "https"):
        from freshet._stores import need

        need("httpx", "edge")
        return EdgeLog(log, read_token=read_token or os.environ.get("FRESHET_READ_TOKEN"), timeout=timeout,
                       page_batches=page_batches)  # fmt: skip
    if scheme == "s3":
        return S3Log(log, endpoint=s3_endpoint, timeout=timeout)
    if scheme == "file":
        return FolderLog(Path(urlsplit(log).path))
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"unsupported log {log!r}: use the edge's http(s):// URL, s3://bucket/prefix or a folder")
    return FolderLog(Path(log))


# ---- the edge's export route ----


class EdgeLog(LogSource):
    """``GET /v1/events?from=&to=`` in spans of at most 31 days, each paged
    through ``Freshet-Next-From``, streamed in chunks."""

    kind = "edge"
    needs_start = True

    def __init__(self, url: str, *, read_token: str | None, timeout: float, page_batches: int | None = None) -> None:
        self.base = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {read_token}"} if read_token else {}
        self.timeout = timeout
        self.page_batches = page_batches

    def __repr__(self) -> str:
        return f"EdgeLog({self.base!r})"

    def pieces(self, start: int | None, end: int | None) -> Iterator[Piece]:
        import httpx

        if start is None:
            raise ValueError("reading the edge's log needs a start time")
        # Nothing is received in the future (the edge refuses a `from` past its clock).
        end = now_ms() if end is None else min(end, now_ms())
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            span_from = start
            while span_from <= end:
                span_to = min(span_from + MAX_EXPORT_SPAN, end)
                page_from: int | None = span_from
                while page_from is not None:
                    page_from = yield from self._page(client, page_from, span_to)
                span_from = span_to + 1  # `to` is inclusive

    def _page(self, client: Any, start: int, end: int) -> Generator[Piece, None, int | None]:
        """One request's answer in chunks; returns where the next page starts (None: the span is done)."""
        import httpx

        params: dict[str, Any] = {"from": start, "to": end}
        if self.page_batches is not None:
            params["limit"] = self.page_batches
        source = f"{self.base}/v1/events?{urlencode(params)}"
        try:
            with client.stream("GET", f"{self.base}/v1/events", params=params) as r:
                if r.status_code != 200:
                    r.read()
                    raise LogUnavailable(f"{source}: {_refusal(r.status_code, r.content)}")
                next_from = r.headers.get("freshet-next-from")
                for chunk in r.iter_bytes():
                    yield source, chunk, True
        except httpx.HTTPError as e:
            raise LogUnavailable(f"{source}: {type(e).__name__}: {e}") from e
        yield source, b"", False
        if next_from is None:
            return None
        try:
            following = int(next_from)
        except ValueError:
            raise LogUnavailable(f"{source}: a bad Freshet-Next-From {next_from!r}") from None
        if following <= start:
            raise LogUnavailable(f"{source}: Freshet-Next-From {following} does not move on")
        return following


def _refusal(status: int, body: bytes) -> str:
    import json

    try:
        detail: Any = json.loads(body)
    except ValueError:
        detail = body[:200].decode("utf-8", "replace")
    why = {
        401: "the read token was refused",
        404: "the edge's event log is off (FRESHET_EVENT_LOG) or it has no export route",
    }.get(status, "")
    return f"the edge answered {status}" + (f" ({why})" if why else "") + f": {detail}"


# ---- a local folder ----


def _ordered(listed: list[tuple[int, str, Any]]) -> list[tuple[int, str, Any]]:
    # By receive time, then by name, as the export orders them.
    return sorted(listed, key=lambda item: (item[0], item[1]))


class FolderLog(LogSource):
    """Log objects (``*.ndjson.gz`` or ``*.ndjson``) anywhere under a folder,
    e.g. a copy of the bucket's ``events/YYYY/MM/DD/HH/<batchId>.ndjson.gz``;
    ordered by the receive time on each object's first line."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"FolderLog({str(self.root)!r})"

    def pieces(self, start: int | None, end: int | None) -> Iterator[Piece]:
        if not self.root.is_dir():
            raise LogUnavailable(f"{self.root}: no such folder")
        listed: list[tuple[int, str, Any]] = []
        for path in self.root.rglob("*"):
            if not path.name.endswith(SUFFIXES) or not path.is_file():
                continue
            try:
                with path.open("rb") as f:
                    head = f.read(HEAD_BYTES)
            except OSError as e:
                raise LogUnavailable(f"{path}: {e}") from e
            received = log_received_at(str(path), head)
            if received is None or (start is not None and received < start) or (end is not None and received > end):
                continue
            listed.append((received, path.relative_to(self.root).as_posix(), path))
        for _, _, path in _ordered(listed):
            try:
                data = path.read_bytes()
            except OSError as e:
                raise LogUnavailable(f"{path}: {e}") from e
            yield str(path), data, False


# ---- an S3-compatible bucket ----


class S3Log(LogSource):
    """``s3://bucket/prefix``: the objects under the prefix, read with boto3
    (an optional dependency). The endpoint is ``s3_endpoint=``, else
    ``$FRESHET_S3_ENDPOINT``, else boto3's own (``$AWS_ENDPOINT_URL``, AWS);
    credentials are boto3's (``$AWS_ACCESS_KEY_ID``… or a profile)."""

    kind = "s3"

    def __init__(self, url: str, *, endpoint: str | None, timeout: float) -> None:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"{url!r} names no bucket: use s3://bucket/prefix")
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.lstrip("/")
        self.endpoint = endpoint or os.environ.get("FRESHET_S3_ENDPOINT")
        self.timeout = timeout
        try:
            import boto3  # noqa: F401
        except ImportError as e:
            raise ImportError("reading the log from S3 needs boto3: pip install 'freshet[s3]'") from e

    def __repr__(self) -> str:
        return f"S3Log({self.url!r})"

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=self.timeout, read_timeout=self.timeout, retries={"max_attempts": 3})
        return boto3.client("s3", endpoint_url=self.endpoint, config=config)

    def pieces(self, start: int | None, end: int | None) -> Iterator[Piece]:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client()
        where = f"s3://{self.bucket}/{self.prefix}"
        try:
            listed: list[tuple[int, str, Any]] = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if not key.endswith(SUFFIXES):
                        continue
                    where = f"s3://{self.bucket}/{key}"
                    head = client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
                    received = log_received_at(where, head["Body"].read())
                    if received is None or (start is not None and received < start):
                        continue
                    if end is not None and received > end:
                        continue
                    listed.append((received, key, key))
            for _, _, key in _ordered(listed):
                where = f"s3://{self.bucket}/{key}"
                data = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                yield where, data, False
        except (BotoCoreError, ClientError) as e:
            raise LogUnavailable(f"{where}: {type(e).__name__}: {e}") from e
