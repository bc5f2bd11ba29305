#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine with Rust installed.
# Installs what the tests need (redis-server, promtool, helm, ...) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_rust
ensure_packages redis-server redis-server redis-tools
ensure_packages openssl openssl

ensure_packages shellcheck shellcheck

echo "==> shellcheck (every shell script of the repository)"
# shellcheck disable=SC2046  # word splitting of the file list is intended
shellcheck -x $(git ls-files '*.sh' 2>/dev/null || find . -name '*.sh' -not -path './target/*') .ci/run

echo "==> cargo test (unit, model, integration and fault tests against a real redis-server)"
cargo test --workspace --locked -- --test-threads="${REDTAIL_TEST_THREADS:-2}"
# cargo keeps a passing test's output to itself: show the chaos soak's summary table.
summary="${CARGO_TARGET_DIR:-target}/tmp/chaos-summary.md"
if [ -f "$summary" ]; then
  echo "==> chaos soak summary"
  cat "$summary"
fi

for extra in check-observability.sh check-chart.sh container-tests.sh; do
  if [ -x "scripts/$extra" ]; then
    echo "==> scripts/$extra"
    "scripts/$extra"
  fi
done
echo "==> all tests passed"
