#!/usr/bin/env bash
# The benchmark of the README's "Performance" section, in one run:
#   scripts/bench.sh           full run (2 000 000-line backlog, 15 s live runs; ~5 min on 2 cores)
#   scripts/bench.sh --quick   short version for CI (50 000 lines, 3 s runs; asserts no speed)
# Any other argument goes to redtail-bench (see `--help`). Builds the release binaries, installs
# redis-server and redis-benchmark when missing, prints the table, writes target/bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_rust
ensure_packages redis-server redis-server redis-tools
ensure_packages redis-benchmark redis-tools

target_dir=${CARGO_TARGET_DIR:-target}
echo "==> cargo build --release (redtail, redtail-bench)"
cargo build --release --locked -p redtail -p redtail-bench --bins

# results.json lands in ./target/bench whatever CARGO_TARGET_DIR says, as documented.
exec "$target_dir/release/redtail-bench" --redtail "$target_dir/release/redtail" \
  --out target/bench/results.json --work-dir target/bench/work "$@"
