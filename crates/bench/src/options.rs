//! Command line of `redtail-bench`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub const USAGE: &str = "\
redtail-bench: measure redtail against the Redis ceiling of this machine, in one run.

usage: redtail-bench [--quick] [--redtail PATH] [--lines N] [--live-secs S]
                     [--idle-secs S] [--rates R1,R2,...] [--out FILE] [--work-dir DIR] [--keep]

  --quick        short CI run: N=50000, live runs of 3 s, idle 3 s
  --redtail      the release binary under test (default: `redtail` next to this binary)
  --lines        backlog size N for the ceiling and drain steps (default 2000000)
  --live-secs    duration of each live-latency run (default 15)
  --idle-secs    idle-CPU measurement (default 10)
  --rates        live generator rates, lines/s (default 1000,10000,50000)
  --out          JSON results (default target/bench/results.json)
  --work-dir     scratch files: logs, checkpoints, outputs (default target/bench/work)
  --keep         keep the large scratch files (backlog, subscriber outputs)
";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub redtail: PathBuf,
    pub quick: bool,
    pub lines: u64,
    pub live: Duration,
    pub idle: Duration,
    pub rates: Vec<u64>,
    pub out: PathBuf,
    pub work_dir: PathBuf,
    pub keep: bool,
}

impl Options {
    /// Parses `args` (without the program name). `Ok(None)` means `--help` was asked.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Options>> {
        let mut args = args.into_iter();
        let mut redtail = None;
        let mut quick = false;
        let (mut lines, mut live, mut idle) = (None, None, None);
        let mut rates = vec![1_000, 10_000, 50_000];
        let mut out = PathBuf::from("target/bench/results.json");
        let mut work_dir = PathBuf::from("target/bench/work");
        let mut keep = false;
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => quick = true,
                "--keep" => keep = true,
                "--redtail" => redtail = Some(PathBuf::from(value("--redtail")?)),
                "--lines" => lines = Some(positive(&value("--lines")?, "--lines")?),
                "--live-secs" => live = Some(seconds(&value("--live-secs")?, "--live-secs")?),
                "--idle-secs" => idle = Some(seconds(&value("--idle-secs")?, "--idle-secs")?),
                "--rates" => {
                    rates = value("--rates")?
                        .split(',')
                        .map(|r| positive(r.trim(), "--rates"))
                        .collect::<Result<_>>()?;
                }
                "--out" => out = PathBuf::from(value("--out")?),
                "--work-dir" => work_dir = PathBuf::from(value("--work-dir")?),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        let redtail = match redtail {
            Some(p) => p,
            None => std::env::current_exe()?
                .parent()
                .context("this binary has no directory")?
                .join("redtail"),
        };
        let (default_lines, default_live, default_idle) = if quick {
            (50_000, 3.0, 3.0)
        } else {
            (2_000_000, 15.0, 10.0)
        };
        Ok(Some(Options {
            redtail,
            quick,
            lines: lines.unwrap_or(default_lines),
            live: live.unwrap_or(Duration::from_secs_f64(default_live)),
            idle: idle.unwrap_or(Duration::from_secs_f64(default_idle)),
            rates,
            out,
            work_dir,
            keep,
        }))
    }
}

fn positive(s: &str, name: &str) -> Result<u64> {
    match s.replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{name}: expected a positive integer, got {s:?}"),
    }
}

fn seconds(s: &str, name: &str) -> Result<Duration> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Duration::from_secs_f64(v)),
        _ => bail!("{name}: expected a positive number of seconds, got {s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_quick() {
        let full = parse(&["--redtail", "/x/redtail"])
            .expect("ok")
            .expect("some");
        assert_eq!(full.lines, 2_000_000);
        assert_eq!(full.idle, Duration::from_secs(10));
        assert_eq!(full.rates, vec![1_000, 10_000, 50_000]);
        let quick = parse(&["--quick"]).expect("ok").expect("some");
        assert_eq!((quick.lines, quick.live), (50_000, Duration::from_secs(3)));
        assert!(quick.redtail.ends_with("redtail"));
    }

    #[test]
    fn explicit_values_win_over_quick() {
        let o = parse(&["--quick", "--lines", "1_000", "--rates", "5, 7"])
            .expect("ok")
            .expect("some");
        assert_eq!((o.lines, o.rates), (1_000, vec![5, 7]));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&["--lines", "0"]).is_err());
        assert!(parse(&["--idle-secs", "soon"]).is_err());
        assert!(parse(&["--lines"]).is_err());
        assert!(parse(&["--fast"]).is_err());
        assert_eq!(parse(&["--help"]).expect("ok"), None);
    }
}
