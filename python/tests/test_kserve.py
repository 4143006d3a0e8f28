"""The KServe example (examples/kserve/model.py) started with
kserve.ModelServer, called over the v1 protocol: its predictions reflect
events sent through the edge a moment before."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SPEC, Edge, free_port, iso, now_ms, spawn, stop

MODEL = ROOT / "examples" / "kserve" / "model.py"


@pytest.fixture(scope="module")
def model_server(redis_edge: tuple[Edge, str], tmp_root: Path) -> Iterator[str]:
    _, url = redis_edge
    http, grpc = free_port(), free_port()
    log = tmp_root / f"kserve-{http}.log"
    env = {**os.environ, "FRESHET_STORE": url, "FRESHET_SPEC": str(SPEC)}
    proc = spawn([sys.executable, str(MODEL), "--http_port", str(http), "--grpc_port", str(grpc),
                  "--model_name", "freshet-user", "--workers", "1"], log, env=env)  # fmt: skip
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/v1/models/freshet-user", timeout=2) as r:
                if json.loads(r.read()).get("ready"):
                    break
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    else:
        stop(proc)
        raise RuntimeError(f"the model server did not start:\n{log.read_text(errors='replace')[-4000:]}")
    yield base
    stop(proc)


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
