"""Synthetic shop traffic: every event type of features.toml, several users
and products, times spread over the last six days (so windows, `ttl` and
`last`/`first` order matter), sent through the edge in shuffled batches."""

from __future__ import annotations

import random
import secrets
from typing import Any

from conftest import DAY, HOUR, Edge, iso, now_ms

CATEGORIES = ["cameras", "lenses", "tripods", "bags", "a.b$c%", ""]


def traffic(seed: int, users: int = 12, products: int = 8) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    rnd = random.Random(seed)
    tag = secrets.token_hex(3)
    user_ids = [f"cid-{tag}-{i}" for i in range(users)]
    product_ids = [f"prod-{tag}-{i}" for i in range(products)]
    now = now_ms()
    events: list[dict[str, Any]] = []

    def at(age: int) -> str:
        return iso(now - age)

    for i, cid in enumerate(user_ids):
        for _ in range(rnd.randrange(0, 40) if i else 0):  # the first user has no events
            kind = rnd.choice(["page_view", "product_click", "product_click", "search", "add_to_cart",
                               "viewed_category", "watch"])  # fmt: skip
            # Mostly recent; some over an hour, a day, or most of a week ago.
            age = rnd.choice([rnd.randrange(1_000, HOUR // 2), rnd.randrange(HOUR, DAY),
                              rnd.randrange(DAY + HOUR, 6 * DAY + 12 * HOUR)])  # fmt: skip
            product = rnd.choice(product_ids)
            payload: dict[str, Any] = {
                "page_view": {"path": f"/p/{rnd.randrange(9)}"},
                "product_click": {"productId": product, "component": "ProductCard"},
                "search": {"query": rnd.choice(["lens", "bag"])},
                "add_to_cart": {"productId": product, "price": rnd.choice([9.5, 20, 129.99, 3])},
                "viewed_category": {"category": rnd.choice(CATEGORIES)},
                "watch": {"videoId": f"v{rnd.randrange(5)}"},
            }[kind]
            events.append({"type": kind, "timestamp": at(age), "clientId": cid, "payload": payload})
    # One visitor whose only clicks are over a day old: `last_interacted_product` is stale.
    user_ids.append(f"cid-{tag}-stale")
    for k in range(3):
        events.append({"type": "product_click", "timestamp": at(DAY + (k + 2) * HOUR), "clientId": user_ids[-1],
                       "payload": {"productId": product_ids[k], "component": "ProductCard"}})  # fmt: skip
    rnd.shuffle(events)
    return events, user_ids, product_ids


def send(edge: Edge, events: list[dict[str, Any]], batch: int = 40) -> None:
    for i in range(0, len(events), batch):
        edge.post_events(events[i : i + batch])
