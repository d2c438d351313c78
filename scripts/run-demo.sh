#!/usr/bin/env bash
# Try Wegent Device against the embedded demo backend: no Wegent server needed. It signs in with a
# demo account and connects. With a display: the tray app, which opens the demo server's web
# console in your browser. Without one (a server, SSH): the headless CLI's demo, which prints the
# console's URL and password.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [[ "$(uname -s)" == Linux && -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "No graphical session (DISPLAY and WAYLAND_DISPLAY are unset): running the headless demo, \`wegent-executor --demo\`."
  exec cargo run --release -p wegent-executor --bin wegent-executor -- --demo "$@"
fi
exec cargo run --release -p wegent-device -- --demo "$@"
