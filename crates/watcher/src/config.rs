//! The watcher's settings, validated before anything is opened.

use std::path::PathBuf;
use std::time::Duration;

use redtail_bus::keys::check_cluster_prefix;
use redtail_bus::{Mode, RedisTarget};
use redtail_tail::{MultilineConfig, StartAt};

use crate::WatcherError;

#[derive(Debug, Clone)]
pub struct Config {
    /// A file, or a glob in the last path component.
    pub log_path: PathBuf,
    pub checkpoint_path: PathBuf,
    pub checkpoint_every_lines: u64,
    pub checkpoint_interval: Duration,
    /// For files with no checkpoint on the very first start.
    pub start_at: StartAt,
    /// This watcher's id in Redis (`src` field, offsets hash field prefix): the pod name.
    pub source: String,
    pub max_line_bytes: usize,
    pub batch_max_lines: usize,
    /// Bounds one batch's memory and one script call's size.
    pub batch_max_bytes: usize,
    /// After a batch that was not full, wait at most this long before reading again, so
    /// the lines an app writes at a live rate go out together (see `linger.rs`); zero = off.
    pub batch_linger: Duration,
    pub read_buffer_bytes: usize,
    pub poll_interval: Duration,
    /// A file renamed or deleted away stays open and is re-read until it has not grown
    /// for this long.
    pub rotate_wait: Duration,
    /// Most files held open at once (clamped below the process's descriptor limit).
    pub max_open_files: usize,
    /// A file that has not grown for this long is closed, its position kept.
    pub close_inactive: Duration,
    pub target: RedisTarget,
    pub mode: Mode,
    /// Longest time a batch in flight keeps retrying after SIGTERM before the
    /// watcher gives up on it (it is re-read after the restart: nothing is lost).
    pub shutdown_timeout: Duration,
    /// After each batch, `WAIT` until this many replicas acknowledged it before the offset is
    /// committed locally (checkpoint); 0 = do not wait (the default).
    pub replica_acks: u32,
    /// Longest `WAIT`; below the Redis response timeout.
    pub replica_ack_timeout: Duration,
    /// How each file's lines are grouped into events (`REDTAIL_MULTILINE*`); its
    /// `max_bytes` is `max_line_bytes`, so an event is never larger than a line may be.
    pub multiline: MultilineConfig,
}

impl Config {
    pub const DEFAULT_REPLICA_ACK_TIMEOUT: Duration = Duration::from_millis(1000);
    /// Default of `batch_linger`, chosen from `scripts/bench.sh` (README, Performance): a
    /// batch costs about the same whatever its size, so at 1 000 lines/s and below (where
    /// the linger is this maximum) the CPU is this many batches per second. Measured at
    /// 1 000 lines/s: 50 ms 0.92–1.03 % of a core (p99 52–61 ms), 100 ms 0.48–0.56 % (p99
    /// 101–106 ms). Rates above ~3 000 lines/s linger less than 50 ms either way.
    pub const DEFAULT_BATCH_LINGER: Duration = Duration::from_millis(100);
    /// A longer linger would be a delay, not a coalescing window.
    pub const MAX_BATCH_LINGER: Duration = Duration::from_millis(1000);
}

