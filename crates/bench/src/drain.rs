//! Steps 2–4: the broker ceiling, the watcher's backlog drain in both modes, and the
//! subscriber's drain of the stream.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::broker::{redis_benchmark, Broker};
use crate::procs::{Proc, ProcStats};
use crate::roles::{wait_committed, Mode, Roles};
use crate::stats::count_lines;

/// How often the drains look at Redis: small against the drain time, cheap for the server.
const POLL: Duration = Duration::from_millis(5);
/// Longest drain allowed (≈ 14 k lines/s for 2 M lines, the one-round-trip-per-line rate,
/// would take 150 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Requests per second of each `redis-benchmark -c 1 -P 128` command.
#[derive(Debug, Clone)]
pub struct Ceiling {
    pub xadd: f64,
    /// Every `PUBLISH` run, in the order made: some before the watcher's drains, some right
    /// after its pub/sub drain. One run cannot decide a ratio on a noisy host (four runs
    /// back to back once gave 423, 496, 465 and 293 k/s), so the ceiling is their median.
    pub publish_runs: Vec<f64>,
    /// XADD with every field the watcher's entry carries (`line src path off fid ct`).
    pub xadd_full_entry: f64,
    /// PUBLISH while one `redtail subscribe` receives: Redis also writes every message out.
    pub publish_one_subscriber: f64,
    /// redis-server CPU-µs per request of the one-field `XADD` run.
    pub xadd_redis_us: f64,
    /// redis-server CPU-µs per request of the full-entry `XADD` run.
    pub xadd_full_entry_redis_us: f64,
    /// Requests per run, and the payload: for the runs added later.
    requests: u64,
    payload: String,
}

/// The middle value (the mean of the two middle ones for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl Ceiling {
    /// The `PUBLISH` ceiling: the median of [`Ceiling::publish_runs`].
    pub fn publish(&self) -> f64 {
        median(&self.publish_runs)
    }

    /// `runs` more `PUBLISH` runs (no subscriber), e.g. right after the pub/sub drain.
    pub fn add_publish_runs(&mut self, broker: &Broker, runs: usize) -> Result<()> {
        for _ in 0..runs {
            let per_s = redis_benchmark(broker.port, self.requests, &self.publish_command())?;
            self.publish_runs.push(per_s);
        }
        Ok(())
    }

    fn publish_command(&self) -> [&str; 3] {
        ["PUBLISH", "bench:ceiling", &self.payload]
    }

    pub fn json(&self) -> Value {
        json!({
            "xadd_per_s": self.xadd,
            "publish_per_s": self.publish(),
            "publish_runs_per_s": self.publish_runs,
            "xadd_full_entry_per_s": self.xadd_full_entry,
            "publish_one_subscriber_per_s": self.publish_one_subscriber,
            "xadd_redis_cpu_us_per_request": self.xadd_redis_us,
            "xadd_full_entry_redis_cpu_us_per_request": self.xadd_full_entry_redis_us,
        })
    }
}

/// `PUBLISH` ceiling runs made in step 2; [`PUBLISH_RUNS_AFTER`] more follow the pub/sub drain.
pub const PUBLISH_RUNS_FIRST: usize = 3;
pub const PUBLISH_RUNS_AFTER: usize = 2;

/// Step 2. `payload` is a generator line of the backlog's average size.
pub fn ceiling(broker: &Broker, roles: &Roles, requests: u64, payload: &str) -> Result<Ceiling> {
    let port = broker.port;
    let maxlen = ["MAXLEN", "~", "1000000", "*"];
    let mut xadd_cmd = vec!["XADD", "bench:ceiling"];
    xadd_cmd.extend(maxlen);
    xadd_cmd.extend(["line", payload]);
    let (xadd, xadd_redis_us) = measured(broker, requests, &xadd_cmd)?;
    broker.flush()?;

    let path = roles.work.join("backlog.log").display().to_string();
    let mut full_cmd = vec!["XADD", "bench:ceiling"];
    full_cmd.extend(maxlen);
    full_cmd.extend(["line", payload, "src", "bench-stream", "path", &path]);
    full_cmd.extend([
        "off",
        "123456789",
        "fid",
        "64768:1234567",
        "ct",
        "1767225600000000",
    ]);
    let (xadd_full_entry, xadd_full_entry_redis_us) = measured(broker, requests, &full_cmd)?;
    broker.flush()?;

    let mut publish_runs = Vec::new();
    for _ in 0..PUBLISH_RUNS_FIRST {
        publish_runs.push(redis_benchmark(
            port,
            requests,
            &["PUBLISH", "bench:ceiling", payload],
        )?);
    }

    let output = roles.work.join("ceiling-subscriber.raw");
    let mut sub = roles.subscriber("ceiling-sub", Mode::PubSub, "bench:ceiling", "raw", &output)?;
    sub.proc.wait_ready(sub.admin, Duration::from_secs(20))?;
    wait_subscribed(broker, "bench:ceiling")?;
    let publish_one_subscriber =
        redis_benchmark(port, requests, &["PUBLISH", "bench:ceiling", payload])?;
    sub.proc.stop(Duration::from_secs(10))?;
    let _ = std::fs::remove_file(&output);
    Ok(Ceiling {
        xadd,
        publish_runs,
        xadd_full_entry,
        publish_one_subscriber,
        xadd_redis_us,
        xadd_full_entry_redis_us,
        requests,
        payload: payload.to_owned(),
    })
}

