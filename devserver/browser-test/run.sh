#!/usr/bin/env bash
# Browser test of the devserver console (headless Chromium via playwright-core).
# Assumes node, npm and /usr/bin/chromium are installed and the devserver binaries are built:
#   cargo build -p wegent-devserver      (builds wegent-devserver and wegent-scripted-device)
# Honours CARGO_TARGET_DIR, DEVSERVER_BIN, SCRIPTED_DEVICE_BIN and CHROMIUM.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node console.test.mjs
