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
request. The score is a stand-in (the trained model is a later issue).
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import kserve
from kserve import model_server

import freshet

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


def main() -> None:
    # KServe's own flags (--http_port, --grpc_port, --model_name, …).
    args, _ = argparse.ArgumentParser(parents=[model_server.parser], add_help=False).parse_known_args()
    store = freshet.FeatureStore(
        spec=os.environ.get("FRESHET_SPEC", "features.toml"),
        url=os.environ["FRESHET_STORE"],
        read_token=os.environ.get("FRESHET_READ_TOKEN"),
        timeout=float(os.environ.get("FRESHET_TIMEOUT", "0.5")),
    )
    model = FreshetUserModel(args.model_name, store)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
