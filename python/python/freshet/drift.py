"""Drift: the distribution models are served, against the one they were
trained on. ``profile`` turns a training set (``get_historical_features``'s
DataFrame or a Parquet file) into a baseline file; ``drift`` reads the live
summaries the edge and the reader sampled (from Redis, or the edge's ``GET
/v1/drift``) and compares. Summaries, baselines and every check are core's
(through the extension); here bytes move and the report is shaped for
people, machines (JSON) and eyes (PNG)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from freshet._freshet import (
    DRIFT_ADD_SCRIPT,
    CorruptState,
    Spec,
    StoreUnavailable,
    drift_hour_keys,
    drift_merge_documents,
    drift_merge_hashes,
    drift_mongo_ids,
    drift_mongo_index,
    drift_profile,
    drift_report,
    mongo_database,
    parse_duration,
)
from freshet._stores import REDIS_SCHEMES

if TYPE_CHECKING:
    import pandas as pd

# Each check: its key in the report and its name for people.
CHECKS = (("psi", "PSI"), ("js", "JS"), ("mean_shift", "mean moved"), ("stddev_shift", "stddev moved"))

__all__ = ["DRIFT_ADD_SCRIPT", "DriftReport", "drift", "profile", "read_table"]


def _spec(spec: str | os.PathLike[str] | Spec) -> Spec:
    return spec if isinstance(spec, Spec) else Spec(Path(spec).read_text(encoding="utf-8"))


def _plain(v: Any) -> Any:
    """A cell as JSON can carry it: numpy scalars and arrays as Python
    values, NaN and NaT as null."""
    if v is None:
        return None
    if hasattr(v, "tolist"):  # numpy scalars and arrays
        v = v.tolist()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A training set from a Parquet file (read by duckdb) or a CSV file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        import pandas as pd

        return pd.read_csv(path)
    try:
        import duckdb
    except ImportError as e:
        raise ImportError("reading Parquet needs duckdb: pip install duckdb") from e
    return duckdb.read_parquet(str(path)).df()


def profile(
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    spec: str | os.PathLike[str] | Spec = "features.toml",
    source: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The baseline of a training set: per feature column (``name``,
    ``name@version`` or ``entity__name``) its count, mean, stddev, min, max,
    decile bins with their shares, and its top categories. Returns the
    baseline (write it with ``json.dump``) and the columns that name no
    feature (ids, timestamps), skipped."""
    if not hasattr(data, "columns"):
        source = source or Path(data).name
        data = read_table(data)
    frame: Any = data
    columns = {str(c): json.dumps([_plain(v) for v in frame[c].tolist()]) for c in frame.columns}
    text, skipped = drift_profile(_spec(spec), columns, source or "DataFrame")
    return json.loads(text), skipped


# ---- live summaries ----


def _feature_keys(spec: Spec) -> list[str]:
    keys: list[str] = []
    for entity in spec.entities:
        keys.extend(spec.plan(entity).keys)
    return sorted(set(keys))


def _from_redis(url: str, spec: Spec, since: int, timeout: float) -> tuple[dict[str, str], dict[str, str]]:
    import redis

    from freshet._stores import RedisStore, redis_client

    store = RedisStore(url, timeout=timeout, prefix=None)
    client = redis_client(url, timeout=timeout)
    keys = {k: drift_hour_keys(k, since, store.prefix) for k in _feature_keys(spec)}
    try:
        pipe = client.pipeline(transaction=False)
        for hours in keys.values():
            for key in hours:
                pipe.hgetall(key)
        replies = pipe.execute(raise_on_error=False)
    except redis.RedisError as e:
        raise StoreUnavailable(f"Redis: {type(e).__name__}: {e}") from e
    finally:
        client.close()
    live: dict[str, str] = {}
    errors: dict[str, str] = {}
    at = 0
    for feature, hours in keys.items():
        hashes = []
        for key, reply in zip(hours, replies[at : at + len(hours)], strict=True):
            if isinstance(reply, Exception):
                errors[feature] = f"{key}: {reply}"
                break
            hashes.append((key, {k.decode(errors="replace"): v.decode(errors="replace") for k, v in reply.items()}))
        at += len(hours)
        if feature in errors:
            continue
        try:
            live[feature] = drift_merge_hashes(hashes)
        except CorruptState as e:
            errors[feature] = str(e)
    return live, errors


