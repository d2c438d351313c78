#!/usr/bin/env bash
# Run the tray app against the embedded demo backend: no Wegent server needed. It signs in with a
# demo account, connects, and opens the demo server's web console in your browser.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
exec cargo run --release -p wegent-device -- --demo "$@"
