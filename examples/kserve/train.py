"""Trains the shop's ranker from Freshet's event log and measures what
fresh features are worth.

Decisions and labels come from the log: every `recommendation_shown` event
is a decision over its `candidates`; its label is the next product the same
visitor clicked or added to the cart within 30 minutes, when that product
was among the candidates (decisions without such a click are left out).
Features come from `freshet.get_historical_features`, point in time, as of
event time (the traffic generator's visits carry simulated past times; see
traffic.py), for the visitor, each candidate and each (visitor, candidate)
pair.

The same model (the same columns, the same scikit-learn estimator and
settings) is trained and evaluated twice on the same decisions, split by
time (the latest quarter held out):

- fresh: features as of the moment of each decision (what Freshet serves);
- twice-daily: features as of the last 00:00 or 12:00 UTC cut before the
  decision (what a batch job twice a day would have served then).

The fresh model is saved as the artifact KServe serves (model.py), with the
spec hash and the feature lists it was trained on.

    python examples/kserve/train.py --edge http://127.0.0.1:8787 --read-token dev-read-token --out .state/ranker.joblib
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
from catalog import Product, load_catalog
from ranking import COLUMNS, ITEM_FEATURES, PAIR_FEATURES, USER_FEATURES, candidate_row
from sklearn.ensemble import HistGradientBoostingClassifier

import freshet
from freshet.drift import profile

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CUT = 12 * HOUR  # the batch job runs at 00:00 and 12:00 UTC
LABEL_WITHIN = 30 * MINUTE
HELD_OUT = 0.25


def read_log(edge: str, read_token: str, start: int, end: int) -> list[dict[str, Any]]:
    """Every logged event received in [start, end], from the edge's export
    route, paged through `Freshet-Next-From`."""
    events = []
    with httpx.Client(timeout=60, headers={"authorization": f"Bearer {read_token}"}) as client:
        page: int | None = start
        while page is not None:
            r = client.get(f"{edge}/v1/events", params={"from": page, "to": end})
            if r.status_code != 200:
                raise freshet.LogUnavailable(f"{edge}/v1/events: the edge answered {r.status_code}: {r.text[:300]}")
            events.extend(json.loads(line) for line in r.text.splitlines() if line.strip())
            following = r.headers.get("freshet-next-from")
            page = int(following) if following is not None else None
    return events


def ms(timestamp: str) -> int:
    return int(pd.Timestamp(timestamp).value // 1_000_000)


def decisions_from(events: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per decision with a label: visitor, time, candidates, the product chosen."""
    by_visitor: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for e in events:
        # The user entity's key: the verified userId, else the anonymous clientId.
        visitor = e.get("verifiedUser") or e["clientId"]
        by_visitor[visitor].append((ms(e["timestamp"]), e))
    rows = []
    for visitor, seq in by_visitor.items():
        seq.sort(key=lambda x: x[0])
        for i, (t, e) in enumerate(seq):
            if e["type"] != "recommendation_shown":
                continue
            candidates = [str(c) for c in e["payload"].get("candidates", [])]
            for t2, nxt in seq[i + 1 :]:
                if t2 - t > LABEL_WITHIN:
                    break
                if nxt["type"] in ("product_click", "add_to_cart"):
                    chosen = nxt["payload"].get("productId")
                    if chosen in candidates:
                        rows.append({"visitor": visitor, "t": t, "candidates": candidates, "chosen": chosen})
                    break
    return pd.DataFrame(rows).sort_values("t", ignore_index=True)


def candidate_frame(decisions: pd.DataFrame, cut: bool) -> pd.DataFrame:
    """One row per (decision, candidate), read as of the decision or as of the last cut before it."""
    rows = []
    for d, dec in decisions.iterrows():
        at = (dec.t // CUT) * CUT if cut else dec.t
        for c in dec.candidates:
            rows.append({"decision": d, "t": dec.t, "user": dec.visitor, "product": c, "label": int(c == dec.chosen),
                         "event_timestamp": pd.Timestamp(at, unit="ms", tz="UTC")})  # fmt: skip
    return pd.DataFrame(rows)


def feature_names() -> list[str]:
    return (
        [f"user:{f}" for f in USER_FEATURES]
        + [f"product:{f}" for f in ITEM_FEATURES]
        + [f"user_product:{f}" for f in PAIR_FEATURES]
    )


def write_baseline(path: Path, rows: pd.DataFrame, edge: str, read_token: str, spec: freshet.Spec, start: int) -> None:
    """The drift baseline of the training decisions (README, "Drift"): every
    feature of the spec as of each decision, not only the ranker's, so the
    edge has a baseline for each feature it serves."""
    every = [f"{e}:{n}" for e in spec.entities for n in spec.plan(e).columns]
    read = freshet.get_historical_features(rows, every, edge, read_token=read_token, as_of="event_time",
                                           spec=spec, full_feature_names=True, start=start)  # fmt: skip
    baseline, _ = profile(read, spec=spec, source="the demo ranker's training decisions")
    path.write_text(json.dumps(baseline) + "\n")
    print(f"baseline of {len(baseline['features'])} features: {path}")


def matrix(frame: pd.DataFrame, catalog: dict[str, Product], category_of: dict[str, str]) -> np.ndarray:
    out = []
    for r in frame.itertuples(index=False):
        row = r._asdict()
        user = {f: row[f"user__{f}"] for f in USER_FEATURES}
        item = {f: row[f"product__{f}"] for f in ITEM_FEATURES}
        pair = {f: row[f"user_product__{f}"] for f in PAIR_FEATURES}
        product = catalog.get(r.product) or Product(r.product, r.product, "", 0)
        out.append(candidate_row(user, item, pair, product, category_of, int(r.t)))
    return np.asarray(out, dtype=float)


def new_model() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0)


