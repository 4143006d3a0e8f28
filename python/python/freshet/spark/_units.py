"""The log as units of work for Spark's executors, listed on the driver
without reading it: each log object whole (a gzipped object cannot be
split), and a large plain NDJSON file (an export) in byte ranges. Names are
listed, never read: the executors read each object's first line for its
receive time, the order one process replays in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from freshet._freshet import LogUnavailable
from freshet._log import SUFFIXES, FolderLog, S3Log, open_log
from freshet.spark._tasks import LogPlace

# A plain NDJSON file larger than this is read in ranges of this size.
RANGE_BYTES = 32 << 20


@dataclass(frozen=True)
class Unit:
    """One task's share of the log: ``path`` under the place's root (a key
    of the bucket), whole (``end`` -1) or the lines beginning in ``[begin, end)``."""

    path: str
    begin: int
    end: int


def _split(path: str, size: int, range_bytes: int) -> list[Unit]:
    if path.endswith(".gz") or size <= range_bytes:
        return [Unit(path, 0, -1)]
    return [Unit(path, b, min(b + range_bytes, size)) for b in range(0, size, range_bytes)]


def list_units(
    log: str | os.PathLike[str],
    *,
    s3_endpoint: str | None,
    start: int | None,
    end: int | None,
    range_bytes: int | None = None,
) -> tuple[LogPlace, list[Unit]]:
    """Where the log is and its units, for ``log`` a folder of log objects, one
    exported NDJSON file, or ``s3://bucket/prefix``. The edge's export route
    is a stream one process reads; export it to a file or a bucket first."""
    if isinstance(log, str) and urlsplit(log).scheme in ("http", "https"):
        raise ValueError(
            "freshet.spark reads the log from s3://bucket/prefix, a folder or an exported NDJSON file, "
            "not the edge's export route: save the export (GET /v1/events) to a file or read the bucket"
        )
    if not isinstance(log, os.PathLike) and isinstance(log, str) and urlsplit(log).scheme == "file":
        log = urlsplit(log).path
    source = open_log(log, s3_endpoint=s3_endpoint)
    range_bytes = range_bytes or RANGE_BYTES
    if isinstance(source, S3Log):
        return _s3_units(source, start, end, range_bytes)
    assert isinstance(source, FolderLog)
    root = source.root
    if root.is_file():
        place = LogPlace("folder", str(root), None, start, end)
        return place, _split("", root.stat().st_size, range_bytes)
    if not root.is_dir():
        raise LogUnavailable(f"{root}: no such folder or file")
    units: list[Unit] = []
    for path in sorted(root.rglob("*")):
        if path.name.endswith(SUFFIXES) and path.is_file():
            units += _split(path.relative_to(root).as_posix(), path.stat().st_size, range_bytes)
    return LogPlace("folder", str(Path(root).resolve()), None, start, end), units


def _s3_units(source: S3Log, start: int | None, end: int | None, range_bytes: int) -> tuple[LogPlace, list[Unit]]:
    from botocore.exceptions import BotoCoreError, ClientError

    client = source._client()
    units: list[Unit] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=source.prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(SUFFIXES):
                    units += _split(obj["Key"], int(obj["Size"]), range_bytes)
    except (BotoCoreError, ClientError) as e:
        raise LogUnavailable(f"s3://{source.bucket}/{source.prefix}: {type(e).__name__}: {e}") from e
    return LogPlace("s3", source.bucket, source.endpoint, start, end), units
