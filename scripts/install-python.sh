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
# One build at a time (`make test` runs two lanes of parts side by side), and
# none when the venv holds a wheel of the same sources: the stamp in the venv
# and the wheel kept in .state/wheel/ (copied to the wheel dir asked for).
mkdir -p .state
exec 9>.state/wheel.lock
flock 9
stamp=$(sources_digest python/src python/python python/Cargo.toml python/pyproject.toml core/src core/Cargo.toml Cargo.lock)
kept=(.state/wheel/freshet-*.whl)
if [ "$(cat "$VENV/freshet-wheel.stamp" 2>/dev/null)" = "$stamp" ] && [ -f "${kept[0]}" ]; then
  echo "the wheel in .tools/venv is current" >&2
  cp "${kept[@]}" "$OUT"/
  exit 0
fi
(cd python && "$VENV/bin/maturin" build --quiet --out "$OUT")
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$OUT"/freshet-*.whl
rm -rf .state/wheel && mkdir -p .state/wheel && cp "$OUT"/freshet-*.whl .state/wheel/
echo "$stamp" >"$VENV/freshet-wheel.stamp"
