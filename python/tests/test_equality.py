"""The reader equals the edge: for every feature of the example spec and
every entity that events touched (and some none did), the value, stale flag
and update time Python reads from Redis and MongoDB are the serving API's.
100%, compared field by field; read back through the edge's API too."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import freshet

from conftest import READ_TOKEN, SPEC, Edge, iso, now_ms, start_edge, stop
from shop import send, traffic


@pytest.fixture(scope="module", params=["redis", "mongo"])
def loaded(request: pytest.FixtureRequest) -> tuple[Edge, str, list[str], list[str]]:
    edge, url = request.getfixturevalue(f"{request.param}_edge")
    events, users, products = traffic(seed=12 if request.param == "redis" else 13)
    send(edge, events)
    return edge, url, [*users, "cid-nobody"], [*products, "prod-nobody"]


def served(edge: Edge, entity: str, ident: str, names: list[str] | None = None) -> dict[str, Any]:
    query = f"?names={','.join(names)}" if names else ""
    features: dict[str, Any] = edge.get(f"/v1/features/{entity}/{ident}{query}")["features"]
    return features


def as_served(row: dict[str, freshet.FeatureValue]) -> dict[str, Any]:
    return {n: {"value": v.value, "updatedAt": v.updated_at, "stale": v.stale} for n, v in row.items()}


def assert_rows_equal(edge: Edge, res: freshet.OnlineResponse, names: list[str] | None = None) -> int:
    compared = 0
    for ident, row in zip(res.ids, res, strict=True):
        expected = served(edge, res.entity, ident, names)
        assert as_served(row) == expected, f"{res.entity} {ident}"
        compared += len(expected)
    return compared


def test_every_feature_of_every_entity_equals_the_serving_api(loaded: Any) -> None:
    edge, url, users, products = loaded
    with freshet.FeatureStore(SPEC, url) as store:
        n = assert_rows_equal(edge, store.get_online_features("user", users))
        n += assert_rows_equal(edge, store.get_online_features("product", products))
        per_user, per_product = (len(store.spec.plan(e).columns) for e in ("user", "product"))
    assert (per_user, per_product) == (10, 1)
    assert n == per_user * len(users) + per_product * len(products)
    # The traffic exercised what it should: stale values, windows, sets in order.
    seen = [served(edge, "user", u) for u in users]
    assert any(f["last_interacted_product"]["stale"] for f in seen)
    assert any(f["cart_value_1h"]["value"] not in (0, None) for f in seen)
    assert any(len(f["viewed_categories"]["value"]) > 2 for f in seen)
    assert any(len(f["recent_products"]["value"]) > 2 for f in seen)


def test_named_versions_and_order_equal_the_serving_api(loaded: Any) -> None:
    edge, url, users, _ = loaded
    names = ["recent_products", "pageviews@1", "viewed_categories", "clicks_product_card_7d", "last_event_at"]
    with freshet.FeatureStore(SPEC, url) as store:
        res = store.get_online_features("user", users, names)
    assert res.columns == names
    assert_rows_equal(edge, res, names)


async def test_async_reads_equal_the_serving_api(loaded: Any) -> None:
    edge, url, users, products = loaded
    async with freshet.FeatureStore(SPEC, url) as store:
        assert_rows_equal(edge, await store.get_online_features_async("user", users))
        ranking = await store.get_ranking_features_async(users[1], products, ["pageviews", "recent_products"])
    expected = edge.post("/v1/features/batch", {"userId": users[1], "itemIds": products,
                                                "userFeatures": ["pageviews", "recent_products"]})  # fmt: skip
    assert as_served(ranking.user[0]) == expected["user"]["features"]
    assert [as_served(r) for r in ranking.items] == [i["features"] for i in expected["items"]]


def test_ranking_read_equals_the_batch_api(loaded: Any) -> None:
    edge, url, users, products = loaded
    ask = {"userId": users[2], "itemIds": products, "userFeatures": ["clicks_product_card_7d", "viewed_categories"],
           "itemFeatures": ["popularity_7d"]}  # fmt: skip
    expected = edge.post("/v1/features/batch", ask)
    for store_url, token in [(url, None), (edge.base, READ_TOKEN)]:
        with freshet.FeatureStore(SPEC, store_url, read_token=token) as store:
            got = store.get_ranking_features(users[2], products, ask["userFeatures"], ask["itemFeatures"])
        assert as_served(got.user[0]) == expected["user"]["features"]
        assert [as_served(r) for r in got.items] == [i["features"] for i in expected["items"]]
        assert got.items.ids == products


PAIRS = ["user_product_clicks", "user_product_last_seen"]


def assert_ranking_equals(got: freshet.RankingResponse, expected: dict[str, Any]) -> None:
    assert as_served(got.user[0]) == expected["user"]["features"]
    assert [as_served(r) for r in got.items] == [i["features"] for i in expected["items"]]
    assert got.pairs is not None
    assert got.pairs.ids == [i["pair"]["id"] for i in expected["items"]]
    assert [as_served(r) for r in got.pairs] == [i["pair"]["features"] for i in expected["items"]]


def test_ranking_read_with_pairs_equals_the_batch_api(loaded: Any) -> None:
    """User, items and each (user, item) pair: the reader's one round trip
    (a Redis pipeline, one MongoDB find per collection, one edge request)
    gives what the edge's batch route gives, field by field."""
    edge, url, users, products = loaded
    # The user who clicked the most products: most pairs are not defaults.
    user = max(users, key=lambda u: served(edge, "user", u)["clicks_product_card"]["value"])
    ask = {"userId": user, "itemIds": products, "userFeatures": ["pageviews"], "itemFeatures": ["popularity_7d"],
           "pairFeatures": PAIRS}  # fmt: skip
    expected = edge.post("/v1/features/batch", ask)
    clicked = [i for i in expected["items"] if i["pair"]["features"]["user_product_clicks"]["value"] > 0]
    assert 0 < len(clicked) < len(products) + 1
    assert expected["items"][-1]["pair"]["id"] == freshet.composite_id([user, "prod-nobody"])
    for store_url, token in [(url, None), (edge.base, READ_TOKEN)]:
        with freshet.FeatureStore(SPEC, store_url, read_token=token) as store:
            got = store.get_ranking_features(user, products, ["pageviews"], ["popularity_7d"], PAIRS)
            assert_ranking_equals(got, expected)
            assert got.pairs is not None and got.pairs.entity == "user_product" and got.pairs.columns == PAIRS
            # Every pair feature when only the entity is named.
            everything = store.get_ranking_features(user, products[:2], pair_entity="user_product")
            assert everything.pairs is not None and everything.pairs.columns == PAIRS
            assert store.get_ranking_features(user, products).pairs is None
    # Each pair as GET /v1/features serves it (the composite id percent-encoded in the path).
    for item in clicked:
        one = edge.get(f"/v1/features/user_product/{urllib.parse.quote(item['pair']['id'], safe='')}")
        assert one["features"] == item["pair"]["features"]


