#!/usr/bin/env bash
# Every test of the project, as CI runs it (.ci/run calls `make test`): the
# lints, then each part's scripts/test-<part>.sh (each also runs alone:
# `make test-<part>`). Ends with a table of what each step cost, slowest
# first, and the totals of every runner.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
# Everything printed is kept, so the last line can total the test counts of
# every runner (cargo's "test result:", node's "# pass"/"# fail").
mkdir -p .state
LOG=.state/test.log
exec > >(tee "$LOG") 2>&1
export FRESHET_STEP_LOG="$ROOT/.state/steps.tsv"
: >"$FRESHET_STEP_LOG"
STEP_LOGS=("$FRESHET_STEP_LOG")
started=$(date +%s)
step_table() {
  echo
  echo "== where the time went (slowest first)"
  bash "$ROOT/scripts/step-table.sh" "$(date +%s.%N)" "${STEP_LOGS[@]}"
}
# A failed run stops what it started in the background (and their children).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
on_exit() {
  local rc=$?
  for pid in ${tools_bg:-} ${prefetch:-} ${wheel:-} ${lane_a_pid:-} ${lane_b_pid:-}; do kill_tree "$pid"; done
  [ "$rc" -eq 0 ] || step_table
  exit "$rc"
}
trap on_exit EXIT
# The tree must be as the run found it: a test that writes a tracked file (a
# lockfile, a picture) or leaves a file git does not ignore fails the run at
# the end. Compared with the start, so a developer's own uncommitted work
# does not count.
tree_state() { git status --porcelain 2>/dev/null; git diff 2>/dev/null | sha1sum; }
tree_before=$(tree_state)
# The tools that are compiled (the wasm-bindgen CLI, worker-build: minutes
# from nothing) build in the background while the lints and the Rust tests
# run, which leave a core idle now and then; the parts after those wait for
# them. Their own steps go to their log, not the table.
step "tools (scripts/tools.sh: what is missing; wasm and worker in the background)"
tools_bg_log=.state/tools-background.log
(
  t0=$(date +%s)
  FRESHET_STEP_LOG='' bash scripts/tools.sh wasm worker
  echo "background tools took $(($(date +%s) - t0)) s"
) >"$tools_bg_log" 2>&1 &
tools_bg=$!
# Every apt install before the lanes, so no two lanes ask dpkg at once.
FRESHET_STEP_PART=tools bash scripts/tools.sh rust redis chromium chromedriver node mongo python java shellcheck
step "lints (make lint; clippy runs in test-core's build)"
FRESHET_CLIPPY_IN_TESTS=1 FRESHET_STEP_PART=lint bash scripts/lint.sh
step "test-core"
# Core for wasm32 is built later in the run by the worker's and the tracker's
# release builds, with both feature sets: not checked twice.
FRESHET_STEP_PART=core FRESHET_CORE_WASM32_LATER=1 bash scripts/test-core.sh
step "tools: waiting for the background install (wasm-bindgen, worker-build)"
if ! wait "$tools_bg"; then
  cat "$tools_bg_log" >&2
  echo "the background tool install failed (above)" >&2
  exit 1
fi
tools_bg=
cat "$tools_bg_log"
# What most parts use is built once here (each part's script would build it
# when missing, and finds it current): the worker, the wheel, the tracker
# package. Then the parts run in two lanes side by side, each part's steps in
# order: most of their time they wait on the edge, a store or a browser, so
# two share the 2 cores; scripts/prefetch.sh compiles at a lower priority
# what the parts at the lanes' ends build (Leptos, the tracker's wasm
# tests). Parts that touch the same files are in the same lane (e2e and
# leptos: tests/e2e/node_modules; sdk and sdk-web: tests/sdk); the builds
# they share take a lock. pytest, the longest part, leads lane a; the
# lanes' parts are split so both end about together (the step table shows
# each part's cost).
step "the edge worker (edge/build), the wheel and the tracker package, for the parts after"
(cd edge && { [ -x node_modules/.bin/wrangler ] || npm install --no-audit --no-fund >/dev/null; })
# One after the other: side by side, from nothing, the worker, the wheel and
# the package took 443 s, against about 390 s one after the other in the
# runs before (both builds keep the 2 cores busy).
build_worker
FRESHET_STEP_PART=wheel bash scripts/install-python.sh
bash npm/build.sh >/dev/null
prefetch_log=.state/prefetch.log
bash scripts/prefetch.sh >"$prefetch_log" 2>&1 &
prefetch=$!
lane_a=(python mongo media edge)
lane_b=(e2e sdk leptos sdk-web)
for part in "$ROOT"/scripts/test-*.sh; do
  name=$(basename "$part" .sh)
  name=${name#test-}
  [[ " core ${lane_a[*]} ${lane_b[*]} " == *" $name "* ]] || lane_b+=("$name")
done
run_lane() {
  local part
  for part in "$@"; do
    step "test-$part"
    if ! FRESHET_STEP_PART=$part bash "scripts/test-$part.sh"; then
      echo "test-$part failed"
      printf '%s\t-\tend\n' "$(date +%s.%N)" >>"$FRESHET_STEP_LOG"
      return 1
    fi
  done
  printf '%s\t-\tend\n' "$(date +%s.%N)" >>"$FRESHET_STEP_LOG"
}
FRESHET_STEP_PART=lanes step "two lanes side by side: ${lane_a[*]} | ${lane_b[*]}"
: >.state/steps-a.tsv
: >.state/steps-b.tsv
(FRESHET_STEP_LOG="$ROOT/.state/steps-a.tsv" run_lane "${lane_a[@]}") >.state/lane-a.log 2>&1 &
lane_a_pid=$!
(FRESHET_STEP_LOG="$ROOT/.state/steps-b.tsv" run_lane "${lane_b[@]}") >.state/lane-b.log 2>&1 &
lane_b_pid=$!
lanes_failed=0
for lane in a b; do
  pid_var=lane_${lane}_pid
  if ! wait "${!pid_var}"; then lanes_failed=1; fi
  printf -v "$pid_var" '%s' ""
  echo
  echo "==== lane $lane ===="
  cat ".state/lane-$lane.log"
done
STEP_LOGS+=("$ROOT/.state/steps-a.tsv" "$ROOT/.state/steps-b.tsv")
[ "$lanes_failed" = 0 ] || { echo "a part failed (its lane's log above)" >&2; exit 1; }
# A failure here is not a test's: each part compiled what it needed itself.
if ! wait "$prefetch"; then
  echo "warning: scripts/prefetch.sh failed (its log follows); the parts built for themselves" >&2
  cat "$prefetch_log" >&2
fi
prefetch=
tail -n 1 "$prefetch_log"
step "the tree is as the run found it (git status)"
tree_after=$(tree_state)
if [ "$tree_after" != "$tree_before" ]; then
  echo "make test changed the tree (a tracked file, or a file git does not ignore):" >&2
  diff <(echo "$tree_before") <(echo "$tree_after") >&2 || true
  exit 1
fi
step_table
echo "make test took $(( $(date +%s) - started )) s"
sleep 1 # let tee catch up
# Totals of every runner: cargo's "test result:", node's "# pass"/"# fail",
# pytest's closing "== N passed, M failed … in Xs ==".
awk '/^test result:/ { p += $4; f += $6 }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     /^=+ .* in [0-9.]+s/ && / (passed|failed)/ {
       for (i = 2; i < NF; i++) {
         w = $(i + 1); sub(/,$/, "", w)
         if (w == "passed") p += $i
         if (w == "failed" || w == "errors" || w == "error") f += $i
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
