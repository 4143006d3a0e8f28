"""``get_historical_features`` on Spark: the same training data as
:func:`freshet.get_historical_features`, with the log read, cut by entity
and replayed by Spark's executors. Here the driver checks the call, lists
the log and wires the plan; what runs on an executor is in ``_tasks``.

The plan: the log's units are read in parallel and each event line is
keyed by the entities it adds to; each entity row is keyed by its ids; both
are shuffled by (entity, id) and sorted within a partition, rows first,
then lines in the log's order; each partition is then replayed by core in
one pass, streamed, one query per entity; the per-entity columns are
joined back on the row. Needs ``pip install 'freshet[spark]'`` on the
driver and ``freshet`` (with pyarrow and pandas) on every executor."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from freshet._freshet import MAX_LATENESS, Spec
from freshet.history import AS_OF, TIMESTAMP, column_names, parse_features
from freshet.spark._tasks import KEYED_FIELDS, ROW_ID, arrow_type, key_rows, replay_partition, route_units
from freshet.spark._units import list_units

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

__all__ = ["get_historical_features"]


def _spark_type(aggregation: str) -> DataType:
    import pyarrow as pa
    from pyspark.sql import types as T

    kind = arrow_type(aggregation)
    if kind == pa.int64():
        return T.LongType()
    if kind == pa.float64():
        return T.DoubleType()
    if kind == pa.list_(pa.string()):
        return T.ArrayType(T.StringType())
    if kind == pa.list_(pa.float64()):
        return T.ArrayType(T.DoubleType())
    return T.StringType()


def _keyed_schema() -> StructType:
    from pyspark.sql import types as T

    types = {"string": T.StringType(), "int": T.IntegerType(), "long": T.LongType(), "binary": T.BinaryType()}
    return T.StructType([T.StructField(name, types[t]) for name, t in KEYED_FIELDS])


def _check_columns(spec: Spec, entity_df: DataFrame, pairs: list[tuple[str, str]], names: list[str]) -> list[str]:
    """The columns the rows are keyed by, checked before any Spark job."""
    from pyspark.sql import types as T

    fields = {f.name: f.dataType for f in entity_df.schema.fields}
    if TIMESTAMP not in fields:
        raise ValueError(f"entity_df has no `{TIMESTAMP}` column: the time each row is read as of")
    if not isinstance(fields[TIMESTAMP], T.TimestampType | T.TimestampNTZType):
        raise ValueError(
            f"`{TIMESTAMP}` is {fields[TIMESTAMP].simpleString()}, not a timestamp: convert it, "
            "e.g. F.timestamp_millis(ms) or F.to_timestamp(text)"
        )
    for name in names:
        if name in fields:
            raise ValueError(f"entity_df already has a column {name!r}")
    needed = [TIMESTAMP]
    for entity in dict.fromkeys(e for e, _ in pairs):
        parts = spec.parts(entity)
        if entity in fields:
            needed.append(entity)
        elif parts and all(p in fields for p in parts):
            needed += [p for p in parts if p not in needed]
        else:
            used = ", ".join(f"{e}:{n}" for e, n in pairs if e == entity)
            either = f" (or columns {', '.join(f'`{p}`' for p in parts)})" if parts else ""
            raise ValueError(f"entity_df has no `{entity}` column{either}: the {entity} id that {used} need")
    return list(dict.fromkeys(needed))


def get_historical_features(
    entity_df: DataFrame,
    features: Sequence[str],
    log: str | os.PathLike[str],
    *,
    as_of: str = "served",
    spec: str | os.PathLike[str] = "features.toml",
    full_feature_names: bool = False,
    start: int | None = None,
    s3_endpoint: str | None = None,
    partitions: int | None = None,
) -> DataFrame:
    """:func:`freshet.get_historical_features` for a Spark DataFrame: the same
    columns and values, ``entity_df``'s columns (in its row order) plus one
    per feature. ``entity_df`` has an ``event_timestamp`` column (timestamp
    or timestamp_ntz, read as UTC) and the entities' id columns;
    ``features`` and ``as_of`` as there. Column types follow each feature's
    aggregation: ``count`` long, other numbers double, ``distinct`` and
    ``latest_n`` arrays of strings, ``vector_avg`` an array of doubles,
    ``last``, ``first`` and ``mode`` strings (a value that is not a string
    comes as its JSON text).

    ``log`` is ``s3://bucket/prefix`` (read with boto3 on the executors;
    endpoint ``s3_endpoint`` or ``$FRESHET_S3_ENDPOINT``), a folder of log
    objects or one exported NDJSON file; a local path must be the same on
    every executor (a shared file system). ``spec`` is the path of
    ``features.toml`` on the driver (its text is shipped). ``partitions``:
    how many partitions the entities are spread over (the session's
    ``spark.sql.shuffle.partitions`` by default).

    Unknown features raise :class:`UnknownFeature`, a log that cannot be
    listed :class:`LogUnavailable`, missing columns ``ValueError``, all
    before any Spark job; a bad id or line fails the job, naming it."""
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if as_of not in AS_OF:
        raise ValueError(f'as_of is "served" or "event_time", not {as_of!r}')
    if isinstance(spec, Spec):
        raise TypeError("spec is the path of features.toml: its text is shipped to the executors")
    spec_text = Path(spec).read_text(encoding="utf-8")
    parsed = Spec(spec_text)
    pairs = parse_features(parsed, features)
    names = column_names(pairs, full_feature_names)
    if not isinstance(entity_df, SparkFrame):
        raise TypeError(f"entity_df is a Spark DataFrame, not {type(entity_df).__name__}")
    needed = _check_columns(parsed, entity_df, pairs, names)
    entities = list(dict.fromkeys(e for e, _ in pairs))
    # Listed now, so a wrong log fails before any job; bounded below.
    place, units = list_units(log, s3_endpoint=s3_endpoint, start=start, end=None)

    spark = entity_df.sparkSession
    keyed_schema = _keyed_schema()
    # Row ids from the rows' partitions and places: `entity_df` must give
    # the same rows each time it is computed (a table, files, a frame made
    # on the driver), as for any Spark join of a frame with itself.
    rows = entity_df.withColumn(ROW_ID, F.monotonically_increasing_id())
    keyed_rows = rows.select(ROW_ID, *needed).mapInArrow(partial(key_rows, spec_text, pairs, ROW_ID), keyed_schema)
    types = [_spark_type(parsed.aggregation(e, n)) for e, n in pairs]
    first, last = keyed_rows.agg(F.min("at"), F.max("at")).first() or (None, None)
    if first is None or last is None:
        out = entity_df
        for name, kind in zip(names, types, strict=True):
            out = out.withColumn(name, F.lit(None).cast(kind))
        return out
    # As one process reads it: served, what was received by the last row's
    # time; event time, up to the edge's lateness limit after it.
    end = last if as_of == "served" else last + MAX_LATENESS
    lateness = MAX_LATENESS if as_of == "event_time" else None
    place = replace(place, end=end)

    parallelism = spark.sparkContext.defaultParallelism
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions") or parallelism)
    unit_schema = T.StructType(
        [
            T.StructField("path", T.StringType()),
            T.StructField("begin", T.LongType()),
            T.StructField("end", T.LongType()),
        ]
    )
    unit_rows = [(u.path, u.begin, u.end) for u in units]
    events = (
        spark.createDataFrame(unit_rows, unit_schema)
        .repartition(max(1, min(len(unit_rows), parallelism * 4)))
        .mapInArrow(partial(route_units, spec_text, entities, place), keyed_schema)
    )
    out_schema = T.StructType(
        [T.StructField(ROW_ID, T.LongType())]
        + [T.StructField(name, kind) for name, kind in zip(names, types, strict=True)]
    )
    replayed = (
        keyed_rows.unionByName(events)
        .repartition(n, "entity", "id")
        .sortWithinPartitions("kind", "received", "path", "pos")
        .mapInArrow(partial(replay_partition, spec_text, pairs, names, as_of, lateness), out_schema)
    )
    joined = replayed.groupBy(ROW_ID).agg(*[F.first(name, ignorenulls=True).alias(name) for name in names])
    return rows.join(joined, ROW_ID, "left").orderBy(ROW_ID).drop(ROW_ID)
