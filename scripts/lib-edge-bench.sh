# shellcheck shell=bash
# Sourced (after env.sh, from $ROOT) by the benchmarks that run the edge
# worker: bench-edge, bench-mongo, bench-feast, bench-rate-limit, bench-erasure,
# bench-sign-in.

# The worker's tools and built bundle, each skipped when there.
edge_bench_prerequisites() {
  bash scripts/tools.sh worker >&2
  (cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
  { [ -f edge/build/index.js ] && [ -z "${REBUILD:-}" ]; } || bash edge/build.sh >&2
}

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_http() { for _ in $(seq 1 240); do curl -fs -m 2 -o /dev/null "$1" && return 0; sleep 0.25; done; echo "no answer from $1" >&2; return 1; }

# edge/wrangler.toml without [build] (a start must not rebuild), serving the
# bundle at $1 (a copy, so a concurrent rebuild cannot change it mid-run).
wrangler_config() {
  awk '/^\[build\]/{skip=1; next} /^\[/{skip=0} !skip' edge/wrangler.toml |
    sed "s|^main = .*|main = \"$1\"|"
}

# autocannon, edge/bench/load.mjs's load generator.
edge_bench_load_generator() {
  (cd edge/bench && { [ -d node_modules/autocannon ] || npm install --no-audit --no-fund >/dev/null; })
}

# `wrangler dev` in a process group of its own on a free port, serving the
# config $TMP/$1.toml with its state under $TMP/$2, each further argument a
# `--var NAME:value`; sets BASE, WORKER_PID and WORKER_LOG (in $TMP), and
# waits for /health.
wrangler_up() {
  local config=$1 state=$2 port inspect vars=()
  shift 2
  for v in "$@"; do vars+=(--var "$v"); done
  port=$(free_port); inspect=$(free_port); BASE="http://127.0.0.1:$port"
  WORKER_LOG="$TMP/wrangler-$port.log"
  setsid edge/node_modules/.bin/wrangler dev --config "$TMP/$config.toml" --local --ip 127.0.0.1 \
    --port "$port" --inspector-port "$inspect" --show-interactive-dev-session=false \
    --persist-to "$TMP/$state" "${vars[@]}" > "$WORKER_LOG" 2>&1 < /dev/null &
  WORKER_PID=$!
  wait_http "$BASE/health"
}

# Stops the worker wrangler_up started.
wrangler_down() {
  kill -TERM -- "-$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  WORKER_PID=
}
