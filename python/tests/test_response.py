"""The shapes a model wants from one read, and the CLI's table. Data goes in
through the edge (Redis store); the shapes are checked against the rows."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import freshet

from conftest import BIN, DAY, HOUR, READ_TOKEN, SPEC, Edge, iso, now_ms

USER_FEATURES = [
    "pageviews",
    "clicks_product_card",
    "clicks_product_card_7d",
    "searches",
    "last_interacted_product",
    "viewed_categories",
    "recent_products",
    "last_event_at",
    "watch_count_7d",
    "cart_value_1h",
]


@pytest.fixture(scope="module")
def shop(redis_edge: tuple[Edge, str]) -> tuple[Edge, str, list[str]]:
    edge, url = redis_edge
    tag = os.urandom(3).hex()
    a, b, old = f"cid-{tag}-a", f"cid-{tag}-b", f"cid-{tag}-old"
    t = now_ms()
    edge.post_events([
        {"type": "page_view", "timestamp": iso(t - 5_000), "clientId": a, "payload": {}},
        {"type": "page_view", "timestamp": iso(t - 4_000), "clientId": a, "payload": {}},
        {"type": "viewed_category", "timestamp": iso(t - 3_000), "clientId": a, "payload": {"category": "cameras"}},
        {"type": "product_click", "timestamp": iso(t - 2_000), "clientId": a,
         "payload": {"productId": "prod-1", "component": "ProductCard"}},
        {"type": "add_to_cart", "timestamp": iso(t - 1_000), "clientId": b,
         "payload": {"productId": "prod-2", "price": 12.5}},
        {"type": "product_click", "timestamp": iso(t - 2 * DAY - HOUR), "clientId": old,
         "payload": {"productId": "prod-3", "component": "ProductCard"}},
    ])  # fmt: skip
    return edge, url, [a, b, old, f"cid-{tag}-none"]


def test_rows_dict_numpy_pandas(shop: Any) -> None:
    _, url, ids = shop
    with freshet.FeatureStore(SPEC, url) as store:
        res = store.get_online_features("user", ids, ["pageviews", "viewed_categories", "cart_value_1h"])
    assert len(res) == 4 and res.columns == ["pageviews", "viewed_categories", "cart_value_1h"]
    assert res[0]["pageviews"].value == 2 and not res[0]["pageviews"].stale
    assert res[0]["pageviews"].updated_at is not None and res[0]["pageviews"].updated_at.endswith("Z")
    assert res[3]["pageviews"].updated_at is None
    assert res.to_dict() == {
        "user": ids,
        "pageviews": [2, 0, 0, 0],
        "viewed_categories": [["cameras"], [], [], []],
        "cart_value_1h": [0, 12.5, 0, 0],
    }
    m = res.to_numpy(["pageviews", "cart_value_1h"])
    assert m.dtype == np.float64 and m.tolist() == [[2, 0], [0, 12.5], [0, 0], [0, 0]]
    with pytest.raises(TypeError, match="'viewed_categories' is a list"):
        res.to_numpy()
    with pytest.raises(KeyError, match="'searches' was not read"):
        res.to_numpy(["searches"])
    df = res.to_pandas()
    assert list(df.columns) == ["user", "pageviews", "viewed_categories", "cart_value_1h"]
    assert df["pageviews"].tolist() == [2, 0, 0, 0]


def test_stale_and_null_defaults(shop: Any) -> None:
    _, url, ids = shop
    with freshet.FeatureStore(SPEC, url) as store:
        res = store.get_online_features("user", ids, ["last_interacted_product"])
    values = [(r["last_interacted_product"].value, r["last_interacted_product"].stale) for r in res]
    assert values == [("prod-1", False), ("prod-2", False), ("prod-3", True), (None, False)]
    with pytest.raises(TypeError, match="is a str"):
        res.to_numpy()
    # A null default reads as NaN.
    with freshet.FeatureStore(SPEC, url) as store:
        m = store.get_online_features("user", ids[3:], ["last_event_at"]).to_numpy()
    assert m.shape == (1, 1) and (math.isnan(m[0, 0]) or m[0, 0] == 0)


# No example database: the run must leave the tree as it found it.
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(USER_FEATURES), min_size=1, max_size=6, unique=True),
       picks=st.lists(st.integers(0, 3), min_size=0, max_size=6))  # fmt: skip
def test_any_names_in_any_order_read_as_the_full_read(shop: Any, names: list[str], picks: list[int]) -> None:
    _, url, ids = shop
    chosen = [ids[i] for i in picks]
    now = now_ms()
    with freshet.FeatureStore(SPEC, url) as store:
        full = store.get_online_features("user", ids, now=now)
        part = store.get_online_features("user", chosen, names, now=now)
    assert part.columns == names and part.ids == chosen
    by_id = dict(zip(ids, full, strict=True))
    for ident, row in zip(chosen, part, strict=True):
        assert list(row) == names
        assert all(row[n] == by_id[ident][n] for n in names)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "freshet"), *args], capture_output=True, text=True, timeout=60, check=False)


def test_cli_prints_the_table_marking_stale(shop: Any) -> None:
    edge, url, ids = shop
    out = run_cli("features", "user", ids[2], "--url", url, "--spec", str(SPEC), "--edge-url", edge.base)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == f"user {ids[2]}"
    row = next(line for line in lines if line.split()[0] == "last_interacted_product")
    assert '"prod-3"' in row and row.endswith("STALE")
    assert len(lines) == 2 + len(USER_FEATURES)
    # Through the edge's API, with the token from the environment.
    env_out = subprocess.run([str(BIN / "freshet"), "features", "user", ids[0], "--names", "pageviews,recent_products"],
                             capture_output=True, text=True, timeout=60, check=False,
                             env={**os.environ, "FRESHET_STORE": edge.base, "FRESHET_READ_TOKEN": READ_TOKEN,
                                  "FRESHET_SPEC": str(SPEC)})  # fmt: skip
    assert env_out.returncode == 0, env_out.stderr
    assert json.dumps(["prod-1"]) in env_out.stdout


def test_cli_warns_on_a_spec_mismatch_and_fails_clearly(shop: Any, tmp_path: Path) -> None:
    edge, url, ids = shop
    changed = tmp_path / "features.toml"
    changed.write_text(SPEC.read_text().replace('ttl = "1d"', 'ttl = "3d"', 1))
    out = run_cli("features", "user", ids[2], "--url", url, "--spec", str(changed), "--edge-url", edge.base)
    assert out.returncode == 0
    assert "warning: spec mismatch" in out.stderr
    # Under the changed ttl the value is no longer stale: the warning matters.
    row = next(line for line in out.stdout.splitlines() if line.split()[0] == "last_interacted_product")
    assert not row.endswith("STALE")
    bad = run_cli("features", "user", "x", "--url", url, "--spec", str(SPEC), "--names", "nope")
    assert bad.returncode == 1 and "UnknownFeature" in bad.stderr


def test_module_runs_as_python_m() -> None:
    out = subprocess.run([sys.executable, "-m", "freshet", "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "features" in out.stdout


def test_reads_as_of_another_time(shop: Any) -> None:
    _, url, ids = shop
    names = ["clicks_product_card", "clicks_product_card_7d", "last_interacted_product"]
    with freshet.FeatureStore(SPEC, url) as store:
        today = store.get_online_features("user", ids[:1], names)[0]
        later = store.get_online_features("user", ids[:1], names, now=now_ms() + 8 * DAY)[0]
    assert [today[n].value for n in names] == [1, 1, "prod-1"]
    # A week on, the click left the 7-day window; the total stays; the last product is past its 1-day ttl.
    assert [later[n].value for n in names] == [1, 0, "prod-1"]
    assert [later[n].stale for n in names] == [False, False, True]
