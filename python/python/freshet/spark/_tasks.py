"""What Spark's executors run for ``freshet.spark.get_historical_features``:
reading a piece of the log and cutting it by entity (``route_units``),
turning entity rows into one keyed row per entity (``key_rows``), and
replaying one partition's entities (``replay_partition``). Arrow in, Arrow
out (``mapInArrow``); every value comes from the extension, as in
:mod:`freshet.history`. Imports no pyspark: an executor needs only
``freshet``, pyarrow and pandas."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshet._freshet import CorruptLog, LogUnavailable, Spec, log_received_at, log_route, replay_log
from freshet._log import HEAD_BYTES
from freshet.history import TIMESTAMP, _entity_ids, to_ms

if TYPE_CHECKING:
    import pyarrow as pa

# A row of the shuffle: an entity row (KIND_ROW) or an event line routed to
# an entity (KIND_EVENT). Rows sort first in a partition, then events in the
# log's order: (received, path, pos), the order one process replays.
KIND_ROW, KIND_EVENT = 0, 1
KEYED_FIELDS = [
    ("entity", "string"),
    ("id", "string"),
    ("kind", "int"),
    ("received", "long"),
    ("path", "string"),
    ("pos", "long"),
    ("at", "long"),
    ("line", "binary"),
]
# The column that carries each entity row's place through the plan.
ROW_ID = "__freshet_row"
# Bytes of event lines handed to the replay at a time.
PIECE_BYTES = 1 << 20


@dataclass(frozen=True)
class LogPlace:
    """Where the log's units are read from on an executor: a folder (or one
    file), or an S3 bucket (with its endpoint); and which receive times count."""

    kind: str  # "folder" or "s3"
    root: str  # the folder, or the bucket
    endpoint: str | None
    start: int | None
    end: int | None


def keyed_schema() -> pa.Schema:
    import pyarrow as pa

    types = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "binary": pa.binary()}
    return pa.schema([(name, types[t]) for name, t in KEYED_FIELDS])


# ---- entity rows ----


def key_rows(
    spec_text: str, pairs: list[tuple[str, str]], row_id: str, batches: Iterable[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Each entity row as one keyed row per entity its features use: the
    entity's id (its column, or a composite's built from its parts') and the
    row's time in ms. A bad id or time raises, naming the row's id."""
    import pyarrow as pa

    spec = Spec(spec_text)
    entities = list(dict.fromkeys(e for e, _ in pairs))
    schema = keyed_schema()
    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = batch.to_pandas()
        frame.index = frame[row_id]
        at = to_ms(frame[TIMESTAMP])
        n = len(at)
        for entity in entities:
            ids = _entity_ids(spec, frame, entity, pairs)
            yield pa.record_batch(
                [
                    pa.array([entity] * n, pa.string()),
                    pa.array(ids, pa.string()),
                    pa.array([KIND_ROW] * n, pa.int32()),
                    pa.array([0] * n, pa.int64()),
                    pa.array([""] * n, pa.string()),
                    batch.column(row_id).cast(pa.int64()),
                    pa.array(at, pa.int64()),
                    pa.nulls(n, pa.binary()),
                ],
                schema=schema,
            )


# ---- the log ----


def _read(place: LogPlace, path: str, begin: int, size: int | None, client: Any) -> bytes:
    """``size`` bytes of the unit from ``begin`` (the rest when None)."""
    if place.kind == "s3":
        from botocore.exceptions import BotoCoreError, ClientError

        rng = f"bytes={begin}-" if size is None else f"bytes={begin}-{begin + size - 1}"
        try:
            body: bytes = client.get_object(Bucket=place.root, Key=path, Range=rng)["Body"].read()
        except (BotoCoreError, ClientError) as e:
            raise LogUnavailable(f"s3://{place.root}/{path}: {type(e).__name__}: {e}") from e
        return body
    file = Path(place.root) / path if path else Path(place.root)
    try:
        with file.open("rb") as f:
            f.seek(begin)
            return f.read() if size is None else f.read(size)
    except OSError as e:
        raise LogUnavailable(f"{file}: {e}") from e


def _where(place: LogPlace, path: str) -> str:
    if place.kind == "s3":
        return f"s3://{place.root}/{path}"
    return str(Path(place.root) / path) if path else place.root


