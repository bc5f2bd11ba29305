#!/usr/bin/env bash
# Container-level fault scenarios: restart whole containers the way Kubernetes does while the
# generator writes at a steady rate, then prove from the log files, Redis and the subscriber's raw
# output that every `seq` was published exactly once and none was lost.
#
#   1 restart-watcher x5      docker compose restart watcher (SIGTERM, grace period)
#   2 kill-watcher x5         docker kill -s KILL watcher, then start it again
#   3 replace-pod             stop generator + watcher, new containers on the same volumes
#   4 restart-redis           docker compose restart redis (append-only file keeps the data)
#   5 restart-subscriber      docker compose restart subscriber
#   6 rotate-while-down       app.log rotated by the generator while the watcher is stopped
#
# Prints a table: scenario, lines, lost, duplicated, time to catch up (from the end of the fault
# until a line written after it is in Redis and acknowledged by the subscriber group).
# Also checks that SIGTERM to each redtail container (PID 1, no init) exits 0 within the grace.
#
# Needs the images of deploy/local-images.sh (or the REDTAIL_*_IMAGE variables of
# docker-compose.yml), docker compose or docker-compose, python3.
# Environment: REDTAIL_RATE (default 200 lines/s), REDTAIL_FAULT_PROJECT (compose project name,
# default redtail-faults), KEEP=1 leaves the containers and volumes for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=${REDTAIL_FAULT_PROJECT:-redtail-faults}
rate=${REDTAIL_RATE:-200}
check=(python3 "$here/pipeline_check.py")
results=$(mktemp -d "${TMPDIR:-/tmp}/redtail-faults.XXXXXX")

log() { printf '[faults %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if ! docker info >/dev/null 2>&1; then
  echo "SKIP: no usable Docker engine ('docker info' failed); container fault scenarios not run." >&2
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  die "neither 'docker compose' nor 'docker-compose' is available"
fi

# Random loopback ports (an empty *_HOST_PORT), so a redtail or Redis already running on this
# machine does not collide with the test.
export REDTAIL_RATE=$rate REDTAIL_REDIS_HOST_PORT='' REDTAIL_GENERATOR_HOST_PORT='' \
  REDTAIL_WATCHER_HOST_PORT='' REDTAIL_SUBSCRIBER_HOST_PORT=''
compose() { "${compose_cmd[@]}" -p "$project" -f "$here/docker-compose.yml" "$@"; }
cid() { compose ps -q "$1"; }

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  local rc=$?
  if ((rc != 0)); then
    log "failed; last container logs:"
    compose logs --tail 30 >&2 2>&1 || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    log "KEEP=1: leaving project $project (remove with: ${compose_cmd[*]} -p $project -f $here/docker-compose.yml down -v)"
  else
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$results"
}
trap cleanup EXIT

# Give the helper the Redis port each time: it changes when the Redis container is recreated.
redis_port() { compose port redis 6379 | awk -F: '{print $NF}'; }
newest_seq() { "${check[@]}" newest-seq --port "$(redis_port)"; }
now() { date +%s.%N; }

scenario_start() {
  current=$1
  start_seq=$(newest_seq)
  log "scenario $current (from seq $start_seq)"
}
scenario_end() {
  local since=$1 took
  if ! took=$("${check[@]}" catch-up --port "$(redis_port)" --since "$since" --timeout 60); then
    took=timeout
  fi
  printf '%s\t%s\t%s\n' "$current" "$start_seq" "$took" >>"$results/scenarios.tsv"
  log "  caught up in $took s"
}

