# shellcheck shell=bash
# Sourced (after env.sh, from $ROOT) by what runs the example shop's stack:
# test-e2e, demo, bench-freshness, bench-loop.

# The edge's npm tools (wrangler, workerd), the worker, the tracker package
# and the built shop; each build skips what is current.
build_shop_stack() {
  step "the edge's npm tools (wrangler, workerd)"
  (cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
  step "the edge worker (edge/build)"
  build_worker
  step "the tracker package (npm/)"
  bash npm/build.sh >/dev/null
  step "the example shop (examples/nuxt; npm install and nuxt build when not current)"
  bash examples/nuxt/build.sh
}
