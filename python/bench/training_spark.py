"""Training data on Spark (issue 26, point 4): one generated log, the same
entity rows, answered by one process (`freshet.get_historical_features`)
and by `freshet.spark.get_historical_features` on `local[1]` and
`local[2]`; time and peak memory per process kind. Then every Spark row is
checked against the one-process answer, value for value. BOT_EVENTS adds
a bot's events (a skewed entity) and gives it 1 row in 100. Prints the
figures as JSON.

Usage: python training_spark.py DIR SPEC [EVENTS] [ROWS] [BOT_EVENTS]  (WHO="one 1 2" by default)
(`python training_spark.py measure DIR SPEC ROWS WHO AS_OF BOT` measures one
run; WHO is `one` or the number of Spark executor threads.)
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from training import FEATURES, PER_BATCH, PRODUCTS, SPAN, T0, USERS, batch_lines, entity_rows, iso

# Events per plain NDJSON file of the generated log (an export saved in parts).
PER_FILE = 250_000
BOT = "cid-bot"
PARTITIONS = 16


def generate(root: Path, events: int, bot_events: int, seed: int = 7) -> tuple[Path, int]:
    """training.py's log (batches of 20 events of one visitor, received
    evenly over 30 days, 1 in 20 late by up to 2 days), as plain NDJSON
    files in receive order, plus `bot_events` of one bot spread over it."""
    rng = random.Random(seed)
    folder = root / "log"
    folder.mkdir(parents=True, exist_ok=True)
    batches = (events + bot_events) // PER_BATCH
    every = batches // (bot_events // PER_BATCH) if bot_events else 0
    out, written, part = None, PER_FILE, 0
    for b in range(batches):
        if written >= PER_FILE:
            if out:
                out.close()
            out = (folder / f"part-{part:05d}.ndjson").open("w")
            part, written = part + 1, 0
        received = T0 + b * SPAN // batches
        head = {"batchId": f"b{b:09d}", "receivedAt": iso(received), "writeKey": "dev", "verifiedUser": None}
        client = BOT if every and b % every == 0 else f"cid-{rng.randrange(USERS)}"
        lines, _ = batch_lines(rng, head, received, client, f"{b:09d}")
        assert out is not None
        out.write("\n".join(lines) + "\n")
        written += PER_BATCH
    if out:
        out.close()
    return folder, batches


def rows_frame(rows: int, bot: bool) -> pd.DataFrame:
    df = entity_rows(rows)
    if bot:  # 1 row in 100 reads the bot
        df.loc[df.index % 100 == 0, "user"] = BOT
    df.insert(0, "row", range(len(df)))
    return df


class PeakMemory:
    """Peak resident memory of this process and its descendants (the JVM
    and its Python workers), sampled from /proc every 0.2 s: per process
    kind, and the sum at its highest."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.total = 0.0
        # CPU seconds (user + system) of each process, as last seen.
        self.cpu: dict[int, float] = {}
        self._cpu0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self.mark()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        """CPU time the run's processes used while it was measured."""
        return sum(self.cpu.values()) - self._cpu0

    def mark(self) -> None:
        """Counts CPU time from now on (the timed part begins)."""
        self._cpu0 = 0.0
        for pid in self._tree():
            try:
                self._cpu0 += self._cpu_of(pid)
            except OSError:
                pass

    @staticmethod
    def _cpu_of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _tree() -> list[int]:
        """This process and its descendants."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            total = 0.0
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                rss = next((int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith("VmRSS:")), 0.0)
                kind = "driver" if pid == me else "jvm" if b"java" in cmd else "python worker"
                try:
                    self.cpu[pid] = self._cpu_of(pid)
                except OSError:
                    pass
                self.peaks[kind] = max(self.peaks.get(kind, 0.0), rss)
                total += rss
            self.total = max(self.total, total)


def measure(root: Path, spec: Path, rows: int, who: str, as_of: str, bot: bool) -> dict[str, Any]:
    """One run in a process of its own; the rows are kept as parquet for the
    comparison (Spark's writing them is its timed job)."""
    import freshet

    df = rows_frame(rows, bot)
    with PeakMemory() as peak:
        began = time.perf_counter()
        if who == "one":
            out = freshet.get_historical_features(df, FEATURES, root / "log", spec=spec, as_of=as_of)
            seconds = time.perf_counter() - began
            out.to_parquet(root / f"one-{as_of}.parquet")
            extra: dict[str, Any] = {}
        else:
            from pyspark.sql import SparkSession

            import freshet.spark

            os.environ["PYSPARK_PYTHON"] = sys.executable
            spark = (
                SparkSession.builder.master(f"local[{who}]")
                .config("spark.driver.memory", "4g")
                .config("spark.sql.shuffle.partitions", str(PARTITIONS))
                # The UI's REST API gives the tasks' times (TASKS=1, the skew run).
                .config("spark.ui.enabled", "true" if os.environ.get("TASKS") else "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.local.dir", str(root / "spark-tmp"))
                .getOrCreate()
            )
            spark.sparkContext.setLogLevel("ERROR")
            started = time.perf_counter() - began
            frame = spark.createDataFrame(df.assign(event_timestamp=df["event_timestamp"].dt.tz_localize(None)))
            peak.mark()
            began = time.perf_counter()
            got = freshet.spark.get_historical_features(frame, FEATURES, log=str(root / "log"), as_of=as_of, spec=spec)
            got.write.mode("overwrite").parquet(str(root / f"spark{who}-{as_of}.parquet"))
            seconds = time.perf_counter() - began
            extra = {"session_start": started}
            if os.environ.get("TASKS"):
                try:
                    extra["tasks"] = slowest_stage(spark)
                except (OSError, KeyError, ValueError) as e:  # the figures stand without it
                    print(f"# no task times: {e!r}", file=sys.stderr)
            spark.stop()
    return {"seconds": seconds, "peaks": peak.peaks, "total_mb": peak.total, "cpu_seconds": peak.cpu_seconds, **extra}


def slowest_stage(spark: Any) -> dict[str, Any]:
    """The stage whose longest task ran longest, from the UI's REST API: its
    tasks' median and longest run time (s), and the longest task's input."""
    import urllib.request

    base = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{spark.sparkContext.applicationId}"

    def get(path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            return json.load(r)

    slowest: dict[str, Any] = {}
    for stage in get("/stages?status=complete"):
        if stage["numTasks"] < 2:
            continue
        summary = get(f"/stages/{stage['stageId']}/{stage['attemptId']}/taskSummary?quantiles=0.5,1.0")
        median, longest = (t / 1000 for t in summary["executorRunTime"])
        if longest > slowest.get("longest_s", -1):
            records = summary.get("shuffleReadMetrics", {}).get("readRecords", [0, 0])
            slowest = {"stage": stage["name"], "tasks": stage["numTasks"], "median_s": median, "longest_s": longest,
                       "median_records": records[0], "most_records": records[1]}  # fmt: skip
    return slowest


def compare(root: Path, as_of: str, who: str) -> tuple[int, int]:
    """Spark's rows against one process's, every row: (rows, values that differ)."""
    one = pd.read_parquet(root / f"one-{as_of}.parquet")
    got = pd.read_parquet(root / f"spark{who}-{as_of}.parquet")
    assert got["row"].tolist() == one["row"].tolist(), "rows in entity_df's order"
    differ = 0
    for name in [f.split(":")[1] for f in FEATURES]:
        a, b = one[name].tolist(), got[name].tolist()
        differ += sum(1 for x, y in zip(a, b, strict=True) if not (x == y or (pd.isna(x) and pd.isna(y))))
    return len(one), differ


def main() -> None:
    if sys.argv[1] == "measure":
        root, spec, rows, who, as_of = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
        print(json.dumps(measure(root, spec, rows, who, as_of, sys.argv[7] == "1")))
        return
    root, spec = Path(sys.argv[1]), Path(sys.argv[2])
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    bot_events = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    who_all = os.environ.get("WHO", "one 1 2").split()
    began = time.perf_counter()
    _, batches = generate(root, events, bot_events)
    made = time.perf_counter() - began
    size = sum(p.stat().st_size for p in (root / "log").glob("*.ndjson"))

    def run(who: str, as_of: str) -> dict[str, Any]:
        cmd = [sys.executable, __file__, "measure", str(root), str(spec), str(rows), who, as_of,
               "1" if bot_events else "0"]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"# {who} {as_of}: {result}", file=sys.stderr)
        return result

    table, checks = [], []
    for as_of in ("served", "event_time"):
        for who in who_all:
            table.append((as_of, who, run(who, as_of)))
        for who in who_all:
            if who != "one" and "one" in who_all:
                checks.append((as_of, who, *compare(root, as_of, who)))
    report = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "events": events + bot_events,
        "bot_events": bot_events,
        "batches": batches,
        "rows": rows,
        "mb": size / 1e6,
        "made": made,
        "table": table,
        "checks": checks,
    }
    print(markdown(report))


