//! What `redtail subscribe` needs to know. Built by the binary from the environment; checked
//! by [`Config::validate`] before any socket or file is opened.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use redtail_bus::keys::check_cluster_prefix;
use redtail_bus::RedisTarget;
use serde::Deserialize;

use redtail_parse::{Options as UdmOptions, ParseMode, Parser};

use crate::SubscriberError;

/// How each line is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One normalized JSON event (UDM-shaped) per line.
    #[default]
    Udm,
    /// The line exactly as published, plus `\n`.
    Raw,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "udm" => Ok(OutputFormat::Udm),
            "raw" => Ok(OutputFormat::Raw),
            other => Err(format!("expected `udm` or `raw`, got {other:?}")),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Udm => "udm",
            OutputFormat::Raw => "raw",
        })
    }
}

/// Subscriber settings. Field defaults are the `DEFAULT_*` constants (and [`Config::new`]).
#[derive(Debug, Clone)]
pub struct Config {
    pub target: RedisTarget,
    /// Stream key (stream mode). With a cluster target: the prefix of the per-source streams
    /// (`<stream>:{<source>}`), found through the registry set `<stream>:streams`.
    pub stream: String,
    /// Channel (pub/sub mode).
    pub channel: String,
    /// `true`: SUBSCRIBE to `channel` (at-most-once); `false`: consume `stream` (at-least-once).
    pub pubsub: bool,
    pub group: String,
    /// Consumer name; keep it stable across restarts so own pending entries are found again.
    pub consumer: String,
    pub output_format: OutputFormat,
    /// `None` = stdout; otherwise a file opened for appending.
    pub output_path: Option<PathBuf>,
    /// Entries pending this long on another consumer are claimed.
    pub claim_idle: Duration,
    /// Most entries per read, written and acknowledged together.
    pub batch_size: usize,
    /// Longest `XREADGROUP` wait; shorter than the target's response timeout.
    pub block: Duration,
    /// `REDTAIL_PARSE`: per-line detection or one forced parser.
    pub parse: ParseMode,
    /// `REDTAIL_PARSE_REGEX`: the pattern of `parse = regex` (named groups).
    pub parse_regex: Option<String>,
    /// `REDTAIL_UDM_*`: vendor, product, log type and the event size cap.
    pub udm: UdmOptions,
    /// Cluster mode: how often the registry set is re-read to find new sources' streams.
    pub stream_refresh: Duration,
    /// `REDTAIL_SINK=secops`: deliver to Google SecOps instead of writing the output.
    pub sink: Option<Box<redtail_secops::SecopsConfig>>,
    /// A consumer of the group idle this long with nothing pending is removed (a pod of an
    /// earlier rollout). Default 1 h: far beyond `claim_idle`, so its entries were claimed
    /// long before, and far beyond any pause of a live consumer (which re-reads every
    /// `block`). Safety does not rest on it: a consumer with pending entries is never
    /// removed, and a live one removed while quiet is re-created by its next read.
    pub dead_consumer_idle: Duration,
}

impl Config {
    pub const DEFAULT_STREAM: &'static str = "redtail:logs";
    pub const DEFAULT_CHANNEL: &'static str = "logs";
    pub const DEFAULT_GROUP: &'static str = "redtail";
    pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_millis(30_000);
    pub const DEFAULT_BATCH_SIZE: usize = 512;
    pub const DEFAULT_BLOCK: Duration = Duration::from_secs(1);
    pub const DEFAULT_STREAM_REFRESH: Duration = Duration::from_secs(5);
    pub const DEFAULT_DEAD_CONSUMER_IDLE: Duration = Duration::from_secs(3600);
    /// Larger batches buy nothing once a round trip is amortised, and cost memory and
    /// duplicate writes when a batch is redelivered.
    pub const MAX_BATCH_SIZE: usize = 100_000;

    /// Defaults everywhere; `consumer` is the given name (the binary passes the host name).
    pub fn new(target: RedisTarget, consumer: impl Into<String>) -> Self {
        Config {
            target,
            stream: Self::DEFAULT_STREAM.to_string(),
            channel: Self::DEFAULT_CHANNEL.to_string(),
            pubsub: false,
            group: Self::DEFAULT_GROUP.to_string(),
            consumer: consumer.into(),
            output_format: OutputFormat::Udm,
            output_path: None,
            claim_idle: Self::DEFAULT_CLAIM_IDLE,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            block: Self::DEFAULT_BLOCK,
            parse: ParseMode::Auto,
            parse_regex: None,
            udm: UdmOptions::default(),
            stream_refresh: Self::DEFAULT_STREAM_REFRESH,
            sink: None,
            dead_consumer_idle: Self::DEFAULT_DEAD_CONSUMER_IDLE,
        }
    }

