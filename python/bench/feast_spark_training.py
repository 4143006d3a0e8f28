"""Feast's Spark offline store (contrib, "alpha") on the Spark bench's
entity rows, for orientation next to freshet.spark (issue 26). As in
feast_training.py, the feature rows are computed beforehand from the same
log (not timed) and written as parquet; Feast's point-in-time join then runs
on Spark `local[N]`. Runs in .tools/feast-venv (feast[spark]); prints one
JSON object with time and peak memory (sampled, training_spark.PeakMemory).

Usage: python feast_spark_training.py DIR ROWS N   (DIR holds the bench's log/part-*.ndjson)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureStore, FeatureView, Field, ValueType
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.types import Int64
from feast_training import feature_rows
from training_spark import PeakMemory, rows_frame

DAY = timedelta(days=1)


def main() -> None:
    root, rows, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    began = time.perf_counter()
    export = root / "export.ndjson"
    if not export.exists():
        with export.open("wb") as out:
            for part in sorted((root / "log").glob("part-*.ndjson")):
                out.write(part.read_bytes())
    tables = feature_rows(export)
    precompute = time.perf_counter() - began
    repo = Path(tempfile.mkdtemp(dir=root))
    (repo / "data").mkdir()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    (repo / "feature_store.yaml").write_text(
        "project: freshet_training\nregistry: data/registry.db\nprovider: local\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\n"
        "offline_store:\n  type: spark\n  spark_conf:\n"
        f'    spark.master: "local[{n}]"\n    spark.ui.enabled: "false"\n    spark.driver.memory: "4g"\n'
        '    spark.sql.session.timeZone: "UTC"\n    spark.sql.shuffle.partitions: "16"\n'
        '    spark.sql.execution.arrow.pyspark.enabled: "true"\n    spark.driver.host: "127.0.0.1"\n'
        "entity_key_serialization_version: 3\n"
    )
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING)
    views = []
    for name, table in tables.items():
        path = repo / "data" / f"{name}.parquet"
        # Spark reads no nanosecond timestamps (PARQUET_TYPE_ILLEGAL): microseconds.
        table.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
        entity = product if name.startswith("product") else user
        feature = table.columns[-1]
        source = SparkSource(name=f"{name}_src", path=str(path), file_format="parquet",
                             timestamp_field="event_timestamp")  # fmt: skip
        ttl = 30 * DAY if feature == "pageviews" else 7 * DAY
        views.append(FeatureView(name=name, entities=[entity], ttl=ttl, online=False, source=source,
                                 schema=[Field(name=feature, dtype=Int64)]))  # fmt: skip
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, product, *views])
    df = rows_frame(rows, False).rename(columns={"user": "user_id", "product": "product_id"})
    features = ["user_pageviews:pageviews", "user_clicks_7d:clicks_product_card_7d",
                "product_popularity_7d:popularity_7d"]  # fmt: skip
    # Started before the timing, as for freshet.spark: Feast takes the active session.
    from pyspark.sql import SparkSession

    conf = store.config.offline_store.spark_conf or {}
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    with PeakMemory() as peak:
        began = time.perf_counter()
        job = store.get_historical_features(entity_df=df, features=features)
        job.to_spark_df().write.mode("overwrite").parquet(str(root / f"feast-spark{n}.parquet"))
        seconds = time.perf_counter() - began
    rows_out = spark.read.parquet(str(root / f"feast-spark{n}.parquet")).count()
    import feast

    print(json.dumps({"version": feast.__version__, "seconds": seconds, "precompute": precompute,
                      "peaks": peak.peaks, "total_mb": peak.total, "cpu_seconds": peak.cpu_seconds,
                      "feature_rows": sum(len(t) for t in tables.values()), "rows_out": rows_out}))  # fmt: skip


if __name__ == "__main__":
    main()
