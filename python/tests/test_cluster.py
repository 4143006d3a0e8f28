"""The edge and the Python reader on a real Redis Cluster (3 masters and 3
replicas on loopback, scripts/redis-cluster.sh). Shop traffic flows through
the edge under `wrangler dev` while `redis-cli --cluster reshard` moves
2,000 slots between masters and then a master fails over to its replica;
each batch is sent until the edge takes it (as the tracker resends a batch
under its id) and once more after. Then `freshet consistency` against the
edge's log at 100% (nothing lost, nothing doubled), and the Python reader
(redis-py's cluster client, sync and async) equal to the serving API."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from test_equality import PAIRS, assert_ranking_equals, assert_rows_equal

import freshet
from freshet._freshet import MAX_BATCH_ITEMS
from freshet.drift import drift

from conftest import READ_TOKEN, SPEC, Edge, RedisCluster, start_edge, stop
from shop import traffic


def cli(port: int, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def me(port: int) -> list[str]:
    """This node's line of `CLUSTER NODES`, split."""
    line = next(line for line in cli(port, "cluster", "nodes").splitlines() if "myself" in line)
    return line.split()


def slots(port: int) -> int:
    """How many slots this node serves (`a-b` and `a` fields of its line)."""
    n = 0
    for field in me(port)[8:]:
        if field.startswith("["):
            continue
        a, _, b = field.partition("-")
        n += int(b or a) - int(a) + 1
    return n


