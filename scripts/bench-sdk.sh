#!/usr/bin/env bash
# The browser tracker's benchmark: size of "init + one track" against peers,
# and main-thread cost of 1,000 track() calls and their delivery, for Freshet,
# posthog-js and @segment/analytics-next in one headless Chromium page.
# Peers are installed from npm into tests/sdk/bench-peers/ (git-ignored).
# Rewrites the "## Browser tracker" section of BENCHMARKS.md and nothing else.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh rust node wasm chromium
step "sdk bench: build the npm package"
bash npm/build.sh >/dev/null
(cd tests/sdk && npm install --no-audit --no-fund --loglevel=error)
mkdir -p tests/sdk/bench-peers
cat > tests/sdk/bench-peers/package.json <<'JSON'
{ "name": "freshet-bench-peers", "private": true, "type": "module",
  "dependencies": { "posthog-js": "1.449.2", "@segment/analytics-next": "1.84.3",
    "@snowplow/browser-tracker": "4.10.1", "@rudderstack/analytics-js": "3.34.1" } }
JSON
step "sdk bench: peers from npm into tests/sdk/bench-peers"
(cd tests/sdk/bench-peers && npm install --no-audit --no-fund --loglevel=error)
step "sdk bench: one page run"
SECTION=$(mktemp)
node tests/sdk/bench.mjs > "$SECTION"
cat "$SECTION"
# Replace our section (from its heading to the next "## " heading) or append it.
python3 - "$SECTION" <<'PY'
import re, sys, pathlib
section = pathlib.Path(sys.argv[1]).read_text().rstrip() + "\n"
path = pathlib.Path("BENCHMARKS.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
pattern = re.compile(r"^## Browser tracker\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
path.write_text(text.rstrip() + "\n")
PY
echo "BENCHMARKS.md: ## Browser tracker updated"
