#!/usr/bin/env bash
# Rolling-restart drill: restarts the redtail pods the way Kubernetes does during an upgrade or a
# node drain, then proves that no line was lost or published twice. Works against any cluster in
# the current kubectl context (kind, minikube, a real one) with the chart's bundled Redis in
# stream mode.
#
#   deploy/kind/rolling-restart-drill.sh [--namespace NS] [--release R] [--rounds N] [--stream KEY] [--group G]
#
# Each round: `kubectl rollout restart` of the application StatefulSet (generator + watcher) and of
# the subscriber Deployment, then `kubectl rollout status` for both. Afterwards it waits until the
# subscriber group has read and acknowledged everything (XINFO GROUPS lag 0, pending 0), then reads
# the whole stream and checks, for every source (pod), that the generator's `seq` numbers form one
# unbroken run with no gap (a lost line) and no repeat (a line published twice).
set -euo pipefail

namespace=redtail
release=redtail
rounds=3
stream="redtail:logs"
group=redtail
while (($# > 0)); do
  case "$1" in
    --namespace) namespace="$2"; shift ;;
    --release) release="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --stream) stream="$2"; shift ;;
    --group) group="$2"; shift ;;
    -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "drill: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# The chart's resource names (release names containing "redtail" are used as they are).
if [[ "${release}" == *redtail* ]]; then fullname="${release}"; else fullname="${release}-redtail"; fi
k() { kubectl -n "${namespace}" "$@"; }
# redis-cli inside the Redis pod: it has REDISCLI_AUTH set, so no password on any command line.
rcli() { k exec "${fullname}-redis-0" -c redis -- redis-cli --raw "$@"; }
field() { awk -v f="$1" 'hit { print; exit } $0 == f { hit = 1 }'; }
group_field() {
  rcli XINFO GROUPS "${stream}" | awk -v g="${group}" -v f="$1" 'prev == "name" { cur = $0 } cur == g && prev == f { print; exit } { prev = $0 }'
}

echo "drill: release ${release} in ${namespace}, ${rounds} round(s)"
before="$(rcli XINFO STREAM "${stream}" | field entries-added)"
echo "drill: stream ${stream} has ${before:-0} entries before the drill"

for round in $(seq 1 "${rounds}"); do
  echo "drill: round ${round}: rollout restart"
  k rollout restart "statefulset/${fullname}" "deployment/${fullname}-subscriber"
  k rollout status "statefulset/${fullname}" --timeout 5m
  k rollout status "deployment/${fullname}-subscriber" --timeout 5m
done

# Let the new pods publish what was written while their predecessors stopped, then stop the
# generators from running ahead by comparing two samples of the group's lag.
echo "drill: waiting for the subscribers to catch up"
for _ in $(seq 1 60); do
  lag="$(group_field lag)"
  pending="$(group_field pending)"
  if [[ "${lag}" == 0 && "${pending}" == 0 ]]; then break; fi
  sleep 2
done
echo "drill: group ${group}: lag=${lag:-?} pending=${pending:-?}"

# Every entry's `line` field is the generator's JSON with its `seq`; `src` is the pod name.
report="$(rcli XRANGE "${stream}" - + | awk '
  prev == "line" { if (match($0, /"seq":[0-9]+/)) seq = substr($0, RSTART + 6, RLENGTH - 6); else seq = "" }
  prev == "src" && seq != "" {
    n[$0]++; if (!($0 in lo) || seq + 0 < lo[$0]) lo[$0] = seq + 0; if (seq + 0 > hi[$0]) hi[$0] = seq + 0
    if (++seen[$0 SUBSEP seq] == 1) distinct[$0]++; else dup[$0]++
  }
  { prev = $0 }
  END {
    bad = 0
    for (s in n) {
      gaps = hi[s] - lo[s] + 1 - distinct[s]
      printf "%-40s seq %d..%d  entries %d  lost %d  duplicated %d\n", s, lo[s], hi[s], n[s], gaps, dup[s] + 0
      if (gaps != 0 || dup[s] != 0) bad = 1
    }
    exit bad
  }')" && verdict=0 || verdict=$?
printf '%s\n' "${report}"
after="$(rcli XINFO STREAM "${stream}" | field entries-added)"
echo "drill: stream ${stream}: ${after:-0} entries after the drill (+$((${after:-0} - ${before:-0})))"
if [[ "${lag:-}" != 0 || "${pending:-}" != 0 ]]; then
  echo "drill: FAIL: the subscriber group did not catch up (lag ${lag:-?}, pending ${pending:-?})"
  exit 1
fi
if ((verdict != 0)); then
  echo "drill: FAIL: lines were lost or published twice"
  exit 1
fi
echo "drill: PASS: every line of every source is in the stream exactly once and was consumed"
