"""Sign-in under `wrangler dev`, on each store (README, "Identity"): a
visitor browses anonymously, then signs in from two tabs at once while a
third tab still sends anonymous batches, every batch sent twice; the
visitor's clicks and pairs follow them to the user within a second and
exactly once when the store has settled; a second device adds its own; a
shared browser signing in as another user gives it nothing of the first;
training rows just before and after the sign-in see the user without and
with the visit; and `freshet consistency` stays at 100%. On Redis, also a
sign-in while the store stops answering, retried until it takes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_erasure import STORES, consistent, erasing, features, post, visit

import freshet

from conftest import READ_TOKEN, SPEC, Edge, now_ms

__all__ = ["erasing"]  # the fixture, shared with test_erasure


def take(edge: Edge, body: dict[str, Any], times: int = 2) -> int:
    """Sends a batch until it is taken, then again (a lost 202): it counts
    once. Answers how often it was refused on the way."""
    taken = refused = 0
    deadline = time.monotonic() + 60
    while taken < times:
        status, answer = post(edge, body)
        if status == 202:
            taken += 1
            assert "skipped" not in answer, answer
        else:
            # As the tracker does: the same batch again after a while.
            assert status == 503 and time.monotonic() < deadline, (status, answer)
            refused += 1
            time.sleep(0.3)
    return refused


def clicks(edge: Edge, id_: str) -> int:
    return int(features(edge, "user", id_)["clicks_product_card"])


def pair(edge: Edge, user: str, product: str) -> int:
    return int(features(edge, "user_product", f"{user}|{product}")["user_product_clicks"])


def settles(check: Callable[[], bool], what: str) -> None:
    """Waits for the settle-time move (the store's settling, 6 s, then the
    glue's `wait_until`)."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


@pytest.mark.parametrize("erasing", STORES, indirect=True)
def test_sign_in_keeps_the_visit_once_on_every_path(erasing: tuple[Edge, str, Path]) -> None:
    edge, url, _ = erasing
    tag = secrets.token_hex(3)
    user, client, phone = f"u{tag}", f"cid-a{tag}", f"cid-p{tag}"
    t = now_ms() - 3_600_000
    # Anonymous: three lens clicks.
    for i in range(3):
        take(edge, visit(f"a{i}{tag}", client, t + i, "lens"))
    assert clicks(edge, user) == 0
    before = now_ms()
    # Sign-in from two tabs at once while a third is still anonymous, every batch twice.
    bodies = [
        visit(f"s1{tag}", client, t + 10, "lens", user),
        visit(f"s2{tag}", client, t + 11, "lens", user),
        visit(f"a3{tag}", client, t + 12, "lens"),
        visit(f"a4{tag}", client, t + 13, "lens"),
    ]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda b: take(edge, b), bodies))
    signed_in = now_ms()
    # Within the sign-in's own answers: the anonymous visit is the user's.
    assert clicks(edge, user) >= 5 and pair(edge, user, "lens") >= 5
    # Once the store has settled, every click exactly once.
    settles(lambda: clicks(edge, user) == 7, f"user clicks {clicks(edge, user)}, expected 7")
    assert pair(edge, user, "lens") == 7
    assert clicks(edge, client) == 5, "the client keeps its own"

    # A second device adds its own visit.
    take(edge, visit(f"p0{tag}", phone, t + 20, "bag"))
    take(edge, visit(f"p1{tag}", phone, t + 21, "bag", user))
    assert clicks(edge, user) == 9 and pair(edge, user, "bag") == 2

    # The shared browser signs in as someone else, without signing out:
    # nothing of the first user's visit; its anonymous clicks now follow them.
    other = f"v{tag}"
    take(edge, visit(f"o1{tag}", client, t + 30, "cam", other))
    assert clicks(edge, other) == 1
    take(edge, visit(f"o2{tag}", client, t + 31, "cam"))
    assert clicks(edge, other) == 2 and pair(edge, other, "cam") == 2
    assert clicks(edge, user) == 9

    if url.startswith("redis://"):
        # A sign-in while the store stops answering: 503 until it answers,
        # then the visit moves once.
        import redis

        host, port = url.split("://")[1].split("/")[0].split("?")[0].split(":")
        late, third = f"cid-r{tag}", f"w{tag}"
        take(edge, visit(f"r0{tag}", late, t + 40, "lens"))
        with redis.Redis(host=host, port=int(port)) as r:
            r.execute_command("CLIENT", "PAUSE", "2500", "WRITE")
        assert take(edge, visit(f"r1{tag}", late, t + 41, "lens", third)) > 0, "the store never stopped answering"
        settles(lambda: clicks(edge, third) == 2, f"{clicks(edge, third)} clicks after the outage, expected 2")
        assert pair(edge, third, "lens") == 2

    # Training rows just before the sign-in and after it settled.
    time.sleep(1.1)
    rows = pd.DataFrame({
        "user": [user, user, user],
        "event_timestamp": pd.to_datetime([before - 1, signed_in, now_ms()], unit="ms", utc=True),
    })  # fmt: skip
    frame = freshet.get_historical_features(rows, ["user:clicks_product_card"], edge.base, read_token=READ_TOKEN,
                                            spec=SPEC, start=t - 60_000)  # fmt: skip
    history = list(frame["clicks_product_card"])
    assert history[0] == 0 and history[1] >= 5 and history[2] == 9, history
    consistent(edge)
