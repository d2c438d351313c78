#!/usr/bin/env bash
# Every test of the project, as CI runs it. Installs what it needs first.
#   1. cargo test (workspace) inside a headless desktop session: unit tests, integration tests
#      against the in-process devserver, the python-socketio wire test, the real Claude Code and
#      Codex CLIs against a mock API, and the keychain test against a real gnome-keyring Secret Service;
#   2. the devserver console in headless Chromium (Playwright);
#   3. the real tray app under Xvfb, its menu read over D-Bus (ci/gui-stage.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

./scripts/install-deps.sh

export CARGO_TERM_COLOR=never
export WEGENT_TEST_PYTHON=$ROOT/.venv/bin/python
export WEGENT_TEST_CLAUDE=$ROOT/.tools/claude/node_modules/.bin/claude
export WEGENT_TEST_CODEX=$ROOT/.tools/codex/node_modules/.bin/codex
export WEGENT_REQUIRE_KEYRING=1

# Runs a phase and keeps its exit status (callers use `|| failed=1`, which turns off `set -e`).
timed() {
  local t=$SECONDS rc=0
  echo "=== $1"; shift
  "$@" || rc=$?
  echo "=== done in $((SECONDS - t)) s (exit $rc)"
  return $rc
}

SESSION_DIR=$(mktemp -d /tmp/wegent-test-session.XXXXXX)
# shellcheck source=ci/headless-session.sh
. "$ROOT/ci/headless-session.sh"
headless_up "$SESSION_DIR"
trap headless_down EXIT

failed=0
timed "cargo test --workspace" cargo test --workspace --locked --no-fail-fast || failed=1
timed "devserver console in Chromium" ./devserver/browser-test/run.sh || failed=1
# Reuses what cargo test --workspace built and ran (the tray's unit tests, the debug devserver).
timed "tray app end to end" env GUI_AFTER_WORKSPACE_TESTS=1 ./ci/gui-stage.sh || failed=1
exit $failed
