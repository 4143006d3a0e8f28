"""Latency percentiles of a call, sync or async, after a warm-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def summary(name: str, ns: list[int]) -> dict[str, Any]:
    ns = sorted(ns)

    def pct(p: float) -> float:
        return ns[min(len(ns) - 1, int(p * len(ns)))] / 1000

    return {"name": name, "n": len(ns), "p50_us": pct(0.50), "p99_us": pct(0.99), "mean_us": sum(ns) / len(ns) / 1000}


def measure(name: str, call: Callable[[], Any], n: int, warmup: int = 200) -> dict[str, Any]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        call()
        out.append(time.perf_counter_ns() - t)
    return summary(name, out)


def measure_async(name: str, call: Callable[[], Awaitable[Any]], n: int, warmup: int = 200) -> dict[str, Any]:
    async def run() -> list[int]:
        for _ in range(warmup):
            await call()
        out = []
        for _ in range(n):
            t = time.perf_counter_ns()
            await call()
            out.append(time.perf_counter_ns() - t)
        return out

    return summary(name, asyncio.run(run()))
