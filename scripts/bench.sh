#!/usr/bin/env bash
# Every benchmark of the project; each prints its numbers and writes JSON under bench-results/.
#   sio.json             codec and client: decode of a 72 KB task:execute, emits/s, call RTT
#   relay.json           task output relay: deltas/s, added latency p50/p99 at 1k ev/s, first delta
#   session.json         the CLI: start → online, idle RSS and CPU, back online after a restart
#   projects.json        task:execute → agent start: plain, local_path, follow-up, git clone of 1,000 files, reuse
#   reconnect.json       online again after 10 s / 60 s outages (10 min with --long), and a
#                        simulated fleet of 1,000 devices against the server's connect rate limit
#   cancel.json          task:cancel → CANCELLED recorded, and the task's processes gone
#   devserver-bench.json the devserver: connect + register, heartbeat ack, task round trip
# (tray.json comes from the tray's end-to-end stage, ci/gui-stage.sh.)
# Run after ./scripts/install-deps.sh. WEGENT_BENCH_IDLE_SECS shortens the idle minute;
# `--long` adds the 10-minute outage.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export WEGENT_TEST_CLAUDE=${WEGENT_TEST_CLAUDE:-$PWD/.tools/claude/node_modules/.bin/claude}
mkdir -p bench-results

timed() { local t=$SECONDS; echo "=== $1"; shift; "$@"; echo "=== done in $((SECONDS - t)) s"; }

# One cargo run for every benchmark (and scripts/chaos.sh selects the same packages): cargo
# resolves features per selection, so any other `-p` set would compile the release tree again.
timed "cargo bench (sio, relay, session, projects, outage, cancel; devserver)" \
  cargo bench --locked -p wegent-executor -p wegent-devserver --bench sio --bench relay \
    --bench session --bench projects --bench outage --bench cancel --bench devserver -- "$@"
echo "bench: results in bench-results/:"
ls -l bench-results/*.json
