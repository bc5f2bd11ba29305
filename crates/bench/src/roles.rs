//! Starting `redtail generate|watch|subscribe` the way a user does: environment variables of
//! INTERFACE.md only, defaults everywhere the benchmark has no reason to change them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::broker::Broker;
use crate::procs::Proc;

/// How long a role may take to start and report ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the binary under test is, where scratch files go, and which Redis to use.
pub struct Roles {
    pub redtail: PathBuf,
    pub work: PathBuf,
    pub redis_url: String,
}

/// Transport of a watcher/subscriber pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream,
    PubSub,
}

/// A started role and its admin address.
pub struct Running {
    pub proc: Proc,
    pub admin: SocketAddr,
}

impl Roles {
    /// The application's log directory, as in a pod: only the logs the watcher tails live
    /// there. Checkpoints, subscriber outputs and the roles' stderr stay in the work
    /// directory, so their writes raise no file events for the watcher (each would wake it).
    pub fn app_dir(&self) -> anyhow::Result<std::path::PathBuf> {
        let dir = self.work.join("app");
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn common(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REDTAIL_REDIS_URL", self.redis_url.clone()),
            ("REDTAIL_METRICS_ADDR", "127.0.0.1:0".into()),
            ("REDTAIL_LOG_FORMAT", "text".into()),
            ("RUST_LOG", "info".into()),
        ]
    }

    fn mode_env(env: &mut Vec<(&'static str, String)>, mode: Mode, key: &str) {
        match mode {
            Mode::Stream => {
                env.push(("REDTAIL_MODE", "stream".into()));
                env.push(("REDTAIL_STREAM", key.into()));
            }
            Mode::PubSub => {
                env.push(("REDTAIL_MODE", "pubsub".into()));
                env.push(("REDTAIL_CHANNEL", key.into()));
            }
        }
    }

    /// A watcher with default settings tailing `log`, publishing to `key`, its committed
    /// offsets under `source`. Returns once its metrics address is known (not yet ready:
    /// drains are timed from the spawn, start-up included).
    pub fn watcher(&self, name: &str, log: &Path, mode: Mode, key: &str) -> Result<Running> {
        let mut env = self.common();
        Self::mode_env(&mut env, mode, key);
        env.push(("REDTAIL_LOG_PATH", log.display().to_string()));
        let checkpoint = self.work.join(format!("{name}.checkpoint.json"));
        env.push(("REDTAIL_CHECKPOINT_PATH", checkpoint.display().to_string()));
        env.push(("REDTAIL_SOURCE", name.into()));
        let log_path = self.work.join(format!("{name}.stderr"));
        let mut proc = Proc::spawn(name, &self.redtail, ["watch"], &env, &log_path)?;
        let admin = proc.metrics_addr(START_TIMEOUT)?;
        Ok(Running { proc, admin })
    }

    /// A subscriber writing `format` (`udm`/`raw`) events to `output`.
    pub fn subscriber(
        &self,
        name: &str,
        mode: Mode,
        key: &str,
        format: &str,
        output: &Path,
    ) -> Result<Running> {
        let mut env = self.common();
        Self::mode_env(&mut env, mode, key);
        env.push(("REDTAIL_GROUP", name.into()));
        env.push(("REDTAIL_CONSUMER", format!("{name}-1")));
        env.push(("REDTAIL_OUTPUT_FORMAT", format.into()));
        env.push(("REDTAIL_OUTPUT_PATH", output.display().to_string()));
        let log_path = self.work.join(format!("{name}.stderr"));
        let mut proc = Proc::spawn(name, &self.redtail, ["subscribe"], &env, &log_path)?;
        let admin = proc.metrics_addr(START_TIMEOUT)?;
        Ok(Running { proc, admin })
    }

    /// `redtail generate` appending `count` lines at `rate` lines/s (0 = as fast as possible).
    pub fn generator(&self, name: &str, log: &Path, rate: u64, count: u64) -> Result<Proc> {
        self.generator_with(name, log, rate, count, &[])
    }

    /// [`Roles::generator`] with more variables (rotation).
    pub fn generator_with(
        &self,
        name: &str,
        log: &Path,
        rate: u64,
        count: u64,
        extra: &[(&'static str, String)],
    ) -> Result<Proc> {
        let mut env = vec![
            ("REDTAIL_METRICS_ADDR", "off".to_string()),
            ("REDTAIL_LOG_FORMAT", "text".into()),
            ("RUST_LOG", "warn".into()),
            ("REDTAIL_LOG_PATH", log.display().to_string()),
            ("REDTAIL_RATE", rate.to_string()),
            ("REDTAIL_COUNT", count.to_string()),
            // Fixed seed: the same messages, hence the same line sizes, on every run.
            ("REDTAIL_SEED", "8".into()),
        ];
        env.extend(extra.iter().cloned());
        let log_path = self.work.join(format!("{name}.stderr"));
        Proc::spawn(name, &self.redtail, ["generate"], &env, &log_path)
    }

    /// Runs the generator to completion: the backlog of the drain steps.
    pub fn prewrite(&self, log: &Path, count: u64) -> Result<Duration> {
        let started = Instant::now();
        let mut generator = self.generator("prewrite", log, 0, count)?;
        let timeout = Duration::from_secs(60 + count / 20_000);
        let status = generator.wait_exit(timeout)?;
        if !status.success() {
            bail!("generator failed ({status}):\n{}", generator.log_tail());
        }
        Ok(started.elapsed())
    }
}

/// Waits until the watcher `source` has committed up to the current size of `log`, checking
/// every `poll`. Returns when it did; fails after `timeout` or if the watcher died.
pub fn wait_committed(
    con: &mut redis::Connection,
    watcher: &mut Proc,
    source: &str,
    log: &Path,
    poll: Duration,
    timeout: Duration,
) -> Result<()> {
    let size = std::fs::metadata(log)
        .with_context(|| format!("stat {}", log.display()))?
        .len();
    let deadline = Instant::now() + timeout;
    loop {
        if Broker::committed_offset(con, source)? == Some(size) {
            return Ok(());
        }
        watcher.check_alive()?;
        if Instant::now() > deadline {
            let at = Broker::committed_offset(con, source)?;
            bail!(
                "{source}: committed offset {at:?} did not reach {size} within {timeout:?}:\n{}",
                watcher.log_tail()
            );
        }
        std::thread::sleep(poll);
    }
}
