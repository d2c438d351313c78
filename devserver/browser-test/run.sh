#!/usr/bin/env bash
# Browser test of the devserver console (headless Chromium via playwright-core).
# Assumes node, npm and /usr/bin/chromium are installed (scripts/install-deps.sh, which also pins
# the Claude Code CLI in .tools/) and the binaries are built:
#   cargo build -p wegent-devserver -p wegent-executor
#     (wegent-devserver, wegent-scripted-device, and the real executor for the project flow)
# Honours CARGO_TARGET_DIR, DEVSERVER_BIN, SCRIPTED_DEVICE_BIN, EXECUTOR_BIN, WEGENT_TEST_CLAUDE,
# WEGENT_TEST_CODEX (the Codex task runs when the Codex CLI is there)
# and CHROMIUM. Screenshots go to bench-results/screenshots/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node console.test.mjs
