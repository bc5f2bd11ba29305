#!/usr/bin/env bash
# Container tests, as CI runs them: build the three images from the Dockerfile with locally made
# base images (deploy/local-images.sh: sizes, start-to-ready, SIGTERM as PID 1), then the compose
# fault scenarios (deploy/compose/fault-scenarios.sh). Skips, with a message and status 0, where
# no Docker engine answers. Layers and base images are reused between runs.
#
# Environment: REDTAIL_CONTAINER_TESTS=0 skips on purpose; REDTAIL_RATE sets the generator rate of
# the fault scenarios (default 200 lines/s).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${REDTAIL_CONTAINER_TESTS:-1} == 0 ]]; then
  echo "SKIP: container tests disabled (REDTAIL_CONTAINER_TESTS=0)"
  exit 0
fi
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "SKIP: container tests need a Docker engine and 'docker info' failed here"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  echo "==> installing docker-compose (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; }
fi

t0=$SECONDS
echo "==> deploy/local-images.sh (base images, three redtail images, sizes, start-to-ready)"
# Bounded: a cold run (debootstrap + dependency build) takes ~10 minutes on 2 busy cores.
timeout 1500 deploy/local-images.sh
echo "==> deploy/compose/fault-scenarios.sh"
timeout 600 deploy/compose/fault-scenarios.sh
echo "==> container tests passed in $((SECONDS - t0)) s"