    pub fn validate(&self) -> Result<(), SubscriberError> {
        let bad = |msg: String| Err(SubscriberError::Config(msg));
        self.target
            .validate()
            .map_err(|e| SubscriberError::Config(e.to_string()))?;
        for (name, value) in [
            ("stream", &self.stream),
            ("channel", &self.channel),
            ("group", &self.group),
            ("consumer", &self.consumer),
        ] {
            if value.trim().is_empty() {
                return bad(format!("the {name} must not be empty"));
            }
        }
        if self.batch_size == 0 || self.batch_size > Self::MAX_BATCH_SIZE {
            return bad(format!(
                "the batch size must be between 1 and {}, got {}",
                Self::MAX_BATCH_SIZE,
                self.batch_size
            ));
        }
        if self.block.is_zero() || self.block >= self.target.response_timeout {
            return bad(format!(
                "the read block time must be above 0 and below the Redis response timeout ({} ms), got {} ms",
                self.target.response_timeout.as_millis(),
                self.block.as_millis()
            ));
        }
        if self.claim_idle.is_zero() {
            return bad("the claim idle time must be above 0".to_string());
        }
        if self.target.cluster && !self.pubsub {
            check_cluster_prefix(&self.stream).map_err(SubscriberError::Config)?;
        }
        if let Some(sink) = &self.sink {
            if self.pubsub || self.target.cluster {
                return bad(
                    "REDTAIL_SINK=secops needs stream mode on a single Redis (not pubsub, not a cluster)"
                        .to_string(),
                );
            }
            sink.validate()
                .map_err(|e| SubscriberError::Config(e.to_string()))?;
        }
        self.parser()?;
        if self.udm.max_event_bytes < UdmOptions::MIN_MAX_EVENT_BYTES {
            return bad(format!(
                "the UDM event cap must be at least {} bytes, got {}",
                UdmOptions::MIN_MAX_EVENT_BYTES,
                self.udm.max_event_bytes
            ));
        }
        for (name, value) in [
            ("UDM vendor", &self.udm.vendor),
            ("UDM product", &self.udm.product),
            ("UDM log type", &self.udm.log_type),
        ] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return bad(format!("the {name} must not be empty when set"));
            }
        }
        if self.dead_consumer_idle.is_zero() {
            return bad("the dead-consumer idle time must be above 0".to_string());
        }
        if self.stream_refresh.is_zero() {
            return bad("the stream refresh interval must be above 0".to_string());
        }
        if self
            .output_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return bad("the output path must not be empty (use `-` for stdout)".to_string());
        }
        Ok(())
    }

    /// The line parser this configuration describes (the regex compiled).
    pub fn parser(&self) -> Result<Parser, SubscriberError> {
        Parser::new(self.parse, self.parse_regex.as_deref())
            .map_err(|e| SubscriberError::Config(format!("the parse regex {e}")))
    }

    /// How often to scan for entries of dead consumers: twice per idle period, so an entry
    /// is claimed at most 1.5 × `claim_idle` after its consumer died, but never more often
    /// than every 100 ms nor less often than every 15 s.
    pub fn claim_interval(&self) -> Duration {
        (self.claim_idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(15))
    }

    /// Where output goes, for logs and error messages.
    pub fn output_description(&self) -> String {
        match &self.output_path {
            Some(p) => p.display().to_string(),
            None => "stdout".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(RedisTarget::new("redis://127.0.0.1:6379"), "pod-1")
    }

    #[test]
    fn defaults_are_valid() {
        let c = config();
        c.validate().expect("valid");
        assert_eq!(c.batch_size, 512);
        assert_eq!(c.stream, "redtail:logs");
        assert_eq!(c.claim_interval(), Duration::from_secs(15));
    }

    #[test]
    fn output_format_parses() {
        assert_eq!("udm".parse::<OutputFormat>(), Ok(OutputFormat::Udm));
        assert_eq!("raw".parse::<OutputFormat>(), Ok(OutputFormat::Raw));
        assert!("json".parse::<OutputFormat>().is_err());
        assert_eq!(OutputFormat::Raw.to_string(), "raw");
    }

    #[test]
    fn rejects_bad_values() {
        let mut c = config();
        c.batch_size = 0;
        assert!(c.validate().is_err());
        let mut c = config();
        c.block = Duration::from_secs(10);
        assert!(c.validate().is_err(), "block above the response timeout");
        let mut c = config();
        c.group = " ".into();
        assert!(c.validate().is_err());
        let mut c = config();
        c.target = RedisTarget::new("http://x");
        assert!(c.validate().is_err());
        let mut c = config();
        c.output_path = Some(PathBuf::new());
        assert!(c.validate().is_err());
        let mut c = config();
        c.claim_idle = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config();
        c.target = RedisTarget::new("redis://127.0.0.1:7000,redis://127.0.0.1:7001");
        c.target.cluster = true;
        c.validate().expect("cluster seeds");
        c.stream = "logs:{x}".into();
        assert!(c.validate().is_err(), "brace in a cluster stream prefix");
        let mut c = config();
        c.stream_refresh = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config();
        c.parse = ParseMode::Forced(redtail_parse::Format::Regex);
        assert!(c.validate().is_err(), "regex without a pattern");
        c.parse_regex = Some("(?P<message>.*)".into());
        c.validate().expect("regex with a named group");
        c.parse_regex = Some("(.*)".into());
        assert!(c.validate().is_err(), "no named group");
        let mut c = config();
        c.udm.max_event_bytes = 100;
        assert!(c.validate().is_err(), "cap too small");
        let mut c = config();
        c.udm.vendor = Some(" ".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn claim_interval_is_bounded() {
        let mut c = config();
        c.claim_idle = Duration::from_millis(50);
        assert_eq!(c.claim_interval(), Duration::from_millis(100));
        c.claim_idle = Duration::from_millis(1000);
        assert_eq!(c.claim_interval(), Duration::from_millis(500));
    }
}
