"""A KServe model server that reads the visitor's live features from Freshet
at prediction time and scores them.

Run it (the store URL and read token from the environment, as a Secret gives
them in the cluster):

    FRESHET_STORE=redis://127.0.0.1:6379/0 FRESHET_SPEC=features.toml \\
        python examples/kserve/model.py --model_name freshet-user --http_port 8080 --grpc_port 8081

    curl -s localhost:8080/v1/models/freshet-user:predict \\
        -d '{"instances": [{"userId": "cid-1"}]}'

`predict` is async and reads through `get_online_features_async`: KServe
calls predict on its event loop, so a blocking read would stall every
request. Its score is a stand-in engagement score.

With `FRESHET_MODEL` naming an artifact of train.py, the server also serves
`freshet-ranker`, the shop's trained ranker: one visitor and the candidate
products in, a score per candidate out, from the visitor's, the products'
and the (visitor, product) pairs' features read in one round trip
(`get_ranking_features_async`). It refuses to start when the artifact was
trained on another spec than the store's (or the edge's, when it can ask):

    curl -s localhost:8080/v1/models/freshet-ranker:predict \
        -d '{"instances": [{"userId": "cid-1", "candidates": ["prod-1", "prod-4"]}]}'
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import kserve
from kserve import model_server
from kserve.errors import InvalidInput

import freshet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog import Product
from ranking import COLUMNS, rows_for

FEATURES = [
    "pageviews",
    "clicks_product_card_7d",
    "cart_value_1h",
    "viewed_categories",
    "last_interacted_product",
]


def score(row: dict[str, freshet.FeatureValue]) -> float:
    """Engagement in [0, 1): more views, clicks and cart value score higher."""
    x = (
        0.1 * row["pageviews"].value
        + 0.5 * row["clicks_product_card_7d"].value
        + 0.01 * row["cart_value_1h"].value
        + 0.2 * len(row["viewed_categories"].value)
    )
    return 1 - math.exp(-x)


class FreshetUserModel(kserve.Model):
    """v1 protocol: `{"instances": [{"userId": "…"}, …]}` in, one prediction
    per instance out, with the features it was computed from."""

    def __init__(self, name: str, store: freshet.FeatureStore) -> None:
        super().__init__(name)
        self.store = store

    def load(self) -> bool:
        self.ready = True
        return self.ready

    async def predict(
        self,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ids = [str(instance["userId"]) for instance in payload["instances"]]
        res = await self.store.get_online_features_async("user", ids, FEATURES)
        return {
            "predictions": [
                {
                    "userId": user_id,
                    "score": score(row),
                    "features": {name: v.value for name, v in row.items()},
                    "stale": sorted(name for name, v in row.items() if v.stale),
                }
                for user_id, row in zip(ids, res, strict=True)
            ]
        }


class SpecMismatch(SystemExit):
    """The artifact was trained on features of another spec: serving it would feed it other numbers."""


class FreshetRanker(kserve.Model):
    """v1 protocol: `{"instances": [{"userId": "…", "candidates": ["prod-1", …]}]}`
    in; per instance `{"userId", "scores": [one per candidate, in order],
    "ranked": [candidates, best first], "coldStart": the store knows nothing
    of this visitor}` out. A visitor or product the store does not know
    reads as the spec's defaults and is scored like any other."""

    def __init__(self, name: str, store: freshet.FeatureStore, artifact: dict[str, Any]) -> None:
        super().__init__(name)
        self.store = store
        self.artifact = artifact
        self.model = artifact["model"]
        self.catalog = {p["id"]: Product(**p) for p in artifact["catalog"]}
        self.category_of = {p.id: p.category for p in self.catalog.values()}

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def product(self, product_id: str) -> Product:
        return self.catalog.get(product_id) or Product(product_id, product_id, "", 0)

    async def rank(self, user_id: str, candidates: list[str]) -> dict[str, Any]:
        a = self.artifact
        res = await self.store.get_ranking_features_async(
            user_id, candidates, a["user_features"], a["item_features"], a["pair_features"]
        )
        assert res.pairs is not None
        now = time.time_ns() // 1_000_000
        user = {k: v.value for k, v in res.user[0].items()}
        items = [{k: v.value for k, v in row.items()} for row in res.items]
        pairs = [{k: v.value for k, v in row.items()} for row in res.pairs]
        x = rows_for(user, items, pairs, [self.product(c) for c in candidates], self.category_of, now)
        scores = [float(s) for s in self.model.predict_proba(x)[:, 1]] if x else []
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return {
            "userId": user_id,
            "scores": scores,
            "ranked": [candidates[i] for i in order],
            "coldStart": all(v.updated_at is None for v in res.user[0].values()),
        }

    async def predict(
        self,
        payload: dict[str, Any] | bytes,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if isinstance(payload, (bytes, str)):  # a body sent without `content-type: application/json`
            try:
                payload = json.loads(payload)
            except ValueError as e:
                raise InvalidInput(f"the body is not JSON: {e}") from e
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(instances, list):
            raise InvalidInput('the body is {"instances": [{"userId": …, "candidates": [ids]}]}')
        parsed = []
        for i, instance in enumerate(instances):
            user = instance.get("userId") if isinstance(instance, dict) else None
            candidates = instance.get("candidates") if isinstance(instance, dict) else None
            if not isinstance(user, str) or not user:
                raise InvalidInput(f"instance {i}: userId is a non-empty string")
            if not isinstance(candidates, list) or not all(isinstance(c, str) and c for c in candidates):
                raise InvalidInput(f"instance {i}: candidates is a list of non-empty product ids")
            parsed.append((user, candidates))
        return {"predictions": [await self.rank(user, candidates) for user, candidates in parsed]}


def load_artifact(path: str, store: freshet.FeatureStore) -> dict[str, Any]:
    """The artifact, once its spec hash is the store's (and the edge's, when
    the store is the edge or `FRESHET_EDGE_URL` names it) and its columns are
    the ones ranking.py computes."""
    import joblib

    artifact: dict[str, Any] = joblib.load(path)
    trained = artifact.get("spec_hash")
    if trained != store.spec.hash:
        raise SpecMismatch(
            f"{path} was trained on spec {trained}, the store's spec is {store.spec.hash}: "
            "retrain it (examples/kserve/train.py) on the spec the edge runs"
        )
    if store.edge_url is not None:
        check = store.check_spec()
        if not check.matches:
            raise SpecMismatch(
                f"{path} was trained on spec {trained}, the edge at {check.edge_url} runs spec {check.edge}: "
                "deploy the edge with this spec or retrain on the edge's"
            )
    if artifact.get("columns") != COLUMNS:
        raise SpecMismatch(f"{path} takes columns {artifact.get('columns')}, ranking.py computes {COLUMNS}: retrain it")
    return artifact


def main() -> None:
    # KServe's own flags (--http_port, --grpc_port, --model_name, …).
    args, _ = argparse.ArgumentParser(parents=[model_server.parser], add_help=False).parse_known_args()
    store = freshet.FeatureStore(
        spec=os.environ.get("FRESHET_SPEC", "features.toml"),
        url=os.environ["FRESHET_STORE"],
        read_token=os.environ.get("FRESHET_READ_TOKEN"),
        timeout=float(os.environ.get("FRESHET_TIMEOUT", "0.5")),
        edge_url=os.environ.get("FRESHET_EDGE_URL"),
    )
    model = FreshetUserModel(args.model_name, store)
    model.load()
    models: list[kserve.Model] = [model]
    if os.environ.get("FRESHET_MODEL"):
        ranker = FreshetRanker("freshet-ranker", store, load_artifact(os.environ["FRESHET_MODEL"], store))
        ranker.load()
        models.append(ranker)
    kserve.ModelServer().start(models)


if __name__ == "__main__":
    main()