def _from_mongo(url: str, since: int, spec: Spec, timeout: float) -> tuple[dict[str, str], dict[str, str]]:
    import pymongo
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
    from pymongo.errors import PyMongoError

    database = mongo_database(url)  # the edge's rule: the URL names it
    collection, _ = drift_mongo_index()
    ids = {k: drift_mongo_ids(k, since) for k in _feature_keys(spec)}
    ms = max(1, int(timeout * 1000))
    client: Any = pymongo.MongoClient(url, timeoutMS=ms, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms)
    try:
        db = client.get_database(database)
        coll = db.get_collection(collection, codec_options=CodecOptions(document_class=RawBSONDocument))
        found = {d["_id"]: d.raw for d in coll.find({"_id": {"$in": [i for hours in ids.values() for i in hours]}})}
    except PyMongoError as e:
        raise StoreUnavailable(f"MongoDB: {type(e).__name__}: {e}") from e
    finally:
        client.close()
    live: dict[str, str] = {}
    errors: dict[str, str] = {}
    for feature, hours in ids.items():
        try:
            live[feature] = drift_merge_documents([found[i] for i in hours if i in found])
        except CorruptState as e:
            errors[feature] = str(e)
    return live, errors


def _from_edge(url: str, since: str, read_token: str | None, timeout: float) -> tuple[dict[str, str], dict[str, str]]:
    import httpx

    token = read_token or os.environ.get("FRESHET_READ_TOKEN")
    if not token:
        raise ValueError("reading drift from the edge needs its read token (--read-token or $FRESHET_READ_TOKEN)")
    try:
        r = httpx.get(
            f"{url.rstrip('/')}/v1/drift",
            params={"since": since, "summaries": "1"},
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as e:
        raise StoreUnavailable(f"edge: {type(e).__name__}: {e}") from e
    if r.status_code != 200:
        raise StoreUnavailable(f"edge: GET /v1/drift answered {r.status_code}: {r.text[:300]}")
    live: dict[str, str] = {}
    errors: dict[str, str] = {}
    for feature, entry in r.json().get("summaries", {}).items():
        if "summary" in entry:
            live[feature] = json.dumps(entry["summary"])
        else:
            errors[feature] = str(entry.get("error", "no summary"))
    return live, errors


# ---- the report ----


def _num(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


@dataclass
class DriftReport:
    """The report as core computed it (``data``), for people (``lines``),
    machines (``to_json``) and eyes (``save_png``)."""

    data: dict[str, Any]
    since: str

    @property
    def alert(self) -> bool:
        return bool(self.data["report"]["alert"])

    @property
    def features(self) -> list[dict[str, Any]]:
        return list(self.data["report"]["features"])

    def feature(self, key: str) -> dict[str, Any]:
        return next(f for f in self.features if f["feature"] == key)

    def to_json(self) -> str:
        return json.dumps({"since": self.since, **self.data}, indent=2)

    def lines(self) -> list[str]:
        fs = self.features
        alerting = [f for f in fs if f["alert"]]
        t = self.data["report"]["thresholds"]
        out = [
            f"drift over the last {self.since} against {self.data['baseline']}: "
            f"{len(alerting)} of {len(fs)} features alert",
            f"thresholds: PSI notable >= {t['psi_notable']}, alert >= {t['psi_alert']}; "
            f"JS distance >= {t['js_alert']}; mean moved >= {t['mean_shift']:.0%}; "
            f"stddev moved >= {t['stddev_shift']:.0%}; at least {t['min_samples']} samples",
        ]
        order = {"alert": 0, "corrupt": 1, "ok": 2, "not_enough_data": 3, "no_baseline": 4}
        for f in sorted(fs, key=lambda f: (order.get(f["status"], 9), f["feature"])):
            status = f["status"].replace("_", " ").upper() if f["alert"] else f["status"].replace("_", " ")
            line = f"{status:<16} {f['feature']:<34} n={f['live']['count']}"
            if f["status"] in ("ok", "alert"):
                live, base = f["live"], f["baseline"] or {}
                line += f"  mean {_num(live['mean'])} (baseline {_num(base.get('mean'))})"
                line += f"  stddev {_num(live['stddev'])} (baseline {_num(base.get('stddev'))})"
                line += f"  min/max {_num(live['min'])}/{_num(live['max'])}"
                for name, label in CHECKS:
                    c = f.get(name)
                    if c is not None:
                        flag = " ALERT" if c["alert"] else (" notable" if name == "psi" and f["psi_notable"] else "")
                        line += f"  {label} {_num(c['value'])} (>= {c['threshold']}){flag}"
            elif f.get("message"):
                line += f"  {f['message']}"
            out.append(line)
        return out

    def save_png(self, folder: str | os.PathLike[str]) -> list[Path]:
        """One PNG per alerting feature: the baseline's share of each bin (or
        category) beside the live share, titled with the checks that fired."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for f in self.features:
            h = f.get("histogram")
            if not f["alert"] or not h:
                continue
            fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
            xs = range(len(h["labels"]))
            width = 0.4
            ax.bar([x - width / 2 for x in xs], h["baseline"], width, label="baseline (training)", color="#7a8ca5")
            ax.bar([x + width / 2 for x in xs], h["live"], width, label="live (served)", color="#d9534f")
            ax.set_xticks(list(xs), h["labels"], rotation=45, ha="right", fontsize=8)
            ax.set_ylabel("share of values")
            fired = [
                f"{label} {c['value']:.3g} ≥ {c['threshold']}"
                for name, label in CHECKS
                if (c := f.get(name)) is not None and c["alert"]
            ]
            ax.set_title(f"{f['feature']}: " + ", ".join(fired), fontsize=10)
            ax.legend()
            fig.tight_layout()
            path = folder / f"{f['feature'].replace('@', '_v')}.png"
            fig.savefig(path)
            plt.close(fig)
            written.append(path)
        return written


def drift(
    url: str,
    *,
    spec: str | os.PathLike[str] | Spec = "features.toml",
    baseline: str | os.PathLike[str] | dict[str, Any] | None = None,
    since: str = "24h",
    read_token: str | None = None,
    min_samples: int | None = None,
    timeout: float = 10.0,
) -> DriftReport:
    """Each feature's served values over the last ``since`` against its
    baseline (a ``freshet profile`` file; the spec's ``expected`` stats fill
    in features it lacks). ``url`` is the store the summaries live in
    (``redis://``, ``mongodb://``) or the edge (``http(s)://``, with the read token)."""
    s = _spec(spec)
    since_ms = parse_duration(since)
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        live, errors = _from_redis(url, s, since_ms, timeout)
    elif scheme in ("mongodb", "mongodb+srv"):
        live, errors = _from_mongo(url, since_ms, s, timeout)
    elif scheme in ("http", "https"):
        live, errors = _from_edge(url, since, read_token, timeout)
    else:
        raise ValueError(
            "drift summaries are read from redis://, redis+cluster://, mongodb:// or the edge's http(s):// URL, "
            f"not {scheme!r}"
        )
    if isinstance(baseline, dict):
        text: str | None = json.dumps(baseline)
    elif baseline is not None:
        text = Path(baseline).read_text(encoding="utf-8")
    else:
        text = None
    data = json.loads(drift_report(s, live, errors, text, min_samples))
    if baseline is not None and not isinstance(baseline, dict):
        data["baseline"] = f"{Path(baseline).name} ({data['baseline']})"
    return DriftReport(data, since)
