#!/usr/bin/env bash
# The model side (python/): builds the abi3 wheel with maturin and installs it
# into .tools/venv, checks the package (ruff, mypy on the code and stubs,
# stubtest of the stubs against the extension), then pytest against real
# servers the tests start on free 127.0.0.1 ports: redis-server, SecantusDB
# (with auth) and the edge worker under `wrangler dev` (Redis, then MongoDB
# store), and the KServe example. The wheel also goes into a fresh venv.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust redis node worker mongo python
VENV="$TOOLS/venv"
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT

bash scripts/install-python.sh "$WHEELS"

step "python: ruff, mypy, stubtest"
"$VENV/bin/ruff" check --config python/pyproject.toml python/python python/tests python/bench examples/kserve
"$VENV/bin/ruff" format --check --config python/pyproject.toml python/python python/tests python/bench examples/kserve
(cd python && "$VENV/bin/mypy" --no-incremental)
"$VENV/bin/python" -m mypy.stubtest freshet._freshet

step "python: the worker for the equality tests (edge/build)"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm ci --no-audit --no-fund >/dev/null; })
# test-edge.sh (which runs first under `make test`) usually leaves it fresh.
build_edge_if_stale

step "python: the worker of the next deploy for the backfill tests (edge/build-backfill)"
# The example spec plus a new version marked for backfill, compiled into a
# second worker; rebuilt on the same rule.
mkdir -p .state
cat features.toml python/tests/fixtures/backfill-version.toml > .state/features-backfill.toml.new
cmp -s .state/features-backfill.toml.new .state/features-backfill.toml ||
  mv .state/features-backfill.toml.new .state/features-backfill.toml
rm -f .state/features-backfill.toml.new
if [ ! -f edge/build-backfill/index.js ] ||
  [ -n "$(find edge/src edge/Cargo.toml core/src .state/features-backfill.toml -newer edge/build-backfill/index.js -print -quit)" ]; then
  FRESHET_FEATURES="$ROOT/.state/features-backfill.toml" FRESHET_BUILD_DIR=build-backfill bash edge/build.sh
fi

step "python: pytest (warnings are errors, a timeout per test)"
FRESHET_ROOT="$ROOT" FRESHET_WHEEL_DIR="$WHEELS" EDGE_DIR="$ROOT/edge" SECANTUSD="$VENV/bin/secantusd-py" \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -c python/pyproject.toml --rootdir python python/tests
