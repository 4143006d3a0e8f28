"""Training data on Spark (`freshet.spark.get_historical_features`) against
the one-process answer, row for row and value for value, on a real Spark
(`local[2]`, started once here) whose executors run Python from a venv of
their own, made from the built wheel: they import `freshet` from there, not
from the driver's environment. The log is generated with the cases the
point-in-time replay must get right: late events, a batch split into parts
(as the queue logs a large one), batches received at the same time, a
verified and an unverified userId, the edge's own sign-in moves (`$link`
batches that carry states to a user and its pairs), rows exactly at a
batch's receipt and at window and ttl edges, entities with no events and
composite entities."""

from __future__ import annotations

import gzip
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

import freshet
import freshet.spark
from freshet.spark import _units

from conftest import BIN, SPEC, assert_same_frame, free_port, spawn, stop, wait_port

pytestmark = pytest.mark.timeout(300)

SECOND, HOUR, DAY = 1000, 3_600_000, 86_400_000
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
USERS = [f"u{i}" for i in range(10)]
PRODUCTS = [f"p{i}" for i in range(4)]
GHOST_USER, GHOST_PRODUCT = "u-ghost", "p-ghost"
TYPES = ["page_view", "product_click", "add_to_cart", "viewed_category", "search", "watch"]
FEATURES = [f"user:{n}" for n in freshet.Spec(SPEC.read_text()).plan("user").columns] + [
    "product:popularity_7d",
    "user_product:user_product_clicks",
    "user_product:user_product_last_seen",
]


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def line(batch: dict[str, Any], kind: str, client: str, t: int, product: str, rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if kind in ("product_click", "add_to_cart"):
        payload["productId"] = product
    if kind == "add_to_cart":
        payload["price"] = rng.choice([5, 12.5, 20])
    if kind == "viewed_category":
        payload["category"] = rng.choice(["cameras", "lenses", "bags"])
    user = batch["verifiedUser"] or (f"mallory-{client}" if rng.random() < 0.1 else None)
    return dict(batch, id=f"e{rng.randrange(1 << 40):x}", type=kind, timestamp=iso(t), clientId=client,
                sessionId=None, userId=user, payload=payload)  # fmt: skip


# Where the edge moved a browser's state to a user at sign-in (README,
# "Identity"): after batch N, to user U, three clicks and a pair's two.
LINKS = {30: "u3", 90: "u5", 140: "u3"}


def link_lines(batch_id: str, client: str, user: str, at: int) -> list[dict[str, Any]]:
    """A sign-in move as the edge logs it (`core::link::Link::to_logged`)."""
    head = {"batchId": batch_id, "receivedAt": iso(at), "writeKey": "", "verifiedUser": user, "spec": None}

    def count(n: int) -> dict[str, Any]:
        return {"updatedAt": at - SECOND, "value": {"count": {"total": n}}}

    moves = [("user", user, {"clicks_product_card@1": count(3)}),
             ("user_product", f"{user}|p1", {"user_product_clicks@1": count(2)})]  # fmt: skip
    event = {"type": "$link", "timestamp": iso(at), "clientId": client, "sessionId": None, "userId": user}
    return [
        dict(head, **event, id=f"{batch_id}.{i}", payload={"entity": e, "id": id_, "updates": updates})
        for i, (e, id_, updates) in enumerate(moves)
    ]


def make_log(root: Path, seed: int = 5) -> tuple[Path, Path, list[int]]:
    """The log as gzipped objects under `root/log` (the bucket's layout) and
    as one exported NDJSON file; with the receive times of its batches."""
    rng = random.Random(seed)
    batches: list[tuple[str, int, list[dict[str, Any]]]] = []
    received = T0
    for b in range(160):
        received += rng.choice([0, 7 * SECOND, HOUR, 3 * HOUR]) if b % 17 else 0  # some received at once
        client = rng.choice(USERS)
        verified = client.replace("u", "id-") if rng.random() < 0.15 else None
        head = {"batchId": f"b{b:04d}", "receivedAt": iso(received), "writeKey": "dev", "verifiedUser": verified}
        lines = []
        for _ in range(rng.randrange(1, 12)):
            # 1 in 8 late: up to 2 days before its receipt.
            t = received - (rng.randrange(2 * DAY) if rng.random() < 0.125 else rng.randrange(5 * SECOND))
            lines.append(line(head, rng.choice(TYPES), client, t, rng.choice(PRODUCTS), rng))
        if b == 40:  # logged in two parts by the queue, each its own object
            half = len(lines) // 2 or 1
            for k, part in enumerate((lines[:half], lines[half:]), 1):
                batches.append((f"b{b:04d}.{k}", received, [dict(x, batchId=f"b{b:04d}.{k}") for x in part]))
            continue
        batches.append((head["batchId"], received, lines))
        if b in LINKS:
            received += 1
            batch_id = f"link.cid-{b}.1"
            batches.append((batch_id, received, link_lines(batch_id, f"cid-{b}", LINKS[b], received)))
    folder, export = root / "log", root / "export.ndjson"
    with export.open("w") as out:
        for batch_id, _, lines in batches:
            text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines if x)
            out.write(text)
            first = min(int(pd.Timestamp(x["timestamp"]).value // 1_000_000) for x in lines)
            path = (
                folder / "events" / time.strftime("%Y/%m/%d/%H", time.gmtime(first // 1000)) / f"{batch_id}.ndjson.gz"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress(text.encode()))
    return folder, export, [r for _, r, _ in batches]


def make_rows(received: list[int], seed: int = 9) -> pd.DataFrame:
    """Rows at random times, exactly at and around receipts, at the 7-day
    window's edge and past the ttls; for every user and product and the ghosts."""
    rng = random.Random(seed)
    last = received[-1]
    times = [T0 + rng.randrange(last - T0 + 40 * DAY) for _ in range(150)]
    for r in rng.sample(received, 30):
        times += [r, r - 1, r + 1, r + 7 * DAY, r + 7 * DAY + 1, r + DAY, r + 30 * DAY + 1]
    users, products = [*USERS, GHOST_USER], [*PRODUCTS, GHOST_PRODUCT]
    rows = [
        {
            "user": rng.choice(users),
            "product": rng.choice(products),
            "event_timestamp": pd.Timestamp(t, unit="ms", tz="UTC"),
        }
        for t in times
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "row", range(len(frame)))
    return frame


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("spark-log")
    folder, export, received = make_log(root)
    return folder, export, make_rows(received)


def test_executors_import_freshet_from_the_shipped_wheel(spark: SparkSession, executor_python: Path) -> None:
    def where(_: Any) -> tuple[str, str]:
        import freshet

        return freshet.__file__ or "", sys.executable

    got = set(spark.sparkContext.parallelize(range(4), 2).map(where).collect())
    venv_root = executor_python.parent.parent
    assert got and all(Path(f).is_relative_to(venv_root) for f, _ in got), got
    assert all(exe == str(executor_python) for _, exe in got), got
    assert not Path(freshet.__file__ or "").is_relative_to(venv_root)


def spark_frame(spark: SparkSession, rows: pd.DataFrame) -> Any:
    return spark.createDataFrame(rows)


@pytest.mark.parametrize("as_of", ["served", "event_time"])
def test_the_folder_gives_the_one_process_frame(
    spark: SparkSession, generated: tuple[Path, Path, pd.DataFrame], as_of: str
) -> None:
    folder, _, rows = generated
    one = freshet.get_historical_features(rows, FEATURES, log=folder, as_of=as_of, spec=SPEC)
    # Not a test that cannot fail: the rows see features, and not all the same.
    assert one["pageviews"].nunique() > 3 and one["user_product_clicks"].nunique() > 2
    assert (one["last_interacted_product"].isna()).any() and one["last_interacted_product"].notna().any()
    got = freshet.spark.get_historical_features(spark_frame(spark, rows), FEATURES, log=str(folder), as_of=as_of,
                                                spec=SPEC)  # fmt: skip
    assert_same_frame(one, [r.asDict() for r in got.collect()])


def test_a_sign_in_move_counts_from_its_receipt_on_spark_as_in_one_process(
    spark: SparkSession, generated: tuple[Path, Path, pd.DataFrame]
) -> None:
    folder, export, _ = generated
    moves = [json.loads(x) for x in export.read_text().splitlines() if '"$link"' in x and '"entity":"user"' in x]
    assert len(moves) == len(LINKS)
    at = [int(pd.Timestamp(m["receivedAt"]).value // 1_000_000) for m in moves]
    users = [m["userId"] for m in moves]
    rows = pd.DataFrame({
        "user": [u for u in users for _ in (0, 1)],
        "product": ["p1"] * 2 * len(users),
        "event_timestamp": pd.to_datetime([t + d for t in at for d in (-1, 0)], unit="ms", utc=True),
    })  # fmt: skip
    features = ["user:clicks_product_card", "user_product:user_product_clicks"]
    one = freshet.get_historical_features(rows, features, log=folder, spec=SPEC)
    clicks, pairs = list(one["clicks_product_card"]), list(one["user_product_clicks"])
    # Just before the move the user has not the browser's clicks; at its receipt, it has them.
    assert [clicks[2 * i + 1] - clicks[2 * i] for i in range(len(users))] == [3] * len(users), clicks
    assert [pairs[2 * i + 1] - pairs[2 * i] for i in range(len(users))] == [2] * len(users), pairs
    got = freshet.spark.get_historical_features(spark_frame(spark, rows), features, log=str(folder), spec=SPEC)
    assert_same_frame(one, [r.asDict() for r in got.collect()])


def test_an_export_read_in_ranges_gives_the_same_frame(
    spark: SparkSession, generated: tuple[Path, Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One exported NDJSON file, read by the executors in 4 KiB ranges that
    cut lines anywhere; the composite's ids from its own column, and
    entity__name columns."""
    _, export, rows = generated
    monkeypatch.setattr(_units, "RANGE_BYTES", 4096)
    assert len(_units.list_units(export, s3_endpoint=None, start=None, end=None)[1]) > 20
    rows = rows.assign(
        user_product=[freshet.composite_id([u, p]) for u, p in zip(rows["user"], rows["product"], strict=True)]
    )
    features = ["user:pageviews", "user:recent_products", "user_product:user_product_clicks"]
    for as_of in ("served", "event_time"):
        one = freshet.get_historical_features(rows, features, log=export.parent / "log", as_of=as_of, spec=SPEC,
                                              full_feature_names=True)  # fmt: skip
        got = freshet.spark.get_historical_features(spark_frame(spark, rows), features, log=str(export), as_of=as_of,
                                                    spec=SPEC, full_feature_names=True)  # fmt: skip
        assert "user_product__user_product_clicks" in got.columns
        assert_same_frame(one, [r.asDict() for r in got.collect()])


def test_no_rows_give_the_columns(spark: SparkSession, generated: tuple[Path, Path, pd.DataFrame]) -> None:
    folder, _, rows = generated
    empty = spark_frame(spark, rows).limit(0)
    got = freshet.spark.get_historical_features(empty, ["user:pageviews", "user:recent_products"], log=str(folder),
                                                spec=SPEC)  # fmt: skip
    assert got.columns == [*rows.columns, "pageviews", "recent_products"]
    assert got.schema["pageviews"].dataType.simpleString() == "bigint"
    assert got.schema["recent_products"].dataType.simpleString() == "array<string>"
    assert got.count() == 0


def test_bad_input_is_named_before_any_job(spark: SparkSession, generated: tuple[Path, Path, pd.DataFrame]) -> None:
    folder, _, rows = generated
    frame = spark_frame(spark, rows)
    call = freshet.spark.get_historical_features
    with pytest.raises(ValueError, match="no `event_timestamp` column"):
        call(frame.drop("event_timestamp"), ["user:pageviews"], log=str(folder), spec=SPEC)
    with pytest.raises(ValueError, match="not a timestamp"):
        call(frame.withColumn("event_timestamp", frame["row"]), ["user:pageviews"], log=str(folder), spec=SPEC)
    with pytest.raises(freshet.UnknownFeature, match="nope"):
        call(frame, ["user:nope"], log=str(folder), spec=SPEC)
    with pytest.raises(ValueError, match="no `product` column"):
        call(frame.drop("product"), ["product:popularity_7d"], log=str(folder), spec=SPEC)
    with pytest.raises(freshet.LogUnavailable, match="no such folder"):
        call(frame, ["user:pageviews"], log=str(folder / "missing"), spec=SPEC)
    with pytest.raises(ValueError, match="export route"):
        call(frame, ["user:pageviews"], log="http://127.0.0.1:1", spec=SPEC)
    with pytest.raises(TypeError, match="Spark DataFrame"):
        call(rows, ["user:pageviews"], log=str(folder), spec=SPEC)  # type: ignore[arg-type]


def test_a_corrupt_line_fails_the_job_naming_it(spark: SparkSession, tmp_path: Path) -> None:
    good = {"batchId": "b1", "receivedAt": iso(T0), "writeKey": "dev", "verifiedUser": None, "id": "e1",
            "type": "page_view", "timestamp": iso(T0), "clientId": "u0", "sessionId": None, "userId": None,
            "payload": {}}  # fmt: skip
    (tmp_path / "x.ndjson").write_text(json.dumps(good) + "\n" + '{"batchId": "b1", "receivedAt"\n')
    rows = pd.DataFrame({"user": ["u0"], "event_timestamp": [pd.Timestamp(T0 + DAY, unit="ms", tz="UTC")]})
    got = freshet.spark.get_historical_features(spark_frame(spark, rows), ["user:pageviews"], log=str(tmp_path),
                                                spec=SPEC)  # fmt: skip
    with pytest.raises(Exception, match=r"x\.ndjson: line 2"):
        got.collect()


def test_an_s3_bucket_gives_the_same_frame(
    spark: SparkSession,
    generated: tuple[Path, Path, pd.DataFrame],
    tmp_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The log objects in a bucket (moto's S3 server, as R2's S3 API), listed
    by the driver and read by each executor with boto3."""
    import boto3

    folder, _, rows = generated
    port = free_port()
    log = tmp_root / f"moto-spark-{port}.log"
    proc = spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log)
    try:
        wait_port(port, proc, "moto_server", log)
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                            ("AWS_DEFAULT_REGION", "auto")):  # fmt: skip
            monkeypatch.setenv(name, value)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="freshet-spark")
        for path in folder.rglob("*.ndjson.gz"):
            client.put_object(Bucket="freshet-spark", Key=path.relative_to(folder).as_posix(), Body=path.read_bytes())
        client.put_object(Bucket="freshet-spark", Key="README.txt", Body=b"not a log object")
        one = freshet.get_historical_features(rows, FEATURES, log=folder, spec=SPEC)
        got = freshet.spark.get_historical_features(spark_frame(spark, rows), FEATURES, log="s3://freshet-spark/events/",
                                                    spec=SPEC, s3_endpoint=endpoint)  # fmt: skip
        assert_same_frame(one, [r.asDict() for r in got.collect()])
        with pytest.raises(freshet.LogUnavailable, match="s3://no-such-bucket/events/: NoSuchBucket"):
            freshet.spark.get_historical_features(spark_frame(spark, rows), FEATURES, log="s3://no-such-bucket/events/",
                                                  spec=SPEC, s3_endpoint=endpoint)  # fmt: skip
    finally:
        stop(proc)