/// One `redis-benchmark` run: (requests/s, redis-server CPU-µs per request). The CPU comes
/// from redis-server's own `/proc` schedstat, so the benchmark client's cost is not in it.
fn measured(broker: &Broker, requests: u64, command: &[&str]) -> Result<(f64, f64)> {
    let before = broker.stats()?;
    let per_s = redis_benchmark(broker.port, requests, command)?;
    let after = broker.stats()?;
    let us = after.runtime_ns.saturating_sub(before.runtime_ns) as f64 / 1e3 / requests as f64;
    Ok((per_s, us))
}

/// Waits until Redis counts a subscriber on `channel`: readiness alone does not say the
/// SUBSCRIBE went through.
fn wait_subscribed(broker: &Broker, channel: &str) -> Result<()> {
    let mut con = broker.connection()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, n): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query::<Vec<(String, u64)>>(&mut con)?
            .into_iter()
            .next()
            .context("empty PUBSUB NUMSUB reply")?;
        if n > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no subscriber on {channel} after 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One timed drain of a backlog by one process.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub lines: u64,
    pub seconds: f64,
    /// The process's CPU, memory and sleeps at the end of the drain.
    pub proc: ProcStats,
    /// CPU seconds redis-server used during the drain (schedstat).
    pub redis_cpu_seconds: f64,
    /// Pub/sub only: lines the connected subscriber wrote out (at-most-once delivery).
    pub delivered: Option<u64>,
}

impl Drain {
    pub fn lines_per_s(&self) -> f64 {
        self.lines as f64 / self.seconds
    }

    /// redis-server CPU-µs per line of the drain.
    pub fn redis_us_per_line(&self) -> f64 {
        self.redis_cpu_seconds / self.lines as f64 * 1e6
    }

    pub fn cpu_per_million(&self) -> f64 {
        self.proc.cpu_seconds / self.lines as f64 * 1e6
    }

    pub fn json(&self) -> Value {
        json!({
            "lines": self.lines,
            "seconds": self.seconds,
            "lines_per_s": self.lines_per_s(),
            "cpu_seconds": self.proc.cpu_seconds,
            "cpu_seconds_per_million_lines": self.cpu_per_million(),
            "peak_rss_bytes": self.proc.peak_rss_bytes,
            "redis_cpu_seconds": self.redis_cpu_seconds,
            "redis_cpu_share": self.redis_cpu_seconds / self.seconds,
            "redis_cpu_us_per_line": self.redis_us_per_line(),
            "delivered": self.delivered,
        })
    }
}

