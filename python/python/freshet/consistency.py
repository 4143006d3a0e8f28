"""``consistency``: are the features the online store serves those the event
log says it should serve? Reads a sample of (entity, feature) pairs online,
noting when, replays the log as of those times (core's replay, served view)
and compares value, update time and stale flag, as Chronon measures
online/offline consistency."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from freshet._freshet import Spec, log_entities, replay_log
from freshet._log import EDGE_DEFAULT_LOOKBACK, now_ms, open_log
from freshet.history import load_spec, parse_features
from freshet.store import FeatureStore

# One served value: (value, updated_at, stale).
Served = tuple[Any, "str | None", bool]


@dataclass(frozen=True)
class Mismatch:
    """One pair whose online value is not the replay's."""

    entity: str
    id: str
    feature: str
    read_at: int
    online: Served
    replayed: Served

    def __str__(self) -> str:
        def show(v: Served) -> str:
            value, updated, stale = v
            return f"{json.dumps(value, ensure_ascii=False)} (updated {updated or '-'}{', stale' if stale else ''})"

        return (
            f"{self.entity}:{self.feature} {self.id} read at {_iso(self.read_at)}: "
            f"online {show(self.online)}, replay {show(self.replayed)}"
        )


@dataclass
class ConsistencyReport:
    """Per feature (``entity:name``): pairs compared and pairs that matched."""

    compared: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    entities: int = 0

    @property
    def pairs(self) -> int:
        return sum(self.compared.values())

    @property
    def match_rate(self) -> float:
        """Matched pairs over compared pairs (1.0 when none were compared)."""
        return sum(self.matched.values()) / self.pairs if self.pairs else 1.0

    def rate(self, feature: str) -> float:
        n = self.compared.get(feature, 0)
        return self.matched.get(feature, 0) / n if n else 1.0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def lines(self) -> list[str]:
        """The report as the CLI prints it."""
        rows = [
            (f, f"{self.matched.get(f, 0)}/{n}", f"{100 * self.rate(f):.1f}%") for f, n in sorted(self.compared.items())
        ]
        rows.append(("all", f"{sum(self.matched.values())}/{self.pairs}", f"{100 * self.match_rate:.1f}%"))
        w0, w1 = (max(len(r[i]) for r in rows) for i in range(2))
        out = [
            f"{self.pairs} (entity, feature) pairs of {self.entities} entities, read online and replayed from the log"
        ]
        out += [f"  {a:<{w0}}  {b:>{w1}}  {c:>6}" for a, b, c in rows]
        out += [f"mismatch: {m}" for m in self.mismatches]
        return out


def _iso(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def consistency(
    sample: int = 100,
    *,
    url: str | None = None,
    log: str | os.PathLike[str] | None = None,
    read_token: str | None = None,
    spec: str | os.PathLike[str] | Spec = "features.toml",
    features: Sequence[str] | None = None,
    seed: int | None = None,
    start: int | None = None,
    timeout: float = 30.0,
    s3_endpoint: str | None = None,
) -> ConsistencyReport:
    """Reads ``sample`` (entity, feature) pairs online from the store at
    ``url`` (Redis, MongoDB or the edge; default ``$FRESHET_STORE``, else
    the log when it is the edge), the entities drawn from those seen in
    ``log`` (default ``$FRESHET_LOG``, else ``url`` when it is the edge),
    and compares each with the log's replay as of the read (served view).

    A read takes some time: a pair matches when the online value equals the
    replay as of the read's start or as of its end. A batch the edge
    received while a read was under way may still show as a mismatch (the
    edge stamps a batch's receive time before its store write completes):
    run it on a quiet moment, or again. ``features`` limits the pairs to
    those ``entity:name`` features; ``seed`` makes the sample repeatable.
    """
    if sample < 1:
        raise ValueError("sample at least one pair")
    parsed = load_spec(spec)
    url = url or os.environ.get("FRESHET_STORE")
    log = log or os.environ.get("FRESHET_LOG")
    if log is None and url and url.startswith(("http://", "https://")):
        log = url
    if url is None and isinstance(log, str) and log.startswith(("http://", "https://")):
        url = log
    if not url:
        raise ValueError("give the store's url (or set FRESHET_STORE)")
    if log is None:
        raise ValueError("give the event log (the edge's URL, s3://… or a folder; or set FRESHET_LOG)")
    wanted = parse_features(parsed, features) if features is not None else None
    source = open_log(log, read_token=read_token, timeout=timeout, s3_endpoint=s3_endpoint)
    if start is None and source.needs_start:
        start = now_ms() - EDGE_DEFAULT_LOOKBACK

    # The entities the log has features for, then the sample.
    seen = log_entities(parsed, source.pieces(start, None))
    names_of = {e: parsed.plan(e).columns for e in parsed.entities}
    if wanted is not None:
        names_of = {e: [n for we, n in wanted if we == e] for e in names_of}
    universe = [(e, i) for e, i in seen if names_of.get(e)]
    sizes = [len(names_of[e]) for e, _ in universe]
    total = sum(sizes)
    rng = random.Random(seed)
    picks = sorted(rng.sample(range(total), min(sample, total)))
    chosen: dict[str, dict[str, list[str]]] = {}  # entity -> id -> names
    at, k = 0, 0
    for (entity, id_), size in zip(universe, sizes, strict=True):
        while k < len(picks) and picks[k] < at + size:
            chosen.setdefault(entity, {}).setdefault(id_, []).append(names_of[entity][picks[k] - at])
            k += 1
        at += size

    # Online: one read per entity kind, its start and end noted.
    reads: dict[str, tuple[list[str], list[str], int, int, Any]] = {}
    with FeatureStore(parsed, url, read_token=read_token, timeout=timeout) as store:
        for entity, by_id in chosen.items():
            ids = list(by_id)
            names = list(dict.fromkeys(n for ns in by_id.values() for n in ns))
            began = now_ms()
            res = store.get_online_features(entity, ids, names, now=began)
            reads[entity] = (ids, names, began, now_ms(), res)

    # The replay as of each read's start and end.
    queries = []
    for entity, (ids, names, began, ended, _) in reads.items():
        queries.append(([(entity, n) for n in names], {entity: [i for i in ids for _ in (0, 1)]},
                        [t for _ in ids for t in (began, ended)]))  # fmt: skip
    last = max((r[3] for r in reads.values()), default=now_ms())
    answers, _, _ = replay_log(parsed, queries, source.pieces(start, last), "served") if queries else ([], 0, 0)

    report = ConsistencyReport(entities=sum(len(b) for b in chosen.values()))
    for (entity, (ids, names, began, _, res)), (values, stale, updated) in zip(reads.items(), answers, strict=True):
        for row, id_ in enumerate(ids):
            for name in chosen[entity][id_]:
                f = names.index(name)
                online_value = res[row][name]
                online: Served = (online_value.value, online_value.updated_at, online_value.stale)
                replays = [(values[f][2 * row + j], updated[f][2 * row + j], stale[f][2 * row + j]) for j in (0, 1)]
                key = f"{entity}:{name}"
                report.compared[key] = report.compared.get(key, 0) + 1
                if online in replays:
                    report.matched[key] = report.matched.get(key, 0) + 1
                else:
                    report.mismatches.append(Mismatch(entity, id_, name, began, online, replays[0]))
    return report
