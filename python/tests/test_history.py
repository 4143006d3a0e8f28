"""Training data from the event log, against the edge under `wrangler dev`
(Redis store, the R2 log simulated): events POSTed in rounds, their times
spread up to 6 days back, the serving API read after each round at noted
times; then `get_historical_features` at those times must give what was
served, from the export route and from a folder of log objects, and the
point-in-time cases must come out as computed by hand. `freshet consistency`
must say 100%, and find a value tampered with in the store."""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import freshet
from freshet._log import EdgeLog, open_log

from conftest import (
    BIN,
    DAY,
    HOUR,
    READ_TOKEN,
    SPEC,
    WRITE_KEY,
    Edge,
    RedisServer,
    assert_same_frame,
    free_port,
    iso,
    redis_field,
    spawn,
    start_edge,
    stop,
    wait_port,
)

# The module's traffic is made once; its setup counts toward the first test.
pytestmark = pytest.mark.timeout(600)

RUN = secrets.token_hex(3)
USERS = [f"h{RUN}-u{i}" for i in range(20)]
PRODUCTS = [f"h{RUN}-p{i}" for i in range(5)]
TYPES = [
    "page_view",
    "page_view",
    "product_click",
    "product_click",
    "add_to_cart",
    "viewed_category",
    "search",
    "watch",
]
SPEC_ = freshet.Spec(SPEC.read_text())
USER_FEATURES = SPEC_.plan("user").columns
FEATURES = [f"user:{n}" for n in USER_FEATURES] + ["product:popularity_7d"]
# The hand-made cases: an event received exactly at a row's time, a late
# event, and an entity with no events.
EXACT, LATE, GHOST = f"h{RUN}-exact", f"h{RUN}-late", f"h{RUN}-ghost"
LATE_PRODUCT, GHOST_PRODUCT = f"h{RUN}-late-p", f"h{RUN}-ghost-p"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Checkpoint:
    """One read of every user and product through the serving API."""

    began: int
    ended: int
    users: freshet.OnlineResponse
    products: freshet.OnlineResponse


@dataclass
class Traffic:
    edge: Edge
    store_url: str
    prefix: str
    checkpoints: list[Checkpoint] = field(default_factory=list)
    # batch id -> receive time (ms), and the case events' times.
    received: dict[str, int] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    export: bytes = b""
    start: int = 0

    def seen(self) -> tuple[set[str], set[str]]:
        """The users and products the log has features for."""
        lines = [json.loads(x) for x in self.export.splitlines()]
        return {x["clientId"] for x in lines}, {
            x["payload"]["productId"] for x in lines if x["type"] == "product_click"
        }

    def pairs(self) -> set[tuple[str, str]]:
        """The (user, product) pairs the log has features for: a click or a cart add joins them."""
        lines = [json.loads(x) for x in self.export.splitlines()]
        return {(x["clientId"], x["payload"]["productId"]) for x in lines
                if x["type"] in ("product_click", "add_to_cart") and "productId" in x["payload"]}  # fmt: skip


def post(edge: Edge, events: list[dict[str, Any]]) -> str:
    """One batch without `sentAt`, so the logged event times are exactly those sent."""
    batch_id = secrets.token_hex(12)
    body = {"batchId": batch_id, "events": events}
    req = urllib.request.Request(
        f"{edge.base}/v1/ingest", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "x-freshet-key": WRITE_KEY},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["rejected"] == [], answer
    return batch_id