impl Config {
    pub fn validate(&self) -> Result<(), WatcherError> {
        let fail = |msg: String| Err(WatcherError::Config(msg));
        if self.source.is_empty() {
            return fail("the source id is empty".into());
        }
        if self.batch_max_lines == 0 || self.batch_max_lines > 100_000 {
            return fail(format!(
                "batch size {} is outside 1..=100000 lines",
                self.batch_max_lines
            ));
        }
        if self.max_line_bytes == 0 || self.max_line_bytes > 512 * 1024 * 1024 {
            return fail(format!(
                "max line size {} is outside 1..=512 MiB (Redis caps a value at 512 MiB)",
                self.max_line_bytes
            ));
        }
        if self.batch_max_bytes == 0 {
            return fail("the batch byte limit is 0".into());
        }
        if self.max_open_files < 2 {
            return fail(format!("max open files {} is below 2", self.max_open_files));
        }
        self.multiline.check().map_err(WatcherError::Config)?;
        if self.multiline.max_bytes > self.max_line_bytes {
            return fail(format!(
                "multi-line events of up to {} bytes exceed the line limit of {} bytes",
                self.multiline.max_bytes, self.max_line_bytes
            ));
        }
        if self.batch_linger > Self::MAX_BATCH_LINGER {
            return fail(format!(
                "batch linger {} ms is above {} ms",
                self.batch_linger.as_millis(),
                Self::MAX_BATCH_LINGER.as_millis()
            ));
        }
        if self.checkpoint_every_lines == 0 {
            return fail("checkpoint every 0 lines".into());
        }
        if let Mode::Stream { key, .. } = &self.mode {
            if key.is_empty() {
                return fail("the stream key is empty".into());
            }
            if self.target.cluster {
                check_cluster_prefix(key).map_err(WatcherError::Config)?;
            }
        }
        if self.replica_acks > 0
            && (self.replica_ack_timeout.is_zero()
                || self.replica_ack_timeout >= self.target.response_timeout)
        {
            return fail(format!(
                "the replica acknowledgement timeout ({} ms) must be above 0 and below the Redis response timeout ({} ms)",
                self.replica_ack_timeout.as_millis(),
                self.target.response_timeout.as_millis()
            ));
        }
        self.target
            .validate()
            .map_err(|e| WatcherError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            log_path: "/var/log/app/app.log".into(),
            checkpoint_path: "/var/lib/redtail/checkpoint.json".into(),
            checkpoint_every_lines: 1000,
            checkpoint_interval: Duration::from_secs(1),
            start_at: StartAt::Beginning,
            source: "pod-0".into(),
            max_line_bytes: 1 << 20,
            batch_max_lines: 1024,
            batch_max_bytes: 1 << 20,
            batch_linger: Config::DEFAULT_BATCH_LINGER,
            read_buffer_bytes: 256 * 1024,
            poll_interval: Duration::from_millis(250),
            rotate_wait: Duration::from_secs(5),
            max_open_files: 256,
            close_inactive: Duration::from_secs(300),
            target: RedisTarget::new("redis://127.0.0.1:6379"),
            mode: Mode::Stream {
                key: "redtail:logs".into(),
                maxlen: 0,
            },
            shutdown_timeout: Duration::from_secs(10),
            replica_acks: 0,
            replica_ack_timeout: Config::DEFAULT_REPLICA_ACK_TIMEOUT,
            multiline: MultilineConfig::default(),
        }
    }

    #[test]
    fn multiline_events_fit_in_a_line() {
        let mut c = config();
        c.validate().expect("defaults");
        c.multiline.max_lines = 0;
        assert!(c.validate().is_err());
        let mut c = config();
        c.multiline.max_bytes = c.max_line_bytes + 1;
        assert!(c.validate().is_err());
    }

    #[test]
    fn replica_ack_timeout_must_fit_in_the_response_timeout() {
        let mut c = config();
        c.replica_acks = 1;
        c.validate().expect("1 s is below the 5 s response timeout");
        c.replica_ack_timeout = Duration::from_secs(5);
        assert!(c.validate().is_err());
        c.replica_acks = 0;
        c.validate().expect("ignored when WAIT is off");
    }

    #[test]
    fn batch_linger_is_bounded() {
        let mut c = config();
        c.batch_linger = Duration::ZERO;
        c.validate().expect("0 turns it off");
        c.batch_linger = Config::MAX_BATCH_LINGER;
        c.validate().expect("the maximum itself is fine");
        c.batch_linger = Config::MAX_BATCH_LINGER + Duration::from_millis(1);
        assert!(c.validate().is_err());
    }

    #[test]
    fn cluster_stream_prefix_has_no_hash_tag() {
        let mut c = config();
        c.target = RedisTarget::new("redis://127.0.0.1:7000,redis://127.0.0.1:7001");
        c.target.cluster = true;
        c.validate().expect("plain prefix");
        c.mode = Mode::Stream {
            key: "logs:{all}".into(),
            maxlen: 0,
        };
        assert!(c.validate().is_err());
    }
}
