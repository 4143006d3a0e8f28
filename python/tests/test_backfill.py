"""Backfill of a new feature version across a deploy, on the real worker
under `wrangler dev` with each store: the old spec's edge takes traffic, the
next deploy's (the same worker build given the next spec in FRESHET_SPEC:
`pageviews@2`, page views and product clicks, marked `backfill = true`) takes over the same store and log, a batch
is retried across the deploy, and `freshet backfill` runs while live traffic
keeps arriving. The new version then equals a replay of the whole log from
scratch and the count by construction; `pageviews@1` is untouched; a second
run applies nothing."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import freshet
from freshet.cli import main

from conftest import READ_TOKEN, ROOT, Edge, MongoServer, RedisServer, iso, now_ms, start_edge, stop

# The next deploy's spec: the example's plus a version marked for backfill.
SPEC_V2_TEXT = (ROOT / "features.toml").read_text() + (
    Path(__file__).parent / "fixtures" / "backfill-version.toml"
).read_text()
ADMIN = "admin-" + secrets.token_hex(6)


def visit(user: str, n: int, at: int) -> list[dict[str, Any]]:
    """A page view and a product click."""
    base = {"clientId": user, "timestamp": iso(at)}
    return [
        {**base, "id": f"{user}-{n}-v", "type": "page_view", "payload": {"path": f"/p/{n}"}},
        {**base, "id": f"{user}-{n}-c", "type": "product_click", "payload": {"productId": f"prod-{n % 7}"}},
    ]


def served(edge: Edge, users: list[str], names: list[str]) -> dict[str, list[Any]]:
    """Each user's values of `names`, from the edge's serving API."""
    out = {}
    for u in users:
        features = edge.get(f"/v1/features/user/{u}?names={','.join(names)}")["features"]
        out[u] = [features[n]["value"] for n in names]
    return out


@pytest.mark.parametrize("store", ["durable-object", "redis", "mongo"])
def test_backfill_counts_each_batch_once_while_live_writes_go_on(
    store: str,
    tmp_root: Path,
    redis_server: RedisServer,
    mongo_server: MongoServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = {"durable-object": "durable-object", "redis": redis_server.url("bf_" + secrets.token_hex(4)),
           "mongo": mongo_server.url()}[store]  # fmt: skip
    persist = tmp_root / f"backfill-{store}"
    run = secrets.token_hex(4)
    users = [f"cid-bf-{run}-{i}" for i in range(5)]
    t0 = now_ms()
    visits = {u: 0 for u in users}

    old = start_edge(tmp_root, url, persist=persist)
    try:
        for n in range(24):
            user = users[n % len(users)]
            old.post_events(visit(user, n, t0 + n), batch_id=f"old-{run}-{n}")
            visits[user] += 1
        straddle = visit(users[0], 99, t0 + 99)
        old.post_events(straddle, batch_id=f"straddle-{run}")
        visits[users[0]] += 1
        assert served(old, users, ["pageviews@1"]) == {u: [visits[u]] for u in users}
    finally:
        stop(old.proc)

    new = start_edge(tmp_root, url, persist=persist, admin_token=ADMIN, extra_vars={"FRESHET_SPEC": SPEC_V2_TEXT})
    try:
        health = new.get("/health")
        assert health["spec"] == freshet.Spec(SPEC_V2_TEXT).hash
        # Its answer lost, the straddling batch is sent again to the new deploy.
        new.post_events(straddle, batch_id=f"straddle-{run}")

        def live() -> None:
            for n in range(100, 130):
                user = users[n % len(users)]
                new.post_events(visit(user, n, now_ms()), batch_id=f"new-{run}-{n}")
                visits[user] += 1

        writer = threading.Thread(target=live)
        writer.start()
        report = freshet.backfill("pageviews@2", edge=new.base, admin_token=ADMIN, read_token=READ_TOKEN,
                                  start=t0 - 60_000, chunk_bytes=4096)  # fmt: skip
        writer.join()
        # The old spec's 24 batches applied; the straddling one found applied by its retry.
        assert (report.applied, report.duplicates) == (24, 1), report
        assert report.requests > 1, report

        both = ["pageviews@1", "pageviews@2"]
        after = served(new, users, both)
        assert after == {u: [visits[u], 2 * visits[u]] for u in users}, (after, visits)
        # The new version equals a replay of the whole log, from scratch.
        rows = pd.DataFrame({"user": users, "event_timestamp": pd.Timestamp(now_ms() + 1000, unit="ms")})
        replayed = freshet.get_historical_features(rows, ["user:pageviews@2"], log=new.base, read_token=READ_TOKEN,
                                                   spec=freshet.Spec(SPEC_V2_TEXT), start=t0 - 60_000)  # fmt: skip
        assert list(replayed["pageviews@2"]) == [2 * visits[u] for u in users]

        # Again, through the CLI: everything found applied; the 30 batches the
        # new deploy logged were its live writes'.
        code = main(["backfill", "pageviews@2", "--edge", new.base, "--admin-token", ADMIN,
                     "--read-token", READ_TOKEN, "--start", str(t0 - 60_000)])  # fmt: skip
        assert code == 0
        assert capsys.readouterr().out.splitlines() == [
            "backfill pageviews@2: 55 logged batches in 1 request(s)",
            "  30 logged by the live spec (already written live)",
            "  0 entity updates applied, 25 found applied before",
        ]
        assert served(new, users, both) == after

        # Refusals say why and change nothing.
        with pytest.raises(freshet.StoreUnavailable, match="backfill = true"):
            freshet.backfill("pageviews@1", edge=new.base, admin_token=ADMIN, read_token=READ_TOKEN, start=t0)
        with pytest.raises(freshet.StoreUnavailable, match="401 unauthorized"):
            freshet.backfill("pageviews@2", edge=new.base, admin_token="wrong", read_token=READ_TOKEN, start=t0)
        assert served(new, users, both) == after
    finally:
        stop(new.proc)
