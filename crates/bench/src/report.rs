//! Step 7: the table (Markdown, pasted as is into the README) and the JSON results.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::drain::{Ceiling, Drain};
use crate::files::{ManyFiles, Storm};
use crate::live::{Idle, Live};

/// Everything one run measured.
pub struct Results {
    pub machine: Value,
    pub lines: u64,
    pub line_bytes: f64,
    pub prewrite_seconds: f64,
    pub ceiling: Ceiling,
    pub stream: Drain,
    pub pubsub: Drain,
    pub subscriber: Drain,
    pub live: Vec<Live>,
    pub idle: Idle,
    /// Err: the step failed, with why.
    pub storm: Result<Storm, String>,
    pub many: Result<ManyFiles, String>,
}

/// Targets of the issue, kept here so the table and the JSON say the same thing.
const WATCHER_DRAIN_RATIO: f64 = 0.8;
const SUBSCRIBER_DRAIN_RATIO: f64 = 0.5;
const P99_AT_10K_US: i64 = 5_000;
const WATCHER_RSS_BYTES: u64 = 16 * 1024 * 1024;
const WATCHER_CPU_PER_MILLION: f64 = 1.5;
const IDLE_CPU_PERCENT: f64 = 0.2;
const LIVE_US_PER_LINE_AT_10K: f64 = 5.0;
const LIVE_CORE_SHARE_AT_1K: f64 = 0.01;
const REDIS_CPU_RATIO: f64 = 1.3;
const MANY_FILES_RSS_BYTES: u64 = 64 * 1024 * 1024;

struct Row {
    figure: String,
    value: String,
    ratio: Option<f64>,
    target: &'static str,
    met: Option<bool>,
}

fn row(figure: String, value: String) -> Row {
    Row {
        figure,
        value,
        ratio: None,
        target: "",
        met: None,
    }
}

impl Results {
    /// Watcher peak RSS over every run it did: "whatever the backlog".
    fn watcher_peak_rss(&self) -> u64 {
        let live = self.live.iter().map(|l| l.watcher.peak_rss_bytes);
        [
            self.stream.proc.peak_rss_bytes,
            self.pubsub.proc.peak_rss_bytes,
        ]
        .into_iter()
        .chain(live)
        .max()
        .unwrap_or(0)
    }

