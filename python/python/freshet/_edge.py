"""What the edge answers when it refuses: its error body as ``code: message``."""

from __future__ import annotations

import json


def refusal(body: bytes) -> str:
    """``error: message`` of an edge's error body, else its first 200 bytes."""
    try:
        answer = json.loads(body)
        return f"{answer.get('error')}: {answer.get('message')}"
    except ValueError:
        return body[:200].decode(errors="replace")
