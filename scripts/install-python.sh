#!/usr/bin/env bash
# Builds the `freshet` wheel (maturin, abi3, profile wheel) and installs it
# into .tools/venv, where the tests and `make demo` run it. Usage:
# scripts/install-python.sh [wheel dir] (a temporary one by default).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust python
VENV="$TOOLS/venv"
OUT=${1:-}
if [ -z "$OUT" ]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
step "python: build the wheel (maturin, abi3, profile wheel) and install it into .tools/venv"
(cd python && "$VENV/bin/maturin" build --quiet --out "$OUT")
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$OUT"/freshet-*.whl
