"""The benchmark's state, written straight in Freshet's storage layout (the
layout core/src/encode/{redis,mongo}.rs documents): one user with the five
features, and N products with `popularity_7d`. Returned as plain values too,
so Feast's peer can be given the same numbers."""

from __future__ import annotations

import json
import time
from typing import Any

DAY_S = 86_400
USER_FEATURES = ["pageviews", "clicks_product_card", "searches", "last_interacted_product", "last_event_at"]
ITEM_FEATURES = ["popularity_7d"]


def values(items: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "now": now,
        "user": {"id": "cid-bench", "pageviews": 42, "clicks_product_card": 7, "searches": 3,
                 "last_interacted_product": "prod-17", "last_event_at": now - 5_000},
        "items": [{"id": f"prod-{i}", "popularity_7d": i % 13} for i in range(items)],
    }  # fmt: skip


def write_redis(r: Any, prefix: str, v: dict[str, Any]) -> None:
    u, t = v["user"], v["now"] - 5_000
    key = f"{prefix}:{{user:{u['id']}}}"
    fields: dict[str, Any] = {}
    for name in ["pageviews", "clicks_product_card", "searches", "last_event_at"]:
        fields[f"{name}@1"] = u[name]
        fields[f"_ts:{name}@1"] = t
    fields["last_interacted_product@1"] = json.dumps(u["last_interacted_product"])
    fields["_o:last_interacted_product@1"] = f"{t}|evt-1"
    fields["_ts:last_interacted_product@1"] = t
    pipe = r.pipeline(transaction=False)
    pipe.delete(key)
    pipe.hset(key, mapping=fields)
    bucket = (t // 1000) // DAY_S * DAY_S
    for item in v["items"]:
        ikey = f"{prefix}:{{product:{item['id']}}}"
        pipe.delete(ikey)
        pipe.hset(ikey, mapping={f"popularity_7d@1|{bucket}": item["popularity_7d"], "_ts:popularity_7d@1": t})
    pipe.execute()


def write_mongo(db: Any, v: dict[str, Any], batches: int = 100) -> None:
    """Documents as the edge leaves them, with the ids of the last batches
    that touched them (`_batches`, up to 1,000 kept; `batches` here)."""
    u, t = v["user"], v["now"] - 5_000
    markers = [f"b{i:023d}" for i in range(batches)]
    doc: dict[str, Any] = {"_id": u["id"], "_ts": {}, "_batches": markers}
    for name in ["pageviews", "clicks_product_card", "searches", "last_event_at"]:
        doc[f"{name}@1"] = u[name]
        doc["_ts"][f"{name}@1"] = t
    doc["last_interacted_product@1"] = {"t": t, "id": "evt-1", "v": u["last_interacted_product"]}
    doc["_ts"]["last_interacted_product@1"] = t
    db.user_features.replace_one({"_id": u["id"]}, doc, upsert=True)
    bucket = str((t // 1000) // DAY_S * DAY_S)
    for item in v["items"]:
        db.product_features.replace_one(
            {"_id": item["id"]},
            {
                "_id": item["id"],
                "popularity_7d@1": {bucket: item["popularity_7d"]},
                "_ts": {"popularity_7d@1": t},
                "_batches": markers,
            },
            upsert=True,
        )
