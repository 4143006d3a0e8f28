"""Feast's `get_historical_features` on the training bench's entity rows, for
orientation next to freshet's (issue 13, point 7). Feast joins feature rows
that someone computed beforehand; here they are computed from the same
generated log (not timed): per user, the page-view count after each page
view; per user and per product, the clicks of the 7 days up to each click.
Feast's file offline store then finds, for each entity row, the latest
feature row at or before its time (within each view's ttl): the event-time
view. Runs in .tools/feast-venv; prints one JSON object.

Usage: python feast_training.py DIR ROWS   (DIR holds the bench's export.ndjson)
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Int64
from training import entity_rows

DAY = timedelta(days=1)


def feature_rows(stream: Path) -> dict[str, pd.DataFrame]:
    """The feature rows a batch job would write, from the log's events."""
    kinds, clients, products, times = [], [], [], []
    with stream.open("rb") as f:
        for line in f:
            e = json.loads(line)
            if e["type"] in ("page_view", "product_click"):
                kinds.append(e["type"])
                clients.append(e["clientId"])
                products.append(e["payload"].get("productId"))
                times.append(e["timestamp"])
    events = pd.DataFrame({"type": kinds, "user_id": clients, "product_id": products,
                           "event_timestamp": pd.to_datetime(times, utc=True, format="ISO8601")})  # fmt: skip
    events = events.sort_values("event_timestamp", kind="stable")
    views = events[events["type"] == "page_view"].copy()
    views["pageviews"] = views.groupby("user_id").cumcount() + 1
    clicks = events[events["type"] == "product_click"].copy()
    clicks["one"] = 1

    def rolling(key: str, name: str) -> pd.DataFrame:
        counted = (
            clicks.set_index("event_timestamp").groupby(key)["one"].rolling("7D").sum().reset_index()
        )  # fmt: skip
        counted[name] = counted["one"].astype("int64")
        return counted[[key, "event_timestamp", name]]

    return {
        "user_pageviews": views[["user_id", "event_timestamp", "pageviews"]],
        "user_clicks_7d": rolling("user_id", "clicks_product_card_7d"),
        "product_popularity_7d": rolling("product_id", "popularity_7d"),
    }


def main() -> None:
    root, rows = Path(sys.argv[1]), int(sys.argv[2])
    began = time.perf_counter()
    tables = feature_rows(root / "export.ndjson")
    precompute = time.perf_counter() - began
    repo = Path(tempfile.mkdtemp(dir=root))
    (repo / "data").mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: freshet_training\nregistry: data/registry.db\nprovider: local\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\noffline_store:\n  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING)
    views = []
    for name, table in tables.items():
        path = repo / "data" / f"{name}.parquet"
        table.to_parquet(path, index=False)
        entity = product if name.startswith("product") else user
        feature = table.columns[-1]
        source = FileSource(name=f"{name}_file", path=str(path), timestamp_field="event_timestamp")
        ttl = 30 * DAY if feature == "pageviews" else 7 * DAY
        views.append(FeatureView(name=name, entities=[entity], ttl=ttl, online=False, source=source,
                                 schema=[Field(name=feature, dtype=Int64)]))  # fmt: skip
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, product, *views])
    df = entity_rows(rows).rename(columns={"user": "user_id", "product": "product_id"})
    features = ["user_pageviews:pageviews", "user_clicks_7d:clicks_product_card_7d",
                "product_popularity_7d:popularity_7d"]  # fmt: skip
    began = time.perf_counter()
    out = store.get_historical_features(entity_df=df, features=features).to_df()
    seconds = time.perf_counter() - began
    assert out["pageviews"].notna().any(), out.head()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import feast

    print(json.dumps({"version": feast.__version__, "seconds": seconds, "precompute": precompute, "peak_mb": peak,
                      "feature_rows": sum(len(t) for t in tables.values()), "rows_out": len(out)}))  # fmt: skip


if __name__ == "__main__":
    main()
