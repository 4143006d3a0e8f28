"""``freshet erase --user U | --client C``: erase one person's data through
the edge (README, "Erasure"), and wait for its receipt.

The edge does the work: ``POST /v1/erasures`` tombstones the person (their
events at or before now are dropped wherever they come from, for good),
removes their entities and the composite entities they are part of from the
store before it answers, and rewrites the event log without their events
once the erasure has settled (seconds). ``GET /v1/erasures/{id}`` tells each
part's state; here it is polled until done, and the receipt is returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from freshet._edge import admin_token as edge_admin_token
from freshet._edge import refusal
from freshet._freshet import StoreUnavailable


@dataclass
class Erasure:
    """An erasure's receipt, as the edge answers it: ``id``, ``status``
    (``pending`` or ``done``), and per part (``store``, ``composites``,
    ``log``) its state, time and what it removed; ``erases_until``, the
    time up to which the person's events are erased (a few seconds after
    the request, once it has settled). ``nothing_found`` when a done erasure
    found nothing of the person."""

    id: str
    status: str
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    requested_at: str = ""
    erases_until: str = ""
    nothing_found: bool = False

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Erasure:
        return cls(
            id=str(answer["id"]), status=str(answer["status"]),
            parts={p: dict(answer[p]) for p in ("store", "composites", "log")},
            requested_at=str(answer.get("requestedAt", "")), erases_until=str(answer.get("erasesUntil", "")),
            nothing_found=bool(answer.get("nothingFound")),
        )  # fmt: skip

    @property
    def done(self) -> bool:
        return self.status == "done"

    def lines(self) -> list[str]:
        out = [f"erasure {self.id}: {self.status} (requested {self.requested_at}, erases until {self.erases_until})"]
        for name, what in (("store", "entities"), ("composites", "entities"), ("log", "events")):
            part = self.parts[name]
            if part.get("state") == "done":
                extra = f", {part['objects']} objects rewritten" if name == "log" else ""
                if name == "log" and "daysScanned" in part:
                    extra += f", {part['daysScanned']} days scanned"
                out.append(f"  {name}: done at {part['at']}, {part.get(what, 0)} {what} removed{extra}")
            else:
                out.append(f"  {name}: {part.get('state', 'pending')}")
        if self.nothing_found:
            out.append("  nothing found: the edge held no data of this person")
        return out


def erase(
    *,
    edge: str,
    user: str | None = None,
    client: str | None = None,
    admin_token: str | None = None,
    scan_log_days: int = 0,
    wait: float = 120.0,
    timeout: float = 30.0,
) -> Erasure:
    """Erases ``user`` (a userId: with every client it signed in from)
    and/or ``client`` (an anonymous clientId) through ``edge`` with
    ``admin_token`` (or ``$FRESHET_ADMIN_TOKEN``), then polls the receipt
    for up to ``wait`` seconds (0: return the first answer).
    ``scan_log_days`` also reads every log object of that many days back
    (a log written before the edge indexed each person's objects; seven
    days a minute). Raises
    :class:`StoreUnavailable` when the edge refuses (its message says why)
    or cannot be reached, ``ValueError`` without a subject or a token."""
    import httpx

    token = edge_admin_token(admin_token, "erasure")
    subject: dict[str, Any] = {k: v for k, v in (("userId", user), ("clientId", client)) if v is not None}
    if not subject:
        raise ValueError("name a user, a client, or both")
    if scan_log_days:
        subject["scanLogDays"] = scan_log_days
    url = f"{edge.rstrip('/')}/v1/erasures"
    with httpx.Client(timeout=timeout, headers={"authorization": f"Bearer {token}"}) as http:
        receipt = Erasure.from_answer(_call(http, "POST", url, json=subject, ok=202))
        return _wait(http, url, receipt, wait)


def erasure_receipt(
    erasure_id: str, *, edge: str, admin_token: str | None = None, wait: float = 0.0, timeout: float = 30.0
) -> Erasure:
    """The receipt of the erasure ``erasure_id``, polled for up to ``wait``
    seconds until it is done."""
    import httpx

    token = edge_admin_token(admin_token, "erasure")
    url = f"{edge.rstrip('/')}/v1/erasures"
    with httpx.Client(timeout=timeout, headers={"authorization": f"Bearer {token}"}) as http:
        receipt = Erasure.from_answer(_call(http, "GET", f"{url}/{erasure_id}", ok=200))
        return _wait(http, url, receipt, wait)


def _wait(http: Any, url: str, receipt: Erasure, wait: float) -> Erasure:
    deadline = time.monotonic() + wait
    while not receipt.done and time.monotonic() < deadline:
        time.sleep(0.5)
        receipt = Erasure.from_answer(_call(http, "GET", f"{url}/{receipt.id}", ok=200))
    return receipt


def _call(http: Any, method: str, url: str, ok: int, json: Any = None) -> dict[str, Any]:
    import httpx

    try:
        r = http.request(method, url, json=json)
    except httpx.HTTPError as e:
        raise StoreUnavailable(f"{url}: {type(e).__name__}: {e}") from e
    if r.status_code != ok:
        raise StoreUnavailable(f"{url}: {r.status_code} {refusal(r.content)}")
    answer: dict[str, Any] = r.json()
    return answer