def markdown(r: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of one run."""
    names = {"one": "one process (`freshet.get_historical_features`)", "1": "Spark `local[1]`", "2": "Spark `local[2]`"}
    bot = f", {r['bot_events']:,} of them from one bot (1 row in 100 reads it)" if r["bot_events"] else ""
    out = [
        f"{r['events']:,} events{bot} in {r['batches']:,} batches of {PER_BATCH} ({USERS:,} visitors, {PRODUCTS} "
        f"products, over 30 days, 1 event in 20 late by up to 2 days), as {r['mb']:,.0f} MB of plain NDJSON in "
        f"files of {PER_FILE:,} events (an export saved in parts; made in {r['made']:.0f} s, not timed); "
        f"{r['rows']:,} entity rows x 3 features ({', '.join(FEATURES)}). CPython {r['python']}, {r['cores']} cores. "
        f"Spark: {PARTITIONS} partitions, driver memory 4g, executors' Python the bench's venv; its time is the "
        "call and writing the rows to parquet (the session's start not included); one process's is the call. Peak "
        "memory is resident memory sampled every 0.2 s: per process kind (the largest Python worker), and the sum "
        "of the run's processes at its highest; CPU seconds are the processes' user and system time over the "
        "same span (sampled, so a worker that ended between samples is missing its last 0.2 s).",
        "",
        "| view | run | seconds | CPU seconds | events / s | rows / s | driver (Python) | JVM | largest Python worker "
        "| sum |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for as_of, who, m in r["table"]:
        s, p = m["seconds"], m["peaks"]
        jvm = f"{p['jvm']:,.0f} MB" if "jvm" in p else "-"
        worker = f"{p['python worker']:,.0f} MB" if "python worker" in p else "-"
        cpu = f"{m['cpu_seconds']:.1f}" if "cpu_seconds" in m else "-"
        out.append(
            f"| `{as_of}` | {names[who]} | {s:.1f} | {cpu} | {r['events'] / s:,.0f} | {r['rows'] / s:,.0f} | "
            f"{p['driver']:,.0f} MB | {jvm} | {worker} | {m['total_mb']:,.0f} MB |"
        )
    for as_of, who, m in r["table"]:
        if t := m.get("tasks"):
            out.append("")
            out.append(
                f"Tasks, `{as_of}`, {names[who]}: the slowest stage ({t['tasks']} tasks) ran its median task in "
                f"{t['median_s']:.1f} s and its longest in {t['longest_s']:.1f} s; shuffle records read per task: "
                f"median {t['median_records']:,.0f}, most {t['most_records']:,.0f}."
            )
    for as_of, who, rows, differ in r["checks"]:
        out.append("")
        out.append(
            f"Equality, `{as_of}`, {names[who]}: every one of the {rows:,} rows against the one-process frame, "
            f"3 values each: {differ} differ."
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
