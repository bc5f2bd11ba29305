//! Steps 5 and 6: end-to-end latency with the generator running at a fixed rate, and the
//! watcher's cost on an idle file.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::drain::stop_checked;
use crate::procs::{http_get, metric_sum, ProcStats};
use crate::roles::{wait_committed, Mode, Roles};
use crate::stats::{count_lines, lag_trend, percentile, udm_latencies, LagTrend};

/// How often the watcher's lag gauge is sampled (each scrape costs the watcher CPU that
/// the live figures count, so not too often).
const LAG_SAMPLE: Duration = Duration::from_millis(250);

/// One live run at a fixed rate.
#[derive(Debug, Clone)]
pub struct Live {
    pub rate: u64,
    pub lines: u64,
    /// Lines per second the generator actually achieved.
    pub achieved_rate: f64,
    pub received: u64,
    /// End-to-end latency percentiles, microseconds: p50, p99, p99.9, max.
    pub p50_us: i64,
    pub p99_us: i64,
    pub p999_us: i64,
    pub max_us: i64,
    /// The watcher's share (collected − line timestamp): p50, p99.
    pub collect_p50_us: i64,
    pub collect_p99_us: i64,
    pub lag: Option<LagTrend>,
    /// Time from the generator's exit until the subscriber had written every line.
    pub catch_up_seconds: f64,
    pub watcher: ProcStats,
    /// The watcher's on-CPU time (schedstat) from the generator's start to the last event.
    pub watcher_cpu_ns: u64,
    pub subscriber: ProcStats,
    /// Seconds the generator ran: the divisor of the CPU shares.
    pub seconds: f64,
}

impl Live {
    /// Watcher CPU-µs per shipped line.
    pub fn watcher_us_per_line(&self) -> f64 {
        self.watcher_cpu_ns as f64 / 1e3 / self.lines.max(1) as f64
    }

    /// Watcher CPU as a share of one core while the generator ran (the catch-up after it is
    /// counted too: it is work for these lines).
    pub fn watcher_core_share(&self) -> f64 {
        self.watcher_cpu_ns as f64 / 1e9 / self.seconds
    }

    pub fn json(&self) -> Value {
        json!({
            "rate": self.rate,
            "lines": self.lines,
            "achieved_rate": self.achieved_rate,
            "received": self.received,
            "latency_us": {"p50": self.p50_us, "p99": self.p99_us, "p99_9": self.p999_us, "max": self.max_us},
            "watcher_collect_latency_us": {"p50": self.collect_p50_us, "p99": self.collect_p99_us},
            "lag": self.lag.map(|l| json!({
                "slope_bytes_per_s": l.slope_bytes_per_s,
                "max_bytes": l.max_bytes,
                "last_bytes": l.last_bytes,
                "growing": l.growing,
            })),
            "catch_up_seconds": self.catch_up_seconds,
            "watcher_cpu_share": self.watcher_core_share(),
            "watcher_cpu_us_per_line": self.watcher_us_per_line(),
            "watcher_peak_rss_bytes": self.watcher.peak_rss_bytes,
            "subscriber_cpu_share": self.subscriber.cpu_seconds / self.seconds,
            "subscriber_peak_rss_bytes": self.subscriber.peak_rss_bytes,
        })
    }
}

