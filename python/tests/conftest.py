"""Real servers for the tests, each on a free 127.0.0.1 port and stopped at
the end: redis-server, SecantusDB (a MongoDB wire server, with auth on) and
the edge worker under `wrangler dev` (edge/build/index.js, built by
scripts/test-python.sh). Events go in through the edge, as in production.
And Spark on local[2] (once per run), its executors' Python a venv holding
only the built wheel and what it needs, for freshet.spark's tests."""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(os.environ.get("FRESHET_ROOT", Path(__file__).resolve().parents[2]))
SPEC = ROOT / "features.toml"
EDGE = Path(os.environ.get("EDGE_DIR", ROOT / "edge"))
BIN = Path(sys.executable).parent
SECANTUSD = Path(os.environ.get("SECANTUSD", BIN / "secantusd-py"))
READ_TOKEN = "rt-" + secrets.token_hex(8)
WRITE_KEY = "wk_test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")


def spawn(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    """A child in its own process group, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="freshet-py-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---- Redis ----


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def url(self, prefix: str | None = None) -> str:
        return f"redis://127.0.0.1:{self.port}/0" + (f"?prefix={prefix}" if prefix else "")


def start_redis(tmp: Path, port: int | None = None) -> RedisServer:
    port = port or free_port()
    log = tmp / f"redis-{port}.log"
    proc = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", str(tmp)], log)  # fmt: skip
    wait_port(port, proc, "redis-server", log)
    return RedisServer(port, proc, log)


@pytest.fixture(scope="session")
def redis_server(tmp_root: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_root)
    yield server
    stop(server.proc)


@dataclass
class RedisCluster:
    """3 masters and 3 replicas on ports first..first+5 (scripts/redis-cluster.sh)."""

    first: int
    dir: Path

    def url(self, prefix: str) -> str:
        return f"redis+cluster://127.0.0.1:{self.first},127.0.0.1:{self.first + 1}?prefix={prefix}"

    @property
    def ports(self) -> list[int]:
        return list(range(self.first, self.first + 6))


def _six_free_ports() -> int:
    """Six ports in a row free, and their cluster bus ports (+10000)."""
    rnd = __import__("random").Random()
    for _ in range(200):
        first = rnd.randrange(20_000, 29_000)
        try:
            for port in [*range(first, first + 6), *range(first + 10_000, first + 10_006)]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no six free ports in a row")


@pytest.fixture(scope="module")
def redis_cluster(tmp_root: Path) -> Iterator[RedisCluster]:
    first = _six_free_ports()
    cluster = RedisCluster(first, tmp_root / f"cluster-{first}")
    script = str(ROOT / "scripts" / "redis-cluster.sh")
    subprocess.run(["bash", script, "up", str(cluster.dir), str(first)], check=True, timeout=120)
    yield cluster
    subprocess.run(["bash", script, "down", str(cluster.dir)], check=False, timeout=60)


# ---- MongoDB (SecantusDB) ----


@dataclass
class MongoServer:
    port: int
    proc: subprocess.Popen[bytes]
    password: str
    db: str

    def url(self, password: str | None = None) -> str:
        return (
            f"mongodb://freshet:{password or self.password}@127.0.0.1:{self.port}/{self.db}"
            "?authSource=admin&directConnection=true"
        )


@pytest.fixture(scope="session")
def mongo_server(tmp_root: Path) -> Iterator[MongoServer]:
    import pymongo

    port = free_port()
    data = tmp_root / f"mongo-{port}"
    data.mkdir()
    log = tmp_root / f"secantusd-{port}.log"
    args = [str(SECANTUSD), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(data),
            "--standalone", "--log-level", "WARNING"]  # fmt: skip
    password = "pw-" + secrets.token_hex(8)
    db = "fs_" + secrets.token_hex(4)
    # A user first (the server has no localhost exception), then --auth.
    proc = spawn(args, log)
    wait_port(port, proc, "SecantusDB", log)
    with pymongo.MongoClient("127.0.0.1", port, directConnection=True, serverSelectionTimeoutMS=5000) as c:
        c.admin.command("createUser", "freshet", pwd=password, roles=[{"role": "readWrite", "db": db}])
    stop(proc)
    proc = spawn([*args, "--auth"], log)
    wait_port(port, proc, "SecantusDB", log)
    yield MongoServer(port, proc, password, db)
    stop(proc)


# ---- the edge under wrangler dev ----


@dataclass
class Edge:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def post_events(self, events: list[dict[str, Any]], batch_id: str | None = None) -> dict[str, Any]:
        body = {"batchId": batch_id or secrets.token_hex(12), "sentAt": iso(now_ms()), "events": events}
        req = urllib.request.Request(
            f"{self.base}/v1/ingest", data=json.dumps(body).encode(),
            headers={"content-type": "application/json", "x-freshet-key": WRITE_KEY},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as r:
            answer: dict[str, Any] = json.loads(r.read())
        assert answer["rejected"] == [], answer
        return answer

    def get(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.base}{path}", headers={"authorization": f"Bearer {READ_TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"{self.base}{path}", data=json.dumps(body).encode(),
            headers={"authorization": f"Bearer {READ_TOKEN}", "content-type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())


def wrangler_config(tmp: Path, build: str = "build") -> Path:
    """edge/wrangler.toml without [build], serving edge/<build>/index.js."""
    import re

    text = (EDGE / "wrangler.toml").read_text()
    text = re.sub(r"\[build\][^\[]*", "", text)
    text = re.sub(r"^main = .*$", f'main = "{EDGE / build / "index.js"}"', text, flags=re.M)
    path = tmp / f"wrangler-{build}.toml"
    path.write_text(text)
    return path


def start_edge(
    tmp: Path,
    store: str,
    *,
    build: str = "build",
    persist: Path | None = None,
    admin_token: str | None = None,
    extra_vars: dict[str, str] | None = None,
) -> Edge:
    """`wrangler dev` of edge/<build> (another spec: its text in
    `extra_vars["FRESHET_SPEC"]`) on `store`, its local state (Durable Objects, the R2 log) under
    `persist`, which a later deploy may share."""
    if not (EDGE / build / "index.js").exists():
        raise RuntimeError(f"{EDGE}/{build}/index.js is missing: run edge/build.sh")
    port, inspector = free_port(), free_port()
    persist = persist or tmp / f"state-{port}"
    log = tmp / f"wrangler-{port}.log"
    config = wrangler_config(tmp, build)
    args = [str(EDGE / "node_modules" / ".bin" / "wrangler"), "dev", "--config", str(config), "--local",
            "--ip", "127.0.0.1", "--port", str(port), "--inspector-port", str(inspector),
            "--show-interactive-dev-session=false", "--persist-to", str(persist),
            "--var", f"FRESHET_WRITE_KEYS:{WRITE_KEY}=*", "--var", f"FRESHET_READ_TOKEN:{READ_TOKEN}",
            "--var", f"FRESHET_STORE:{store}", "--var", "FRESHET_STORE_TIMEOUT_MS:5000"]  # fmt: skip
    if admin_token:
        args += ["--var", f"FRESHET_ADMIN_TOKEN:{admin_token}"]
    for name, value in (extra_vars or {}).items():
        args += ["--var", f"{name}:{value}"]
    proc = spawn(args, log, cwd=EDGE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if r.status == 200:
                    return Edge(base, proc, log)
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"wrangler dev did not start:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def redis_edge(tmp_root: Path, redis_server: RedisServer) -> Iterator[tuple[Edge, str]]:
    """The edge writing to redis_server under a random key prefix; yields it and the store URL."""
    url = redis_server.url("t_" + secrets.token_hex(4))
    edge = start_edge(tmp_root, url)
    yield edge, url
    stop(edge.proc)


@pytest.fixture(scope="session")
def mongo_edge(tmp_root: Path, mongo_server: MongoServer) -> Iterator[tuple[Edge, str]]:
    url = mongo_server.url()
    edge = start_edge(tmp_root, url)
    yield edge, url
    stop(edge.proc)


# ---- time ----

HOUR = 3_600_000
DAY = 24 * HOUR


def redis_field(feature_key: str) -> str:
    """A feature's field in Redis layout 2: core's `FeatureDef::tag`, 4
    base-62 digits of the SHA-256 of `name@version` (restated here for the
    tests that read or change a hash directly)."""
    import hashlib

    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n = int.from_bytes(hashlib.sha256(feature_key.encode()).digest()[:8], "big")
    tag = ""
    for _ in range(4):
        tag += digits[n % 62]
        n //= 62
    return tag


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def silent_server() -> tuple[socket.socket, int]:
    """A server that accepts connections and never answers: a hung store."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s, int(s.getsockname()[1])


# ---- Spark (freshet.spark): local[2], its executors on a venv of the wheel ----


def pins(*names: str) -> list[str]:
    """The lockfile's pins (python/requirements-dev.txt) of `names`."""
    lines = (ROOT / "python" / "requirements-dev.txt").read_text().splitlines()
    got = [x.strip() for x in lines if x.split("==")[0].strip().lower() in names]
    assert len(got) == len(names), (names, got)
    return got


@pytest.fixture(scope="session")
def executor_python(tmp_root: Path) -> Path:
    """A venv for the executors with only the built wheel, pandas, pyarrow
    and boto3 in it, as a cluster's package install or a packed env would
    give them."""
    wheel_dir = Path(os.environ.get("FRESHET_WHEEL_DIR", ROOT / ".state" / "wheel"))
    wheels = sorted(wheel_dir.glob("freshet-*.whl"))
    assert len(wheels) == 1, f"one freshet wheel in {wheel_dir} (scripts/install-python.sh builds it): {wheels}"
    env = tmp_root / "executor-venv"
    venv.EnvBuilder(with_pip=False).create(env)
    py = env / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "pip", "install", "-q", "--python", str(py), str(wheels[0]),
                    *pins("pandas", "numpy", "pyarrow", "boto3")], check=True)  # fmt: skip
    return py