async def test_async_ranking_read_with_pairs_equals_the_batch_api(loaded: Any) -> None:
    edge, url, users, products = loaded
    expected = edge.post("/v1/features/batch", {"userId": users[3], "itemIds": products, "pairFeatures": PAIRS})
    for store_url, token in [(url, None), (edge.base, READ_TOKEN)]:
        async with freshet.FeatureStore(SPEC, store_url, read_token=token) as store:
            got = await store.get_ranking_features_async(users[3], products, pair_features=PAIRS)
        assert_ranking_equals(got, expected)


def test_pairs_of_more_items_than_one_edge_request_holds(loaded: Any) -> None:
    edge, url, users, products = loaded
    items = products + [f"prod-absent-{i}" for i in range(230)]  # two edge requests
    with freshet.FeatureStore(SPEC, url) as direct, freshet.FeatureStore(SPEC, edge.base, read_token=READ_TOKEN) as api:
        a = direct.get_ranking_features(users[4], items, pair_features=PAIRS)
        b = api.get_ranking_features(users[4], items, pair_features=PAIRS)
    assert a.pairs is not None and b.pairs is not None
    assert a.pairs.to_dict() == b.pairs.to_dict() and len(a.pairs) == len(items)
    assert a.items.to_dict() == b.items.to_dict() and a.user.to_dict() == b.user.to_dict()


