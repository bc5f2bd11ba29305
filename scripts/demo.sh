#!/usr/bin/env bash
# Run the demo: generator, watcher and subscriber together against a
# redis-server started on a free loopback port (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_rust
if [ -z "${REDTAIL_REDIS_URL:-}" ]; then
  ensure_packages redis-server redis-server
fi
cargo build --release --locked --bin redtail
exec target/release/redtail demo
