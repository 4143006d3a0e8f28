"""``freshet migrate``: moves a Redis store written before layout 2 (issue
23's compact layout) into layout 2, then marks the store so that readers
stop looking for layout 1.

The edge moves an entity on its first write after the upgrade, and reads
fall back to layout 1 for an entity layout 2 holds nothing of, so a store
works without this command; running it once makes every read one round
trip again. Each entity moves as the edge moves it: ``WATCH`` its layout-1
keys, read them, then core's one script call in ``MULTI``/``EXEC`` (an edge
of the version before writing meanwhile aborts it, and the move is tried
again). Live batch markers move with the state, so a batch applied before
the move still counts once after it. Run it once every edge runs this
version: an older edge would write layout 1 again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from freshet._freshet import (
    Spec,
    StoreUnavailable,
    redis_cluster,
    redis_key_prefix,
    redis_layout1_entity,
    redis_layout1_scans,
    redis_layout_mark_key,
    redis_migrate_call,
    redis_migrate_reads,
    redis_migrate_watch,
)

# Tries per entity when a write of an older edge aborts the move.
ATTEMPTS = 5


@dataclass
class MigrateReport:
    """What a migration did: entities moved, and those left in layout 1
    (an entity the spec does not know, or one whose move kept being aborted)."""

    prefix: str
    moved: int = 0
    left: list[str] = field(default_factory=list)
    marked: bool = False
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"moved {self.moved} entities to layout 2 under prefix {self.prefix!r} in {self.seconds:.1f} s"]
        for key in self.left:
            out.append(f"left in layout 1: {key}")
        if self.marked:
            out.append(f"marked the store as layout 2 ({redis_layout_mark_key(self.prefix)[0]}): reads skip layout 1")
        else:
            out.append("the store is not marked: readers still look for layout 1 where layout 2 holds nothing")
        return out


def migrate(url: str, *, spec: str | Path | Spec, prefix: str | None = None, now: int | None = None) -> MigrateReport:
    """Moves every layout-1 entity under the URL's key prefix to layout 2
    and, when none is left, sets the store's layout mark."""
    import redis

    if not isinstance(spec, Spec):
        spec = Spec(Path(spec).read_text(encoding="utf-8"))
    prefix = prefix or redis_key_prefix(url)
    if redis_cluster(url) is not None:
        raise ValueError(
            "a Redis Cluster store is in layout 2 from the start (no edge before this one wrote to a cluster): "
            "nothing to migrate"
        )
    plain = urlunsplit(urlsplit(url)._replace(query=""))
    report = MigrateReport(prefix)
    started = time.monotonic()
    entities = set(spec.entities)
    client = redis.Redis.from_url(plain)
    try:
        seen: set[tuple[str, str]] = set()
        for pattern, kind in redis_layout1_scans(prefix):
            for key in client.scan_iter(match=pattern, count=1000, _type=kind):
                text = key.decode("utf-8", "replace")
                named = redis_layout1_entity(prefix, text)
                if named is None or named in seen:
                    continue
                seen.add(named)
                entity, id = named
                if entity not in entities:
                    report.left.append(f"{text} (entity {entity!r} is not in the spec)")
                elif _move(client, spec, prefix, entity, id, now):
                    report.moved += 1
                else:
                    report.left.append(f"{text} (written by another edge at every try)")
        if not report.left:
            mark, value = redis_layout_mark_key(prefix)
            client.set(mark, value)
            report.marked = True
    except redis.RedisError as e:
        raise StoreUnavailable(f"Redis: {type(e).__name__}: {e}") from e
    finally:
        client.close()
    report.seconds = time.monotonic() - started
    return report


def _move(client: Any, spec: Spec, prefix: str, entity: str, id: str, now: int | None) -> bool:
    import redis

    with client.pipeline() as pipe:
        for _ in range(ATTEMPTS):
            try:
                pipe.watch(*redis_migrate_watch(spec, prefix, entity, id))
                replies = [pipe.execute_command(*c) for c in redis_migrate_reads(spec, prefix, entity, id)]
                at = now if now is not None else int(time.time() * 1000)
                call = redis_migrate_call(spec, prefix, entity, id, replies, at)
                pipe.multi()
                pipe.execute_command(*call)
                pipe.execute()
                return True
            except redis.WatchError:
                continue
    return False
