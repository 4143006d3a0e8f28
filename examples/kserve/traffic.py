"""Visits to learn from: simulated visitors with hidden tastes browse the
shop's catalog, view categories, search, click products, add them to the
cart and are shown a "Recommended for you" row, whose candidates are logged
(`recommendation_shown`) before the visitor's next click. Every visit is
one batch POSTed to the real edge (`/v1/ingest`), so it lands in the store
and in the event log that training reads.

Time: visits are spread over the past `--days` (6 by default; the edge
accepts events up to 7 days old) and carry those simulated times, while each
batch's `sentAt` is the real moment it is sent, so the edge sees no clock
skew and keeps the event times as they are. Training then reads the log as
of event time, and the twice-daily cuts (00:00 and 12:00 UTC) fall among the
simulated days as they would in a real shop.

Tastes: each visitor has a preference over categories (hidden: never sent);
each visit has an intent, a category drawn from that preference (or, one
visit in four, any category), which drives that visit's clicks. What the
visitor did earlier in the same visit is therefore the best evidence of
what they click next; yesterday's visits say less.

    python examples/kserve/traffic.py --edge http://127.0.0.1:8787 --visitors 800 --seed 7
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from catalog import Product, load_catalog

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


@dataclass
class Visit:
    client_id: str
    start: int
    events: list[dict[str, Any]] = field(default_factory=list)
    decisions: int = 0


class Shop:
    """The catalog and the world's fixed facts (each product's appeal)."""

    def __init__(self, products: list[Product], rng: random.Random) -> None:
        self.products = products
        self.categories = sorted({p.category for p in products})
        self.appeal = {p.id: rng.lognormvariate(0, 0.5) for p in products}

    def in_category(self, category: str) -> list[Product]:
        return [p for p in self.products if p.category == category]


def pick(rng: random.Random, products: list[Product], weight: Any) -> Product:
    return rng.choices(products, weights=[weight(p) for p in products])[0]


def simulate_visit(shop: Shop, rng: random.Random, client_id: str, taste: dict[str, float], start: int) -> Visit:
    visit = Visit(client_id, start)
    session = f"s-{client_id}-{start}"
    t = start

    def emit(kind: str, payload: dict[str, Any]) -> None:
        visit.events.append({"id": f"e-{client_id}-{t}-{len(visit.events)}", "type": kind, "timestamp": iso(t),
                             "clientId": client_id, "sessionId": session, "payload": payload})  # fmt: skip

    if rng.random() < 0.75:
        intent = rng.choices(shop.categories, weights=[taste[c] for c in shop.categories])[0]
    else:
        intent = rng.choice(shop.categories)
    emit("page_view", {"path": "/"})
    clicked: list[Product] = []
    for step in range(rng.randint(3, 8)):
        t += rng.randint(5, 60) * SECOND
        roll = rng.random()
        if roll < 0.3:
            category = intent if rng.random() < 0.85 else rng.choice(shop.categories)
            emit("page_view", {"path": f"/category/{category}"})
            emit("viewed_category", {"category": category})
        elif roll < 0.4:
            emit("search", {"query": intent if rng.random() < 0.8 else rng.choice(shop.categories)})
        elif roll < 0.5 and clicked:
            product = rng.choice(clicked)
            emit("add_to_cart", {"productId": product.id, "price": product.price})
        else:
            pool = shop.in_category(intent) if rng.random() < 0.8 else shop.products
            product = pick(rng, pool, lambda p: shop.appeal[p.id])
            clicked.append(product)
            emit("page_view", {"path": f"/product/{product.id}"})
            emit("product_click", {"productId": product.id, "component": "ProductCard"})
        if step >= 1 and rng.random() < 0.6:
            # The row is shown; the visitor clicks one of its products most times.
            t += rng.randint(1, 5) * SECOND
            candidates = [p.id for p in shop.products]
            rng.shuffle(candidates)
            emit("recommendation_shown", {"candidates": candidates, "component": "RecommendedRow"})
            visit.decisions += 1
            if rng.random() < 0.85:
                t += rng.randint(2, 20) * SECOND

                def weight(p: Product) -> float:
                    return shop.appeal[p.id] * (6.0 if p.category == intent else 0.5 + 2 * taste[p.category])

                product = pick(rng, shop.products, weight)
                clicked.append(product)
                emit("product_click", {"productId": product.id, "component": "RecommendedRow"})
    return visit


def simulate(shop: Shop, seed: int, visitors: int, days: float, now: int) -> list[Visit]:
    rng = random.Random(seed)
    visits = []
    first, last = now - int(days * DAY), now - 30 * MINUTE
    for i in range(visitors):
        client_id = f"cid-sim{seed}-{i}"
        weights = [rng.gammavariate(0.3, 1.0) + 1e-3 for _ in shop.categories]
        total = sum(weights)
        taste = {c: w / total for c, w in zip(shop.categories, weights, strict=True)}
        for _ in range(rng.randint(1, 6)):
            visits.append(simulate_visit(shop, rng, client_id, taste, rng.randint(first, last)))
    visits.sort(key=lambda v: v.start)
    return visits


# The edge's limit on events per request (core's `Limits::max_events`).
MAX_EVENTS = 500


def requests_of(visits: list[Visit], per_request: int) -> list[list[Visit]]:
    """Consecutive visits grouped into ingest requests of at most
    `per_request` visits and `MAX_EVENTS` events (a visit alone is never split)."""
    out: list[list[Visit]] = []
    for visit in visits:
        last = out[-1] if out else None
        if last and len(last) < per_request and sum(len(v.events) for v in last) + len(visit.events) <= MAX_EVENTS:
            last.append(visit)
        else:
            out.append([visit])
    return out


def send(edge: str, write_key: str, visits: list[Visit], concurrency: int, per_request: int = 1) -> int:
    """POSTs the visits, `per_request` to a request; the number of requests."""
    requests = requests_of(visits, per_request)
    with httpx.Client(timeout=30, headers={"x-freshet-key": write_key, "content-type": "application/json"}) as client:

        def post(group: list[Visit]) -> None:
            first = group[0]
            batch_id = f"sim-{first.client_id}-{first.start}" + (f"-{len(group)}" if len(group) > 1 else "")
            body = {"batchId": batch_id, "sentAt": iso(time.time_ns() // 1_000_000),
                    "events": [e for v in group for e in v.events]}  # fmt: skip
            # As the tracker does: a 503 or 429 is sent again, same batchId
            # (it counts once), after the edge's Retry-After.
            for attempt in range(8):
                r = client.post(f"{edge}/v1/ingest", content=json.dumps(body))
                if r.status_code not in (429, 503) or attempt == 7:
                    break
                time.sleep(min(float(r.headers.get("retry-after", "1")), 5.0))
            answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
            if r.status_code != 202 or answer.get("rejected"):
                raise RuntimeError(f"the edge refused a visit ({r.status_code}): {str(answer)[:500]}")

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, requests))
    return len(requests)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edge", default="http://127.0.0.1:8787", help="the edge's URL")
    ap.add_argument("--write-key", default="dev")
    ap.add_argument("--visitors", type=int, default=800)
    ap.add_argument("--days", type=float, default=6.0, help="how far back the visits go (at most 7: the edge's limit)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument(
        "--visits-per-request",
        type=int,
        default=1,
        help="visits sent in one ingest request (1, as a shop's tracker sends them; tests send more)",
    )
    args = ap.parse_args(argv)
    if not 0 < args.days < 7:
        ap.error("--days must be between 0 and 7: the edge refuses events older than 7 days")
    shop = Shop(load_catalog(), random.Random(args.seed))
    started = time.monotonic()
    visits = simulate(shop, args.seed, args.visitors, args.days, time.time_ns() // 1_000_000)
    if args.visits_per_request < 1:
        ap.error("--visits-per-request must be at least 1")
    requests = send(args.edge.rstrip("/"), args.write_key, visits, args.concurrency, args.visits_per_request)
    took = time.monotonic() - started
    events = sum(len(v.events) for v in visits)
    print(f"sent {len(visits)} visits of {args.visitors} visitors in {requests} requests ({events} events, "
          f"{sum(v.decisions for v in visits)} recommendations shown) over the past {args.days:g} days "
          f"to {args.edge} in {took:.1f} s ({len(visits) / took:.0f} visits/s), seed {args.seed}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
