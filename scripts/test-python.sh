#!/usr/bin/env bash
# make help: the freshet package: stubtest, pytest on Redis, MongoDB, the edge, KServe
# The model side (python/): builds the abi3 wheel with maturin and installs it
# into .tools/venv, checks its stubs against the extension (stubtest; ruff
# and mypy are in `make lint`), then pytest against real
# servers the tests start on free 127.0.0.1 ports: redis-server, SecantusDB
# (with auth) and the edge worker under `wrangler dev` (Redis, then MongoDB
# store), and the KServe example. The wheel also goes into a fresh venv,
# and Spark (local[2], Java from tools.sh java) runs training data with
# executors on a venv made from it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis node worker mongo python java
VENV="$TOOLS/venv"
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT

bash scripts/install-python.sh "$WHEELS"

# ruff and mypy run in `make lint`; stubtest needs the built extension.
step "python: stubtest of the stubs against the extension"
"$VENV/bin/python" -m mypy.stubtest freshet._freshet

step "python: the worker for the equality and backfill tests (edge/build; the backfill's next deploy is the same build given its spec in FRESHET_SPEC)"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
build_worker

step "python: pytest (warnings are errors, a timeout per test)"
FRESHET_ROOT="$ROOT" FRESHET_WHEEL_DIR="$WHEELS" EDGE_DIR="$ROOT/edge" SECANTUSD="$VENV/bin/secantusd-py" \
  "$VENV/bin/python" -m pytest -p no:cacheprovider --durations=15 -c python/pyproject.toml --rootdir python python/tests
