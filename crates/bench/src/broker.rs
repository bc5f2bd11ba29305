//! The benchmark's own `redis-server`, and the broker ceiling measured with `redis-benchmark`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use redtail_testkit::{RedisServer, ServerOptions};

use crate::procs::ProcStats;

/// The harness's private `redis-server` (redtail-testkit: free loopback port, persistence
/// off, killed on drop), with what the benchmark reads from it.
pub struct Broker {
    pub port: u16,
    pub url: String,
    server: RedisServer,
}

impl Broker {
    /// Starts `redis-server` with its files and `redis.log` under `dir`; waits until it
    /// answers PING.
    pub fn start(dir: &Path) -> Result<Broker> {
        let server = RedisServer::try_start(ServerOptions::new().dir(dir))?;
        Ok(Broker {
            port: server.port,
            url: server.url(),
            server,
        })
    }

    pub fn connection(&self) -> Result<redis::Connection> {
        Ok(self.server.connection()?)
    }

    /// CPU of the server itself: tells whether a drain was bound by Redis or by the client.
    pub fn stats(&self) -> Result<ProcStats> {
        let pid = self.server.pid().context("redis-server is not running")?;
        ProcStats::read(pid).context("reading /proc of redis-server")
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
