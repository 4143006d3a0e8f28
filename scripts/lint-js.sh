#!/usr/bin/env bash
# ESLint over the project's own JavaScript, TypeScript and Vue: every such
# file git tracks (never node_modules, npm/pkg or a build's output), with the
# rules and globals of lint/js/eslint.config.js. The linter is installed into
# lint/js/node_modules from its lockfile, and again only when that changes.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/tools.sh node
LINT=lint/js
if ! cmp -s "$LINT/package-lock.json" "$LINT/node_modules/.installed-lock"; then
  step "lint: ESLint into $LINT/node_modules"
  # npm install, not npm ci: see ../shared/TOOLCHAIN.md on npm 11 lockfiles.
  (cd "$LINT" && npm install --no-audit --no-fund --loglevel=error)
  cp "$LINT/package-lock.json" "$LINT/node_modules/.installed-lock"
fi
step "lint: eslint (JS, TS, Vue)"
git ls-files -z '*.js' '*.mjs' '*.cjs' '*.ts' '*.vue' |
  xargs -0 "$LINT/node_modules/.bin/eslint" --config "$LINT/eslint.config.js" --max-warnings 0
