#!/usr/bin/env bash
# `make demo`: the example shop (examples/nuxt, built) on top of the edge
# worker under `wrangler dev`, with the embedded default store (a Durable
# Object per entity, persisted under .state/edge so features survive a
# restart), and the shop's ranker: the KServe model server of
# examples/kserve serving .state/ranker.joblib, which orders the shop's
# "Recommended for you" row. With no ranker there yet (or one trained on
# another spec), it first sends generated visits through the edge
# (examples/kserve/traffic.py) and trains one from the event log
# (train.py), and says so. Prints the URL to open and keeps serving until Ctrl-C.
# The shop's drift page (/drift) works from the first minute: training also
# profiles the training decisions into .state/baseline.json, the edge's
# drift baseline (FRESHET_DRIFT_BASELINE), and the demo's edge samples every
# read (FRESHET_DRIFT_SAMPLE_RATE=1; deployed, the default is 1 %).
#
#   FRESHET_STORE=redis://127.0.0.1:6390 make demo     # a Redis of yours
#   FRESHET_STORE=mongodb://user:pass@127.0.0.1:27017/freshet?authSource=admin make demo
#   FRESHET_PIPELINE=queue make demo                    # ingest through the queue and its consumer
#   PORT=8787 SHOP_PORT=3000 MODEL_PORT=8090 make demo  # the edge's, the shop's and the model server's ports
#   rm .state/ranker.joblib && make demo                # train the ranker again
#
# On a fresh machine it first installs the tools (into .tools/), builds the
# tracker package (npm/), the worker (edge/) and the shop; later runs skip
# what is current. The shop runs built (`nuxt build`, then
# `node .output/server/index.mjs`): what a user deploys, and it starts in a
# second; it is rebuilt only when its sources or the package changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT=${PORT:-8787}
SHOP_PORT=${SHOP_PORT:-3000}
MODEL_PORT=${MODEL_PORT:-8090}
RANKER=.state/ranker.joblib
BASELINE=.state/baseline.json
READ_TOKEN=${FRESHET_READ_TOKEN:-dev-read-token}
IDENTITY_SECRET=${FRESHET_IDENTITY_SECRET:-dev-identity-secret}
ADMIN_TOKEN=${FRESHET_ADMIN_TOKEN:-dev-admin-token}
bash scripts/tools.sh rust node worker python
mkdir -p .state
source scripts/lib-shop.sh
build_shop_stack
shop=examples/nuxt

step "installing the Python package (freshet) for the model server and training"
bash scripts/install-python.sh
PY="$TOOLS/venv/bin/python"

# The `dev` write key is local only: edge/wrangler.toml, which is deployed, has none.
vars=(--var "FRESHET_WRITE_KEYS:dev=*" --var "FRESHET_READ_TOKEN:$READ_TOKEN" --var "FRESHET_IDENTITY_SECRET:$IDENTITY_SECRET"
  --var "FRESHET_ADMIN_TOKEN:$ADMIN_TOKEN")
[ -n "${FRESHET_STORE:-}" ] && vars+=(--var "FRESHET_STORE:$FRESHET_STORE")
[ -n "${FRESHET_PIPELINE:-}" ] && vars+=(--var "FRESHET_PIPELINE:$FRESHET_PIPELINE")
# The build above is current: run wrangler from a copy of the config without
# its [build] step, so it starts in seconds.
sed -e '/^\[build\]/,/^$/d' -e "s|^main = .*|main = \"$ROOT/edge/build/index.js\"|" \
  edge/wrangler.toml > .state/wrangler.toml
