"""Drift end to end, on the real worker under `wrangler dev` with Redis:
the shop's traffic, a training set from the event log
(`get_historical_features`), `freshet profile`, a model reading through the
edge (every read sampled here, rate 1, so the counts are exact), and
`freshet drift` from Redis and from the edge. Reads drawn from the training
distribution give no alert; the injected bug (every cart price doubled)
alerts on exactly the feature it shifts, with its PSI and the seed's rule,
and the PNG shows it. Too few samples and corrupt summaries are reported,
never an alarm or a crash."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis

import freshet
from freshet._freshet import drift_mongo_ids
from freshet.drift import drift
from freshet.store import FeatureStore

from conftest import READ_TOKEN, SPEC, Edge, MongoServer, RedisServer, iso, now_ms, start_edge, stop

# The shop's catalog: a price per product, as the Nuxt example's products.
PRICES = {f"prod-{i}": p for i, p in enumerate([9.5, 12, 20, 35, 49.9, 79, 129.99, 249])}
CATEGORIES = ["cameras", "lenses", "tripods", "bags"]
# What the model reads, and what the training set profiles.
MODEL_FEATURES = ["pageviews", "clicks_product_card", "clicks_product_card_7d", "searches", "cart_value_1h",
                  "last_interacted_product", "watch_count_7d"]  # fmt: skip
USERS = 300
# The MongoDB edge's visitors: fewer (its writes are the slowest here), still past `min_samples`.
MONGO_USERS = 150


def shop_events(rnd: random.Random, user: str, price_factor: float) -> list[dict[str, Any]]:
    """One visit: pages, clicks, searches, cart adds in the last 20 minutes.
    `price_factor` is the bug switch: 2 sends every cart price doubled."""
    now = now_ms()
    events = []
    for kind, n in (("page_view", rnd.randint(1, 8)), ("product_click", rnd.randint(0, 5)),
                    ("search", rnd.randint(0, 2)), ("add_to_cart", rnd.randint(0, 3)),
                    ("viewed_category", rnd.randint(0, 2))):  # fmt: skip
        for _ in range(n):
            product = rnd.choice(list(PRICES))
            payload: dict[str, Any] = {
                "page_view": {"path": "/"},
                "product_click": {"productId": product, "component": "ProductCard"},
                "search": {"query": "lens"},
                "add_to_cart": {"productId": product, "price": PRICES[product] * price_factor},
                "viewed_category": {"category": rnd.choice(CATEGORIES)},
            }[kind]
            ts = iso(now - rnd.randrange(1_000, 20 * 60_000))
            events.append({"id": secrets.token_hex(8), "type": kind, "timestamp": ts, "clientId": user,
                           "payload": payload})  # fmt: skip
    return events


# Visitors whose visits share one ingest request: drift samples reads, so
# how visits are batched changes no count, and a tenth of the requests
# leaves the other lane's timed browser tests their CPU.
VISITS_PER_REQUEST = 10


def visit(edge: Edge, seed: int, price_factor: float = 1.0, users: int = USERS) -> list[str]:
    """`users` visitors' traffic through the edge, ten visits to a request
    (at most 200 events), two requests in flight; their ids."""
    rnd = random.Random(seed)
    ids = [f"cid-{seed}-{secrets.token_hex(3)}-{i}" for i in range(users)]
    visits = [shop_events(rnd, user, price_factor) for user in ids]
    requests = [[e for v in visits[i : i + VISITS_PER_REQUEST] for e in v]
                for i in range(0, len(visits), VISITS_PER_REQUEST)]  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(edge.post_events, requests))
    return ids


def model_reads(edge: Edge, users: list[str]) -> None:
    """The model reads each visitor's features through the serving API, two at once."""
    paths = [f"/v1/features/user/{user}?names={','.join(MODEL_FEATURES)}" for user in users]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(edge.get, paths))


@pytest.fixture(scope="module")
def drift_edge(tmp_root: Path, redis_server: RedisServer) -> Iterator[tuple[Edge, str]]:
    url = redis_server.url("drift_" + secrets.token_hex(4))
    edge = start_edge(tmp_root, url, extra_vars={"FRESHET_DRIFT_SAMPLE_RATE": "1"})
    yield edge, url
    stop(edge.proc)


def clear_summaries(url: str) -> None:
    """A new hour: the summaries so far are dropped, as if they were older than --since."""
    r = redis.Redis.from_url(url.split("?")[0])
    prefix = url.split("prefix=")[1]
    keys = list(r.scan_iter(f"{prefix}:drift:*"))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture(scope="module")
