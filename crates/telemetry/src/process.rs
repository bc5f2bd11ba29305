//! Process metrics read from `/proc` at scrape time.
//!
//! The prometheus crate's own process collector needs its `process` feature, which pulls in
//! procfs and more; we build it with `default-features = false`, so these few numbers are read
//! by hand. Reading happens inside `collect`, so values are exactly as fresh as the scrape.

use std::collections::HashMap;
use std::fs;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

const RESIDENT: &str = "redtail_process_resident_memory_bytes";
const VIRTUAL: &str = "redtail_process_virtual_memory_bytes";
const CPU: &str = "redtail_process_cpu_seconds_total";
const OPEN_FDS: &str = "redtail_process_open_fds";
const THREADS: &str = "redtail_process_threads";

/// `(name, help, type)` of every family this collector may return, in `desc()` order.
const FAMILIES: [(&str, &str, MetricType); 5] = [
    (
        RESIDENT,
        "Resident memory size in bytes.",
        MetricType::GAUGE,
    ),
    (VIRTUAL, "Virtual memory size in bytes.", MetricType::GAUGE),
    (
        CPU,
        "Total user and system CPU time spent in seconds.",
        MetricType::COUNTER,
    ),
    (
        OPEN_FDS,
        "Number of open file descriptors.",
        MetricType::GAUGE,
    ),
    (
        THREADS,
        "Number of OS threads in the process.",
        MetricType::GAUGE,
    ),
];

/// Collects `redtail_process_*` metrics for the current process from `/proc/self`.
#[derive(Debug, Clone)]
pub struct ProcessCollector {
    descs: Vec<Desc>,
    page_size: f64,
    ticks_per_second: f64,
}

impl ProcessCollector {
    /// Builds the collector; fails only if a metric name were invalid.
    pub fn new() -> Result<Self, prometheus::Error> {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, _)| {
                Desc::new(
                    (*name).to_string(),
                    (*help).to_string(),
                    Vec::new(),
                    HashMap::new(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProcessCollector {
            descs,
            // Conventional Linux values, used only if sysconf cannot answer.
            page_size: sysconf(libc::_SC_PAGESIZE).unwrap_or(4096) as f64,
            ticks_per_second: sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64,
        })
    }

    /// Current values by family name; a value that cannot be read is left out.
    fn sample(&self) -> Vec<(&'static str, f64)> {
        let mut out = Vec::with_capacity(FAMILIES.len());
        if let Some(stat) = read("/proc/self/stat").and_then(|s| ProcStat::parse(&s)) {
            out.push((
                CPU,
                (stat.utime + stat.stime) as f64 / self.ticks_per_second,
            ));
            out.push((VIRTUAL, stat.vsize as f64));
            out.push((THREADS, stat.num_threads as f64));
        }
        if let Some(pages) = read("/proc/self/statm").and_then(|s| parse_statm_resident(&s)) {
            out.push((RESIDENT, pages as f64 * self.page_size));
        }
        match fs::read_dir("/proc/self/fd") {
            Ok(dir) => out.push((OPEN_FDS, dir.count() as f64)),
            Err(err) => tracing::debug!(error = %err, "Cannot list /proc/self/fd."),
        }
        out
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.sample()
            .into_iter()
            .filter_map(|(name, value)| {
                let (_, help, kind) = FAMILIES.iter().find(|(n, _, _)| *n == name)?;
                let mut metric = proto::Metric::default();
                match kind {
                    MetricType::COUNTER => {
                        let mut counter = proto::Counter::default();
                        counter.set_value(value);
                        metric.set_counter(counter);
                    }
                    _ => {
                        let mut gauge = proto::Gauge::default();
                        gauge.set_value(value);
                        metric.set_gauge(gauge);
                    }
                }
                let mut family = MetricFamily::default();
                family.set_name(name.to_string());
                family.set_help(help.to_string());
                family.set_field_type(*kind);
                family.set_metric(vec![metric]);
                Some(family)
            })
            .collect()
    }
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path)
        .map_err(|err| tracing::debug!(path, error = %err, "Cannot read process statistics."))
        .ok()
}

/// The fields of `/proc/<pid>/stat` this collector uses (see proc(5)).
#[derive(Debug, PartialEq)]
struct ProcStat {
    utime: u64,
    stime: u64,
    num_threads: u64,
    vsize: u64,
}

impl ProcStat {
    fn parse(text: &str) -> Option<Self> {
        // Field 2, the command name, is in parentheses and may itself contain spaces or
        // ')': everything after the *last* ')' is fields 3.. separated by spaces.
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Field n of proc(5) is at index n - 3 here.
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            utime: field(14)?,
            stime: field(15)?,
            num_threads: field(20)?,
            vsize: field(23)?,
        })
    }
}

/// Resident set size in pages: the second field of `/proc/<pid>/statm`.
fn parse_statm_resident(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

#[allow(unsafe_code)]
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf takes no pointers and only reads a process-wide configuration value;
    // it has no preconditions and cannot affect memory safety.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_name() {
        let line = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 7 0 \
                    100 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                utime: 250,
                stime: 50,
                num_threads: 7,
                vsize: 123456789,
            })
        );
        assert_eq!(ProcStat::parse("garbage"), None);
        assert_eq!(parse_statm_resident("1000 250 30 1 0 80 0\n"), Some(250));
        assert_eq!(parse_statm_resident(""), None);
    }

    #[test]
    fn collects_plausible_values_for_this_process() {
        let collector = ProcessCollector::new().expect("valid names");
        // Burn a little CPU so the counter is not trivially zero on a fast machine.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let families = collector.collect();
        let value = |name: &str| -> f64 {
            let family = families
                .iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} collected"));
            let metric = &family.get_metric()[0];
            match family.get_field_type() {
                MetricType::COUNTER => metric.get_counter().get_value(),
                _ => metric.get_gauge().get_value(),
            }
        };
        let rss = value(RESIDENT);
        assert!(
            rss > 1024.0 * 1024.0 && rss < 64.0 * 1024.0 * 1024.0 * 1024.0,
            "rss {rss}"
        );
        assert!(value(VIRTUAL) >= rss);
        let cpu = value(CPU);
        assert!((0.0..3600.0).contains(&cpu), "cpu {cpu}");
        assert!(value(OPEN_FDS) >= 3.0);
        assert!(value(THREADS) >= 1.0);
        assert_eq!(collector.desc().len(), FAMILIES.len());
    }
}
