"""Freshet's model side: read the features the edge computes, from Redis,
MongoDB or the edge's serving API, with the same values the edge serves.

Every value is decided by ``freshet-core`` (Rust, through the ``_freshet``
extension); this package opens connections and shapes results.
"""

from freshet._freshet import (
    CorruptState,
    FeatureValue,
    FreshetError,
    InvalidSpec,
    ReadPlan,
    Spec,
    StoreUnavailable,
    UnknownFeature,
)
from freshet.response import OnlineResponse, RankingResponse
from freshet.store import FeatureStore, SpecCheck

__all__ = [
    "CorruptState",
    "FeatureStore",
    "FeatureValue",
    "FreshetError",
    "InvalidSpec",
    "OnlineResponse",
    "RankingResponse",
    "ReadPlan",
    "Spec",
    "SpecCheck",
    "StoreUnavailable",
    "UnknownFeature",
]
