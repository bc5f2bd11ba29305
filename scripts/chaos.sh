#!/usr/bin/env bash
# The chaos soak and the fuzz properties, for longer local runs than CI's.
#   REDTAIL_CHAOS_SECS   seconds of fault injection (default here 600; CI runs 60)
#   REDTAIL_CHAOS_RATE   generator lines per second (default 1000)
#   REDTAIL_FAULT_SEED   replay the fault sequence a failed run printed
#   PROPTEST_CASES       fuzz cases per property (default here 20000; CI runs 48-512)
# The soak prints its summary table (faults by kind, lines, lost, duplicated,
# max watcher RSS) and leaves it in target/tmp/chaos-summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_rust
ensure_packages redis-server redis-server redis-tools

export REDTAIL_CHAOS_SECS="${REDTAIL_CHAOS_SECS:-600}"
export PROPTEST_CASES="${PROPTEST_CASES:-20000}"
echo "==> chaos soak: ${REDTAIL_CHAOS_SECS} s"
cargo test --locked --test chaos -- --nocapture
echo "==> fuzz properties: ${PROPTEST_CASES} cases each (release build)"
cargo test --locked --release --test fuzz_props
