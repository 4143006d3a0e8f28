"""The edge on a MongoDB replica set whose primary moves twice while shop
traffic flows (the two-member stand-in of mongo_members.py in front of
SecantusDB, through the StoreGateway objects that hold pooled connections),
each batch sent until the edge takes it and once more after; then
`freshet consistency` against the edge's log at 100%: nothing lost, nothing
doubled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mongo_members import ReplicaSet
from test_cluster import Sender

import freshet

from conftest import READ_TOKEN, SPEC, MongoServer, start_edge, stop


@pytest.fixture
def members(mongo_server: MongoServer) -> Iterator[ReplicaSet]:
    members = ReplicaSet(mongo_server.port)
    yield members
    members.close()


def test_the_primary_moving_twice_under_traffic_loses_and_doubles_nothing(
    mongo_server: MongoServer, members: ReplicaSet, tmp_root: Path
) -> None:
    # The first seed is a secondary from the start: its hello names the primary.
    members.primary = 1
    url = (f"mongodb://freshet:{mongo_server.password}@{members.address(0)},{members.address(1)}/"
           f"{mongo_server.db}?authSource=admin&replicaSet=rs0")  # fmt: skip
    edge = start_edge(tmp_root, url)
    try:
        sender = Sender(edge)
        sender.start()
        flowing, turned_away = [], []
        try:
            for primary in (0, 1):
                time.sleep(1.5)
                flowing.append(sender.batches)
                turned_away.append(members.turned_away)
                members.primary = primary
            time.sleep(1.5)
            flowing.append(sender.batches)
            turned_away.append(members.turned_away)
        finally:
            sender.stopping.set()
            sender.join(timeout=300)
        assert sender.error is None, sender.error
        # Batches went through before, between and after the moves, and after
        # each move the old primary turned the edge away (a pooled connection's
        # command refused, or a new connection's handshake; which of the two
        # depends on whether the pool kept its connections, so both count).
        assert flowing[0] < flowing[1] < flowing[2], flowing
        assert turned_away[0] < turned_away[1] < turned_away[2], turned_away
        print(f"{sender.batches} batches, {sender.refused} refused and sent again, turned away {turned_away}")
        # The log against the server itself (the members share it).
        report = freshet.consistency(100_000, url=mongo_server.url(), log=edge.base, read_token=READ_TOKEN,
                                     spec=SPEC, start=freshet._log.now_ms() - 7 * 86_400_000)  # fmt: skip
        assert report.mismatches == [] and report.match_rate == 1.0, report.mismatches[:5]
        assert report.compared["user:pageviews"] >= len(sender.users) // 2
    finally:
        stop(edge.proc)