def baseline(drift_edge: tuple[Edge, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training set: visitors' features from the event log as of now, profiled by `freshet profile`."""
    edge, _ = drift_edge
    users = visit(edge, seed=1)
    time.sleep(0.05)
    at = pd.Timestamp(now_ms(), unit="ms", tz="UTC")
    rows = pd.DataFrame({"user": users, "event_timestamp": [at] * len(users)})
    features = [f"user:{n}" for n in MODEL_FEATURES]
    train = freshet.get_historical_features(rows, features, edge.base, read_token=READ_TOKEN, spec=SPEC)
    folder = tmp_path_factory.mktemp("drift")
    parquet = folder / "train.parquet"
    import duckdb

    duckdb.from_df(train.drop(columns=["event_timestamp"])).write_parquet(str(parquet))
    out = folder / "baseline.json"
    cli(["profile", str(parquet), "-o", str(out), "--spec", str(SPEC)])
    return out


def cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freshet", *args], capture_output=True, text=True, timeout=120)


def test_profile_writes_the_training_distribution(baseline: Path) -> None:
    b = json.loads(baseline.read_text())
    assert b["source"] == "train.parquet"
    assert set(b["features"]) == {f"{n}@1" for n in MODEL_FEATURES}
    pv = b["features"]["pageviews@1"]
    assert pv["count"] == USERS and 3.5 < pv["mean"] < 5.5 and pv["min"] >= 1 and pv["max"] <= 8
    assert len(pv["proportions"]) == len(pv["cuts"]) + 1
    assert abs(sum(pv["proportions"]) - 1) < 1e-9
    # The categorical feature: its products' shares.
    last = b["features"]["last_interacted_product@1"]
    assert set(last["categories"]) <= set(PRICES) and abs(sum(last["categories"].values()) - 1) < 1e-9


def test_reads_from_the_training_distribution_do_not_alert(drift_edge: tuple[Edge, str], baseline: Path) -> None:
    edge, url = drift_edge
    clear_summaries(url)
    model_reads(edge, visit(edge, seed=2))
    time.sleep(1)  # the samples are written after each answer
    done = cli(["drift", "--url", url, "--spec", str(SPEC), "--baseline", str(baseline), "--since", "1h"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 of" in done.stdout.splitlines()[0], done.stdout
    report = drift(url, spec=SPEC, baseline=baseline, since="1h")
    cart = report.feature("cart_value_1h@1")
    assert cart["status"] == "ok" and cart["live"]["count"] == USERS, cart
    assert cart["psi"]["value"] < 0.1, cart


def test_doubled_prices_alert_on_exactly_the_cart_value(
    drift_edge: tuple[Edge, str], baseline: Path, tmp_path: Path
) -> None:
    edge, url = drift_edge
    clear_summaries(url)
    model_reads(edge, visit(edge, seed=3, price_factor=2))
    time.sleep(1)
    png = tmp_path / "png"
    done = cli(["drift", "--url", url, "--spec", str(SPEC), "--baseline", str(baseline), "--since", "1h",
                "--png", str(png)])  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    print(done.stdout)  # shown with -s: the README's example report
    alerting = [line.split()[1] for line in done.stdout.splitlines()[2:] if line.startswith("ALERT")]
    assert alerting == ["cart_value_1h@1"], done.stdout
    line = next(x for x in done.stdout.splitlines() if "cart_value_1h@1" in x)
    assert "PSI" in line and "mean moved" in line and "ALERT" in line, line
    # The same report from the edge's GET /v1/drift, as JSON.
    done = cli(["drift", "--url", edge.base, "--read-token", READ_TOKEN, "--spec", str(SPEC),
                "--baseline", str(baseline), "--since", "1h", "--json"])  # fmt: skip
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    cart = next(f for f in data["report"]["features"] if f["feature"] == "cart_value_1h@1")
    assert cart["psi"]["alert"] and cart["psi"]["value"] > 0.25 and cart["psi"]["threshold"] == 0.25
    assert cart["mean_shift"]["alert"] and 0.7 < cart["mean_shift"]["value"] < 1.3, cart
    assert [f["feature"] for f in data["report"]["features"] if f["alert"]] == ["cart_value_1h@1"]
    # The picture: one PNG, of the alerting feature.
    assert [p.name for p in png.iterdir()] == ["cart_value_1h_v1.png"]
    assert (png / "cart_value_1h_v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The edge's own report (the spec's `expected` only) names the same hour's counts.
    own = edge.get("/v1/drift?since=1h")
    counts = {f["feature"]: f["live"]["count"] for f in own["report"]["features"]}
    assert counts["cart_value_1h@1"] == USERS


def test_too_few_samples_is_not_enough_data(drift_edge: tuple[Edge, str], baseline: Path) -> None:
    edge, url = drift_edge
    clear_summaries(url)
    model_reads(edge, visit(edge, seed=4, price_factor=2, users=20))
    time.sleep(1)
    done = cli(["drift", "--url", url, "--spec", str(SPEC), "--baseline", str(baseline), "--since", "1h"])
    assert done.returncode == 0, done.stdout
    line = next(x for x in done.stdout.splitlines() if "cart_value_1h@1" in x)
    assert line.startswith("not enough data") and "20 of 100 samples" in line, line


def test_corrupt_and_missing_summaries_are_reported(drift_edge: tuple[Edge, str], baseline: Path) -> None:
    edge, url = drift_edge
    clear_summaries(url)
    model_reads(edge, visit(edge, seed=5, users=150))
    time.sleep(1)
    r = redis.Redis.from_url(url.split("?")[0])
    prefix = url.split("prefix=")[1]
    [key] = list(r.scan_iter(f"{prefix}:drift:{{pageviews@1}}:*"))
    r.hset(key, "n", "lots")
    r.set(f"{prefix}:drift:{{searches@1}}:{key.decode().rsplit(':', 1)[1]}", "not a hash")
    r.close()
    report = drift(url, spec=SPEC, baseline=baseline, since="1h")
    pv = report.feature("pageviews@1")
    assert pv["status"] == "corrupt" and "field `n`" in pv["message"], pv
    assert report.feature("searches@1")["status"] == "corrupt"
    assert report.feature("clicks_product_card@1")["status"] == "ok"
    # Features never read: no data, not an alarm.
    assert report.feature("popularity_7d@1")["status"] == "no_baseline"
    assert not report.alert, [(f["feature"], f) for f in report.features if f["alert"]]
    text = "\n".join(report.lines())
    assert "corrupt" in text


async def test_the_python_reader_samples_its_redis_reads_off_the_read_path(drift_edge: tuple[Edge, str]) -> None:
    edge, url = drift_edge
    clear_summaries(url)
    users = visit(edge, seed=6, users=60)
    with FeatureStore(SPEC, url, drift_sample_rate=1.0) as store:
        for u in users[:40]:
            store.get_online_features("user", [u], MODEL_FEATURES)
    async with FeatureStore(SPEC, url, drift_sample_rate=1.0) as store:
        for u in users[40:]:
            await store.get_online_features_async("user", [u], MODEL_FEATURES)
    # Off, and through the edge (which samples its own reads, here at rate 1 too).
    with FeatureStore(SPEC, url, drift_sample_rate=0) as store:
        store.get_online_features("user", users, MODEL_FEATURES)
    with FeatureStore(SPEC, edge.base, read_token=READ_TOKEN) as store:
        store.get_online_features("user", users[:5], MODEL_FEATURES)
    await asyncio.sleep(1)
    report = drift(url, spec=SPEC, since="1h", min_samples=1)
    assert report.feature("pageviews@1")["live"]["count"] == 65
    assert report.feature("cart_value_1h@1")["live"]["count"] == 65
    # Features not read were not sampled.
    assert report.feature("last_event_at@1")["live"]["count"] == 0
    with pytest.raises(ValueError, match="drift_sample_rate"):
        FeatureStore(SPEC, url, drift_sample_rate=2)


@pytest.mark.parametrize("gateways", ["4", "0"])
def test_doubled_prices_alert_on_exactly_the_cart_value_on_a_mongodb_edge(
    tmp_root: Path, mongo_server: MongoServer, baseline: Path, gateways: str
) -> None:
    """MongoDB keeps the summaries too (one document per feature per hour in
    `drift`), through the StoreGateway objects (mongodb://'s default) and
    on a connection per request."""
    import pymongo

    with pymongo.MongoClient(mongo_server.url()) as client:
        client.get_default_database().drop_collection("drift")
    edge = start_edge(
        tmp_root,
        mongo_server.url(),
        extra_vars={"FRESHET_DRIFT_SAMPLE_RATE": "1", "FRESHET_STORE_GATEWAYS": gateways},
    )
    try:
        users = visit(edge, seed=8, price_factor=2, users=MONGO_USERS)
        model_reads(edge, users)
        time.sleep(1)
        done = cli(["drift", "--url", edge.base, "--read-token", READ_TOKEN, "--spec", str(SPEC),
                    "--baseline", str(baseline), "--since", "1h", "--json"])  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        data = json.loads(done.stdout)
        assert [f["feature"] for f in data["report"]["features"] if f["alert"]] == ["cart_value_1h@1"], data
        cart = next(f for f in data["report"]["features"] if f["feature"] == "cart_value_1h@1")
        assert cart["psi"]["alert"] and cart["psi"]["value"] > 0.25, cart
        assert cart["live"]["count"] == MONGO_USERS, cart
        own = edge.get("/v1/drift?since=1h&summaries=1")
        assert own["summaries"]["pageviews@1"]["summary"]["count"] == MONGO_USERS
        # The documents, as a person reading the collection sees them.
        with pymongo.MongoClient(mongo_server.url()) as client:
            docs = list(client.get_default_database()["drift"].find({"feature": "cart_value_1h@1"}))
        assert sum(d["n"] for d in docs) == MONGO_USERS, docs
        assert all(d["_id"].startswith("cart_value_1h@1|") for d in docs), docs
        # A model reading MongoDB itself: the reader samples its reads into the
        # same documents (30 sync, 20 async), and `freshet drift` reads them
        # from MongoDB as the edge does.
        with FeatureStore(SPEC, mongo_server.url(), drift_sample_rate=1.0) as store:
            for u in users[:30]:
                store.get_online_features("user", [u], MODEL_FEATURES)

        async def read_async() -> None:
            async with FeatureStore(SPEC, mongo_server.url(), drift_sample_rate=1.0) as store:
                for u in users[30:50]:
                    await store.get_online_features_async("user", [u], MODEL_FEATURES)

        asyncio.run(read_async())
        done = cli(["drift", "--url", mongo_server.url(), "--spec", str(SPEC),
                    "--baseline", str(baseline), "--since", "1h", "--json"])  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        data = json.loads(done.stdout)
        assert [f["feature"] for f in data["report"]["features"] if f["alert"]] == ["cart_value_1h@1"], data
        cart = next(f for f in data["report"]["features"] if f["feature"] == "cart_value_1h@1")
        assert cart["live"]["count"] == MONGO_USERS + 50, cart
        # A broken document is reported for its feature; the rest still reports.
        hour = drift_mongo_ids("searches@1", 3_600_000)[-1]
        with pymongo.MongoClient(mongo_server.url()) as client:
            client.get_default_database()["drift"].update_one({"_id": hour}, {"$set": {"n": "broken"}}, upsert=True)
        report = drift(mongo_server.url(), spec=SPEC, baseline=baseline, since="1h")
        assert report.feature("searches@1")["status"] == "corrupt", report.feature("searches@1")
        assert hour in report.feature("searches@1")["message"]
        assert [f["feature"] for f in report.features if f["alert"]] == ["cart_value_1h@1"]
    finally:
        stop(edge.proc)


def test_the_durable_object_store_keeps_summaries_too(tmp_root: Path) -> None:
    """The default store (the shop's demo): one object per feature holds its hours."""
    edge = start_edge(tmp_root, "durable-object", extra_vars={"FRESHET_DRIFT_SAMPLE_RATE": "1"})
    try:
        model_reads(edge, visit(edge, seed=7, users=120))
        time.sleep(1)
        own = edge.get("/v1/drift?since=1h&summaries=1")
        assert own["summaries"]["pageviews@1"]["summary"]["count"] == 120
        assert own["summaries"]["popularity_7d@1"]["summary"]["count"] == 0
        # Against the spec's `expected` (mean 12.5 clicks a week), the shop's ~2.5 is the seed's rule firing.
        features = {f["feature"]: f for f in own["report"]["features"]}
        assert features["clicks_product_card_7d@1"]["mean_shift"]["alert"], features["clicks_product_card_7d@1"]
        assert own["baseline"] == "expected"
        done = cli(["drift", "--url", edge.base, "--read-token", READ_TOKEN, "--spec", str(SPEC), "--since", "1h"])
        assert done.returncode == 1, done.stdout + done.stderr
        assert any(x.startswith("ALERT") and "clicks_product_card_7d@1" in x for x in done.stdout.splitlines())
    finally:
        stop(edge.proc)
