//! Reading and validating the environment (the binary's job only: libraries
//! never read it). envy collects the `REDTAIL_*` variables; every value is then
//! parsed here so an error names the variable and the value expected, in one
//! line, before any file or socket is opened.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use redtail_bus::RedisTarget;
use redtail_telemetry::logging::LogFormat;

/// A configuration error: exit status 2 with this one line.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `REDTAIL_*` variables (names without the prefix, as envy gives them,
/// upper-cased) plus `RUST_LOG`.
pub struct Env {
    vars: HashMap<String, String>,
    rust_log: Option<String>,
    /// Google's own variables the SecOps sink honours ([`GOOGLE_VARS`]).
    google: HashMap<String, String>,
}

/// Non-`REDTAIL_` variables read: the standard key-file and metadata-server overrides.
pub const GOOGLE_VARS: &[&str] = &["GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"];

impl Env {
    /// From any (name, value) list: the process environment in `main`, a map in tests.
    pub fn from_iter<I: IntoIterator<Item = (String, String)>>(
        iter: I,
    ) -> Result<Env, ConfigError> {
        let pairs: Vec<(String, String)> = iter.into_iter().collect();
        let rust_log = pairs
            .iter()
            .find(|(k, _)| k == "RUST_LOG")
            .map(|(_, v)| v.clone());
        let google = pairs
            .iter()
            .filter(|(k, v)| GOOGLE_VARS.contains(&k.as_str()) && !v.trim().is_empty())
            .cloned()
            .collect();
        let vars: HashMap<String, String> = envy::prefixed("REDTAIL_")
            .from_iter(pairs)
            .map_err(|e| ConfigError(format!("reading the environment: {e}")))?;
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect();
        Ok(Env {
            vars,
            rust_log,
            google,
        })
    }

    /// Names of set `REDTAIL_*` variables that no command reads (likely typos).
    pub fn unknown_names(&self) -> Vec<String> {
        let known: Vec<&str> = crate::vars::all_names().collect();
        let mut unknown: Vec<String> = self
            .vars
            .keys()
            .map(|k| format!("REDTAIL_{k}"))
            .filter(|name| !known.contains(&name.as_str()))
            .collect();
        unknown.sort();
        unknown
    }

    fn raw(&self, name: &str) -> Option<&str> {
        let short = name.strip_prefix("REDTAIL_").unwrap_or(name);
        self.vars
            .get(short)
            .map(|v| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// A value parsed with `FromStr`, or the default; `expected` names the shape.
    pub fn parse<T: FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{name}: expected {expected}, got {v:?}"))),
        }
    }

    pub fn u64(&self, name: &str, default: u64) -> Result<u64, ConfigError> {
        self.parse(name, default, "a non-negative integer")
    }

    /// A positive integer no larger than `max`.
    pub fn bounded(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let v = self.parse(name, default, &format!("an integer from {min} to {max}"))?;
        if v < min || v > max {
            return Err(ConfigError(format!(
                "{name}: expected an integer from {min} to {max}, got {v}"
            )));
        }
        Ok(v)
    }

    pub fn millis(&self, name: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        let v = self.parse(name, default, "a duration in milliseconds (an integer)")?;
        if v < min {
            return Err(ConfigError(format!(
                "{name}: expected at least {min} milliseconds, got {v}"
            )));
        }
        Ok(Duration::from_millis(v))
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_string()
    }

    pub fn optional_string(&self, name: &str) -> Option<String> {
        self.raw(name).map(str::to_string)
    }

    pub fn path(&self, name: &str, default: &str) -> PathBuf {
        PathBuf::from(self.string(name, default))
    }