def _unit_text(place: LogPlace, path: str, begin: int, end: int, client: Any) -> tuple[int, int, bytes] | None:
    """A unit's receive time (its object's first line, as one process orders
    objects), where its text begins in the file, and its plain NDJSON: a
    whole object (``end`` -1, gunzipped), or the lines of a plain file that
    begin in ``[begin, end)``. None when its receive time is outside the
    place's bounds, or it is empty."""
    where = _where(place, path)
    received = log_received_at(where, _read(place, path, 0, HEAD_BYTES, client))
    if received is None:
        return None
    if (place.start is not None and received < place.start) or (place.end is not None and received > place.end):
        return None
    if end < 0:
        data = _read(place, path, 0, None, client)
        if data.startswith(b"\x1f\x8b"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as e:
                raise CorruptLog(f"{where}: gzip: {e}") from e
        return received, 0, data
    # The line that began before `begin` is the previous unit's: skip to
    # the first line start at or after it; read on past `end` to the end of
    # the last line that begins before it.
    skip = 0
    if begin > 0:
        back = _read(place, path, begin - 1, 1, client)
        if back != b"\n":
            tail = b""
            while b"\n" not in tail:
                more = _read(place, path, begin + len(tail), 64 * 1024, client)
                if not more:
                    return None
                tail += more
            skip = tail.index(b"\n") + 1
    if begin + skip >= end:
        return None
    data = _read(place, path, begin + skip, end - begin - skip, client)
    while data and not data.endswith(b"\n"):
        more = _read(place, path, begin + skip + len(data), 64 * 1024, client)
        if not more:
            break
        cut = more.find(b"\n")
        data += more if cut < 0 else more[: cut + 1]
    return received, begin + skip, data


def route_units(
    spec_text: str, entities: list[str], place: LogPlace, batches: Iterable[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Each unit of the log (``path``, ``begin``, ``end``) read and cut by
    entity: one keyed row per (event, entity) it adds to, its line with it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    spec = Spec(spec_text)
    schema = keyed_schema()
    names = pa.array(entities, pa.string())
    client = _s3_client(place) if place.kind == "s3" else None
    for batch in batches:
        units = batch.to_pydict()
        for path, begin, end in zip(units["path"], units["begin"], units["end"], strict=True):
            got = _unit_text(place, path, begin, end, client)
            if got is None:
                continue
            received, base, text = got
            if not text.endswith(b"\n"):
                text += b"\n"
            source = _where(place, path) + (f", from byte {base}" if base > 0 else "")
            offsets, line, entity, ids = log_route(spec, entities, source, text)
            if not line:
                continue
            starts = np.asarray(offsets, dtype=np.int64)
            lines = pa.Array.from_buffers(
                pa.binary(), len(offsets) - 1, [None, pa.py_buffer(starts.astype(np.int32)), pa.py_buffer(text)]
            )
            at_line = np.asarray(line, dtype=np.int64)
            n = len(line)
            yield pa.record_batch(
                [
                    pc.take(names, pa.array(entity, pa.int32())),
                    pa.array(ids, pa.string()),
                    pa.array(np.full(n, KIND_EVENT, dtype=np.int32)),
                    pa.array(np.full(n, received, dtype=np.int64)),
                    pa.array([path] * n, pa.string()),
                    pa.array(starts[at_line] + base),
                    pa.nulls(n, pa.int64()),
                    pc.take(lines, pa.array(at_line)),
                ],
                schema=schema,
            )


def _s3_client(place: LogPlace) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=30, read_timeout=30, retries={"max_attempts": 3})
    return boto3.client("s3", endpoint_url=place.endpoint or os.environ.get("FRESHET_S3_ENDPOINT"), config=config)


# ---- the replay of one partition ----


def arrow_type(aggregation: str) -> pa.DataType:
    """The column type of a feature's values, by its aggregation: counts are
    integers, the other numbers floats, `distinct` and `latest_n` lists of
    strings, `vector_avg` a list of floats; `last`, `first` and `mode` are
    strings (a value that is not a string comes as its JSON text, as in a
    `latest_n` list)."""
    import pyarrow as pa

    if aggregation == "count":
        return pa.int64()
    if aggregation in ("sum", "min", "max", "avg", "decay"):
        return pa.float64()
    if aggregation in ("distinct", "latest_n"):
        return pa.list_(pa.string())
    if aggregation == "vector_avg":
        return pa.list_(pa.float64())
    return pa.string()


def _text(v: Any) -> Any:
    return v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def column(values: list[Any], aggregation: str) -> pa.Array:
    import pyarrow as pa

    kind = arrow_type(aggregation)
    if kind == pa.string():
        values = [_text(v) for v in values]
    elif kind == pa.list_(pa.string()):
        values = [None if v is None else [_text(x) for x in v] for v in values]
    return pa.array(values, kind)


@dataclass
class _Rows:
    row_ids: list[int]
    ids: list[str]
    at: list[int]


def replay_partition(
    spec_text: str,
    pairs: list[tuple[str, str]],
    names: list[str],
    as_of: str,
    lateness: int | None,
    batches: Iterable[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """One partition's entity rows (first) and the event lines routed to its
    entities (then, in the log's order) replayed in one pass by core, one
    query per entity: per (row, entity), the row's id and that entity's
    feature columns (the other entities' columns null). The lines stream:
    memory follows the partition's rows and entities, not its events."""
    import pyarrow as pa

    spec = Spec(spec_text)
    aggs = [spec.aggregation(e, n) for e, n in pairs]
    schema = pa.schema([(ROW_ID, pa.int64())] + [(name, arrow_type(a)) for name, a in zip(names, aggs, strict=True)])
    rows: dict[str, _Rows] = {}
    events = iter(batches)
    first: pa.RecordBatch | None = None
    for batch in events:
        kinds = batch.column("kind").to_numpy()
        n_rows = int((kinds == KIND_ROW).sum())
        part = batch.slice(0, n_rows).to_pydict()
        for entity, id_, row_id, at in zip(part["entity"], part["id"], part["pos"], part["at"], strict=True):
            r = rows.setdefault(entity, _Rows([], [], []))
            r.row_ids.append(row_id)
            r.ids.append(id_)
            r.at.append(at)
        if n_rows < batch.num_rows:
            first = batch.slice(n_rows)
            break
    if not rows:
        return
    order = [e for e in dict.fromkeys(e for e, _ in pairs) if e in rows]
    queries = [([p for p in pairs if p[0] == e], {e: rows[e].ids}, rows[e].at) for e in order]
    pieces = _pieces(first, events)
    results, _, _ = replay_log(spec, queries, pieces, as_of, lateness)
    for entity, (values, _, _) in zip(order, results, strict=True):
        r = rows[entity]
        n = len(r.row_ids)
        columns: list[pa.Array] = [pa.array(r.row_ids, pa.int64())]
        mine = iter(values)
        for (e, _), agg in zip(pairs, aggs, strict=True):
            columns.append(column(next(mine), agg) if e == entity else pa.nulls(n, arrow_type(agg)))
        yield pa.record_batch(columns, schema=schema)


def _pieces(first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch]) -> Iterator[tuple[str, bytes, bool]]:
    """The partition's event lines as pieces for the replay, each line once:
    a line routed to two entities of this partition came twice, side by side
    (same path and position)."""
    import numpy as np
    import pyarrow as pa

    last: tuple[Any, Any] | None = None
    chunk: list[bytes] = []
    size = 0
    for batch in itertools.chain([first] if first is not None else [], rest):
        n = batch.num_rows
        if n == 0:
            continue
        paths = batch.column("path").to_numpy(zero_copy_only=False)
        pos = batch.column("pos").to_numpy()
        repeat = np.empty(n, dtype=bool)
        repeat[0] = (paths[0], pos[0]) == last
        repeat[1:] = (paths[1:] == paths[:-1]) & (pos[1:] == pos[:-1])
        last = (paths[-1], pos[-1])
        lines = batch.column("line").filter(pa.array(~repeat))
        if len(lines) == 0:
            continue
        data = _values(lines)
        chunk.append(data)
        size += len(data)
        if size >= PIECE_BYTES:
            yield "spark partition", b"".join(chunk), False
            chunk, size = [], 0
    if chunk:
        yield "spark partition", b"".join(chunk), False


def _values(lines: pa.Array) -> bytes:
    """The bytes of a binary array's values, in one copy."""
    import numpy as np

    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    begin, end = int(offsets[0]), int(offsets[-1])
    data: bytes = lines.buffers()[2].slice(begin, end - begin).to_pybytes()
    return data
