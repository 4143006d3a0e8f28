"""Feast's in-process SDK (`FeatureStore.get_online_features(...).to_dict()`)
on the same features and values, on the same redis-server, side by side
with freshet's sync reader (the wheel installed into this venv too). Runs
in .tools/feast-venv. One JSON object per measurement on stdout.

Usage: python feast_reader.py REPO_DIR REDIS_PORT SPEC N   (repo applied)
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import pandas as pd
from feast import FeatureStore
from seed import ITEM_FEATURES, USER_FEATURES, values
from timing import side_by_side

import freshet

repo, redis_port, spec, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
v = values(100)
store = FeatureStore(repo_path=repo)
now = datetime.now(timezone.utc)
u = v["user"]
store.write_to_online_store("user_features", pd.DataFrame([{
    "user_id": u["id"], "pageviews": u["pageviews"], "clicks_product_card": u["clicks_product_card"],
    "searches": u["searches"], "last_interacted_product": u["last_interacted_product"],
    "last_event_at": u["last_event_at"], "event_timestamp": now}]))  # fmt: skip
pushed = [{"product_id": i["id"], "popularity_7d": i["popularity_7d"], "event_timestamp": now} for i in v["items"]]
store.write_to_online_store("product_features", pd.DataFrame(pushed))

USER = [f"user_features:{f}" for f in USER_FEATURES]
ITEMS = [f"product_features:{f}" for f in ITEM_FEATURES]
user_rows = [{"user_id": u["id"]}]
item_rows = [{"product_id": i["id"]} for i in v["items"]]
item_ids = [i["id"] for i in v["items"]]

got = store.get_online_features(features=USER, entity_rows=user_rows).to_dict()
assert got["pageviews"] == [42] and got["last_interacted_product"] == ["prod-17"], got
items = store.get_online_features(features=ITEMS, entity_rows=item_rows).to_dict()
assert items["popularity_7d"] == [i["popularity_7d"] for i in v["items"]], items

reader = freshet.FeatureStore(spec, f"redis://127.0.0.1:{redis_port}/0", timeout=2)
assert reader.get_online_features("user", [u["id"]], USER_FEATURES)[0]["pageviews"].value == 42


def feast_ranking() -> None:
    store.get_online_features(features=USER, entity_rows=user_rows).to_dict()
    store.get_online_features(features=ITEMS, entity_rows=item_rows).to_dict()


for area, results in [
    ("feast-user", side_by_side({
        "freshet sync": lambda: reader.get_online_features("user", [u["id"]], USER_FEATURES).to_dict(),
        "feast get_online_features": lambda: store.get_online_features(features=USER, entity_rows=user_rows).to_dict(),
    }, n)),
    ("feast-ranking", side_by_side({
        "freshet sync": lambda: reader.get_ranking_features(u["id"], item_ids, USER_FEATURES, ITEM_FEATURES),
        "feast get_online_features (user, then 100 items)": feast_ranking,
    }, max(100, n // 4))),
]:  # fmt: skip
    for m in results:
        print(json.dumps({"area": area, **m}), flush=True)