    /// One of a fixed set of words (case-insensitive).
    pub fn choice(
        &self,
        name: &str,
        default: &'static str,
        allowed: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let Some(v) = self.raw(name) else {
            return Ok(default);
        };
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(v.trim()))
            .copied()
            .ok_or_else(|| {
                ConfigError(format!(
                    "{name}: expected {}, got {v:?}",
                    allowed.join(" or ")
                ))
            })
    }

    /// `REDTAIL_METRICS_ADDR`: an address, or `off` (None).
    pub fn metrics_addr(&self, default: &str) -> Result<Option<SocketAddr>, ConfigError> {
        let name = "REDTAIL_METRICS_ADDR";
        let v = self.raw(name).unwrap_or(default).trim();
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| {
            ConfigError(format!(
                "{name}: expected host:port (e.g. 0.0.0.0:9102) or off, got {v:?}"
            ))
        })
    }

    pub fn log_format(&self) -> Result<LogFormat, ConfigError> {
        Ok(
            match self.choice("REDTAIL_LOG_FORMAT", "text", &["text", "json"])? {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
        )
    }

    /// One of [`GOOGLE_VARS`], if set and not blank.
    pub fn google(&self, name: &str) -> Option<&str> {
        self.google.get(name).map(String::as_str)
    }

    pub fn rust_log(&self) -> String {
        self.rust_log.clone().unwrap_or_else(|| "info".to_string())
    }

    /// `REDTAIL_REDIS_URL` and the TLS files. The URL's value is never echoed:
    /// it may carry a password.
    pub fn redis_target(&self) -> Result<RedisTarget, ConfigError> {
        let name = "REDTAIL_REDIS_URL";
        let mut target = RedisTarget::new(self.string(name, "redis://127.0.0.1:6379"));
        target.cluster =
            self.choice("REDTAIL_REDIS_CLUSTER", "false", &["true", "false"])? == "true";
        target.ca_path = self
            .optional_string("REDTAIL_REDIS_CA_PATH")
            .map(PathBuf::from);
        target.client_cert_path = self
            .optional_string("REDTAIL_REDIS_CLIENT_CERT_PATH")
            .map(PathBuf::from);
        target.client_key_path = self
            .optional_string("REDTAIL_REDIS_CLIENT_KEY_PATH")
            .map(PathBuf::from);
        target.validate().map_err(|e| {
            ConfigError(format!(
                "{name}: expected redis://[user:password@]host[:port][/db] or rediss://...{} ({}; value not shown, it may hold a password)",
                if target.cluster { ", several separated by commas with REDTAIL_REDIS_CLUSTER=true" } else { "" },
                e.to_string().trim_start_matches("invalid Redis configuration: ")
            ))
        })?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn names_the_variable_and_the_value() {
        let e = env(&[("REDTAIL_RATE", "fast")]);
        let err = e.u64("REDTAIL_RATE", 10).unwrap_err().0;
        assert_eq!(
            err,
            "REDTAIL_RATE: expected a non-negative integer, got \"fast\""
        );
        let e = env(&[("REDTAIL_MODE", "kafka")]);
        let err = e
            .choice("REDTAIL_MODE", "stream", &["stream", "pubsub"])
            .unwrap_err()
            .0;
        assert_eq!(
            err,
            "REDTAIL_MODE: expected stream or pubsub, got \"kafka\""
        );
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let e = env(&[("REDTAIL_COUNT", "")]);
        assert_eq!(e.u64("REDTAIL_COUNT", 7).unwrap(), 7);
        assert_eq!(
            e.metrics_addr("0.0.0.0:9101").unwrap().unwrap().port(),
            9101
        );
        assert!(env(&[("REDTAIL_METRICS_ADDR", "off")])
            .metrics_addr("x")
            .unwrap()
            .is_none());
    }

    #[test]
    fn url_errors_never_show_the_password() {
        let e = env(&[("REDTAIL_REDIS_URL", "redis://u:hunter2@host:port")]);
        let err = e.redis_target().unwrap_err().0;
        assert!(err.starts_with("REDTAIL_REDIS_URL: "), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn cluster_takes_a_seed_list() {
        let e = env(&[
            ("REDTAIL_REDIS_CLUSTER", "true"),
            (
                "REDTAIL_REDIS_URL",
                "redis://127.0.0.1:7000, redis://127.0.0.1:7001",
            ),
        ]);
        let t = e.redis_target().unwrap();
        assert!(t.cluster);
        assert_eq!(
            t.seeds(),
            vec!["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        // Standalone stays the default, and a list is not one URL.
        let e = env(&[("REDTAIL_REDIS_URL", "redis://a:1,redis://b:2")]);
        assert!(e.redis_target().is_err());
        let e = env(&[("REDTAIL_REDIS_URL", "redis://a:1")]);
        assert!(!e.redis_target().unwrap().cluster);
        let e = env(&[("REDTAIL_REDIS_CLUSTER", "maybe")]);
        assert_eq!(
            e.redis_target().unwrap_err().0,
            "REDTAIL_REDIS_CLUSTER: expected true or false, got \"maybe\""
        );
        let e = env(&[
            ("REDTAIL_REDIS_CLUSTER", "true"),
            ("REDTAIL_REDIS_URL", "redis://a:1/3"),
        ]);
        assert!(e.redis_target().is_err(), "a cluster has only db 0");
    }

    #[test]
    fn warns_about_unknown_names() {
        let e = env(&[
            ("REDTAIL_RAET", "1"),
            ("REDTAIL_RATE", "2"),
            ("HOME", "/root"),
        ]);
        assert_eq!(e.unknown_names(), vec!["REDTAIL_RAET".to_string()]);
    }
}