    fn rows(&self) -> Vec<Row> {
        let c = &self.ceiling;
        let mut rows = vec![
            Row {
                ratio: Some(1.0),
                ..row(
                    "Redis ceiling `XADD MAXLEN ~ 1000000 * line <payload>`".into(),
                    rate(c.xadd),
                )
            },
            Row {
                ratio: Some(1.0),
                ..row(
                    format!(
                        "Redis ceiling `PUBLISH <payload>` (median of {} runs, {}–{})",
                        c.publish_runs.len(),
                        rate(c.publish_runs.iter().copied().fold(f64::INFINITY, f64::min)),
                        rate(c.publish_runs.iter().copied().fold(0.0, f64::max)),
                    ),
                    rate(c.publish()),
                )
            },
            Row {
                ratio: Some(c.xadd_full_entry / c.xadd),
                ..row(
                    "(info) `XADD` with the watcher's 6 fields".into(),
                    rate(c.xadd_full_entry),
                )
            },
            Row {
                ratio: Some(c.publish_one_subscriber / c.publish()),
                ..row(
                    "(info) `PUBLISH` with 1 subscriber connected".into(),
                    rate(c.publish_one_subscriber),
                )
            },
        ];
        let ratio = self.stream.lines_per_s() / c.xadd;
        rows.push(Row {
            ratio: Some(ratio),
            target: "≥ 0.8 × XADD",
            met: Some(ratio >= WATCHER_DRAIN_RATIO),
            ..row(
                format!(
                    "Watcher backlog drain, stream ({} lines)",
                    self.stream.lines
                ),
                rate(self.stream.lines_per_s()),
            )
        });
        let ratio = self.pubsub.lines_per_s() / c.publish();
        let delivered = self.pubsub.delivered.unwrap_or(0) as f64 / self.pubsub.lines as f64;
        rows.push(Row {
            ratio: Some(ratio),
            target: "≥ 0.8 × PUBLISH",
            met: Some(ratio >= WATCHER_DRAIN_RATIO),
            ..row(
                format!(
                    "Watcher backlog drain, pubsub ({:.1} % reached the subscriber)",
                    delivered * 100.0
                ),
                rate(self.pubsub.lines_per_s()),
            )
        });
        let ratio = self.subscriber.lines_per_s() / c.xadd;
        rows.push(Row {
            ratio: Some(ratio),
            target: "≥ 0.5 × XADD",
            met: Some(ratio >= SUBSCRIBER_DRAIN_RATIO),
            ..row(
                format!("Subscriber drain, udm ({} entries)", self.subscriber.lines),
                rate(self.subscriber.lines_per_s()),
            )
        });
        for l in &self.live {
            let (target, met) = if l.rate == 10_000 {
                ("p99 < 5 ms", Some(l.p99_us < P99_AT_10K_US))
            } else {
                ("", None)
            };
            rows.push(Row {
                target,
                met,
                ..row(
                    format!(
                        "Live {}/s (achieved {:.0}/s): latency p50 / p99 / p99.9 (watcher's share of p99)",
                        l.rate, l.achieved_rate
                    ),
                    format!(
                        "{} / {} / {} ms ({} ms)",
                        ms(l.p50_us),
                        ms(l.p99_us),
                        ms(l.p999_us),
                        ms(l.collect_p99_us)
                    ),
                )
            });
            let (target, met) = if l.rate == 50_000 {
                ("no growing lag", l.lag.map(|t| !t.growing))
            } else {
                ("", None)
            };
            let value = match l.lag {
                Some(t) => format!(
                    "{}: max {}, slope {:+.0} B/s",
                    if t.growing { "growing" } else { "bounded" },
                    bytes(t.max_bytes as u64),
                    t.slope_bytes_per_s
                ),
                None => "too few samples".into(),
            };
            rows.push(Row {
                target,
                met,
                ..row(format!("Live {}/s: watcher lag", l.rate), value)
            });
            let (target, met) = match l.rate {
                1_000 => (
                    "≤ 1 % of a core",
                    Some(l.watcher_core_share() <= LIVE_CORE_SHARE_AT_1K),
                ),
                10_000 => (
                    "≤ 5 µs per line",
                    Some(l.watcher_us_per_line() <= LIVE_US_PER_LINE_AT_10K),
                ),
                _ => ("", None),
            };
            rows.push(Row {
                target,
                met,
                ..row(
                    format!(
                        "Live {}/s: watcher CPU per line / share of one core",
                        l.rate
                    ),
                    format!(
                        "{:.2} µs / {:.2} %",
                        l.watcher_us_per_line(),
                        l.watcher_core_share() * 100.0
                    ),
                )
            });
        }
        let rss = self.watcher_peak_rss();
        rows.push(Row {
            target: "< 16 MiB",
            met: Some(rss < WATCHER_RSS_BYTES),
            ..row("Watcher peak RSS (max over all runs)".into(), bytes(rss))
        });
        let cpu = self.stream.cpu_per_million();
        rows.push(Row {
            target: "< 1.5 s",
            met: Some(cpu < WATCHER_CPU_PER_MILLION),
            ..row(
                "Watcher CPU-seconds per million lines (stream drain)".into(),
                format!("{cpu:.2} s"),
            )
        });
        rows.push(row(
            "Watcher CPU-seconds per million lines (pubsub drain)".into(),
            format!("{:.2} s", self.pubsub.cpu_per_million()),
        ));
        rows.push(row(
            "Subscriber peak RSS / CPU-seconds per million lines (udm drain)".into(),
            format!(
                "{} / {:.2} s",
                bytes(self.subscriber.proc.peak_rss_bytes),
                self.subscriber.cpu_per_million()
            ),
        ));
        rows.push(row(
            "redis-server CPU share during stream / pubsub / subscriber drain".into(),
            format!(
                "{:.0} % / {:.0} % / {:.0} %",
                self.stream.redis_cpu_seconds / self.stream.seconds * 100.0,
                self.pubsub.redis_cpu_seconds / self.pubsub.seconds * 100.0,
                self.subscriber.redis_cpu_seconds / self.subscriber.seconds * 100.0
            ),
        ));
        let redis_ratio = self.stream.redis_us_per_line() / c.xadd_full_entry_redis_us;
        rows.push(Row {
            ratio: Some(redis_ratio),
            target: "≤ 1.3 × same-entry XADD",
            met: Some(redis_ratio <= REDIS_CPU_RATIO),
            ..row(
                "redis-server CPU per line: watcher stream drain / `XADD` same entry / `XADD` one field"
                    .into(),
                format!(
                    "{:.2} / {:.2} / {:.2} µs",
                    self.stream.redis_us_per_line(),
                    c.xadd_full_entry_redis_us,
                    c.xadd_redis_us
                ),
            )
        });
        rows.push(match &self.storm {
            Ok(s) => Row {
                target: "0 lost, 0 duplicated",
                met: Some(s.missing == 0 && s.duplicated == 0),
                ..row(
                    format!(
                        "Rotation storm: {} lines at 50 k/s, ≈ {:.0} renames/s, each line checked",
                        s.lines,
                        s.rotations_per_s()
                    ),
                    format!(
                        "{} shipped; {} lost, {} duplicated",
                        rate(s.lines_per_s()),
                        s.missing,
                        s.duplicated
                    ),
                )
            },
            Err(e) => Row {
                target: "0 lost, 0 duplicated",
                met: Some(false),
                ..row("Rotation storm".into(), format!("failed: {}", one_line(e)))
            },
        });
        rows.push(match &self.many {
            Ok(m) => Row {
                target: "≤ 64 MiB",
                met: Some(m.peak_rss_bytes <= MANY_FILES_RSS_BYTES),
                ..row(
                    format!(
                        "Watcher peak RSS, glob over {} files ({} lines shipped in {:.1} s)",
                        m.files, m.lines, m.seconds
                    ),
                    bytes(m.peak_rss_bytes),
                )
            },
            Err(e) => Row {
                target: "≤ 64 MiB",
                met: Some(false),
                ..row(
                    "Watcher peak RSS, glob over many files".into(),
                    format!("failed: {}", one_line(e)),
                )
            },
        });
        rows.push(Row {
            target: "< 0.2 %",
            met: Some(self.idle.cpu_percent_precise < IDLE_CPU_PERCENT),
            ..row(
                format!(
                    "Idle watcher CPU over {:.0} s (% of one core; wakeups/s)",
                    self.idle.seconds
                ),
                format!(
                    "{:.3} % ({:.1}/s; ticks: {:.2} %)",
                    self.idle.cpu_percent_precise, self.idle.wakeups_per_s, self.idle.cpu_percent
                ),
            )
        });
        rows
    }