def ranking_metrics(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """Over decisions: hit@1 (the chosen product ranked first), MRR, and the
    chosen product's mean rank."""
    f = frame.assign(score=scores)
    hits, rr, ranks = [], [], []
    for _, g in f.groupby("decision", sort=False):
        order = g.sort_values("score", ascending=False, kind="stable")
        rank = int(np.flatnonzero(order.label.to_numpy() == 1)[0]) + 1
        hits.append(rank == 1)
        rr.append(1 / rank)
        ranks.append(rank)
    return {"decisions": len(hits), "hit_at_1": float(np.mean(hits)), "mrr": float(np.mean(rr)),
            "mean_rank": float(np.mean(ranks))}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edge", default="http://127.0.0.1:8787", help="the edge (its log export and spec)")
    ap.add_argument("--read-token", default="dev-read-token")
    ap.add_argument("--spec", default=str(ROOT / "features.toml"))
    ap.add_argument("--days", type=float, default=7.5, help="how much of the log to read, back from now")
    ap.add_argument("--out", default=str(ROOT / ".state" / "ranker.joblib"), help="where to write the artifact")
    ap.add_argument("--metrics", help="also write the metrics as JSON here")
    ap.add_argument("--baseline", help="also write the drift baseline of the training rows here (`freshet profile`)")
    args = ap.parse_args(argv)
    edge = args.edge.rstrip("/")
    started = time.monotonic()
    spec = freshet.Spec(Path(args.spec).read_text(encoding="utf-8"))
    now = time.time_ns() // 1_000_000
    start = now - int(args.days * DAY)
    events = read_log(edge, args.read_token, start, now)
    decisions = decisions_from(events)
    if len(decisions) < 50:
        print(f"only {len(decisions)} labelled decisions in the log: send traffic first (traffic.py)", file=sys.stderr)
        return 1
    split = int(decisions.t.quantile(1 - HELD_OUT))
    products = load_catalog()
    catalog = {p.id: p for p in products}
    category_of = {p.id: p.category for p in products}

    # Both regimes in one pass over the log.
    fresh, batch = candidate_frame(decisions, cut=False), candidate_frame(decisions, cut=True)
    both = pd.concat([fresh.assign(regime="fresh"), batch.assign(regime="twice_daily")], ignore_index=True)
    read = freshet.get_historical_features(both, feature_names(), edge, read_token=args.read_token, as_of="event_time",
                                           spec=spec, full_feature_names=True, start=start)  # fmt: skip
    results: dict[str, Any] = {}
    models = {}
    for regime in ("fresh", "twice_daily"):
        frame = read[read.regime == regime].reset_index(drop=True)
        x, y = matrix(frame, catalog, category_of), frame.label.to_numpy()
        train = (frame.t < split).to_numpy()
        model = new_model().fit(x[train], y[train])
        held = frame[~train].reset_index(drop=True)
        results[regime] = ranking_metrics(held, model.predict_proba(x[~train])[:, 1])
        if regime == "fresh":
            results["popularity_only"] = ranking_metrics(held, held["product__popularity_7d"].astype(float).to_numpy())
        models[regime] = model

    train_n = int((decisions.t < split).sum())
    summary = {
        "events": len(events),
        "decisions": len(decisions),
        "train_decisions": train_n,
        "held_out_decisions": len(decisions) - train_n,
        "split_at": pd.Timestamp(split, unit="ms", tz="UTC").isoformat(),
        "candidates_per_decision": float(decisions.candidates.map(len).mean()),
        "metrics": results,
        "seconds": round(time.monotonic() - started, 1),
    }
    artifact = {
        "model": models["fresh"],
        "spec_hash": spec.hash,
        "columns": COLUMNS,
        "user_features": USER_FEATURES,
        "item_features": ITEM_FEATURES,
        "pair_features": PAIR_FEATURES,
        "catalog": [p.__dict__ for p in products],
        "trained_at": pd.Timestamp(now, unit="ms", tz="UTC").isoformat(),
        "summary": summary,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(artifact, out)
    if args.baseline:
        write_baseline(Path(args.baseline), fresh, edge, args.read_token, spec, start)
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(summary, indent=2) + "\n")
    f, b, p = results["fresh"], results["twice_daily"], results["popularity_only"]
    print(f"{len(events)} events, {len(decisions)} decisions ({train_n} train, {len(decisions) - train_n} held out "
          f"from {summary['split_at']}), {summary['seconds']} s")  # fmt: skip
    print(f"{'features':<28} {'hit@1':>7} {'MRR':>7} {'mean rank':>10}")
    for name, m in (("fresh (as of the decision)", f), ("twice-daily (00:00/12:00)", b), ("popularity only", p)):
        print(f"{name:<28} {m['hit_at_1']:>7.3f} {m['mrr']:>7.3f} {m['mean_rank']:>10.2f}")
    print(f"artifact: {out} (spec {spec.hash})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