@pytest.fixture(scope="session")
def spark(executor_python: Path) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    # A session made in Python takes the executors' Python from
    # $PYSPARK_PYTHON (spark-submit sets it from spark.pyspark.python).
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = str(executor_python)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("freshet-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        # The executors' S3 credentials, as a cluster would set them: for
        # the tests' moto server, which takes any.
        .config("spark.executorEnv.AWS_ACCESS_KEY_ID", "test")
        .config("spark.executorEnv.AWS_SECRET_ACCESS_KEY", "test")
        .config("spark.executorEnv.AWS_DEFAULT_REGION", "auto")
        .getOrCreate()
    )
    yield session
    session.stop()
    if before is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = before


def same(a: Any, b: Any) -> bool:
    """Equal values; a null equal to the NaN pandas made of it in a float column."""

    def null(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    if null(a) or null(b):
        return null(a) and null(b)
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return list(a) == list(b)
    return bool(a == b)


def assert_same_frame(one: pd.DataFrame, spark_rows: list[dict[str, Any]]) -> None:
    """Row for row (in `entity_df`'s order) and value for value."""
    assert list(spark_rows[0]) == list(one.columns) if spark_rows else one.empty
    assert len(spark_rows) == len(one)
    differ = []
    for i, ((_, want), got) in enumerate(zip(one.iterrows(), spark_rows, strict=True)):
        for column in one.columns:
            a, b = want[column], got[column]
            if column == "event_timestamp":
                a, b = pd.Timestamp(a).value // 1_000_000, utc(pd.Timestamp(b)).value // 1_000_000
            if not same(a, b):
                differ.append((i, column, a, b))
    assert not differ, f"{len(differ)} values differ, e.g. {differ[:5]}"


def utc(t: pd.Timestamp) -> pd.Timestamp:
    return t.tz_localize("UTC") if t.tzinfo is None else t
