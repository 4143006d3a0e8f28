"""Seed 2's registry against the seed's own SQL, in DuckDB: the generated
watch log (examples/media/watch_log.py) loaded as the seed's tables
(`watch_events`, `items`, `genres`) and queried with the seed's queries
(`computeUserWatchCount7d`, `computeItemPopularity`,
`computeUserGenrePreferences`, `NOW()` fixed) and plain SQL for the other
features; Freshet's values for the same events come from replaying them as
the edge logs batches, with examples/media/features.toml. Counts, modes and
last values must be equal, floats within 1e-9 relative (the genre vector,
kept in single precision, within 1e-6). `NOW()` is a midnight, where the day
buckets of the windows start, so the 7- and 14-day windows' edges agree with
the SQL's; the 30-day features' 6-day buckets reach back to WINDOW_30D.

The seed's genre query also keeps only the latest 100 watches (`LIMIT 100`),
which its prose does not say: the spec follows the prose, and so does the
query here (without the LIMIT). Seed 2 does not say how its preferred hour
breaks ties; the spec's description does (the earlier hour), and so does
the query."""

from __future__ import annotations

import importlib.util
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

import freshet

from conftest import ROOT

MEDIA = ROOT / "examples" / "media"
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
# The 30-day features keep 6-day buckets (`precision = "6d"` in the spec):
# their window starts where the bucket holding NOW - 30 days starts, up to 6
# days earlier, so the SQL's 30-day condition becomes `>= WINDOW_30D`.
_BUCKET = 6 * 86400
WINDOW_30D = datetime.fromtimestamp((int(NOW.timestamp()) - 30 * 86400) // _BUCKET * _BUCKET, tz=timezone.utc)


def watch_log(out: Path) -> int:
    spec = importlib.util.spec_from_file_location("watch_log", MEDIA / "watch_log.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    n: int = module.generate(out, users=80, items=120, days=40, now=NOW, seed=14)
    return n


def as_logged(out: Path) -> Path:
    """The ingest bodies as the edge logs them: one object per batch, each
    event a line with its batch's fields (no sentAt: times as sent)."""
    folder = out / "log"
    folder.mkdir()
    for n, body in enumerate(map(json.loads, (out / "batches.ndjson").read_text().splitlines())):
        received = max(e["timestamp"] for e in body["events"])
        lines = [
            json.dumps({"batchId": body["batchId"], "receivedAt": received, "writeKey": "dev", "verifiedUser": None,
                        "spec": None, "id": e["id"], "type": e["type"], "timestamp": e["timestamp"],
                        "clientId": e["clientId"], "sessionId": None, "userId": None, "payload": e["payload"]})
            for e in body["events"]
        ]  # fmt: skip
        (folder / f"{n:06d}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def seed_sql(
    out: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[tuple[str, str], float]]:
    db = duckdb.connect()
    db.execute(f"CREATE TABLE genres AS SELECT id, name, CAST(embedding AS DOUBLE[]) AS embedding "
               f"FROM read_csv('{out / 'genres.csv'}', header = true, columns = "
               "{'id': 'INTEGER', 'name': 'VARCHAR', 'embedding': 'VARCHAR'})")  # fmt: skip
    db.execute(f"CREATE TABLE items AS SELECT * FROM read_csv('{out / 'items.csv'}', header = true)")
    db.execute(f"CREATE TABLE watch_events AS SELECT user_id, item_id, CAST(watched_at AS TIMESTAMPTZ) AS watched_at, "
               f"watch_duration_min, progress FROM read_csv('{out / 'watch_events.csv'}', header = true)")  # fmt: skip
    now = f"TIMESTAMPTZ '{NOW.isoformat()}'"
    start30 = f"TIMESTAMPTZ '{WINDOW_30D.isoformat()}'"
    users: dict[str, dict[str, Any]] = {}
    # computeUserWatchCount7d
    for user, count in db.execute(
        f"SELECT user_id, COUNT(*) FROM watch_events WHERE watched_at > {now} - INTERVAL '7 days' GROUP BY user_id"
    ).fetchall():
        users.setdefault(user, {})["user_watch_count_7d"] = count
    # computeUserGenrePreferences, without its LIMIT 100 (the prose's feature)
    for user, vector in db.execute(f"""
        WITH w AS (
          SELECT w.user_id, g.embedding, w.watch_duration_min AS d
          FROM watch_events w JOIN items i ON w.item_id = i.id JOIN genres g ON i.genre_id = g.id
          WHERE w.watched_at >= {start30})
        , per_dim AS (
          SELECT user_id, k, SUM(embedding[k] * d) / SUM(d) AS v FROM w, range(1, 33) AS t(k) GROUP BY user_id, k)
        SELECT user_id, list(v ORDER BY k) FROM per_dim GROUP BY user_id
    """).fetchall():  # fmt: skip
        users.setdefault(user, {})["user_genre_preferences"] = vector
    for user, avg in db.execute(
        f"SELECT user_id, AVG(watch_duration_min) FROM watch_events WHERE watched_at >= {start30} GROUP BY user_id"
    ).fetchall():
        users.setdefault(user, {})["user_avg_watch_duration_min"] = avg
    for user, hour in db.execute("""
        SELECT user_id, arg_min(h, (-n, h)) FROM (
          SELECT user_id, EXTRACT(hour FROM watched_at AT TIME ZONE 'UTC') AS h, COUNT(*) AS n
          FROM watch_events GROUP BY ALL) GROUP BY user_id
    """).fetchall():  # fmt: skip
        users.setdefault(user, {})["user_preferred_hour"] = hour
    items: dict[str, dict[str, Any]] = {}
    # computeItemPopularity
    for item, raw in db.execute(f"""
        SELECT item_id, SUM(EXP(-0.1 * EXTRACT(EPOCH FROM ({now} - watched_at)) / 86400))
        FROM watch_events WHERE watched_at > {now} - INTERVAL '14 days' GROUP BY item_id
    """).fetchall():  # fmt: skip
        items.setdefault(item, {})["item_popularity_score"] = min(1.0, raw / 1000)
    for item, genre in db.execute("""
        SELECT w.item_id, arg_max(g.name, w.watched_at)
        FROM watch_events w JOIN items i ON w.item_id = i.id JOIN genres g ON i.genre_id = g.id GROUP BY w.item_id
    """).fetchall():  # fmt: skip
        items.setdefault(item, {})["item_genre"] = genre
    # user_item_watch_progress: the progress of the latest watch per user and item (ties: none in the log).
    pairs: dict[tuple[str, str], float] = {}
    for user, item, progress, ties in db.execute("""
        SELECT user_id, item_id, arg_max(progress, watched_at), COUNT(*) FILTER (WHERE watched_at = latest) FROM (
          SELECT *, MAX(watched_at) OVER (PARTITION BY user_id, item_id) AS latest FROM watch_events) GROUP BY ALL
    """).fetchall():  # fmt: skip
        assert ties == 1, (user, item)
        pairs[(user, item)] = progress
    return users, items, pairs


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_the_media_spec_gives_the_seed_sqls_values(tmp_path: Path) -> None:
    events = watch_log(tmp_path)
    assert events > 1000
    users, items, pairs = seed_sql(tmp_path)
    log = as_logged(tmp_path)
    at = pd.Timestamp(NOW)
    user_ids = sorted(users)
    user_names = ["user_watch_count_7d", "user_genre_preferences", "user_avg_watch_duration_min",
                  "user_preferred_hour"]  # fmt: skip
    got = freshet.get_historical_features(
        pd.DataFrame({"user": user_ids, "event_timestamp": at}), [f"user:{n}" for n in user_names], log=log,
        spec=MEDIA / "features.toml", as_of="event_time")  # fmt: skip
    checked = 0
    for row in got.to_dict("records"):
        want = users[row["user"]]
        assert row["user_watch_count_7d"] == want.get("user_watch_count_7d", 0), row["user"]
        assert row["user_preferred_hour"] == want["user_preferred_hour"], row["user"]
        if "user_avg_watch_duration_min" in want:
            assert close(row["user_avg_watch_duration_min"], want["user_avg_watch_duration_min"]), row["user"]
            assert len(row["user_genre_preferences"]) == 32
            # Kept in single precision (`float = "f32"`): within ~1e-6 of the SQL's doubles.
            for a, b in zip(row["user_genre_preferences"], want["user_genre_preferences"], strict=True):
                assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (row["user"], a, b)
            checked += 1
    assert checked > 40, checked

    item_ids = sorted(items)
    got = freshet.get_historical_features(
        pd.DataFrame({"item": item_ids, "event_timestamp": at}), ["item:item_popularity_score", "item:item_genre"],
        log=log, spec=MEDIA / "features.toml", as_of="event_time")  # fmt: skip
    scored = 0
    for row in got.to_dict("records"):
        want = items[row["item"]]
        assert row["item_genre"] == want["item_genre"], row["item"]
        assert close(row["item_popularity_score"], want.get("item_popularity_score", 0.0)), row
        scored += "item_popularity_score" in want
    assert scored > 30, scored

    # Per user and item: the entity_df names the user and the item, and core
    # builds the `user_item` ids from them. Pairs no one watched read 0.
    watched = sorted(pairs)
    unwatched = [(u, i) for u in user_ids[:3] for i in item_ids[:40] if (u, i) not in pairs][:20]
    rows = watched + unwatched
    got = freshet.get_historical_features(
        pd.DataFrame({"user": [u for u, _ in rows], "item": [i for _, i in rows], "event_timestamp": at}),
        ["user_item:user_item_watch_progress"], log=log, spec=MEDIA / "features.toml", as_of="event_time")  # fmt: skip
    progress = got["user_item_watch_progress"].tolist()
    assert progress == [pairs[p] for p in watched] + [0] * len(unwatched)
    assert len(watched) > 500 and len(unwatched) == 20, (len(watched), len(unwatched))
