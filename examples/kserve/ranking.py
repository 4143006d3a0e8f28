"""What the ranker sees: the Freshet features it reads for a visitor, each
candidate product and each (visitor, product) pair, and the one function
that turns them into the model's input row. Training (train.py) and serving
(model.py) both call `candidate_row`, so the model is fed the same numbers
in both places."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from catalog import Product

HOUR = 3_600_000

USER_FEATURES = [
    "pageviews",
    "clicks_product_card_7d",
    "searches",
    "cart_value_1h",
    "viewed_categories",
    "recent_products",
    "last_interacted_product",
]
ITEM_FEATURES = ["popularity_7d"]
PAIR_FEATURES = ["user_product_clicks", "user_product_last_seen"]

# The model's input columns, in order (saved in the artifact and checked at load).
COLUMNS = [
    "recent_clicks_same_category",
    "latest_click_same_category",
    "last_interacted_same_category",
    "last_interacted_is_item",
    "viewed_category",
    "categories_viewed",
    "log_popularity_7d",
    "log_user_item_clicks",
    "user_item_recency",
    "log_clicks_7d",
    "log_pageviews",
    "log_searches",
    "log_cart_value_1h",
    "log_price",
]


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else []


def candidate_row(
    user: Mapping[str, Any],
    item: Mapping[str, Any],
    pair: Mapping[str, Any],
    product: Product,
    category_of: Mapping[str, str],
    now: int,
) -> list[float]:
    """One candidate's input row from plain feature values (defaults for a
    visitor or product the store does not know: zeros, empty lists, null)."""
    recent = [category_of.get(str(p)) for p in _list(user.get("recent_products"))]
    same = sum(1 for c in recent if c == product.category)
    last = user.get("last_interacted_product")
    seen = _num(pair.get("user_product_last_seen"))
    return [
        same / len(recent) if recent else 0.0,
        1.0 if recent and recent[0] == product.category else 0.0,
        1.0 if isinstance(last, str) and category_of.get(last) == product.category else 0.0,
        1.0 if last == product.id else 0.0,
        1.0 if product.category in _list(user.get("viewed_categories")) else 0.0,
        float(len(_list(user.get("viewed_categories")))),
        math.log1p(_num(item.get("popularity_7d"))),
        math.log1p(_num(pair.get("user_product_clicks"))),
        math.exp(-max(0.0, now - seen) / HOUR) if seen > 0 else 0.0,
        math.log1p(_num(user.get("clicks_product_card_7d"))),
        math.log1p(_num(user.get("pageviews"))),
        math.log1p(_num(user.get("searches"))),
        math.log1p(max(0.0, _num(user.get("cart_value_1h")))),
        math.log1p(product.price),
    ]


def rows_for(
    user: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]],
    products: Sequence[Product],
    category_of: Mapping[str, str],
    now: int,
) -> list[list[float]]:
    return [
        candidate_row(user, item, pair, product, category_of, now)
        for item, pair, product in zip(items, pairs, products, strict=True)
    ]
