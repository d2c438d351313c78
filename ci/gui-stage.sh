#!/usr/bin/env bash
# GUI stage of CI for the tray app (`wegent-device`), called by .ci/run.
#
#   1. unit tests of the tray app (no display needed)
#   2. the release .deb through the pinned Tauri CLI (src-tauri/package.json), checked with dpkg-deb
#   3. the headless end-to-end test of the REAL release binary (tests/tray_e2e/tray_e2e.py) inside
#      Xvfb + D-Bus + gnome-keyring + dunst + a StatusNotifierWatcher, against the devserver
#   4. benchmarks into bench-results/tray.json, screenshots into bench-results/screenshots/
#
# Needs (Debian 12): the apt packages listed in desktop-ci.md §1 (build + runtime/test lists), node+npm.
# Env: CARGO_TARGET_DIR (default: ./target),
# GUI_SKIP_DEB=1 to skip bundling (e2e then uses a debug build),
# GUI_AFTER_WORKSPACE_TESTS=1 (set by scripts/test-all.sh): `cargo test --workspace` has just run,
#   so the tray's unit tests are not run again and its debug build of the devserver is used (a
#   `cargo build -p wegent-devserver` resolves features differently and compiles ~100 crates again).
# Prints 'gui-stage: N passed, N failed' last; exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

BENCH=$ROOT/bench-results
WORK=$(mktemp -d /tmp/gui-stage.XXXXXX)
mkdir -p "$BENCH/screenshots"
PASSED=0
FAILED=0
STEP="" STEP_T=$SECONDS
# Starts a step; prints how long the previous one took.
step() {
  [ -z "$STEP" ] || echo "=== gui-stage: $STEP: $((SECONDS - STEP_T)) s"
  STEP=$* STEP_T=$SECONDS
  [ -z "$STEP" ] || { echo; echo "=== gui-stage: $STEP"; }
}
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

DEVSERVER=$CARGO_TARGET_DIR/debug/wegent-devserver
if [ "${GUI_AFTER_WORKSPACE_TESTS:-0}" = 1 ]; then
  echo "gui-stage: tray unit tests and the devserver binary come from cargo test --workspace"
  [ -x "$DEVSERVER" ] || { echo "gui-stage: $DEVSERVER is missing"; exit 1; }
else
  step "unit tests (cargo test -p wegent-device)"
  if timeout 1200 cargo test -p wegent-device --locked; then ok "tray unit tests"; else fail "tray unit tests"; fi
  step "devserver binary for the e2e"
  timeout 1200 cargo build -p wegent-devserver --locked
fi

DEB_BYTES=null
if [ "${GUI_SKIP_DEB:-0}" = 1 ]; then
  step "debug build of the app (GUI_SKIP_DEB=1)"
  timeout 1200 cargo build -p wegent-device --locked
  APP=$CARGO_TARGET_DIR/debug/wegent-device
