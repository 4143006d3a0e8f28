"""Latency percentiles of calls measured side by side: each reader's calls
are interleaved in rounds, so a change of load on the machine falls on all
of them alike."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


def summary(name: str, ns: list[int]) -> dict[str, Any]:
    ns = sorted(ns)

    def pct(p: float) -> float:
        return ns[min(len(ns) - 1, int(p * len(ns)))] / 1000

    return {
        "name": name,
        "n": len(ns),
        "p50_us": pct(0.50),
        "p95_us": pct(0.95),
        "p99_us": pct(0.99),
        "mean_us": sum(ns) / len(ns) / 1000,
    }


def side_by_side(calls: dict[str, Callable[[], Any]], n: int, rounds: int = 20) -> list[dict[str, Any]]:
    """`n` timed calls of each, in `rounds` rounds of n/rounds calls per reader, after a warm-up."""
    times: dict[str, list[int]] = {name: [] for name in calls}
    per = max(1, n // rounds)
    for call in calls.values():
        for _ in range(min(200, n)):
            call()
    for _ in range(rounds):
        for name, call in calls.items():
            out = times[name]
            for _ in range(per):
                t = time.perf_counter_ns()
                call()
                out.append(time.perf_counter_ns() - t)
    return [summary(name, ns) for name, ns in times.items()]


async def side_by_side_async(
    calls: dict[str, Callable[[], Awaitable[Any]]], n: int, rounds: int = 20
) -> list[dict[str, Any]]:
    times: dict[str, list[int]] = {name: [] for name in calls}
    per = max(1, n // rounds)
    for call in calls.values():
        for _ in range(min(200, n)):
            await call()
    for _ in range(rounds):
        for name, call in calls.items():
            out = times[name]
            for _ in range(per):
                t = time.perf_counter_ns()
                await call()
                out.append(time.perf_counter_ns() - t)
    return [summary(name, ns) for name, ns in times.items()]