# Say which store without echoing a password from the URL.
STORE_NAME=$(sed -E 's|//[^@/]*@|//…@|' <<<"${FRESHET_STORE:-durable-object}")
WHERE=; [ -z "${FRESHET_STORE:-}" ] && WHERE=", its state in .state/edge"
EDGE=
SHOP=
MODEL=
cleanup() {
  [ -n "$SHOP" ] && kill "$SHOP" 2>/dev/null || true
  [ -n "$MODEL" ] && kill "$MODEL" 2>/dev/null || true
  [ -n "$EDGE" ] && kill "$EDGE" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
# Starts (or restarts) the edge, with the drift baseline when there is one.
start_edge() {
  if [ -n "$EDGE" ]; then
    kill "$EDGE" 2>/dev/null || true
    wait "$EDGE" 2>/dev/null || true
  fi
  local drift=(--var "FRESHET_DRIFT_SAMPLE_RATE:1")
  [ -s "$BASELINE" ] && drift+=(--var "FRESHET_DRIFT_BASELINE:$(cat "$BASELINE")")
  step "starting the edge on http://127.0.0.1:$PORT (store: $STORE_NAME, log: .state/edge.log)"
  edge/node_modules/.bin/wrangler dev --config .state/wrangler.toml --local --ip 127.0.0.1 \
    --port "$PORT" --inspector-port $((PORT + 1)) --show-interactive-dev-session=false \
    --persist-to "$ROOT/.state/edge" "${vars[@]}" "${drift[@]}" >.state/edge.log 2>&1 &
  EDGE=$!
  for _ in $(seq 1 240); do
    curl -fs -m 2 -o /dev/null "http://127.0.0.1:$PORT/health" && return 0
    kill -0 "$EDGE" 2>/dev/null || { cat .state/edge.log; exit 1; }
    sleep 0.5
  done
  cat .state/edge.log
  exit 1
}
start_edge

# The ranker: trained here from generated traffic when there is none for this spec.
spec_hash=$("$PY" -c 'import sys, freshet; print(freshet.Spec(open("features.toml").read()).hash)')
trained_on=$([ -f "$RANKER" ] && "$PY" -c 'import sys, joblib; print(joblib.load(sys.argv[1])["spec_hash"])' "$RANKER" 2>/dev/null || true)
if [ "$trained_on" != "$spec_hash" ] || [ ! -s "$BASELINE" ]; then
  if [ -z "$trained_on" ]; then why="there is no trained ranker ($RANKER)"
  elif [ "$trained_on" != "$spec_hash" ]; then why="$RANKER was trained on spec $trained_on, not this spec ($spec_hash)"
  else why="there is no drift baseline ($BASELINE)"; fi
  step "$why: sending generated visits through the edge, then training one from its event log (about a minute or two)"
  (cd examples/kserve && "$PY" traffic.py --edge "http://127.0.0.1:$PORT" --write-key dev --visitors "${DEMO_VISITORS:-400}" &&
    "$PY" train.py --edge "http://127.0.0.1:$PORT" --read-token "$READ_TOKEN" --out "$ROOT/$RANKER" --baseline "$ROOT/$BASELINE")
  step "restarting the edge with the training set's drift baseline ($BASELINE)"
  start_edge
fi
step "starting the model server (KServe, freshet-ranker) on http://127.0.0.1:$MODEL_PORT (log: .state/model.log)"
FRESHET_STORE="http://127.0.0.1:$PORT" FRESHET_READ_TOKEN="$READ_TOKEN" FRESHET_SPEC=features.toml FRESHET_MODEL="$RANKER" \
  "$PY" examples/kserve/model.py --http_port "$MODEL_PORT" --grpc_port $((MODEL_PORT + 1)) --model_name freshet-user \
  --workers 1 >.state/model.log 2>&1 &
MODEL=$!
for _ in $(seq 1 120); do
  curl -fs -m 2 "http://127.0.0.1:$MODEL_PORT/v1/models/freshet-ranker" 2>/dev/null | grep -q '"ready": *true' && break
  kill -0 $MODEL 2>/dev/null || { cat .state/model.log; exit 1; }
  sleep 0.5
done

step "starting the shop on http://127.0.0.1:$SHOP_PORT (log: .state/shop.log)"
EDGE_URL="http://127.0.0.1:$PORT" # the edge's port; the shop's server reads its own from PORT
NUXT_SHOP_MODEL_URL="http://127.0.0.1:$MODEL_PORT" NUXT_FRESHET_EDGE_ENDPOINT="$EDGE_URL/v1/ingest" NUXT_SHOP_EDGE_URL="$EDGE_URL" \
  NUXT_SHOP_READ_TOKEN="$READ_TOKEN" NUXT_SHOP_IDENTITY_SECRET="$IDENTITY_SECRET" \
  PORT=$SHOP_PORT HOST=127.0.0.1 node "$shop"/.output/server/index.mjs >.state/shop.log 2>&1 &
SHOP=$!
for _ in $(seq 1 60); do
  curl -fs -m 2 -o /dev/null "http://127.0.0.1:$SHOP_PORT/" && break
  kill -0 $SHOP 2>/dev/null || { cat .state/shop.log; exit 1; }
  sleep 0.5
done

step "checking the edge: one sample visit in, its features out"
node scripts/demo-events.mjs "http://127.0.0.1:$PORT" "$READ_TOKEN" "$IDENTITY_SECRET"
cat <<MSG

  Open http://127.0.0.1:$SHOP_PORT/ : the shop, with "what the model sees" beside every page
  and a "Recommended for you" row that the model reorders within a second of your clicks.

  The edge:  http://127.0.0.1:$PORT (store: ${STORE_NAME}${WHERE})
  Features:  curl -H 'authorization: Bearer $READ_TOKEN' http://127.0.0.1:$PORT/v1/features/user/<clientId>
             (the clientId is the shop's freshet_cid cookie, or user-<name> once signed in)
  The model: http://127.0.0.1:$MODEL_PORT/v1/models/freshet-ranker ($RANKER; remove it to train again)
  Erase a person (the sample visit signed in as u-1; README "Erasure"), and see the receipt:
             FRESHET_ADMIN_TOKEN=$ADMIN_TOKEN $TOOLS/venv/bin/freshet erase --edge http://127.0.0.1:$PORT --user u-1
  Logs:      .state/edge.log, .state/shop.log, .state/model.log
Press Ctrl-C to stop.
MSG
wait -n $EDGE $SHOP $MODEL
