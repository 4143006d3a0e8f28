"""The KServe example (examples/kserve/model.py) started with
kserve.ModelServer, called over the v1 protocol: its predictions reflect
events sent through the edge a moment before. The shop's ranker is trained
here for real: seeded visits through the edge (traffic.py), the model from
the edge's event log (train.py), then served and asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import freshet

from conftest import READ_TOKEN, ROOT, SPEC, WRITE_KEY, Edge, free_port, iso, now_ms, spawn, stop

# Training the ranker (traffic through the edge, then the log read) takes a
# fixture half a minute here; give a loaded machine room.
pytestmark = pytest.mark.timeout(300)

KSERVE = ROOT / "examples" / "kserve"
MODEL = KSERVE / "model.py"
PRODUCTS = [f"prod-{i}" for i in range(1, 9)]
LENSES = {"prod-4", "prod-5", "prod-6"}


def start_model_server(url: str, tmp_root: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    http, grpc = free_port(), free_port()
    log = tmp_root / f"kserve-{http}.log"
    env = {**os.environ, "FRESHET_STORE": url, "FRESHET_SPEC": str(SPEC), **env}
    proc = spawn([sys.executable, str(MODEL), "--http_port", str(http), "--grpc_port", str(grpc),
                  "--model_name", "freshet-user", "--workers", "1"], log, env=env)  # fmt: skip
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/v1/models/freshet-user", timeout=2) as r:
                if json.loads(r.read()).get("ready"):
                    return base, proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"the model server did not start:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def model_server(redis_edge: tuple[Edge, str], tmp_root: Path) -> Iterator[str]:
    base, proc = start_model_server(redis_edge[1], tmp_root)
    yield base
    stop(proc)


@pytest.fixture(scope="module")
def trained(redis_edge: tuple[Edge, str], tmp_root: Path) -> dict[str, Any]:
    """Seeded visits through the edge, then the ranker trained from its log."""
    edge, _ = redis_edge
    artifact, metrics = tmp_root / "ranker.joblib", tmp_root / "ranker-metrics.json"
    for args in (
        ["traffic.py", "--edge", edge.base, "--write-key", WRITE_KEY, "--visitors", "300", "--seed", "3",
         "--visits-per-request", "25"],
        ["train.py", "--edge", edge.base, "--read-token", READ_TOKEN, "--out", str(artifact),
         "--metrics", str(metrics)],
    ):  # fmt: skip
        done = subprocess.run([sys.executable, *args], cwd=KSERVE, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return {"path": artifact, "metrics": json.loads(metrics.read_text())}


@pytest.fixture(scope="module")
def ranker(redis_edge: tuple[Edge, str], tmp_root: Path, trained: dict[str, Any]) -> Iterator[str]:
    base, proc = start_model_server(redis_edge[1], tmp_root, FRESHET_MODEL=str(trained["path"]))
    yield base
    stop(proc)


def rank(base: str, user: str, candidates: list[str]) -> dict[str, Any]:
    body = json.dumps({"instances": [{"userId": user, "candidates": candidates}]}).encode()
    req = urllib.request.Request(f"{base}/v1/models/freshet-ranker:predict", data=body,
                                 headers={"content-type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        prediction: dict[str, Any] = json.loads(r.read())["predictions"][0]
    return prediction


def predict(base: str, user_ids: list[str]) -> list[dict[str, Any]]:
    body = json.dumps({"instances": [{"userId": u} for u in user_ids]}).encode()
    req = urllib.request.Request(f"{base}/v1/models/freshet-user:predict", data=body,
                                 headers={"content-type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        predictions: list[dict[str, Any]] = json.loads(r.read())["predictions"]
    return predictions


def test_predictions_reflect_events_sent_a_moment_before(redis_edge: tuple[Edge, str], model_server: str) -> None:
    edge, _ = redis_edge
    user = f"cid-kserve-{os.urandom(3).hex()}"
    before = predict(model_server, [user])[0]
    assert before["features"]["pageviews"] == 0 and before["score"] == 0
    t = now_ms()
    edge.post_events([
        {"type": "page_view", "timestamp": iso(t - 300), "clientId": user, "payload": {}},
        {"type": "viewed_category", "timestamp": iso(t - 200), "clientId": user, "payload": {"category": "lenses"}},
        {"type": "product_click", "timestamp": iso(t - 100), "clientId": user,
         "payload": {"productId": "prod-9", "component": "ProductCard"}},
    ])  # fmt: skip
    after, other = predict(model_server, [user, "cid-nobody"])
    assert after["userId"] == user
    assert after["features"] == {
        "pageviews": 1,
        "clicks_product_card_7d": 1,
        "cart_value_1h": 0,
        "viewed_categories": ["lenses"],
        "last_interacted_product": "prod-9",
    }
    assert after["stale"] == [] and 0 < after["score"] < 1
    assert other["features"]["pageviews"] == 0


def test_training_reads_decisions_from_the_log_and_fresh_features_beat_twice_daily(trained: dict[str, Any]) -> None:
    import joblib

    m = trained["metrics"]
    assert m["decisions"] > 300 and m["held_out_decisions"] > 50
    assert m["candidates_per_decision"] == len(PRODUCTS)
    fresh, batch, popularity = (m["metrics"][k] for k in ("fresh", "twice_daily", "popularity_only"))
    # The visit's own clicks say most about the next one: fresh features must win clearly.
    assert fresh["mrr"] > batch["mrr"] + 0.03 and fresh["mrr"] > popularity["mrr"] + 0.03
    artifact = joblib.load(trained["path"])
    assert artifact["spec_hash"] == freshet.Spec(SPEC.read_text()).hash
    assert "recent_products" in artifact["user_features"] and artifact["pair_features"]


def test_ranker_follows_a_visitors_clicks_at_once(redis_edge: tuple[Edge, str], ranker: str) -> None:
    edge, _ = redis_edge
    user = f"cid-ranker-{os.urandom(3).hex()}"
    cold = rank(ranker, user, PRODUCTS)
    assert cold["coldStart"] is True and len(cold["scores"]) == len(PRODUCTS)
    assert all(0 <= s <= 1 for s in cold["scores"])
    t = now_ms()
    edge.post_events([
        {"type": "viewed_category", "timestamp": iso(t - 400), "clientId": user, "payload": {"category": "lenses"}},
    ] + [
        {"type": "product_click", "timestamp": iso(t - 300 + i), "clientId": user,
         "payload": {"productId": p, "component": "ProductCard"}}
        for i, p in enumerate(["prod-4", "prod-6", "prod-5"])
    ])  # fmt: skip
    warm = rank(ranker, user, PRODUCTS)
    assert warm["coldStart"] is False
    assert set(warm["ranked"][:3]) == LENSES, warm
    assert warm["ranked"] != cold["ranked"]


def test_ranker_scores_candidates_the_store_does_not_know(ranker: str) -> None:
    got = rank(ranker, "cid-nobody-at-all", ["prod-unknown", "prod-1"])
    assert got["coldStart"] is True
    assert len(got["scores"]) == 2 and all(isinstance(s, float) for s in got["scores"])
    assert sorted(got["ranked"]) == ["prod-1", "prod-unknown"]


def test_ranker_refuses_bad_instances(ranker: str) -> None:
    for body in ({"instances": [{"userId": "cid-1"}]}, {"instances": [{"candidates": ["prod-1"]}]}, {"x": 1}):
        req = urllib.request.Request(f"{ranker}/v1/models/freshet-ranker:predict", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 400
        assert "instance" in e.value.read().decode()
    # No content-type: KServe hands the body over as bytes; not JSON is refused, JSON is read.
    bad = urllib.request.Request(f"{ranker}/v1/models/freshet-ranker:predict", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=10)
    assert e.value.code == 400 and "not JSON" in e.value.read().decode()
    good = json.dumps({"instances": [{"userId": "cid-x", "candidates": ["prod-1"]}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{ranker}/v1/models/freshet-ranker:predict", data=good)) as r:
        assert len(json.loads(r.read())["predictions"][0]["scores"]) == 1


def test_ranker_refuses_to_start_on_another_spec(
    redis_edge: tuple[Edge, str], tmp_root: Path, trained: dict[str, Any]
) -> None:
    import joblib

    artifact = joblib.load(trained["path"])
    artifact["spec_hash"] = "0123456789abcdef"
    other = tmp_root / "ranker-other-spec.joblib"
    joblib.dump(artifact, other)
    env = {**os.environ, "FRESHET_STORE": redis_edge[1], "FRESHET_SPEC": str(SPEC), "FRESHET_MODEL": str(other)}
    done = subprocess.run([sys.executable, str(MODEL), "--http_port", str(free_port()), "--grpc_port",
                           str(free_port()), "--model_name", "freshet-user"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "trained on spec 0123456789abcdef" in done.stderr, done.stderr[-2000:]


def test_ranker_refuses_to_start_when_the_edge_runs_another_spec(
    redis_edge: tuple[Edge, str], tmp_root: Path, trained: dict[str, Any]
) -> None:
    import joblib

    # The artifact and the server's own spec agree, but the edge runs features.toml.
    edge, url = redis_edge
    spec = tmp_root / "features-next.toml"
    spec.write_text(
        SPEC.read_text()
        + '\n[[feature]]\nname = "wishlist_adds"\nentity = "user"\non = ["wishlist_add"]\nagg = "count"\n'
    )
    artifact = joblib.load(trained["path"])
    artifact["spec_hash"] = freshet.Spec(spec.read_text()).hash
    other = tmp_root / "ranker-next-spec.joblib"
    joblib.dump(artifact, other)
    env = {**os.environ, "FRESHET_STORE": url, "FRESHET_SPEC": str(spec), "FRESHET_MODEL": str(other),
           "FRESHET_EDGE_URL": edge.base, "FRESHET_READ_TOKEN": READ_TOKEN}  # fmt: skip
    done = subprocess.run([sys.executable, str(MODEL), "--http_port", str(free_port()), "--grpc_port",
                           str(free_port()), "--model_name", "freshet-user"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert f"the edge at {edge.base} runs spec {freshet.Spec(SPEC.read_text()).hash}" in done.stderr, done.stderr[
        -2000:
    ]
