#!/usr/bin/env bash
# Every benchmark of the project; each prints its numbers and writes JSON under bench-results/.
#   sio.json             codec and client: decode of a 72 KB task:execute, emits/s, call RTT
#   relay.json           task output relay: deltas/s, added latency p50/p99 at 1k ev/s, first delta
#   session.json         the CLI: start → online, idle RSS and CPU, back online after a restart
#   projects.json        task:execute → agent start: plain, local_path, follow-up, git clone of 1,000 files, reuse
#   reconnect.json       online again after 10 s / 60 s outages (10 min with --long), and a
#                        simulated fleet of 1,000 devices against the server's connect rate limit
#   cancel.json          task:cancel → CANCELLED recorded, and the task's processes gone
#   agents.json          Codex vs Claude Code: dispatch → first delta / COMPLETED, and the device's
#                        added latency over each CLI run alone on the same mock
#   devserver-bench.json the devserver: connect + register, heartbeat ack, task round trip
# (tray.json comes from the tray's end-to-end stage, ci/gui-stage.sh.)
# Run after ./scripts/install-deps.sh. WEGENT_BENCH_IDLE_SECS shortens the idle minute;
# `--long` adds the 10-minute outage.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export WEGENT_TEST_CLAUDE=${WEGENT_TEST_CLAUDE:-$PWD/.tools/claude/node_modules/.bin/claude}
export WEGENT_TEST_CODEX=${WEGENT_TEST_CODEX:-$PWD/.tools/codex/node_modules/.bin/codex}
mkdir -p bench-results

timed() { local t=$SECONDS; echo "=== $1"; shift; "$@"; echo "=== done in $((SECONDS - t)) s"; }

# One cargo run for every benchmark (and scripts/chaos.sh selects the same packages): cargo
# resolves features per selection, so any other `-p` set would compile the release tree again.
timed "cargo bench (sio, relay, session, projects, outage, cancel, agents; devserver)" \
  cargo bench --locked -p wegent-executor -p wegent-devserver --bench sio --bench relay \
    --bench session --bench projects --bench outage --bench cancel --bench agents \
    --bench devserver -- "$@"
echo "bench: results in bench-results/:"
ls -l bench-results/*.json
