"""Talking to the edge's admin routes: the admin token, and what the edge
answers when it refuses (its error body as ``code: message``)."""

from __future__ import annotations

import json
import os


def refusal(body: bytes) -> str:
    """``error: message`` of an edge's error body, else its first 200 bytes."""
    try:
        answer = json.loads(body)
        return f"{answer.get('error')}: {answer.get('message')}"
    except ValueError:
        return body[:200].decode(errors="replace")


def admin_token(given: str | None, what: str) -> str:
    """``given``, else ``$FRESHET_ADMIN_TOKEN``; ``ValueError`` naming ``what``
    needs it when neither is set."""
    token = given or os.environ.get("FRESHET_ADMIN_TOKEN")
    if not token:
        raise ValueError(f"{what} needs the edge's admin token (admin_token= or $FRESHET_ADMIN_TOKEN)")
    return token