def test_the_durable_object_store_keeps_pairs_by_their_composite_id(tmp_root: Path) -> None:
    """The default store, one Durable Object per entity: a pair named by ids
    holding `|` and `%` is served by its escaped id, alone and in a ranking
    read, and the reader through the edge gives the same."""
    edge = start_edge(tmp_root, "durable-object")
    try:
        t = now_ms()
        clicks = [{"type": "product_click", "timestamp": iso(t - 1000 * n), "clientId": "cid|1",
                   "payload": {"productId": product}} for n, product in enumerate(["p%1", "p%1", "p2"])]  # fmt: skip
        edge.post_events(clicks)
        ident = freshet.composite_id(["cid|1", "p%1"])
        assert ident == "cid%7C1|p%251"
        one = edge.get(f"/v1/features/user_product/{urllib.parse.quote(ident, safe='')}")
        assert one["id"] == ident and one["features"]["user_product_clicks"]["value"] == 2
        items = ["p%1", "p2", "p3"]
        expected = edge.post("/v1/features/batch", {"userId": "cid|1", "itemIds": items, "pairFeatures": PAIRS})
        assert [i["pair"]["features"]["user_product_clicks"]["value"] for i in expected["items"]] == [2, 1, 0]
        with freshet.FeatureStore(SPEC, edge.base, read_token=READ_TOKEN) as store:
            assert_ranking_equals(store.get_ranking_features("cid|1", items, pair_features=PAIRS), expected)
    finally:
        stop(edge.proc)


def test_reading_through_the_edge_gives_the_same_rows(loaded: Any) -> None:
    edge, url, users, _ = loaded
    with freshet.FeatureStore(SPEC, url) as direct, freshet.FeatureStore(SPEC, edge.base, read_token=READ_TOKEN) as api:
        a = direct.get_online_features("user", users)
        b = api.get_online_features("user", users)
    assert [as_served(r) for r in a] == [as_served(r) for r in b]
    assert a.to_dict() == b.to_dict()


async def test_more_ids_than_one_edge_request_holds(loaded: Any) -> None:
    edge, url, users, _ = loaded
    ids = users + [f"cid-absent-{i}" for i in range(430)]  # three requests of at most 200
    with freshet.FeatureStore(SPEC, url) as direct, freshet.FeatureStore(SPEC, edge.base, read_token=READ_TOKEN) as api:
        expected = direct.get_online_features("user", ids).to_dict()
        assert api.get_online_features("user", ids).to_dict() == expected
        async with api:
            assert (await api.get_online_features_async("user", ids)).to_dict() == expected


def test_consistency_with_the_log_is_100_percent(loaded: Any) -> None:
    """Every (entity, feature) pair the log has, read from the store (Redis
    or MongoDB) and replayed from the edge's event log, agrees."""
    edge, url, users, _ = loaded
    report = freshet.consistency(100_000, url=url, log=edge.base, read_token=READ_TOKEN, spec=SPEC,
                                 start=freshet._log.now_ms() - 3_600_000)  # fmt: skip
    assert report.mismatches == [] and report.match_rate == 1.0
    # Every user with events (the first has none) and every clicked product, every feature of each.
    assert report.compared["user:pageviews"] >= len(users) - 2
    assert report.pairs == sum(report.compared.values()) and len(report.compared) == 13
    assert report.compared["user_product:user_product_clicks"] > len(users)
