#!/usr/bin/env python3
"""A realistic watch log for seed 2's media spec (features.toml beside this).

Writes, into one folder, the seed's tables and the same events as ingest
bodies, so one log can be checked both ways (the seed's SQL over the tables,
Freshet over the batches):

- genres.csv       id, name, embedding (JSON array of 32 numbers)
- items.csv        id, title, genre_id
- watch_events.csv user_id, item_id, watched_at (RFC 3339, UTC), watch_duration_min, progress
- batches.ndjson   one `POST /v1/ingest` body per line: a user's session of
                   `watch` events whose payload carries what the page shows
                   (itemId, genre, genreEmbedding, watchDurationMin, progress)

Users have a favourite hour (most watch in the evening), a taste over genres
and a taste for long or short sittings; items are Zipf-popular and each has
one genre. The log spans `--days` (40) days before `--now`. Deterministic for
a `--seed`. Standard library only.

The batches carry no `sentAt`, so no clock-skew correction moves their times.
The edge refuses events more than 7 days older than it receives them (its
default limit): replay takes the whole log, the edge the last week.

    python3 examples/media/watch_log.py --out /tmp/media --users 200 --items 500
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

GENRES = ["drama", "comedy", "action", "documentary", "thriller", "animation", "horror", "romance"]
DIM = 32


def rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def generate(out: Path, users: int, items: int, days: int, now: datetime, seed: int) -> int:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)

    embeddings = [[round(rng.gauss(0, 1), 6) for _ in range(DIM)] for _ in GENRES]
    with open(out / "genres.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "embedding"])
        for gid, name in enumerate(GENRES):
            w.writerow([gid, name, json.dumps(embeddings[gid])])

    item_genre = [rng.choices(range(len(GENRES)), weights=[5, 4, 4, 2, 3, 2, 1, 2])[0] for _ in range(items)]
    item_length = [rng.choice([22, 45, 95, 120, 150]) for _ in range(items)]
    with open(out / "items.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "genre_id"])
        for i in range(items):
            w.writerow([f"v-{i}", f"Title {i}", item_genre[i]])
    # Zipf popularity over items, shuffled so popularity is not the id order.
    order = list(range(items))
    rng.shuffle(order)
    popularity = [0.0] * items
    for rank, i in enumerate(order):
        popularity[i] = 1.0 / (rank + 1)

    start = now - timedelta(days=days)
    rows = []
    batches = []
    for u in range(users):
        user = f"u-{u}"
        hour = rng.choice([19, 20, 20, 21, 21, 22, 12, 7])
        taste = [rng.random() ** 2 for _ in GENRES]
        sitting = rng.uniform(0.3, 1.0)
        weights = [popularity[i] * (0.05 + taste[item_genre[i]]) for i in range(items)]
        cumulative = list(itertools.accumulate(weights))
        sessions = rng.randint(2, 3 * days)
        for s in range(sessions):
            day = start + timedelta(days=rng.uniform(0, days))
            local = day.replace(hour=hour, minute=0, second=0, microsecond=0)
            t = local + timedelta(minutes=rng.gauss(0, 75))
            if not (start < t < now):
                continue
            events = []
            for k in range(rng.randint(1, 4)):
                i = rng.choices(range(items), cum_weights=cumulative)[0]
                length = item_length[i]
                progress = round(min(1.0, max(0.02, rng.betavariate(2 * sitting + 0.5, 1.2))), 3)
                minutes = round(length * progress, 1)
                if t >= now:
                    break
                rows.append([user, f"v-{i}", rfc3339(t), minutes, progress])
                events.append({
                    "id": f"w-{u}-{s}-{k}",
                    "type": "watch",
                    "timestamp": rfc3339(t),
                    "clientId": user,
                    "payload": {
                        "itemId": f"v-{i}",
                        "genre": GENRES[item_genre[i]],
                        "genreEmbedding": embeddings[item_genre[i]],
                        "watchDurationMin": minutes,
                        "progress": progress,
                    },
                })
                t += timedelta(minutes=minutes + rng.uniform(1, 10))
            if events:
                batches.append((events[0]["timestamp"], {"batchId": f"b-{u}-{s}", "events": events}))

    rows.sort(key=lambda r: r[2])
    with open(out / "watch_events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "watched_at", "watch_duration_min", "progress"])
        w.writerows(rows)
    batches.sort(key=lambda b: b[0])
    with open(out / "batches.ndjson", "w") as f:
        for _, body in batches:
            f.write(json.dumps(body, separators=(",", ":")) + "\n")
    return len(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder to write the files into")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--days", type=int, default=40)
    p.add_argument("--now", default="2026-11-22T00:00:00Z", help="the log ends here (RFC 3339)")
    p.add_argument("--seed", type=int, default=14)
    a = p.parse_args()
    now = datetime.fromisoformat(a.now.replace("Z", "+00:00"))
    n = generate(a.out, a.users, a.items, a.days, now, a.seed)
    print(f"{n} watch events by {a.users} users over {a.days} days into {a.out}")


if __name__ == "__main__":
    main()