/// Step 3: a watcher with default settings drains `backlog` (`lines` lines) to Redis; timed
/// from its spawn until the committed offset in `redtail:offsets` equals the file size.
/// Pub/sub mode has a `redtail subscribe` (raw output) connected first.
pub fn watcher_drain(
    broker: &Broker,
    roles: &Roles,
    backlog: &Path,
    lines: u64,
    mode: Mode,
) -> Result<Drain> {
    let (source, key) = match mode {
        Mode::Stream => ("bench-stream", "bench:logs"),
        Mode::PubSub => ("bench-pubsub", "bench:pubsub"),
    };
    let mut subscriber = None;
    let output = roles.work.join("pubsub-drain.raw");
    if mode == Mode::PubSub {
        let mut sub = roles.subscriber("pubsub-sub", mode, key, "raw", &output)?;
        sub.proc.wait_ready(sub.admin, Duration::from_secs(20))?;
        wait_subscribed(broker, key)?;
        subscriber = Some(sub);
    }
    let mut con = broker.connection()?;
    let redis_before = broker.stats()?;
    let started = Instant::now();
    let mut watcher = roles.watcher(source, backlog, mode, key)?;
    wait_committed(
        &mut con,
        &mut watcher.proc,
        source,
        backlog,
        POLL,
        DRAIN_TIMEOUT,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let proc = watcher.proc.stats()?;
    let redis_cpu_seconds = redis_seconds(&redis_before, &broker.stats()?);
    watcher.proc.stop(Duration::from_secs(15))?;

    let delivered = match subscriber {
        Some(mut sub) => {
            let n = wait_lines_settle(&output, lines, Duration::from_secs(60))?;
            sub.proc.stop(Duration::from_secs(15))?;
            Some(n)
        }
        None => None,
    };
    Ok(Drain {
        lines,
        seconds,
        proc,
        redis_cpu_seconds,
        delivered,
    })
}

/// Waits until `path` has `expected` lines, or its count stops moving for a second (pub/sub
/// may have lost some); returns the count.
fn wait_lines_settle(path: &Path, expected: u64, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let (mut last, mut since) = (u64::MAX, Instant::now());
    loop {
        let n = count_lines(path)?;
        if n >= expected || Instant::now() > deadline {
            return Ok(n);
        }
        if n != last {
            (last, since) = (n, Instant::now());
        } else if since.elapsed() > Duration::from_secs(1) {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Step 4: a subscriber (udm output) consumes and acknowledges everything in `stream` (what
/// the trim `MAXLEN ~ 1000000` left of the backlog); timed from its spawn until its group
/// has delivered the last entry and nothing is pending.
pub fn subscriber_drain(broker: &Broker, roles: &Roles, stream: &str) -> Result<Drain> {
    let mut con = broker.connection()?;
    let entries: u64 = redis::cmd("XLEN").arg(stream).query(&mut con)?;
    let last_id = stream_last_id(&mut con, stream)?;
    let output = roles.work.join("subscriber-drain.udm");
    let group = "bench-drain";
    let redis_before = broker.stats()?;
    let started = Instant::now();
    let mut sub = roles.subscriber(group, Mode::Stream, stream, "udm", &output)?;
    let deadline = started + DRAIN_TIMEOUT;
    loop {
        if let Some((delivered, pending)) = group_progress(&mut con, stream, group)? {
            if delivered == last_id && pending == 0 {
                break;
            }
        }
        sub.proc.check_alive()?;
        if Instant::now() > deadline {
            bail!("subscriber did not drain {stream} within {DRAIN_TIMEOUT:?}");
        }
        std::thread::sleep(POLL);
    }
    let seconds = started.elapsed().as_secs_f64();
    let proc = sub.proc.stats()?;
    let redis_cpu_seconds = redis_seconds(&redis_before, &broker.stats()?);
    sub.proc.stop(Duration::from_secs(15))?;
    let written = count_lines(&output)?;
    if written < entries {
        bail!("subscriber acknowledged {entries} entries but wrote only {written} events");
    }
    Ok(Drain {
        lines: entries,
        seconds,
        proc,
        redis_cpu_seconds,
        delivered: None,
    })
}

fn stream_last_id(con: &mut redis::Connection, stream: &str) -> Result<String> {
    let info: HashMap<String, redis::Value> =
        redis::cmd("XINFO").arg("STREAM").arg(stream).query(con)?;
    info.get("last-generated-id")
        .and_then(text)
        .context("XINFO STREAM without last-generated-id")
}

/// (last-delivered-id, pending) of `group`, `None` until the subscriber created it.
fn group_progress(
    con: &mut redis::Connection,
    stream: &str,
    group: &str,
) -> Result<Option<(String, u64)>> {
    let groups: Vec<HashMap<String, redis::Value>> =
        redis::cmd("XINFO").arg("GROUPS").arg(stream).query(con)?;
    for g in groups {
        if g.get("name").and_then(text).as_deref() != Some(group) {
            continue;
        }
        let delivered = g
            .get("last-delivered-id")
            .and_then(text)
            .unwrap_or_default();
        let pending = match g.get("pending") {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        };
        return Ok(Some((delivered, pending)));
    }
    Ok(None)
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// On-CPU seconds between two readings of redis-server (schedstat: nanosecond resolution).
fn redis_seconds(before: &ProcStats, after: &ProcStats) -> f64 {
    after.runtime_ns.saturating_sub(before.runtime_ns) as f64 / 1e9
}

/// Stops a process and reports a failure to stop as an error with its stderr.
pub fn stop_checked(proc: &mut Proc) -> Result<()> {
    let status = proc.stop(Duration::from_secs(15))?;
    if !status.success() {
        bail!(
            "{} exited with {status} on SIGTERM:\n{}",
            proc.name,
            proc.log_tail()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_no_runs() {
        assert_eq!(median(&[423.0, 496.0, 293.0, 465.0, 410.0]), 423.0);
        assert_eq!(median(&[2.0, 1.0]), 1.5);
        assert_eq!(median(&[]), 0.0);
    }
}
