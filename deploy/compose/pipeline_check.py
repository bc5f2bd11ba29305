#!/usr/bin/env python3
"""Redis-side checks for deploy/compose/fault-scenarios.sh (standard library only).

Why a helper: the scenarios need exact answers (has everything written before the fault been
published and acknowledged? which `seq` is missing or repeated?) that are awkward to get from
redis-cli text output, and the host may have no Redis client library. This speaks RESP itself.

Subcommands:
  newest-seq  --port P                      seq of the newest stream entry (-1 when empty)
  catch-up    --port P --since T [--timeout S]
              wait until an entry whose line was written at or after T (epoch seconds) is in the
              stream and the subscriber group has read and acknowledged everything up to it;
              prints the seconds from T
  drain       --port P --max-seq N [--timeout S]
              wait until seq N is in the stream and acknowledged by the group
  report      --port P --logs-tar F --output-tar F --scenarios F
              compare the log files (the truth), the stream and the subscriber's raw output;
              print the table; exit 1 when a line is lost or duplicated
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tarfile
import time
from collections import Counter
from datetime import datetime, timezone


class Redis:
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = self.sock.makefile("rb")

    def __call__(self, *args: str | bytes | int):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.buf.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"unexpected RESP reply {line!r}")


def connect(port: int, deadline: float) -> Redis:
    """Connect, retrying while Redis restarts or loads its append-only file."""
    while True:
        try:
            r = Redis(port)
            r("PING")
            return r
        except (OSError, ConnectionError, RuntimeError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def fields(entry) -> dict[bytes, bytes]:
    flat = entry[1]
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def parse_line(line: bytes) -> dict | None:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def line_time(obj: dict) -> float:
    ts = obj["timestamp"].replace("Z", "+00:00")
    return datetime.fromisoformat(ts).astimezone(timezone.utc).timestamp()


def id_tuple(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def newest(r: Redis, stream: str):
    got = r("XREVRANGE", stream, "+", "-", "COUNT", 1)
    if not got:
        return None, None
    return got[0][0], parse_line(fields(got[0]).get(b"line", b""))


def group_done_up_to(r: Redis, stream: str, group: str, entry_id: bytes) -> bool:
    """True when the group has been delivered `entry_id` and nothing up to it is pending."""
    try:
        groups = r("XINFO", "GROUPS", stream)
    except RuntimeError:
        return False
    for g in groups:
        info = {g[i]: g[i + 1] for i in range(0, len(g), 2)}
        if info.get(b"name") == group.encode():
            delivered = info.get(b"last-delivered-id") or b"0-0"
            if id_tuple(delivered) < id_tuple(entry_id):
                return False
            return not r("XPENDING", stream, group, "-", entry_id, 1)
    return False


def wait(args, ok) -> float:
    deadline = time.time() + args.timeout
    r = connect(args.port, deadline)
    while True:
        try:
            if ok(r):
                return time.time()
        except (OSError, ConnectionError, RuntimeError):
            r = connect(args.port, deadline)
        if time.time() > deadline:
            raise TimeoutError
        time.sleep(0.1)


def cmd_newest_seq(args) -> int:
    r = connect(args.port, time.time() + args.timeout)
    _, obj = newest(r, args.stream)
    print(obj["seq"] if obj else -1)
    return 0


def cmd_catch_up(args) -> int:
    def ok(r: Redis) -> bool:
        entry_id, obj = newest(r, args.stream)
        if obj is None or line_time(obj) < args.since:
            return False
        return group_done_up_to(r, args.stream, args.group, entry_id)

    try:
        done = wait(args, ok)
    except TimeoutError:
        print(f"not caught up after {args.timeout} s", file=sys.stderr)
        return 1
    print(f"{max(0.0, done - args.since):.1f}")
    return 0


def cmd_drain(args) -> int:
    def ok(r: Redis) -> bool:
        entry_id, obj = newest(r, args.stream)
        if obj is None or obj.get("seq", -1) < args.max_seq:
            return False
        return group_done_up_to(r, args.stream, args.group, entry_id)

    try:
        wait(args, ok)
    except TimeoutError:
        print(f"seq {args.max_seq} not published and acknowledged after {args.timeout} s", file=sys.stderr)
        return 1
    return 0


def tar_lines(path: str):
    """Every line of every regular file in a `docker cp ... -` tar stream."""
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                data = tar.extractfile(member).read()
                yield from (ln for ln in data.split(b"\n") if ln)


def seqs_of(lines) -> tuple[Counter, int]:
    counts: Counter = Counter()
    unparsable = 0
    for line in lines:
        obj = parse_line(line)
        if obj is None or not isinstance(obj.get("seq"), int):
            unparsable += 1
        else:
            counts[obj["seq"]] += 1
    return counts, unparsable


def stream_lines(r: Redis, stream: str):
    start = "-"
    while True:
        batch = r("XRANGE", stream, start, "+", "COUNT", 5000)
        if not batch:
            return
        for entry in batch:
            yield fields(entry).get(b"line", b"")
        start = b"(" + batch[-1][0]


def cmd_report(args) -> int:
    r = connect(args.port, time.time() + args.timeout)
    truth, bad_truth = seqs_of(tar_lines(args.logs_tar))
    in_redis, bad_redis = seqs_of(stream_lines(r, args.stream))
    xlen = r("XLEN", args.stream)
    in_output, bad_output = seqs_of(tar_lines(args.output_tar))

    ok = True
    max_seq = max(truth) if truth else -1
    gaps = [s for s in range(max_seq + 1) if s not in truth]
    repeats = [s for s, n in truth.items() if n > 1]
    if gaps or repeats or bad_truth:
        # Not redtail's delivery: the generator's own sequence or the files are off.
        print(f"SOURCE FILES: {len(gaps)} seq gaps, {len(repeats)} repeated seqs, {bad_truth} unparsable lines "
              f"(first gaps {gaps[:5]}, first repeats {repeats[:5]})")
        ok = False

    scenarios = []
    with open(args.scenarios) as f:
        for row in f:
            name, start_seq, catch_up = row.rstrip("\n").split("\t")
            scenarios.append((name, int(start_seq), catch_up))

    header = f"{'scenario':<28} {'lines':>7} {'lost':>5} {'dup(redis)':>10} {'lost(out)':>9} {'dup(out)':>8} {'catch-up s':>10}"
    print(header)
    print("-" * len(header))
    totals = Counter()
    for i, (name, start_seq, catch_up) in enumerate(scenarios):
        end_seq = scenarios[i + 1][1] if i + 1 < len(scenarios) else max_seq
        seqs = [s for s in range(start_seq + 1, end_seq + 1) if s in truth]
        row = Counter(
            lines=len(seqs),
            lost=sum(1 for s in seqs if in_redis[s] == 0),
            dup=sum(1 for s in seqs if in_redis[s] > 1),
            lost_out=sum(1 for s in seqs if in_output[s] == 0),
            dup_out=sum(1 for s in seqs if in_output[s] > 1),
        )
        totals.update(row)
        print(f"{name:<28} {row['lines']:>7} {row['lost']:>5} {row['dup']:>10} {row['lost_out']:>9} "
              f"{row['dup_out']:>8} {catch_up:>10}")
    # Lines before the first scenario (start-up) count in the totals too.
    first = scenarios[0][1] if scenarios else max_seq
    head = [s for s in range(0, first + 1) if s in truth]
    totals.update(Counter(
        lines=len(head),
        lost=sum(1 for s in head if in_redis[s] == 0),
        dup=sum(1 for s in head if in_redis[s] > 1),
        lost_out=sum(1 for s in head if in_output[s] == 0),
        dup_out=sum(1 for s in head if in_output[s] > 1),
    ))
    print("-" * len(header))
    print(f"{'all (incl. start-up)':<28} {totals['lines']:>7} {totals['lost']:>5} {totals['dup']:>10} "
          f"{totals['lost_out']:>9} {totals['dup_out']:>8}")
    extra_redis = sum(1 for s in in_redis if s not in truth)
    print(f"source lines {sum(truth.values())} (seq 0..{max_seq}); XLEN {xlen}; "
          f"stream entries not in the files {extra_redis}; unparsable in stream {bad_redis}, in output {bad_output}")

    if totals["lost"] or totals["dup"] or totals["lost_out"] or extra_redis or bad_redis or bad_output:
        ok = False
    if xlen != sum(truth.values()):
        print(f"XLEN {xlen} != {sum(truth.values())} source lines")
        ok = False
    if totals["dup_out"]:
        # At-least-once output: only entries in flight when a subscriber is killed may repeat, and
        # no scenario kills the subscriber, so any repeat is a failure.
        ok = False
    print("RESULT:", "PASS: every seq exactly once in Redis and in the subscriber output" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("newest-seq", "catch-up", "drain", "report"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--stream", default="redtail:logs")
        s.add_argument("--group", default="redtail")
        s.add_argument("--timeout", type=float, default=90)
        if name == "catch-up":
            s.add_argument("--since", type=float, required=True)
        if name == "drain":
            s.add_argument("--max-seq", type=int, required=True)
        if name == "report":
            s.add_argument("--logs-tar", required=True)
            s.add_argument("--output-tar", required=True)
            s.add_argument("--scenarios", required=True)
    args = p.parse_args()
    return {
        "newest-seq": cmd_newest_seq,
        "catch-up": cmd_catch_up,
        "drain": cmd_drain,
        "report": cmd_report,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
