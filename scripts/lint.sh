#!/usr/bin/env bash
# Every language's format and lints (`make lint`; the first part of `make
# test`): Rust (rustfmt, clippy -D warnings), Python (ruff, mypy), shell
# (shellcheck on every tracked *.sh), JS/TS/Vue (ESLint: scripts/lint-js.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust python shellcheck
VENV="$TOOLS/venv"
step "lint: rustfmt and clippy (-D warnings)"
cargo fmt --all -- --check
# Under `make test` the workspace's tests build with clippy's lints on
# (with_clippy in env.sh), which is this check without compiling twice.
if [ "${FRESHET_CLIPPY_IN_TESTS:-0}" = 1 ]; then
  echo "clippy: in the workspace's test build (scripts/test-core.sh)"
else
  cargo clippy --workspace --all-targets -- -D warnings
fi
step "lint: ruff and mypy (python/, examples/kserve)"
"$VENV/bin/ruff" check --config python/pyproject.toml python/python python/tests python/bench examples/kserve
"$VENV/bin/ruff" format --check --config python/pyproject.toml python/python python/tests python/bench examples/kserve
(cd python && "$VENV/bin/mypy" --no-incremental)
step "lint: shellcheck"
git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck -x
bash scripts/lint-js.sh
