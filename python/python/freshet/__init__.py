"""Freshet's model side: read the features the edge computes, from Redis,
MongoDB or the edge's serving API, with the same values the edge serves;
make training data from the event log with the values that were served
(``get_historical_features``), check that they agree (``consistency``), and
give a new feature version its history (``backfill``); erase a person's
data (``erase``).

Every value is decided by ``freshet-core`` (Rust, through the ``_freshet``
extension); this package opens connections and shapes results.
"""

from freshet._freshet import (
    CorruptLog,
    CorruptState,
    FeatureValue,
    FreshetError,
    InvalidSpec,
    LogUnavailable,
    ReadPlan,
    Spec,
    StoreUnavailable,
    UnknownFeature,
    composite_id,
    split_composite_id,
)
from freshet.backfill import BackfillReport, backfill
from freshet.consistency import ConsistencyReport, Mismatch, consistency
from freshet.erasure import Erasure, erase, erasure_receipt
from freshet.history import get_historical_features
from freshet.migrate import MigrateReport, migrate
from freshet.response import OnlineResponse, RankingResponse
from freshet.store import FeatureStore, SpecCheck

__all__ = [
    "BackfillReport",
    "ConsistencyReport",
    "CorruptLog",
    "CorruptState",
    "Erasure",
    "FeatureStore",
    "FeatureValue",
    "FreshetError",
    "InvalidSpec",
    "LogUnavailable",
    "MigrateReport",
    "Mismatch",
    "OnlineResponse",
    "RankingResponse",
    "ReadPlan",
    "Spec",
    "SpecCheck",
    "StoreUnavailable",
    "UnknownFeature",
    "backfill",
    "composite_id",
    "consistency",
    "erase",
    "erasure_receipt",
    "get_historical_features",
    "migrate",
    "split_composite_id",
]