else
  step "release .deb (tauri build --bundles deb)"
  (cd src-tauri && { [ -x node_modules/.bin/tauri ] || npm ci --no-audit --no-fund; })
  # Stripped and size-optimised: binary 34 MB -> 21 MB, .deb 11.3 MiB -> 8.0 MiB (measured).
  # The tray is I/O-bound; opt-level "s" costs it nothing noticeable.
  export CARGO_PROFILE_RELEASE_STRIP=${CARGO_PROFILE_RELEASE_STRIP:-symbols}
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}
  # Never the AppImage here: its bundler downloads tools from GitHub (desktop-ci.md §8).
  (cd src-tauri && timeout 2400 node_modules/.bin/tauri build --ci --bundles deb)
  APP=$CARGO_TARGET_DIR/release/wegent-device
  DEB=$(ls -t "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb | head -1)
  DEB_BYTES=$(stat -c %s "$DEB")
  dpkg-deb -I "$DEB" | sed 's/^/  /'
  if dpkg-deb -f "$DEB" Depends | grep -q 'libayatana-appindicator3-1'; then
    ok ".deb depends on libayatana-appindicator3-1"
  else fail ".deb Depends lacks libayatana-appindicator3-1"; fi
  CONTENTS=$(dpkg-deb -c "$DEB")
  for want in 'usr/bin/wegent-device' 'usr/share/applications/Wegent Device.desktop' \
              'usr/share/icons/hicolor/128x128/apps/wegent-device.png'; do
    if grep -qF "$want" <<<"$CONTENTS"; then ok ".deb contains $want"; else fail ".deb lacks $want"; fi
  done
  if [ "$(dpkg-deb -f "$DEB" Package)" = wegent-device ]; then ok ".deb package name"; else fail ".deb package name"; fi
  if [ "$DEB_BYTES" -le $((10 * 1024 * 1024)) ]; then ok ".deb is $DEB_BYTES bytes (<= 10 MiB)"; else fail ".deb is $DEB_BYTES bytes (> 10 MiB)"; fi
fi

step "headless end-to-end test of the real app"
# shellcheck source=headless-session.sh
. "$ROOT/ci/headless-session.sh"
headless_up "$WORK/session"
trap 'headless_down; cp -r "$WORK/session/logs" "$BENCH/gui-stage-logs" 2>/dev/null || true' EXIT
if timeout 600 /usr/bin/python3 "$ROOT/tests/tray_e2e/tray_e2e.py" "$APP" "$DEVSERVER" "$WORK/out"; then
  ok "tray e2e"
else
  fail "tray e2e (logs: bench-results/gui-stage-logs/)"
fi
cp "$WORK"/out/screenshots/*.png "$BENCH/screenshots/" 2>/dev/null || true

step "benchmarks -> bench-results/tray.json"
/usr/bin/python3 - "$WORK/out/tray-e2e.json" "$BENCH/tray.json" "$DEB_BYTES" "$APP" <<'PY'
import json, os, sys
src, dst, deb, app = sys.argv[1:5]
m = json.load(open(src)) if os.path.exists(src) else {}
mib = lambda kib: None if kib is None else round(kib / 1024, 1)
idle, closed = mib(m.get("rss_idle_kib")), mib(m.get("rss_after_window_closed_kib"))
out = {
    "binary": os.path.basename(os.path.dirname(app)),
    "start_to_online_ms": m.get("start_to_online_ms"),
    "rss_idle_mib": idle,
    "pss_idle_mib": mib(m.get("pss_idle_kib")),
    "private_idle_mib": mib(m.get("private_idle_kib")),
    "processes_idle": m.get("processes_idle"),
    "rss_token_window_mib": mib(m.get("rss_token_window_kib")),
    "pss_token_window_mib": mib(m.get("pss_token_window_kib")),
    "processes_token_window": m.get("processes_token_window"),
    "rss_after_window_closed_mib": closed,
    "rss_after_window_closed_over_idle_mib": None if None in (idle, closed) else round(closed - idle, 1),
    "processes_after_window_closed": m.get("processes_after_window_closed"),
    "note": "All processes of the app: the tray, its task sentinel and, while the token window is open, the window process with WebKit's web and network processes. Idle: online, no window ever opened, 15 s after start (start-up settled). After closed: 10 s after the window closed. RSS counts shared library pages in full in every process (so the window-open figure counts the GTK/WebKit libraries twice); PSS shares them out.",
    "deb_bytes": None if deb == "null" else int(deb),
    "deb_mib": None if deb == "null" else round(int(deb) / 1048576, 2),
    "targets": {"rss_idle_mib": 60, "rss_after_window_closed_over_idle_mib": 10, "deb_mib": 10},
}
print(f"tray RSS (all processes, {out['binary']} build): idle {idle} MiB, token window open "
      f"{out['rss_token_window_mib']} MiB, 10 s after it closed {closed} MiB")
json.dump(out, open(dst, "w"), indent=1)
print(json.dumps(out, indent=1))
PY

step ""
echo
echo "gui-stage: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