def explain(mismatches: list[Any], cluster: RedisCluster) -> str:
    """What a failure needs to be understood: every mismatch, where the
    missing entities' keys are on each node, and what the nodes logged of
    slots and failovers."""
    out = [str(m) for m in mismatches]
    for port in cluster.ports:
        out.append(f"node {port} ({cli(port, 'role').split()[0]}):")
        for id_ in sorted({m.id for m in mismatches}):
            for key in cli(port, "--scan", "--pattern", f"*{id_}*").splitlines():
                out.append(f"  {key} (slot {cli(port, 'cluster', 'keyslot', key)}, {cli(port, 'type', key)})")
    for log in sorted(cluster.dir.glob("node-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if any(w in line for w in ("slot", "ailover", "FAIL", "Deleting", "Configuration", "master")):
                out.append(f"{log.name}: {line}")
    return "\n".join(out)


class Sender(threading.Thread):
    """Sends batches of shop traffic until stopped, each until the edge
    takes it and then once more; keeps the ids it wrote and its refusals."""

    def __init__(self, edge: Edge) -> None:
        super().__init__(daemon=True)
        self.edge = edge
        self.stopping = threading.Event()
        self.users: list[str] = []
        self.products: list[str] = []
        self.batches = 0
        self.refused = 0
        self.error: BaseException | None = None

    def deliver(self, events: list[dict[str, Any]]) -> None:
        batch_id = secrets.token_hex(12)
        for _ in range(300):
            try:
                self.edge.post_events(events, batch_id)
                self.edge.post_events(events, batch_id)
                self.batches += 1
                return
            except urllib.error.HTTPError as e:
                if e.code != 503:
                    raise
            except (urllib.error.URLError, TimeoutError):
                pass
            self.refused += 1
            time.sleep(0.1)
        raise AssertionError("the edge never took a batch")

    def run(self) -> None:
        try:
            seed = 100
            while not self.stopping.is_set() or self.batches < 30:
                events, users, products = traffic(seed=seed, users=4, products=6)
                self.users += users
                self.products += products
                for i in range(0, len(events), 15):
                    self.deliver(events[i : i + 15])
                seed += 1
        except BaseException as e:  # reported by the test's thread
            self.error = e


@pytest.fixture(scope="module")
def moved(redis_cluster: RedisCluster, tmp_root: Any) -> Iterator[tuple[Edge, str, Sender]]:
    """The edge on the cluster, after traffic that went on through a reshard and a failover."""
    url = redis_cluster.url("c_" + secrets.token_hex(4))
    # Every serving read sampled: the drift summaries land on the cluster too.
    edge = start_edge(tmp_root, url, extra_vars={"FRESHET_DRIFT_SAMPLE_RATE": "1"})
    try:
        sender = Sender(edge)
        sender.start()
        try:
            time.sleep(2)
            first, second = redis_cluster.first, redis_cluster.first + 1
            before, flowing = slots(second), [sender.batches]
            subprocess.run(
                ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{first}", "--cluster-from", me(first)[0],
                 "--cluster-to", me(second)[0], "--cluster-slots", "2000", "--cluster-yes"],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
            assert slots(second) == before + 2000
            flowing.append(sender.batches)
            time.sleep(1)
            replica = next(p for p in redis_cluster.ports if "slave" in me(p)[2] and me(p)[3] == me(first)[0])
            # A manual failover not done within its own timeout (5 s: a replica that
            # could not catch up in time on a loaded machine) is asked for again, as an operator would.
            deadline, asks = time.monotonic() + 60, 0
            while not cli(replica, "role").startswith("master") and time.monotonic() < deadline:
                assert cli(replica, "cluster", "failover") == "OK"
                asks += 1
                for _ in range(120):
                    if cli(replica, "role").startswith("master"):
                        break
                    time.sleep(0.05)
            assert cli(replica, "role").startswith("master"), f"the replica never took over ({asks} requests)"
            flowing.append(sender.batches)
            time.sleep(2)
        finally:
            sender.stopping.set()
            sender.join(timeout=300)
        assert sender.error is None, sender.error
        # Batches went through during the reshard and during the failover.
        assert flowing[0] < flowing[1] < flowing[2], flowing
        print(f"{sender.batches} batches, {sender.refused} refused and sent again")
        yield edge, url, sender
    finally:
        stop(edge.proc)


def test_no_batch_is_lost_or_doubled_through_a_reshard_and_a_failover(
    moved: tuple[Edge, str, Sender], redis_cluster: RedisCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    edge, url, sender = moved
    assert sender.batches >= 30
    report = freshet.consistency(100_000, url=url, log=edge.base, read_token=READ_TOKEN, spec=SPEC,
                                 start=freshet._log.now_ms() - 7 * 86_400_000)  # fmt: skip
    if report.mismatches:
        # Shown whole: pytest's report cuts a long assertion message.
        with capsys.disabled():
            print(f"\n{explain(report.mismatches, redis_cluster)}")
    assert report.mismatches == [] and report.match_rate == 1.0
    assert report.compared["user:pageviews"] >= len(sender.users) // 2


async def test_the_cluster_reader_equals_the_serving_api(moved: tuple[Edge, str, Sender]) -> None:
    """Every entity, and a ranking read whose keys span the masters, as the edge serves them."""
    edge, url, sender = moved
    # As many items as one edge request holds (the sender made more the longer the changes took).
    users, products = sender.users, sender.products[:MAX_BATCH_ITEMS]
    user = users[1]
    ask = {"userId": user, "itemIds": products, "userFeatures": ["pageviews"], "itemFeatures": ["popularity_7d"],
           "pairFeatures": PAIRS}  # fmt: skip
    expected = edge.post("/v1/features/batch", ask)
    with freshet.FeatureStore(SPEC, url) as store:
        assert_rows_equal(edge, store.get_online_features("user", users))
        assert_rows_equal(edge, store.get_online_features("product", products))
        assert_ranking_equals(store.get_ranking_features(user, products, ["pageviews"], ["popularity_7d"], PAIRS),
                              expected)  # fmt: skip
    async with freshet.FeatureStore(SPEC, url) as store:
        assert_rows_equal(edge, await store.get_online_features_async("user", users))
        got = await store.get_ranking_features_async(user, products, ["pageviews"], ["popularity_7d"], PAIRS)
        assert_ranking_equals(got, expected)


def test_drift_summaries_on_the_cluster_count_every_sampled_read(moved: tuple[Edge, str, Sender]) -> None:
    """The edge's samples and the Python reader's, in keys of many slots, read back by `freshet drift`."""
    edge, url, sender = moved
    users = sender.users[:10]

    def count() -> int:
        summaries = edge.get("/v1/drift?since=1h&summaries=1")["summaries"]
        return int(summaries["pageviews@1"]["summary"]["count"])

    before = count()
    for user in users:
        edge.get(f"/v1/features/user/{user}?names=pageviews")
    with freshet.FeatureStore(SPEC, url, drift_sample_rate=1.0) as store:
        store.get_online_features("user", users[:4], ["pageviews"])
    time.sleep(1)
    served = count()
    # The edge's 10 samples, the reader's 4 (redis-py's cluster pipeline) and
    # the summary reads themselves, which are not sampled.
    assert served == before + 14
    report = drift(url, spec=SPEC, since="1h", min_samples=1)
    assert report.feature("pageviews@1")["live"]["count"] == served
