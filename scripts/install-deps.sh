#!/usr/bin/env bash
# Installs everything the app, the tests and the benchmarks need on Debian 12 / Ubuntu 22.04+.
# Idempotent: a second run only checks. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.330   # pinned: stream-json fields change between releases (claude-cli.md)
CODEX_VERSION=0.171.0          # pinned: app-server JSON-RPC and config keys change between releases (codex-cli.md)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

APT_PACKAGES=(
  # build: the core (keyring's Secret Service backend) and the Tauri app (desktop-ci.md §1)
  build-essential pkg-config file patchelf libssl-dev libxdo-dev libdbus-1-dev
  libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev libgtk-3-dev
  libayatana-appindicator3-dev librsvg2-dev
  # headless desktop session for the GUI tests (desktop-ci.md §4)
  xvfb x11-utils dbus dbus-x11 gnome-keyring libsecret-tools dunst python3-dbus python3-gi
  webkit2gtk-driver imagemagick xdotool
  # screenshots show what users see: the menu's 🟢 ⭐ ⏸ are empty boxes without a colour emoji font
  fonts-noto-color-emoji
  # browser test of the devserver console
  chromium
  # python-socketio wire test
  python3-venv
  # `service install` test: systemd-analyze verifies the unit (no running systemd needed)
  systemd
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# python-socketio (the library the Wegent backend runs on), for the wire test.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import socketio' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q -r tests/python/requirements.txt
fi

# The real Claude Code CLI, pinned, for the task-execution tests.
if [ "$(.tools/claude/node_modules/.bin/claude --version 2>/dev/null | cut -d' ' -f1)" != "$CLAUDE_CODE_VERSION" ]; then
  npm install --no-fund --no-audit --prefix .tools/claude "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi

# The real Codex CLI, pinned, for the Codex task tests. Only the npm registry is needed: the native
# binary comes as an aliased optional dependency (@openai/codex-linux-x64 → @openai/codex@<v>-linux-x64).
if [ "$(.tools/codex/node_modules/.bin/codex --version 2>/dev/null | cut -d' ' -f2)" != "$CODEX_VERSION" ]; then
  npm install --no-fund --no-audit --prefix .tools/codex "@openai/codex@$CODEX_VERSION"
fi

# Node tools pinned by lockfiles: tauri CLI (bundling) and playwright-core (console test).
for dir in src-tauri devserver/browser-test; do
  if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-fund --no-audit)
  fi
done
echo "install-deps: ok"
