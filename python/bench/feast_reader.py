"""Feast's in-process SDK on the same features and values, on the same
redis-server: `FeatureStore.get_online_features(...).to_dict()`. Runs in
.tools/feast-venv. One JSON object per measurement on stdout.

Usage: python feast_reader.py REPO_DIR N   (the repo applied, Redis running)
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import pandas as pd
from feast import FeatureStore
from seed import values
from timing import measure

repo, n = sys.argv[1], int(sys.argv[2])
v = values(100)
store = FeatureStore(repo_path=repo)
now = datetime.now(timezone.utc)
u = v["user"]
store.write_to_online_store("user_features", pd.DataFrame([{
    "user_id": u["id"], "pageviews": u["pageviews"], "clicks_product_card": u["clicks_product_card"],
    "searches": u["searches"], "last_interacted_product": u["last_interacted_product"],
    "last_event_at": u["last_event_at"], "event_timestamp": now}]))  # fmt: skip
item_rows = [{"product_id": i["id"], "popularity_7d": i["popularity_7d"], "event_timestamp": now} for i in v["items"]]
store.write_to_online_store("product_features", pd.DataFrame(item_rows))

USER = [f"user_features:{f}" for f in ["pageviews", "clicks_product_card", "searches", "last_interacted_product",
                                       "last_event_at"]]  # fmt: skip
ITEMS = ["product_features:popularity_7d"]
user_rows = [{"user_id": u["id"]}]
item_rows = [{"product_id": i["id"]} for i in v["items"]]  # the entity rows now

got = store.get_online_features(features=USER, entity_rows=user_rows).to_dict()
assert got["pageviews"] == [42] and got["last_interacted_product"] == ["prod-17"], got
items = store.get_online_features(features=ITEMS, entity_rows=item_rows).to_dict()
assert items["popularity_7d"] == [i["popularity_7d"] for i in v["items"]], items


def ranking() -> None:
    store.get_online_features(features=USER, entity_rows=user_rows).to_dict()
    store.get_online_features(features=ITEMS, entity_rows=item_rows).to_dict()


m = measure("feast get_online_features", lambda: store.get_online_features(features=USER, entity_rows=user_rows)
            .to_dict(), n, warmup=50)  # fmt: skip
print(json.dumps({"area": "redis-user", **m}), flush=True)
m = measure("feast get_online_features (user, then 100 items)", ranking, max(50, n // 4), warmup=20)
print(json.dumps({"area": "redis-ranking", **m}), flush=True)
