"""What drift sampling costs the edge's serving read, side by side in one
run: three workers under `wrangler dev` (workerd behind the dev proxy) on one
redis-server, FRESHET_DRIFT_SAMPLE_RATE 0, 0.01 and 1, each read by one
keep-alive client in interleaved rounds (GET /v1/features/user/{id}, five
features). The sample is written after the answer (ctx.wait_until), so what
a read pays is building the summary, not the Redis write. One JSON object per
measurement on stdout.

Usage: python drift_edge.py REDIS_PORT N   (the tests' conftest starts the workers)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from timing import side_by_side

from conftest import READ_TOKEN, start_edge, stop

redis_port, n = int(sys.argv[1]), int(sys.argv[2])
URL = f"redis://127.0.0.1:{redis_port}/0?prefix=bench"
NAMES = "pageviews,clicks_product_card_7d,searches,last_interacted_product,cart_value_1h"
rates = {"off (0)": "0", "default (0.01)": "0.01", "every read (1)": "1"}
tmp = Path(tempfile.mkdtemp())
edges = {name: start_edge(tmp, URL, extra_vars={"FRESHET_DRIFT_SAMPLE_RATE": r}) for name, r in rates.items()}
try:
    first = next(iter(edges.values()))
    first.post_events([{"id": "e1", "type": "page_view", "timestamp": "2026-11-29T00:00:00.000Z",
                        "clientId": "cid-bench", "payload": {}}])  # fmt: skip
    clients = {name: httpx.Client(base_url=e.base, headers={"authorization": f"Bearer {READ_TOKEN}"})
               for name, e in edges.items()}  # fmt: skip

    def read(c: httpx.Client) -> None:
        r = c.get(f"/v1/features/user/cid-bench?names={NAMES}")
        assert r.status_code == 200, r.text

    calls = {name: (lambda c=c: read(c)) for name, c in clients.items()}
    for m in side_by_side(calls, n):
        print(json.dumps({"area": "edge", **m}), flush=True)
    time.sleep(1)
    every = first.get("/v1/drift?since=1h&summaries=1")["summaries"]["pageviews@1"]["summary"]["count"]
    print(json.dumps({"area": "check", "pageviews_samples": every}), flush=True)
finally:
    for e in edges.values():
        stop(e.proc)