    /// The Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| figure | value | ratio to ceiling | target | met |\n|---|---|---|---|---|\n",
        );
        for r in self.rows() {
            let ratio = r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default();
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.figure, r.value, ratio, r.target, met
            );
        }
        out
    }

    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows()
            .into_iter()
            .map(|r| json!({"figure": r.figure, "value": r.value, "ratio": r.ratio, "target": r.target, "met": r.met}))
            .collect();
        json!({
            "machine": self.machine,
            "backlog_lines": self.lines,
            "average_line_bytes": self.line_bytes,
            "prewrite_seconds": self.prewrite_seconds,
            "ceiling": self.ceiling.json(),
            "watcher_drain_stream": self.stream.json(),
            "watcher_drain_pubsub": self.pubsub.json(),
            "subscriber_drain_udm": self.subscriber.json(),
            "live": self.live.iter().map(Live::json).collect::<Vec<_>>(),
            "idle": self.idle.json(),
            "rotation_storm": match &self.storm {
                Ok(s) => s.json(),
                Err(e) => json!({"error": e}),
            },
            "many_files": match &self.many {
                Ok(m) => m.json(),
                Err(e) => json!({"error": e}),
            },
            "watcher_peak_rss_bytes": self.watcher_peak_rss(),
            "table": rows,
        })
    }
}

/// A step's error on one table line.
fn one_line(e: &str) -> String {
    e.lines().next().unwrap_or_default().replace('|', "/")
}

fn rate(per_s: f64) -> String {
    if per_s >= 10_000.0 {
        format!("{:.0} k/s", per_s / 1000.0)
    } else {
        format!("{per_s:.0}/s")
    }
}

fn ms(us: i64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn bytes(b: u64) -> String {
    if b >= 1024 * 1024 {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", b as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(rate(312_500.0), "312 k/s");
        assert_eq!(rate(999.6), "1000/s");
        assert_eq!(ms(1_234), "1.23");
        assert_eq!(bytes(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
        assert_eq!(bytes(2048), "2 KiB");
    }
}
