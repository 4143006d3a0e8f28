"""``get_historical_features``: training data from the event log, each row's
features as the online store served them at the row's timestamp (or, asked,
as of event time), computed by core's replay through the extension. Here
the entity rows are checked and shaped and the log's bytes are moved."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshet._freshet import MAX_LATENESS, Spec, full_feature_name, replay_log
from freshet._log import EDGE_DEFAULT_LOOKBACK, open_log

if TYPE_CHECKING:
    import pandas as pd

TIMESTAMP = "event_timestamp"
AS_OF = ("served", "event_time")


def load_spec(spec: str | os.PathLike[str] | Spec) -> Spec:
    return spec if isinstance(spec, Spec) else Spec(Path(spec).read_text(encoding="utf-8"))


def parse_features(spec: Spec, features: Sequence[str]) -> list[tuple[str, str]]:
    """``["user:pageviews", …]`` as ``(entity, name)`` pairs, each checked
    against the spec (``UnknownFeature`` before any I/O)."""
    if isinstance(features, str):
        raise TypeError("features is a list of 'entity:name' strings, not one string")
    pairs = []
    for feature in features:
        entity, sep, name = str(feature).partition(":")
        if not sep or not entity or not name:
            raise ValueError(f"feature {feature!r} is not 'entity:name' (e.g. 'user:pageviews')")
        spec.plan(entity, [name])  # raises UnknownFeature
        pairs.append((entity, name))
    if not pairs:
        raise ValueError("name at least one feature")
    return pairs


def to_ms(timestamps: Any) -> list[int]:
    """Timestamps (naive ones are UTC) as ms since the epoch, floored: the
    edge's clock counts whole milliseconds."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(timestamps):
        # pandas would read numbers as nanoseconds: say which unit instead.
        raise ValueError(f"`{TIMESTAMP}` holds numbers, not times: convert it, e.g. pd.to_datetime(ms, unit='ms')")
    try:
        ts = pd.to_datetime(timestamps, utc=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"`{TIMESTAMP}` does not hold times: {e}") from e
    missing = ts.isna()
    if missing.any():
        raise ValueError(f"`{TIMESTAMP}` is missing in row {list(ts.index[missing])[:5]}")
    ns = ts.dt.as_unit("ns").astype("int64")
    return [int(v) for v in (ns // 1_000_000).tolist()]


def _ids(column: Any, entity: str) -> list[str]:
    ids = []
    for index, v in column.items():
        if isinstance(v, str) and v:
            ids.append(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            ids.append(str(v))
        elif hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu":  # a numpy integer
            ids.append(str(int(v)))
        else:
            raise ValueError(f"row {index!r}: the `{entity}` id is {v!r}, not a non-empty string")
    return ids


def _entity_ids(spec: Spec, entity_df: Any, entity: str, pairs: list[tuple[str, str]]) -> list[str]:
    """The ``entity`` column's ids; for a composite entity without one, its
    ids built by core from its parts' columns (``user`` and ``item`` give
    ``user_item``)."""
    if entity in entity_df.columns:
        return _ids(entity_df[entity], entity)
    parts = spec.parts(entity)
    if parts and all(p in entity_df.columns for p in parts):
        return spec.compose_ids(entity, {p: _ids(entity_df[p], p) for p in parts})
    used = ", ".join(f"{e}:{n}" for e, n in pairs if e == entity)
    either = f" (or columns {', '.join(f'`{p}`' for p in parts)})" if parts else ""
    raise ValueError(f"entity_df has no `{entity}` column{either}: the {entity} id that {used} need")


def column_names(pairs: list[tuple[str, str]], full_feature_names: bool) -> list[str]:
    names = [full_feature_name(e, n) if full_feature_names else n for e, n in pairs]
    for name in names:
        if names.count(name) > 1:
            hint = "" if full_feature_names else "; pass full_feature_names=True for entity__name columns"
            raise ValueError(f"two features would both be column {name!r}{hint}")
    return names


def get_historical_features(
    entity_df: pd.DataFrame,
    features: Sequence[str],
    log: str | os.PathLike[str],
    *,
    read_token: str | None = None,
    as_of: str = "served",
    spec: str | os.PathLike[str] | Spec = "features.toml",
    full_feature_names: bool = False,
    start: int | None = None,
    timeout: float = 30.0,
    s3_endpoint: str | None = None,
) -> pd.DataFrame:
    """Training data: ``entity_df``'s columns plus one column per feature,
    each row's value as the online store served it at the row's
    ``event_timestamp`` (``as_of="served"``: the batches the edge had
    received by then, a batch received exactly then included; windows and
    ttl evaluated then; defaults for what is missing), or with
    ``as_of="event_time"`` every event whose time is at or before it, late
    ones included.

    ``entity_df`` has an ``event_timestamp`` column (pandas times; naive ones
    are UTC) and one id column per entity the features use, named after the
    entity (``user``, ``product``); a composite entity's ids (``user_item``)
    come from its own column or, without one, from its parts' columns
    (``user`` and ``item``). ``features`` are ``"entity:name"`` (or
    ``"entity:name@version"``); each becomes column ``name`` (as given), or
    ``entity__name`` with ``full_feature_names=True``.

    ``log`` is the edge's URL (the export route, with ``read_token`` or
    ``$FRESHET_READ_TOKEN``), ``s3://bucket/prefix`` (boto3; endpoint from
    ``s3_endpoint`` or ``$FRESHET_S3_ENDPOINT``) or a local folder of log
    objects. ``start`` (ms) is the receive time the log is read from: the
    whole log by default for a folder or S3, and for the edge, which keeps
    no index of where its log begins, 365 days before the earliest row.

    The log is streamed; memory follows ``entity_df``'s entities, not the
    log's length. Unknown features raise :class:`UnknownFeature` before any
    I/O; a log that cannot be read raises :class:`LogUnavailable`, a line
    that does not parse :class:`CorruptLog` naming the object and line.
    """
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - pandas is an extra
        raise ImportError("get_historical_features needs pandas: pip install 'freshet[pandas]'") from e

    if as_of not in AS_OF:
        raise ValueError(f'as_of is "served" or "event_time", not {as_of!r}')
    parsed = load_spec(spec)
    pairs = parse_features(parsed, features)
    names = column_names(pairs, full_feature_names)
    if not isinstance(entity_df, pd.DataFrame):
        raise TypeError(f"entity_df is a pandas DataFrame, not {type(entity_df).__name__}")
    if TIMESTAMP not in entity_df.columns:
        raise ValueError(f"entity_df has no `{TIMESTAMP}` column: the time each row is read as of")
    entities = list(dict.fromkeys(e for e, _ in pairs))
    for name in names:
        if name in entity_df.columns:
            raise ValueError(f"entity_df already has a column {name!r}")
    at = to_ms(entity_df[TIMESTAMP])
    ids = {entity: _entity_ids(parsed, entity_df, entity, pairs) for entity in entities}

    out = entity_df.copy()
    if not at:
        for name in names:
            out[name] = pd.Series([], index=out.index, dtype=object)
        return out
    source = open_log(log, read_token=read_token, timeout=timeout, s3_endpoint=s3_endpoint)
    first, last = min(at), max(at)
    if start is None and source.needs_start:
        start = first - EDGE_DEFAULT_LOOKBACK
    # Served: what was received by the last row's time. Event time: an event
    # at or before it may arrive up to the edge's lateness limit later.
    end = last if as_of == "served" else last + MAX_LATENESS
    # Event time: no event reaches the edge later than MAX_LATENESS after it
    # happened, so rows are answered as the log goes by.
    lateness = MAX_LATENESS if as_of == "event_time" else None
    results, _, _ = replay_log(parsed, [(pairs, ids, at)], source.pieces(start, end), as_of, lateness)
    values = results[0][0]
    for name, column in zip(names, values, strict=True):
        out[name] = pd.Series(column, index=out.index)
    return out
