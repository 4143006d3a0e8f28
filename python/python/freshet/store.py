"""``FeatureStore``: the online read API a model server calls."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from freshet._freshet import DEFAULT_DRIFT_SAMPLE_RATE, ReadPlan, Spec
from freshet._stores import EdgeStore, Part, Store, open_store
from freshet.response import OnlineResponse, RankingResponse

# A prediction path waits this long for the store before giving up.
DEFAULT_TIMEOUT = 0.5


@dataclass(frozen=True)
class SpecCheck:
    """The reader's spec hash beside the edge's (``GET /health``)."""

    local: str
    edge: str | None
    edge_url: str

    @property
    def matches(self) -> bool:
        return self.local == self.edge

    def __bool__(self) -> bool:
        return self.matches


class FeatureStore:
    """Reads features online, from ``url``: ``redis://`` or ``rediss://``
    (``?prefix=`` as the edge's URL takes it), ``mongodb://user:pass@host/db``,
    or the edge's serving API ``http(s)://…`` with ``read_token``.

    ``spec`` is the path of ``features.toml`` (or a :class:`Spec`). Every
    read is one round trip; a store that does not answer within ``timeout``
    seconds raises :class:`StoreUnavailable`. ``edge_url`` is the edge that
    :meth:`check_spec` compares with (the ``url`` itself when it is the edge).

    ``drift_sample_rate`` (default 0.01, the seed's 1 %) is the share of
    reads from Redis or MongoDB whose served values go into the drift
    summaries (README, "Drift"), written off the read path; 0 turns it off.
    Reads through the edge are sampled by the edge.
    """

    def __init__(
        self,
        spec: str | os.PathLike[str] | Spec = "features.toml",
        url: str | None = None,
        *,
        read_token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        edge_url: str | None = None,
        prefix: str | None = None,
        drift_sample_rate: float = DEFAULT_DRIFT_SAMPLE_RATE,
    ) -> None:
        if not 0.0 <= drift_sample_rate <= 1.0:
            raise ValueError("drift_sample_rate is a share of reads, from 0 to 1")
        self.spec = spec if isinstance(spec, Spec) else Spec(Path(spec).read_text(encoding="utf-8"))
        url = url or os.environ.get("FRESHET_STORE")
        if not url:
            raise ValueError("give the store's url (or set FRESHET_STORE)")
        self.url = url
        self.timeout = timeout
        read_token = read_token or os.environ.get("FRESHET_READ_TOKEN")
        self._store: Store = open_store(
            url, timeout=timeout, read_token=read_token, prefix=prefix, drift_sample_rate=drift_sample_rate
        )
        self.edge_url = edge_url or (url if urlsplit(url).scheme in ("http", "https") else None)
        self._read_token = read_token
        self._plans: dict[tuple[str, tuple[str, ...] | None], ReadPlan] = {}

    def __repr__(self) -> str:
        return f"FeatureStore(store={self._store.kind!r}, spec={self.spec.hash!r})"

    # ---- reads ----

    def _plan(self, entity: str, features: list[str] | None) -> ReadPlan:
        if isinstance(features, str):
            raise TypeError("features is a list of names, not one string")
        key = (entity, None if features is None else tuple(features))
        plan = self._plans.get(key)
        if plan is None:
            plan = self.spec.plan(entity, None if features is None else list(features))
            if len(self._plans) >= 1024:  # a model asks for a few lists; bound a caller that varies them
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def get_online_features(
        self, entity: str, ids: list[str], features: list[str] | None = None, *, now: int | None = None
    ) -> OnlineResponse:
        """The named features (all the entity's when None) of each id, as of
        ``now`` (ms since the epoch; the clock when None; the edge always
        reads as of its own clock)."""
        plan = self._plan(entity, features)
        ids = _ids(ids)
        rows = self._store.read([(plan, ids)], now)[0] if ids else []
        return OnlineResponse(entity, ids, plan.columns, rows)

    async def get_online_features_async(
        self, entity: str, ids: list[str], features: list[str] | None = None, *, now: int | None = None
    ) -> OnlineResponse:
        """As :meth:`get_online_features`, without blocking the event loop."""
        plan = self._plan(entity, features)
        ids = _ids(ids)
        rows = (await self._store.aread([(plan, ids)], now))[0] if ids else []
        return OnlineResponse(entity, ids, plan.columns, rows)

    def _ranking_parts(
        self,
        user_id: str,
        item_ids: list[str],
        user_features: list[str] | None,
        item_features: list[str] | None,
        pair_features: list[str] | None,
        user_entity: str,
        item_entity: str,
        pair_entity: str | None,
    ) -> list[Part]:
        if not isinstance(user_id, str) or not user_id:
            raise TypeError("user_id is one non-empty id")
        item_ids = _ids(item_ids)
        parts = [
            (self._plan(user_entity, user_features), [user_id]),
            (self._plan(item_entity, item_features), item_ids),
        ]
        if pair_features is not None or pair_entity is not None:
            # Resolved and keyed by core, as the edge's batch route does.
            pairs = self.spec.pair_entity(user_entity, item_entity, pair_entity)
            ids = self.spec.compose_ids(pairs, {user_entity: [user_id] * len(item_ids), item_entity: item_ids})
            parts.append((self._plan(pairs, pair_features), ids))
        return parts

    def get_ranking_features(
        self,
        user_id: str,
        item_ids: list[str],
        user_features: list[str] | None = None,
        item_features: list[str] | None = None,
        pair_features: list[str] | None = None,
        *,
        user_entity: str = "user",
        item_entity: str = "product",
        pair_entity: str | None = None,
        now: int | None = None,
    ) -> RankingResponse:
        """One user, many items and, when ``pair_features`` (or
        ``pair_entity``) is given, each (user, item) pair, in one round trip,
        for ranking. The pairs' entity is ``pair_entity``, or the spec's
        composite entity of exactly ``user_entity`` and ``item_entity``;
        ``pair_features=None`` with a ``pair_entity`` reads all its features.
        ``.pairs`` is aligned with ``.items`` (``None`` when no pair was asked)."""
        parts = self._ranking_parts(
            user_id, item_ids, user_features, item_features, pair_features, user_entity, item_entity, pair_entity
        )
        return _ranking(parts, self._store.read(parts, now))

    async def get_ranking_features_async(
        self,
        user_id: str,
        item_ids: list[str],
        user_features: list[str] | None = None,
        item_features: list[str] | None = None,
        pair_features: list[str] | None = None,
        *,
        user_entity: str = "user",
        item_entity: str = "product",
        pair_entity: str | None = None,
        now: int | None = None,
    ) -> RankingResponse:
        """As :meth:`get_ranking_features`, without blocking the event loop."""
        parts = self._ranking_parts(
            user_id, item_ids, user_features, item_features, pair_features, user_entity, item_entity, pair_entity
        )
        return _ranking(parts, await self._store.aread(parts, now))

    # ---- the skew guard ----

    def check_spec(self) -> SpecCheck:
        """Compares this reader's spec hash with the edge's (``GET /health``
        of ``edge_url``, or of ``url`` when it is the edge). Raises
        ``ValueError`` when there is no edge to ask, ``StoreUnavailable``
        when it does not answer."""
        if self.edge_url is None:
            raise ValueError(
                "no edge to compare with: a Redis or MongoDB store does not hold the spec; "
                "pass edge_url=… (the edge that writes to it)"
            )
        edge = EdgeStore(self.edge_url, timeout=self.timeout, read_token=self._read_token)
        health = edge.health()
        remote = health.get("spec")
        return SpecCheck(self.spec.hash, remote if isinstance(remote, str) else None, self.edge_url)

    # ---- lifetime ----

    def close(self) -> None:
        self._store.close()

    async def aclose(self) -> None:
        await self._store.aclose()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> FeatureStore:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _ids(ids: list[str]) -> list[str]:
    if isinstance(ids, str):
        raise TypeError("ids is a list of ids, not one string")
    ids = list(ids)
    if not all(isinstance(i, str) and i for i in ids):
        raise TypeError("every id is a non-empty string")
    return ids


def _ranking(parts: list[Part], rows: list[list[Any]]) -> RankingResponse:
    user, items, *pairs = (
        OnlineResponse(plan.entity, ids, plan.columns, part) for (plan, ids), part in zip(parts, rows, strict=True)
    )
    return RankingResponse(user, items, pairs[0] if pairs else None)
