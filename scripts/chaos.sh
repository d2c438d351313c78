#!/usr/bin/env bash
# Chaos: connection drops and server restarts during running tasks, fuzzing of the codec and the
# payload parser, canary secrets, SIGKILL of the device, ack sizes, hostile payloads
# (benches/chaos/). Prints a table and writes bench-results/chaos.json.
#   ./scripts/chaos.sh           CI size: 100 drops, 10 restarts, 2 M fuzz inputs (~3 min)
#   ./scripts/chaos.sh --long    300 drops, 30 restarts, 10 M fuzz inputs, hostile payloads
#                                (also WEGENT_CHAOS_HOSTILE=1: they make the core spin today)
# The run stops after WEGENT_CHAOS_BUDGET_SECS (default 900) whatever happens.
# Exits non-zero only on a broken invariant (lost task, duplicate delta, panic, ...); a missed
# figure is reported in the table and the JSON. Built with the bench profile, like bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export WEGENT_TEST_CLAUDE=${WEGENT_TEST_CLAUDE:-$PWD/.tools/claude/node_modules/.bin/claude}
mkdir -p bench-results
# Same package selection as scripts/bench.sh, so the release build is shared (no second compile).
cargo bench --locked -p wegent-executor -p wegent-devserver --bench chaos -- "$@"
