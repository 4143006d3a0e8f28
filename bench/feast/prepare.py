"""Writes the empty, typed parquet file behind the push source's batch source
(Feast reads its schema at `feast apply`) and points feature_store.yaml at
the benchmark's Redis. Usage: python prepare.py REPO_DIR REDIS_PORT
"""

import pathlib
import sys

import pandas as pd

repo, port = pathlib.Path(sys.argv[1]), sys.argv[2]
(repo / "data").mkdir(exist_ok=True)
pd.DataFrame(
    {
        "user_id": pd.Series([], dtype="string"),
        "pageviews": pd.Series([], dtype="int64"),
        "clicks_product_card": pd.Series([], dtype="int64"),
        "searches": pd.Series([], dtype="int64"),
        "last_interacted_product": pd.Series([], dtype="string"),
        "last_event_at": pd.Series([], dtype="int64"),
        "event_timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
    }
).to_parquet(repo / "data" / "user_features.parquet")
config = repo / "feature_store.yaml"
config.write_text(config.read_text().replace("REDIS_PORT", port))
