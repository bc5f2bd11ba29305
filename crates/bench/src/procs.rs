//! The processes under test: spawning, stopping, and reading their cost from `/proc`.
//!
//! Everything is measured from outside the process (`/proc/<pid>`, the `/metrics` endpoint,
//! Redis), so the benchmark sees the binary exactly as a user runs it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped, so a failed step
/// never leaves a watcher or a redis-server running behind the benchmark.
pub struct Proc {
    /// Short name for messages ("watcher", "redis-server").
    pub name: String,
    child: Child,
    /// stderr of the child, where the role logs its metrics address and any error.
    pub log_path: PathBuf,
}

impl Proc {
    /// Spawns `program args` with `envs`, stdout to /dev/null, stderr to `log_path`.
    pub fn spawn<I, S>(
        name: &str,
        program: &Path,
        args: I,
        envs: &[(&str, String)],
        log_path: &Path,
    ) -> Result<Proc>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log =
            File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log_path: log_path.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU and memory so far. Must be read while the process runs: a zombie has no VmHWM.
    pub fn stats(&self) -> Result<ProcStats> {
        ProcStats::read(self.pid()).with_context(|| format!("reading /proc of {}", self.name))
    }

    /// Fails with the tail of the child's stderr if it has already exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); its stderr ends with:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The exit status, if the child has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the child to exit by itself (the generator with a COUNT).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} still running after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM (graceful shutdown, as Kubernetes does), SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // `kill` the command rather than libc::kill: keeps this crate free of unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        match self.wait_exit(grace) {
            Ok(status) => Ok(status),
            Err(_) => {
                let _ = self.child.kill();
                Ok(self.child.wait()?)
            }
        }
    }

    /// The last lines of the child's stderr, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The admin address the role logged ("Metrics on http://ADDR/metrics"); it was started
    /// with `REDTAIL_METRICS_ADDR=127.0.0.1:0`, so only its log knows the port.
    pub fn metrics_addr(&mut self, timeout: Duration) -> Result<SocketAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            if let Some(addr) = parse_metrics_addr(&text) {
                return Ok(addr);
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{} did not log its metrics address within {timeout:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `GET /readyz` answers 200 (Redis reachable, checkpoint loaded).
    pub fn wait_ready(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = http_get(addr, "/readyz") {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {timeout:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

fn parse_metrics_addr(log: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("Metrics on"))?;
    let start = line.find("http://")? + "http://".len();
    let rest = &line[start..];
    let end = rest.find('/')?;
    rest[..end].parse().ok()
}

/// One HTTP/1.1 GET with `Connection: close`: (status, body). Enough for our own endpoints.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sum of every sample of `name` (all label sets) in a Prometheus text exposition.
pub fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // a longer metric name sharing the prefix
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// Cost of a process so far, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// utime + stime of all threads, seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    /// Voluntary context switches of all threads: roughly, how often the process slept.
    pub voluntary_switches: u64,
    /// On-CPU time of the live threads in nanoseconds (`/proc/<pid>/task/*/schedstat`):
    /// precise where the tick-based utime+stime is not (one tick = 0.1 % of a core over 10 s).
    pub runtime_ns: u64,
}

impl ProcStats {
    pub fn read(pid: u32) -> Result<ProcStats> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let ticks = parse_stat_ticks(&stat).context("malformed /proc/<pid>/stat")?;
        let (mut voluntary_switches, mut runtime_ns) = (0, 0);
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
            // A thread may exit between listing and reading: skip it.
            if let Ok(s) = std::fs::read_to_string(task.path().join("status")) {
                voluntary_switches += status_field(&s, "voluntary_ctxt_switches:").unwrap_or(0);
            }
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                runtime_ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
        Ok(ProcStats {
            cpu_seconds: ticks as f64 / clock_ticks() as f64,
            peak_rss_bytes: status_field(&status, "VmHWM:").unwrap_or(0) * 1024,
            voluntary_switches,
            runtime_ns,
        })
    }
}

/// utime + stime (fields 14 and 15). The command name (field 2) may hold spaces and
/// parentheses, so counting starts after its last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// `getconf CLK_TCK`, else 100 (the value on every Linux distribution we know of).
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ticks_after_a_command_name_with_spaces() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(stat), Some(280));
    }

    #[test]
    fn reads_own_process_stats() {
        let s = ProcStats::read(std::process::id()).expect("own /proc");
        assert!(s.peak_rss_bytes > 0);
    }

    #[test]
    fn finds_the_logged_metrics_address() {
        let log = "2026-01-01T00:00:00Z  INFO redtail: Metrics on http://127.0.0.1:40123/metrics\n";
        assert_eq!(
            parse_metrics_addr(log),
            Some("127.0.0.1:40123".parse().expect("addr"))
        );
        assert_eq!(parse_metrics_addr("starting\n"), None);
    }

    #[test]
    fn sums_labelled_samples_and_ignores_longer_names() {
        let text = "# HELP x\nredtail_watcher_lag_bytes{path=\"/a\"} 10\n\
                    redtail_watcher_lag_bytes{path=\"/b\"} 5\nredtail_watcher_lag_bytes_other 99\n";
        assert_eq!(metric_sum(text, "redtail_watcher_lag_bytes"), Some(15.0));
        assert_eq!(metric_sum(text, "redtail_missing"), None);
    }
}
