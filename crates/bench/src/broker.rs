//! The benchmark's own `redis-server`, and the broker ceiling measured with `redis-benchmark`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::procs::{Proc, ProcStats};

/// A private `redis-server` on a free loopback port, persistence off, stopped on drop.
pub struct Broker {
    pub port: u16,
    pub url: String,
    proc: Proc,
    client: redis::Client,
}

impl Broker {
    /// Starts `redis-server` with its files under `dir`; waits until it answers PING.
    pub fn start(dir: &Path) -> Result<Broker> {
        let port = free_port()?;
        let args = [
            "--port".to_string(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--daemonize".into(),
            "no".into(),
        ];
        let proc = Proc::spawn(
            "redis-server",
            Path::new("redis-server"),
            &args,
            &[],
            &dir.join("redis-server.log"),
        )?;
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str())?;
        let mut broker = Broker {
            port,
            url,
            proc,
            client,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut con) = broker.client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return Ok(broker);
                }
            }
            broker.proc.check_alive()?;
            if Instant::now() > deadline {
                bail!("redis-server did not answer PING within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connection(&self) -> Result<redis::Connection> {
        Ok(self.client.get_connection()?)
    }

    /// CPU of the server itself: tells whether a drain was bound by Redis or by the client.
    pub fn stats(&self) -> Result<ProcStats> {
        self.proc.stats()
    }

    pub fn flush(&self) -> Result<()> {
        let mut con = self.connection()?;
        redis::cmd("FLUSHALL").query::<()>(&mut con)?;
        Ok(())
    }

    /// The committed offset the watcher with `source` stored for its (only) file.
    pub fn committed_offset(con: &mut redis::Connection, source: &str) -> Result<Option<u64>> {
        let all: HashMap<String, String> =
            redis::cmd("HGETALL").arg("redtail:offsets").query(con)?;
        let prefix = format!("{source}:");
        Ok(all
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, v)| v.parse().ok())
            .max())
    }
}

fn free_port() -> Result<u16> {
    // Bind port 0, read what the kernel chose, release it for redis-server. A race with
    // another process taking it in between is possible but shows up as a clear start error.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// One `redis-benchmark -c 1 -P 128 -n N -q <command...>` run: requests per second.
pub fn redis_benchmark(port: u16, requests: u64, command: &[&str]) -> Result<f64> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", "1", "-P", "128", "-n", &requests.to_string(), "-q"])
        .args(command)
        .output()
        .context("running redis-benchmark (Debian package redis-tools)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "redis-benchmark failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_requests_per_second(&stdout)
        .with_context(|| format!("no 'requests per second' in redis-benchmark output: {stdout}"))
}

/// The figure of the final result line. Progress lines (`rps=...`) are separated by `\r`
/// and do not contain the phrase; the command echo may contain anything, even `:`.
fn parse_requests_per_second(output: &str) -> Option<f64> {
    let segment = output
        .split(['\r', '\n'])
        .rfind(|s| s.contains("requests per second"))?;
    let before = &segment[..segment.find(" requests per second")?];
    before.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_final_line_of_quiet_output() {
        let out = "XADD k MAXLEN ~ 1000000 * line {\"t\":\"12:00\"}: rps=301234.0 (overall: 300000.0) avg_msec=0.4 (overall: 0.4)\r\
                   XADD k MAXLEN ~ 1000000 * line {\"t\":\"12:00\"}: 312500.00 requests per second, p50=0.391 msec\n\n";
        assert_eq!(parse_requests_per_second(out), Some(312_500.0));
    }

    #[test]
    fn rejects_output_without_a_result() {
        assert_eq!(parse_requests_per_second("ERR unknown command\n"), None);
    }
}
