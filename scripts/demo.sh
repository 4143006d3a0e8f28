#!/usr/bin/env bash
# `make demo`: Freshet running locally on the embedded default store (a
# Durable Object per entity, persisted under .state/edge), fed one batch of
# shop events, with the features it computed read back. Keeps serving until
# Ctrl-C. FRESHET_STORE=redis://127.0.0.1:6390 uses that store instead;
# PORT picks the port (8787).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT=${PORT:-8787}
READ_TOKEN=${FRESHET_READ_TOKEN:-dev-read-token}
bash scripts/tools.sh rust node wasm worker
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
step "building the edge worker"
bash edge/build.sh
vars=(--var "FRESHET_READ_TOKEN:$READ_TOKEN" --var "FRESHET_IDENTITY_SECRET:${FRESHET_IDENTITY_SECRET:-dev-identity-secret}")
[ -n "${FRESHET_STORE:-}" ] && vars+=(--var "FRESHET_STORE:$FRESHET_STORE")
mkdir -p .state
# The build above is current: run wrangler from a copy of the config without
# its [build] step, so it starts in seconds.
sed -e '/^\[build\]/,/^$/d' -e "s|^main = .*|main = \"$ROOT/edge/build/index.js\"|" \
  edge/wrangler.toml > .state/wrangler.toml
step "starting the edge on http://127.0.0.1:$PORT (store: ${FRESHET_STORE:-durable-object}, log: .state/edge.log)"
edge/node_modules/.bin/wrangler dev --config .state/wrangler.toml --local --ip 127.0.0.1 \
  --port "$PORT" --inspector-port $((PORT + 1)) --show-interactive-dev-session=false \
  --persist-to "$ROOT/.state/edge" "${vars[@]}" >.state/edge.log 2>&1 &
EDGE=$!
trap 'kill $EDGE 2>/dev/null || true; wait $EDGE 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 120); do
  curl -fs -m 2 -o /dev/null "http://127.0.0.1:$PORT/health" && break
  kill -0 $EDGE 2>/dev/null || { cat .state/edge.log; exit 1; }
  sleep 1
done
step "sending a visit's events and reading the visitor's features back"
node scripts/demo-events.mjs "http://127.0.0.1:$PORT" "$READ_TOKEN"
cat <<MSG

Freshet is running on http://127.0.0.1:$PORT with the ${FRESHET_STORE:-durable-object} store.
  another visit: node scripts/demo-events.mjs http://127.0.0.1:$PORT $READ_TOKEN
  read features: curl -H 'authorization: Bearer $READ_TOKEN' http://127.0.0.1:$PORT/v1/features/user/<clientId>
Press Ctrl-C to stop.
MSG
wait $EDGE
