//! The real `redtail` binary as a child process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_redtail");

/// One `redtail <command>` child. Its stdout and stderr go to files so a test
/// can read them after the fact; it is killed on drop.
pub struct Redtail {
    pub command: String,
    child: Option<Child>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
    runs: u32,
    /// A program (and its arguments) that runs the binary: `<wrapper…> <BIN> <command>`.
    wrapper: Vec<String>,
}

impl Redtail {
    /// Start `redtail <command>` with exactly `env` (plus PATH), the admin
    /// server on a free port, logs as text at info.
    pub fn start(command: &str, dir: &Path, env: &[(&str, String)]) -> Redtail {
        let mut r = Redtail::prepare(command, dir, env);
        r.spawn();
        r
    }

    /// The process's settings, not started yet.
    fn prepare(command: &str, dir: &Path, env: &[(&str, String)]) -> Redtail {
        let mut all: Vec<(String, String)> = vec![
            ("REDTAIL_METRICS_ADDR".into(), "127.0.0.1:0".into()),
            ("RUST_LOG".into(), "info".into()),
            ("REDTAIL_LOG_FORMAT".into(), "text".into()),
        ];
        for (k, v) in env {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.clone()));
        }
        Redtail {
            command: command.to_string(),
            child: None,
            stdout_path: PathBuf::new(),
            stderr_path: PathBuf::new(),
            env: all,
            dir: dir.to_path_buf(),
            runs: 0,
            wrapper: Vec::new(),
        }
    }

    fn spawn(&mut self) {
        self.runs += 1;
        self.stdout_path = self
            .dir
            .join(format!("{}-{}.stdout", self.command, self.runs));
        self.stderr_path = self
            .dir
            .join(format!("{}-{}.stderr", self.command, self.runs));
        let mut cmd = match self.wrapper.split_first() {
            None => Command::new(BIN),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(BIN);
                cmd
            }
        };
        let child = cmd
            .arg(&self.command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&self.stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&self.stderr_path).expect("stderr file"))
            .spawn()
            .expect("spawn redtail");
        self.child = Some(child);
    }

    /// Like [`Redtail::start`], but through `wrapper` (`<wrapper…> <BIN> <command>`): e.g. an
    /// `unshare` that changes the process's limits.
    pub fn start_wrapped(
        command: &str,
        dir: &Path,
        env: &[(&str, String)],
        wrapper: &[&str],
    ) -> Redtail {
        let mut r = Redtail::prepare(command, dir, env);
        r.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        r.spawn();
        r
    }

    /// Start again with the same environment (a restart).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running process");
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{sig} {pid}");
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status (panics after `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(timeout)
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("process not running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "redtail {} did not exit within {timeout:?}; stderr:\n{}",
                    self.command,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stdout(&self) -> Vec<u8> {
        std::fs::read(&self.stdout_path).unwrap_or_default()
    }

    /// The admin address this run bound (from its start-up log line).
    pub fn admin_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.stderr();
            if let Some(i) = log.find("Metrics on http://") {
                let rest = &log[i + "Metrics on http://".len()..];
                if let Some(end) = rest.find('/') {
                    return rest[..end].to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no metrics address in the log of redtail {}:\n{log}",
                self.command
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET a path on the admin server: (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(&self.admin_addr(), path)
    }

    pub fn metrics(&self) -> Metrics {
        Metrics(self.http_get("/metrics").1)
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.pid().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Redtail {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal HTTP/1.1 GET with `Connection: close`.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A scrape, with lookups by metric name (+ optional label filter).
pub struct Metrics(pub String);

impl Metrics {
    /// Sum of every sample of `name` whose labels contain all of `labels`
    /// (`key="value"` strings). None when no sample matched.
    pub fn get(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let mut found = None;
        for line in self.0.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let (metric, label_text) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            if metric != name || !labels.iter().all(|l| label_text.contains(l)) {
                continue;
            }
            if let Ok(v) = value.parse::<f64>() {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }

    pub fn value(&self, name: &str) -> f64 {
        self.get(name, &[])
            .unwrap_or_else(|| panic!("metric {name} missing from scrape:\n{}", self.0))
    }

    /// Every metric family name in the scrape (from `# TYPE` lines).
    pub fn names(&self) -> Vec<String> {
        self.0
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }
}
