#!/bin/sh
# sdk_deps.sh - the SDKs the gateway tests drive (@google/genai, openai)
# and playwright-core for the dashboard's browser test (it drives Debian's
# chromium and never downloads a browser),
# pinned in tests/package.json and tests/package-lock.json, installed into
# tests/node_modules with `npm ci` when it is missing.  Needs node and npm
# (Debian: nodejs, npm); without them it says so and the SDK checks of
# tests/gateway/run_gateway.sh fail.
set -eu
cd "$(dirname "$0")"
[ -d node_modules/@google/genai ] && [ -d node_modules/openai ] &&
    [ -d node_modules/playwright-core ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
    echo "sdk_deps: npm is missing; run: sudo apt-get install -y nodejs npm" >&2
    exit 1
fi
echo "sdk_deps: npm ci in tests/" >&2
npm ci --no-audit --no-fund --silent