# Seconds a command took (a stop or restart near the 30 s grace period means SIGTERM was ignored;
# the SIGTERM check at the end fails the run for that).
timed() {
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>&1
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

# ------------------------------------------------------------------------------------------------
compose down -v --remove-orphans >/dev/null 2>&1 || true
log "starting project $project at $rate lines/s"
compose up -d >/dev/null 2>&1 || { compose up -d; die "docker compose up failed"; }
start_t=$(now)
"${check[@]}" catch-up --port "$(redis_port)" --since "$start_t" --timeout 60 >/dev/null ||
  die "the pipeline did not deliver its first lines within 60 s"
log "pipeline flowing; watcher metrics on 127.0.0.1:$(compose port watcher 9102 | awk -F: '{print $NF}')"
sleep 3

scenario_start "1 restart-watcher x5"
for i in 1 2 3 4 5; do
  log "  restart $i: $(timed compose restart -t 30 watcher) s"
  sleep 2
done
scenario_end "$(now)"

scenario_start "2 kill-watcher x5"
for i in 1 2 3 4 5; do
  docker kill -s KILL "$(cid watcher)" >/dev/null
  sleep 1
  docker start "$(cid watcher)" >/dev/null # a no-op if the restart policy was faster
  log "  kill $i done"
  sleep 2
done
scenario_end "$(now)"

scenario_start "3 replace-pod"
log "  stop generator + watcher: $(timed compose stop -t 30 generator watcher) s"
compose rm -f generator watcher >/dev/null 2>&1
compose up -d --no-deps generator watcher >/dev/null 2>&1
scenario_end "$(now)"
sleep 2

scenario_start "4 restart-redis"
log "  restart redis: $(timed compose restart -t 30 redis) s"
scenario_end "$(now)"
sleep 2

scenario_start "5 restart-subscriber"
log "  restart subscriber: $(timed compose restart -t 30 subscriber) s"
scenario_end "$(now)"
sleep 2

scenario_start "6 rotate-while-down"
compose stop -t 30 watcher >/dev/null 2>&1
# The generator rotates app.log by itself (REDTAIL_ROTATE_BYTES): recreate it with a threshold
# ~100 KB above the current size, so exactly one rotation happens within a few seconds, while the
# watcher is down. A helper container (the Redis image has coreutils) reads the shared volume.
volume="${project}_app-logs"
redis_image=$(docker inspect -f '{{.Config.Image}}' "$(cid redis)")
size=$(docker run --rm --entrypoint stat -v "$volume:/v:ro" "$redis_image" -c %s /v/app.log)
export REDTAIL_ROTATE_BYTES=$((size + 100000))
compose up -d --no-deps generator >/dev/null 2>&1
rotated=0
for _ in $(seq 1 60); do
  if docker run --rm --entrypoint test -v "$volume:/v:ro" "$redis_image" -e /v/app.log.1; then
    rotated=1
    break
  fi
  sleep 0.5
done
((rotated)) || die "the generator did not rotate app.log (REDTAIL_ROTATE_BYTES=$REDTAIL_ROTATE_BYTES)"
sleep 2
log "  app.log rotated while the watcher was down"
compose start watcher >/dev/null 2>&1
scenario_end "$(now)"

# ------------------------------------------------------------------------------------------------
log "stopping the generator; draining"
compose stop -t 30 generator >/dev/null 2>&1
docker cp "$(cid watcher):/var/log/app" - >"$results/logs.tar"
max_seq=$(python3 - "$results/logs.tar" <<'PY'
import json, sys, tarfile
best = -1
with tarfile.open(sys.argv[1]) as tar:
    for m in tar:
        if m.isfile():
            for line in tar.extractfile(m).read().split(b"\n"):
                try:
                    best = max(best, json.loads(line)["seq"])
                except (ValueError, KeyError, TypeError):
                    pass
print(best)
PY
)
"${check[@]}" drain --port "$(redis_port)" --max-seq "$max_seq" --timeout 60 ||
  die "the last line (seq $max_seq) was not delivered"

log "SIGTERM to PID 1 in each redtail container (grace 30 s)"
sigterm_ok=1
for svc in watcher subscriber generator; do
  id=$(cid "$svc")
  took=$(timed docker stop -t 30 "$id")
  code=$(docker inspect -f '{{.State.ExitCode}}' "$id")
  log "  $svc: exit $code after $took s"
  if [[ $code != 0 ]] || awk -v t="$took" 'BEGIN { exit !(t >= 25) }'; then sigterm_ok=0; fi
done
docker cp "$(cid subscriber):/var/lib/redtail/events.log" - >"$results/output.tar"

echo
echo "== container fault scenarios ($rate lines/s, stream mode)"
status=0
"${check[@]}" report --port "$(redis_port)" --logs-tar "$results/logs.tar" \
  --output-tar "$results/output.tar" --scenarios "$results/scenarios.tsv" || status=1
if grep -q $'\ttimeout$' "$results/scenarios.tsv"; then
  echo "FAIL: a scenario did not catch up within 60 s"
  status=1
fi
if ((!sigterm_ok)); then
  echo "FAIL: a redtail container did not exit 0 promptly on SIGTERM"
  status=1
fi
exit "$status"