/// Step 5 at one `rate`: watcher (stream mode) and subscriber (udm) started and ready first,
/// then the generator writes `rate × duration` lines at `rate`.
pub fn live(broker: &Broker, roles: &Roles, rate: u64, duration: Duration) -> Result<Live> {
    let name = format!("live-{rate}");
    let log = roles.app_dir()?.join(format!("{name}.log"));
    let output = roles.work.join(format!("{name}.udm"));
    let _ = std::fs::remove_file(&output);
    std::fs::write(&log, b"")?;
    let key = format!("bench:{name}");
    let mut watcher = roles.watcher(&format!("{name}-watcher"), &log, Mode::Stream, &key)?;
    watcher
        .proc
        .wait_ready(watcher.admin, Duration::from_secs(20))?;
    let mut sub = roles.subscriber(&format!("{name}-sub"), Mode::Stream, &key, "udm", &output)?;
    sub.proc.wait_ready(sub.admin, Duration::from_secs(20))?;

    let lines = (rate as f64 * duration.as_secs_f64()).round().max(1.0) as u64;
    // CPU is counted from here to the last event out: start-up is not part of a live rate.
    let watcher_before = watcher.proc.stats()?;
    let started = Instant::now();
    let mut generator = roles.generator(&format!("{name}-gen"), &log, rate, lines)?;
    let mut samples = Vec::new();
    let deadline = started + duration * 3 + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = generator.exited()? {
            break status;
        }
        if let Ok((200, body)) = http_get(watcher.admin, "/metrics") {
            if let Some(lag) = metric_sum(&body, "redtail_watcher_lag_bytes") {
                samples.push((started.elapsed().as_secs_f64(), lag));
            }
        }
        watcher.proc.check_alive()?;
        sub.proc.check_alive()?;
        if Instant::now() > deadline {
            bail!("generator at {rate}/s did not finish {lines} lines in time");
        }
        std::thread::sleep(LAG_SAMPLE);
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("generator failed ({status}):\n{}", generator.log_tail());
    }
    let written_bytes = std::fs::metadata(&log)?.len() as f64;

    let stopped = Instant::now();
    let catch_up_deadline = stopped + Duration::from_secs(120);
    let received = loop {
        let n = count_lines(&output)?;
        if n >= lines {
            break n;
        }
        sub.proc.check_alive()?;
        if Instant::now() > catch_up_deadline {
            bail!("subscriber wrote only {n} of {lines} events at {rate}/s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let catch_up_seconds = stopped.elapsed().as_secs_f64();
    let watcher_stats = watcher.proc.stats()?;
    let watcher_cpu_ns = watcher_stats
        .runtime_ns
        .saturating_sub(watcher_before.runtime_ns);
    let sub_stats = sub.proc.stats()?;
    stop_checked(&mut watcher.proc)?;
    stop_checked(&mut sub.proc)?;

    let mut lat = udm_latencies(&output)?;
    if lat.unreadable > 0 {
        bail!(
            "{} events of {} had no readable timestamps",
            lat.unreadable,
            output.display()
        );
    }
    lat.total.sort_unstable();
    lat.collect.sort_unstable();
    let pct = |p| percentile(&lat.total, p).unwrap_or(0);
    let collect_pct = |p| percentile(&lat.collect, p).unwrap_or(0);
    let mut con = broker.connection()?;
    redis::cmd("DEL").arg(&key).query::<()>(&mut con)?;
    Ok(Live {
        rate,
        lines,
        achieved_rate: lines as f64 / seconds,
        received,
        p50_us: pct(50.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        max_us: lat.total.last().copied().unwrap_or(0),
        collect_p50_us: collect_pct(50.0),
        collect_p99_us: collect_pct(99.0),
        lag: lag_trend(&samples, written_bytes / seconds),
        catch_up_seconds,
        watcher: watcher_stats,
        watcher_cpu_ns,
        subscriber: sub_stats,
        seconds,
    })
}

/// Step 6 (idle part): the watcher's cost while its file does not change.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    pub seconds: f64,
    /// From utime+stime (tick resolution).
    pub cpu_percent: f64,
    /// From the threads' schedstat run time (nanosecond resolution).
    pub cpu_percent_precise: f64,
    pub wakeups_per_s: f64,
    pub peak_rss_bytes: u64,
}

impl Idle {
    pub fn json(&self) -> Value {
        json!({
            "seconds": self.seconds,
            "cpu_percent_of_one_core": self.cpu_percent,
            "cpu_percent_of_one_core_schedstat": self.cpu_percent_precise,
            "wakeups_per_s": self.wakeups_per_s,
            "peak_rss_bytes": self.peak_rss_bytes,
        })
    }
}

/// A watcher catches up with a small file, settles for a second, then is measured over `span`.
pub fn idle(broker: &Broker, roles: &Roles, span: Duration) -> Result<Idle> {
    let log = roles.app_dir()?.join("idle.log");
    let _ = std::fs::remove_file(&log);
    roles.prewrite(&log, 100)?;
    let mut watcher = roles.watcher("idle-watcher", &log, Mode::Stream, "bench:idle")?;
    watcher
        .proc
        .wait_ready(watcher.admin, Duration::from_secs(20))?;
    let mut con = broker.connection()?;
    let poll = Duration::from_millis(20);
    wait_committed(
        &mut con,
        &mut watcher.proc,
        "idle-watcher",
        &log,
        poll,
        Duration::from_secs(30),
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let before = watcher.proc.stats()?;
    let started = Instant::now();
    std::thread::sleep(span);
    let after = watcher.proc.stats()?;
    let seconds = started.elapsed().as_secs_f64();
    stop_checked(&mut watcher.proc)?;
    Ok(Idle {
        seconds,
        cpu_percent: (after.cpu_seconds - before.cpu_seconds) / seconds * 100.0,
        cpu_percent_precise: after.runtime_ns.saturating_sub(before.runtime_ns) as f64
            / 1e9
            / seconds
            * 100.0,
        wakeups_per_s: after
            .voluntary_switches
            .saturating_sub(before.voluntary_switches) as f64
            / seconds,
        peak_rss_bytes: after.peak_rss_bytes,
    })
}