def event(rng: random.Random, kind: str, user: str, t: int, product: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if kind in ("product_click", "add_to_cart"):
        payload["productId"] = product or rng.choice(PRODUCTS)
    if kind == "add_to_cart":
        payload["price"] = rng.choice([5, 12.5, 20])
    if kind == "viewed_category":
        payload["category"] = rng.choice(["cameras", "lenses", "bags", "tripods"])
    if kind == "search":
        payload["query"] = rng.choice(["leica", "35mm"])
    return {"id": secrets.token_hex(8), "type": kind, "timestamp": iso(t), "clientId": user, "payload": payload}


def export(edge: Edge, start: int) -> bytes:
    req = urllib.request.Request(
        f"{edge.base}/v1/events?from={start}", headers={"authorization": f"Bearer {READ_TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.headers.get("freshet-next-from") is None
        body: bytes = r.read()
    return body


def read_all(edge: Edge) -> Checkpoint:
    with freshet.FeatureStore(SPEC, edge.base, read_token=READ_TOKEN, timeout=30) as store:
        began = now_ms()
        users = store.get_online_features("user", [*USERS, EXACT, LATE, GHOST])
        products = store.get_online_features("product", [*PRODUCTS, LATE_PRODUCT, GHOST_PRODUCT], ["popularity_7d"])
        ended = now_ms()
    return Checkpoint(began, ended, users, products)


@pytest.fixture(scope="module")
def traffic(tmp_root: Path, redis_server: RedisServer) -> Iterator[Traffic]:
    prefix = "h_" + secrets.token_hex(4)
    url = redis_server.url(prefix)
    edge = start_edge(tmp_root, url)
    try:
        t = Traffic(edge, url, prefix, start=now_ms() - 1000)
        rng = random.Random(13)
        # Five rounds, each with events from one "day" (5 to 0 days back), a
        # fifth of them within the last half hour (for the 1 h window).
        for day in range(5, -1, -1):
            for _ in range(6):
                events = []
                for _ in range(rng.randint(1, 6)):
                    back = rng.uniform(0, 30 * 60_000) if rng.random() < 0.2 else day * DAY + rng.uniform(0, DAY - HOUR)
                    events.append(event(rng, rng.choice(TYPES), rng.choice(USERS), now_ms() - int(back)))
                post(edge, events)
            t.checkpoints.append(read_all(edge))
            time.sleep(0.01)
        # An event received exactly at a row's time (the row at its receive time sees it).
        t.cases["exact_event"] = now_ms() - HOUR
        t.cases["exact_batch"] = 0
        exact_batch = post(edge, [event(rng, "page_view", EXACT, t.cases["exact_event"])])
        # A late event: it happened two days ago and arrives now.
        t.cases["late_event"] = now_ms() - 2 * DAY
        late_batch = post(edge, [event(rng, "product_click", LATE, t.cases["late_event"], LATE_PRODUCT)])
        t.checkpoints.append(read_all(edge))
        t.export = export(edge, t.start)
        for line in t.export.splitlines():
            record = json.loads(line)
            t.received[record["batchId"]] = int(pd.Timestamp(record["receivedAt"]).value // 1_000_000)
        t.cases["exact_received"] = t.received[exact_batch]
        t.cases["late_received"] = t.received[late_batch]
        yield t
    finally:
        stop(edge.proc)


def same(a: Any, b: Any) -> bool:
    """Equal values, a null equal to pandas' NaN for it."""

    def null(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    if null(a) or null(b):
        return null(a) and null(b)
    return bool(a == b)


def entity_rows(traffic: Traffic) -> pd.DataFrame:
    """Every user (with a product) at each checkpoint's start and end."""
    users = [*USERS, EXACT, LATE, GHOST]
    products = [*PRODUCTS, LATE_PRODUCT, GHOST_PRODUCT]
    rows = []
    for k, c in enumerate(traffic.checkpoints):
        for i, u in enumerate(users):
            for when, t in (("began", c.began), ("ended", c.ended)):
                at = pd.Timestamp(t, unit="ms", tz="UTC")
                rows.append({"user": u, "product": products[i % len(products)], "event_timestamp": at, "checkpoint": k,
                             "when": when})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def from_edge(traffic: Traffic) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = entity_rows(traffic)
    out = freshet.get_historical_features(df, FEATURES, traffic.edge.base, read_token=READ_TOKEN, spec=SPEC,
                                          start=traffic.start)  # fmt: skip
    return df, out


def test_training_rows_equal_what_the_serving_api_served(
    traffic: Traffic, from_edge: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    df, out = from_edge
    assert list(out.columns) == [*df.columns, *USER_FEATURES, "popularity_7d"]
    assert out.index.equals(df.index)
    users = [*USERS, EXACT, LATE, GHOST]
    products = [*PRODUCTS, LATE_PRODUCT, GHOST_PRODUCT]
    compared = nonzero = 0
    for k, c in enumerate(traffic.checkpoints):
        for i, u in enumerate(users):
            mine = out[(out["checkpoint"] == k) & (out["user"] == u)]
            assert len(mine) == 2
            online = {n: c.users[i][n].value for n in USER_FEATURES}
            online["popularity_7d"] = c.products[i % len(products)]["popularity_7d"].value
            for name, value in online.items():
                # The read happened between its start and its end.
                assert any(same(value, v) for v in mine[name]), (k, u, name, value, list(mine[name]))
                compared += 1
                nonzero += value not in (0, None, [])
    assert compared == len(traffic.checkpoints) * len(users) * (len(USER_FEATURES) + 1)
    assert nonzero > compared // 4, "the traffic should make most features non-default"


def test_point_in_time_cases_computed_by_hand(traffic: Traffic) -> None:
    c = traffic.cases
    ts = lambda ms: pd.Timestamp(ms, unit="ms", tz="UTC")  # noqa: E731
    rows = pd.DataFrame(
        [
            # Served: the exact user's batch counts from its receive time on, not a millisecond before.
            {"user": EXACT, "product": GHOST_PRODUCT, "event_timestamp": ts(c["exact_received"] - 1)},
            {"user": EXACT, "product": GHOST_PRODUCT, "event_timestamp": ts(c["exact_received"])},
            # The late click, between its event time and its receipt: not yet served.
            {"user": LATE, "product": LATE_PRODUCT, "event_timestamp": ts(c["late_event"] + DAY)},
            {"user": LATE, "product": LATE_PRODUCT, "event_timestamp": ts(c["late_received"])},
            # No events at all: the spec's defaults.
            {"user": GHOST, "product": GHOST_PRODUCT, "event_timestamp": ts(c["late_received"])},
        ]
    )
    features = [
        "user:pageviews",
        "user:clicks_product_card_7d",
        "user:last_interacted_product",
        "product:popularity_7d",
    ]
    kw: dict[str, Any] = {"read_token": READ_TOKEN, "spec": SPEC, "start": traffic.start}
    served = freshet.get_historical_features(rows, features, traffic.edge.base, **kw)
    assert served["pageviews"].tolist() == [0, 1, 0, 0, 0]
    assert served["clicks_product_card_7d"].tolist() == [0, 0, 0, 1, 0]
    assert served["popularity_7d"].tolist() == [0, 0, 0, 1, 0]
    assert served["last_interacted_product"].tolist() == [None, None, None, LATE_PRODUCT, None]

    # Event time: an event exactly at the row's time counts; the late click counts from when it happened.
    rows_e = rows.copy()
    rows_e.loc[0, "event_timestamp"] = ts(c["exact_event"] - 1)
    rows_e.loc[1, "event_timestamp"] = ts(c["exact_event"])
    by_time = freshet.get_historical_features(rows_e, features, traffic.edge.base, as_of="event_time", **kw)
    assert by_time["pageviews"].tolist() == [0, 1, 0, 0, 0]
    assert by_time["clicks_product_card_7d"].tolist() == [0, 0, 1, 1, 0]
    assert by_time["popularity_7d"].tolist() == [0, 0, 1, 1, 0]
    assert by_time["last_interacted_product"].tolist() == [None, None, LATE_PRODUCT, LATE_PRODUCT, None]


def write_folder(ndjson: bytes, root: Path) -> int:
    """The export's lines as the edge's log objects: one gzipped object per
    batch, under the hour of its earliest event."""
    batches: dict[str, list[bytes]] = defaultdict(list)
    for line in ndjson.splitlines(keepends=True):
        batches[json.loads(line)["batchId"]].append(line)
    for batch_id, lines in batches.items():
        first = min(pd.Timestamp(json.loads(x)["timestamp"]) for x in lines)
        path = root / "events" / first.strftime("%Y/%m/%d/%H") / f"{batch_id}.ndjson.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(lines)))
    return len(batches)


def test_a_folder_of_log_objects_gives_the_same_frame(
    traffic: Traffic, from_edge: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    df, out = from_edge
    assert write_folder(traffic.export, tmp_path) == len(traffic.received)
    from_folder = freshet.get_historical_features(df, FEATURES, tmp_path, spec=SPEC)
    pd.testing.assert_frame_equal(from_folder, out)
    assert freshet.get_historical_features(df, FEATURES, str(tmp_path), spec=SPEC).equals(out)
    for as_of in ("event_time",):
        a = freshet.get_historical_features(df, FEATURES, tmp_path, spec=SPEC, as_of=as_of)
        b = freshet.get_historical_features(df, FEATURES, traffic.edge.base, read_token=READ_TOKEN, spec=SPEC,
                                            as_of=as_of, start=traffic.start)  # fmt: skip
        pd.testing.assert_frame_equal(a, b)


def test_spark_gives_the_one_process_frame_from_the_edges_log(
    traffic: Traffic, from_edge: tuple[pd.DataFrame, pd.DataFrame], spark: Any, tmp_path: Path
) -> None:
    """freshet.spark on the log the edge wrote (as a folder of its objects):
    the one-process frame row for row, both views, for the checkpoints'
    rows and the hand-made cases (an event received exactly at the row's
    time, a late one, entities without events), with a composite feature."""
    import freshet.spark

    df, _ = from_edge
    write_folder(traffic.export, tmp_path)
    c = traffic.cases
    ts = lambda ms: pd.Timestamp(ms, unit="ms", tz="UTC")  # noqa: E731
    hand = pd.DataFrame(
        [
            {"user": EXACT, "product": GHOST_PRODUCT, "event_timestamp": ts(t)}
            for t in (c["exact_received"] - 1, c["exact_received"], c["exact_event"] - 1, c["exact_event"])
        ]
        + [
            {"user": LATE, "product": LATE_PRODUCT, "event_timestamp": ts(t)}
            for t in (c["late_event"], c["late_event"] + DAY, c["late_received"] - 1, c["late_received"])
        ]
        + [{"user": GHOST, "product": GHOST_PRODUCT, "event_timestamp": ts(c["late_received"])}]
    )
    features = [*FEATURES, "user_product:user_product_clicks"]
    rows = pd.concat([df, hand.assign(checkpoint=-1, when="hand")], ignore_index=True)
    for as_of in ("served", "event_time"):
        one = freshet.get_historical_features(rows, features, tmp_path, spec=SPEC, as_of=as_of)
        got = freshet.spark.get_historical_features(spark.createDataFrame(rows), features, log=str(tmp_path),
                                                    spec=SPEC, as_of=as_of)  # fmt: skip
        assert_same_frame(one, [r.asDict() for r in got.collect()])


def test_the_export_is_paged_and_spanned(traffic: Traffic) -> None:
    """Pages cut by `Freshet-Next-From` and 31-day spans read the same log."""
    whole = b"".join(
        d for _, d, _ in EdgeLog(traffic.edge.base, read_token=READ_TOKEN, timeout=30).pieces(traffic.start, None)
    )
    assert whole == traffic.export
    paged = EdgeLog(traffic.edge.base, read_token=READ_TOKEN, timeout=30, page_batches=4)
    pieces = list(paged.pieces(traffic.start - 40 * DAY, None))
    sources = list(dict.fromkeys(s for s, _, _ in pieces))
    assert len(sources) >= len(traffic.received) // 4
    assert sum(1 for s in sources if f"from={traffic.start - 40 * DAY}&" in s) == 1  # the first, empty span
    assert b"".join(d for _, d, _ in pieces) == traffic.export


def test_the_default_start_reads_a_year_back(traffic: Traffic, from_edge: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    df, out = from_edge
    began = time.monotonic()
    again = freshet.get_historical_features(df, FEATURES, traffic.edge.base, read_token=READ_TOKEN, spec=SPEC)
    pd.testing.assert_frame_equal(again, out)
    # Event time reads a week past the last row, which is now: the spans stop at the clock.
    kw: dict[str, Any] = {"read_token": READ_TOKEN, "spec": SPEC, "as_of": "event_time"}
    by_time = freshet.get_historical_features(df, FEATURES, traffic.edge.base, **kw)
    pd.testing.assert_frame_equal(
        by_time, freshet.get_historical_features(df, FEATURES, traffic.edge.base, start=traffic.start, **kw)
    )
    print(f"12 spans of 31 days read in {time.monotonic() - began:.2f} s")


# ---- bad input ----


def test_unknown_features_fail_before_any_io() -> None:
    df = pd.DataFrame({"user": ["u"], "event_timestamp": [pd.Timestamp("2026-11-22T10:00:00Z")]})
    with pytest.raises(freshet.UnknownFeature, match="entity `user` has no feature `nope`"):
        freshet.get_historical_features(df, ["user:nope"], "http://127.0.0.1:9", spec=SPEC)
    with pytest.raises(freshet.UnknownFeature, match="unknown entity `shop`"):
        freshet.get_historical_features(df, ["shop:pageviews"], "http://127.0.0.1:9", spec=SPEC)
    with pytest.raises(ValueError, match="not 'entity:name'"):
        freshet.get_historical_features(df, ["pageviews"], "http://127.0.0.1:9", spec=SPEC)
    with pytest.raises(ValueError, match="as_of"):
        freshet.get_historical_features(df, ["user:pageviews"], "http://127.0.0.1:9", spec=SPEC, as_of="now")


def test_full_feature_names_are_the_columns_profile_reads_back() -> None:
    """One rule for `entity__name` columns (core's full_feature_name): what
    get_historical_features names is what `freshet profile` reads back."""
    from freshet._freshet import split_full_feature_name
    from freshet.drift import profile
    from freshet.history import column_names

    names = column_names([("user", "pageviews"), ("product", "popularity_7d")], full_feature_names=True)
    assert names == ["user__pageviews", "product__popularity_7d"]
    assert [split_full_feature_name(n) for n in [*names, "user"]] == [
        ("user", "pageviews"), ("product", "popularity_7d"), None]  # fmt: skip
    frame = pd.DataFrame({"user": ["a", "b", "c"], **{n: [1, 2, 3] for n in names}})
    baseline, skipped = profile(frame, spec=SPEC)
    assert set(baseline["features"]) == {"pageviews@1", "popularity_7d@1"}
    assert skipped == ["user"]


def test_missing_columns_are_named() -> None:
    t = pd.Timestamp("2026-11-22T10:00:00Z")
    with pytest.raises(ValueError, match="no `product` column: the product id that product:popularity_7d need"):
        freshet.get_historical_features(
            pd.DataFrame({"user": ["u"], "event_timestamp": [t]}),
            ["user:pageviews", "product:popularity_7d"],
            "http://127.0.0.1:9",
            spec=SPEC,
        )
    with pytest.raises(ValueError, match="no `event_timestamp` column"):
        freshet.get_historical_features(
            pd.DataFrame({"user": ["u"]}), ["user:pageviews"], "http://127.0.0.1:9", spec=SPEC
        )
    with pytest.raises(ValueError, match="the `user` id is None"):
        freshet.get_historical_features(pd.DataFrame({"user": [None], "event_timestamp": [t]}), ["user:pageviews"],
                                        "http://127.0.0.1:9", spec=SPEC)  # fmt: skip
    with pytest.raises(ValueError, match="`event_timestamp` holds numbers, not times"):
        freshet.get_historical_features(
            pd.DataFrame({"user": ["u"], "event_timestamp": [1_795_000_000_000]}), ["user:pageviews"], "x", spec=SPEC
        )
    with pytest.raises(ValueError, match="`event_timestamp` is missing in row"):
        freshet.get_historical_features(pd.DataFrame({"user": ["u"], "event_timestamp": [pd.NaT]}), ["user:pageviews"],
                                        "http://127.0.0.1:9", spec=SPEC)  # fmt: skip


def test_an_unreachable_or_refusing_log_is_named(traffic: Traffic, tmp_path: Path) -> None:
    df = pd.DataFrame({"user": ["u"], "event_timestamp": [pd.Timestamp.now(tz="UTC")]})
    port = free_port()
    with pytest.raises(freshet.LogUnavailable, match=rf"http://127.0.0.1:{port}/v1/events\?from=.*ConnectError"):
        freshet.get_historical_features(df, ["user:pageviews"], f"http://127.0.0.1:{port}", spec=SPEC, timeout=2)
    with pytest.raises(freshet.LogUnavailable, match="answered 401 \\(the read token was refused\\)"):
        freshet.get_historical_features(df, ["user:pageviews"], traffic.edge.base, read_token="wrong", spec=SPEC)
    with pytest.raises(freshet.LogUnavailable, match="no such folder"):
        freshet.get_historical_features(df, ["user:pageviews"], tmp_path / "nowhere", spec=SPEC)


def test_a_corrupt_object_is_named_with_its_line(traffic: Traffic, tmp_path: Path) -> None:
    write_folder(traffic.export, tmp_path)
    victim = sorted(tmp_path.rglob("*.ndjson.gz"))[0]
    lines = gzip.decompress(victim.read_bytes()).splitlines(keepends=True)
    victim.write_bytes(gzip.compress(lines[0] + b'{"batchId": 7}\n'))
    df = pd.DataFrame({"user": [USERS[0]], "event_timestamp": [pd.Timestamp.now(tz="UTC")]})
    with pytest.raises(freshet.CorruptLog, match=rf"{victim}: line 2: "):
        freshet.get_historical_features(df, ["user:pageviews"], tmp_path, spec=SPEC)


# ---- an S3-compatible bucket (moto's S3 server) ----


@pytest.fixture(scope="module")
def s3_server(tmp_root: Path) -> Iterator[str]:
    """moto's S3 server on a free port: an S3 API over HTTP, as R2's is."""
    port = free_port()
    log = tmp_root / f"moto-{port}.log"
    proc = spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log)
    wait_port(port, proc, "moto_server", log)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def test_an_s3_bucket_gives_the_same_frame(
    traffic: Traffic,
    from_edge: tuple[pd.DataFrame, pd.DataFrame],
    s3_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "auto"),
    ):
        monkeypatch.setenv(name, value)
    bucket = "freshet-events-" + RUN
    write_folder(traffic.export, tmp_path)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    for path in tmp_path.rglob("*.ndjson.gz"):
        client.put_object(Bucket=bucket, Key=path.relative_to(tmp_path).as_posix(), Body=path.read_bytes(),
                          ContentType="application/gzip")  # fmt: skip
    client.put_object(Bucket=bucket, Key="README.txt", Body=b"not a log object")
    df, out = from_edge
    got = freshet.get_historical_features(df, FEATURES, f"s3://{bucket}/events/", spec=SPEC, s3_endpoint=s3_server)
    pd.testing.assert_frame_equal(got, out)
    monkeypatch.setenv("FRESHET_S3_ENDPOINT", s3_server)
    by_time = freshet.get_historical_features(df, FEATURES, f"s3://{bucket}", spec=SPEC, as_of="event_time")
    pd.testing.assert_frame_equal(
        by_time, freshet.get_historical_features(df, FEATURES, tmp_path, spec=SPEC, as_of="event_time")
    )
    with pytest.raises(freshet.LogUnavailable, match=r"s3://no-such-bucket/events/: NoSuchBucket: .*does not exist"):
        freshet.get_historical_features(df, FEATURES, "s3://no-such-bucket/events/", spec=SPEC)


def test_s3_without_boto3_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ImportError, match=r"pip install 'freshet\[s3\]'"):
        open_log("s3://freshet-events/events/")


# ---- consistency ----


def run_consistency(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "freshet", "consistency", "--spec", str(SPEC), "--read-token", READ_TOKEN, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_consistency_is_100_percent_from_redis_and_the_serving_api(traffic: Traffic) -> None:
    for url in (traffic.store_url, traffic.edge.base):
        r = run_consistency("--sample", "5000", "--url", url, "--log", traffic.edge.base, "--start", str(traffic.start))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "mismatch" not in r.stdout
        users, products = traffic.seen()
        pairs = len(traffic.pairs()) * len(SPEC_.plan("user_product").columns)
        total = len(users) * len(USER_FEATURES) + len(products) + pairs  # every pair of every entity in the log
        assert re.search(rf"^  all +{total}/{total}  100.0%$", r.stdout, re.M), r.stdout
    report = freshet.consistency(
        50, log=traffic.edge.base, read_token=READ_TOKEN, spec=SPEC, seed=1, start=traffic.start
    )
    assert report.pairs == 50 and report.ok and report.match_rate == 1.0


def test_consistency_finds_a_tampered_value(traffic: Traffic) -> None:
    import redis

    victim = next(u for i, u in enumerate(USERS) if traffic.checkpoints[-1].users[i]["pageviews"].value > 0)
    key, field = f"{traffic.prefix}:{{user:{victim}}}:2", redis_field("pageviews@1")
    client = redis.Redis.from_url(traffic.store_url.split("?")[0])
    before = client.hget(key, field)
    assert before is not None
    client.hset(key, field, 999)
    try:
        r = run_consistency("--sample", "5000", "--url", traffic.store_url, "--log", traffic.edge.base,
                            "--start", str(traffic.start), "--features", "user:pageviews")  # fmt: skip
        assert r.returncode == 1, r.stdout + r.stderr
        n = len(traffic.seen()[0])
        assert re.search(rf"^  user:pageviews +{n - 1}/{n} ", r.stdout, re.M), r.stdout
        line = next(x for x in r.stdout.splitlines() if x.startswith("mismatch:"))
        assert line.startswith(f"mismatch: user:pageviews {victim} read at "), line
        assert "online 999 (updated" in line and f"replay {int(before)} (updated" in line, line
    finally:
        client.hset(key, field, before)
        client.close()


# ---- the GIL ----


def test_the_replay_releases_the_gil() -> None:
    """Another thread runs while core parses and folds a piece of the log."""
    import threading

    lines = []
    for b in range(2000):
        received = iso(1_795_000_000_000 + b * 1000)
        for e in range(25):
            line: dict[str, Any] = {"batchId": f"b{b}", "receivedAt": received, "writeKey": "dev", "verifiedUser": None}
            line.update(id=f"e{b}-{e}", type="product_click", timestamp=received, clientId=f"cid-{e}", sessionId=None)
            line.update(userId=None, payload={"productId": f"p-{b % 7}"})
            lines.append(json.dumps(line))
    log = ("\n".join(lines) + "\n").encode()
    ticks = [0]
    stop_ = threading.Event()

    def count() -> None:
        while not stop_.is_set():
            ticks[0] += 1

    during: list[int] = []

    def pieces() -> Iterator[tuple[str, bytes, bool]]:
        before = ticks[0]
        yield "big", log, False
        during.append(ticks[0] - before)  # resumed only once the piece is folded

    counter = threading.Thread(target=count)
    counter.start()
    try:
        rows = ([("user", "clicks_product_card")], {"user": ["cid-1"]}, [1_796_000_000_000])
        (answer,), batches, events = freshet._freshet.replay_log(SPEC_, [rows], pieces())
    finally:
        stop_.set()
        counter.join()
    assert (batches, events) == (2000, 50_000)
    assert answer[0] == [[2000]]
    assert during[0] > 1000, f"the other thread ran {during[0]} times while the log was folded"


def test_consistency_with_the_durable_object_store(tmp_root: Path) -> None:
    """The default store (a Durable Object per entity), read through the serving API."""
    from shop import send
    from shop import traffic as shop_traffic

    edge = start_edge(tmp_root, "durable-object")
    try:
        start = now_ms() - 1000
        events, _, _ = shop_traffic(seed=21)
        send(edge, events)
        report = freshet.consistency(100_000, log=edge.base, read_token=READ_TOKEN, spec=SPEC, start=start)
        assert report.mismatches == [] and report.pairs > 100, report.lines()
    finally:
        stop(edge.proc)
