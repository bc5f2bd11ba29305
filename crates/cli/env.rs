//! Reading and validating the environment (the binary's job only: libraries
//! never read it). envy collects the `REDTAIL_*` variables; every value is then
//! parsed here so an error names the variable and the value expected, in one
//! line, before any file or socket is opened.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use redtail_bus::RedisTarget;
use redtail_telemetry::logging::LogFormat;

use crate::vars::{self, Command, Unset, Var};

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
    /// Every variable looked at so far (a test checks that `--help` lists them all).
    read: RefCell<BTreeSet<&'static str>>,
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
            read: RefCell::default(),
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

    /// The set value of `var`, else the text of its default (`None`: a described default).
    fn text(&self, var: &'static Var) -> Option<Cow<'_, str>> {
        self.read.borrow_mut().insert(var.name);
        if let Some(v) = self.raw(var.name) {
            return Some(Cow::Borrowed(v));
        }
        match var.unset {
            Unset::Value(v) => Some(Cow::Borrowed(v)),
            Unset::Number(n) => Some(Cow::Owned(n.to_string())),
            Unset::Described(_) | Unset::MetricsAddr => None,
        }
    }

    /// [`Env::text`] for a variable that always has a value.
    fn value(&self, var: &'static Var) -> Result<Cow<'_, str>, ConfigError> {
        self.text(var).ok_or_else(|| {
            ConfigError(format!(
                "{}: internal error: read as a value, but it has no default value",
                var.name
            ))
        })
    }

    /// Whether `var` is set (and not blank).
    pub fn is_set(&self, var: &'static Var) -> bool {
        self.read.borrow_mut().insert(var.name);
        self.raw(var.name).is_some()
    }

    /// Names of the variables read so far: the tests check each is in its command's `--help`.
    #[cfg(test)]
    pub fn names_read(&self) -> Vec<&'static str> {
        self.read.borrow().iter().copied().collect()
    }

    /// The value (or default) parsed with `FromStr`; `expected` names the shape.
    pub fn parse<T: FromStr>(&self, var: &'static Var, expected: &str) -> Result<T, ConfigError> {
        let v = self.value(var)?;
        v.trim()
            .parse()
            .map_err(|_| ConfigError(format!("{}: expected {expected}, got {v:?}", var.name)))
    }

    pub fn u64(&self, var: &'static Var) -> Result<u64, ConfigError> {
        self.parse(var, "a non-negative integer")
    }

    /// An integer from `min` to `max`.
    pub fn bounded(&self, var: &'static Var, min: u64, max: u64) -> Result<u64, ConfigError> {
        let v = self.parse(var, &format!("an integer from {min} to {max}"))?;
        if v < min || v > max {
            return Err(ConfigError(format!(
                "{}: expected an integer from {min} to {max}, got {v}",
                var.name
            )));
        }
        Ok(v)
    }

    pub fn millis(&self, var: &'static Var, min: u64) -> Result<Duration, ConfigError> {
        let v = self.parse(var, "a duration in milliseconds (an integer)")?;
        if v < min {
            return Err(ConfigError(format!(
                "{}: expected at least {min} milliseconds, got {v}",
                var.name
            )));
        }
        Ok(Duration::from_millis(v))
    }

    pub fn string(&self, var: &'static Var) -> Result<String, ConfigError> {
        Ok(self.value(var)?.into_owned())
    }

    /// The value if set; for variables whose default is described, not a value.
    pub fn optional_string(&self, var: &'static Var) -> Option<String> {
        self.read.borrow_mut().insert(var.name);
        self.raw(var.name).map(str::to_string)
    }

    pub fn path(&self, var: &'static Var) -> Result<PathBuf, ConfigError> {
        Ok(PathBuf::from(self.string(var)?))
    }

    /// One of a fixed set of words (case-insensitive).
    pub fn choice(
        &self,
        var: &'static Var,
        allowed: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let v = self.value(var)?;
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(v.trim()))
            .copied()
            .ok_or_else(|| {
                ConfigError(format!(
                    "{}: expected {}, got {v:?}",
                    var.name,
                    allowed.join(" or ")
                ))
            })
    }

    /// `REDTAIL_METRICS_ADDR`: an address, or `off` (None); unset, the command's own.
    pub fn metrics_addr(&self, command: &Command) -> Result<Option<SocketAddr>, ConfigError> {
        let var = &vars::METRICS_ADDR;
        self.read.borrow_mut().insert(var.name);
        let v = self.raw(var.name).unwrap_or(command.metrics_addr).trim();
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| {
            ConfigError(format!(
                "{}: expected host:port (e.g. 0.0.0.0:9102) or off, got {v:?}",
                var.name
            ))
        })
    }

    pub fn log_format(&self) -> Result<LogFormat, ConfigError> {
        Ok(match self.choice(&vars::LOG_FORMAT, &["text", "json"])? {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        })
    }

    /// One of [`GOOGLE_VARS`], if set and not blank.
    pub fn google(&self, name: &str) -> Option<&str> {
        self.google.get(name).map(String::as_str)
    }

    pub fn rust_log(&self) -> String {
        self.read.borrow_mut().insert(vars::RUST_LOG.name);
        match (&self.rust_log, vars::RUST_LOG.unset) {
            (Some(v), _) => v.clone(),
            (None, Unset::Value(v)) => v.to_string(),
            (None, _) => String::new(),
        }
    }

    /// `REDTAIL_REDIS_URL` and the TLS files. The URL's value is never echoed:
    /// it may carry a password.
    pub fn redis_target(&self) -> Result<RedisTarget, ConfigError> {
        let name = vars::REDIS_URL.name;
        let mut target = RedisTarget::new(self.string(&vars::REDIS_URL)?);
        target.cluster = self.choice(&vars::REDIS_CLUSTER, &["true", "false"])? == "true";
        target.ca_path = self
            .optional_string(&vars::REDIS_CA_PATH)
            .map(PathBuf::from);
        target.client_cert_path = self
            .optional_string(&vars::REDIS_CLIENT_CERT_PATH)
            .map(PathBuf::from);
        target.client_key_path = self
            .optional_string(&vars::REDIS_CLIENT_KEY_PATH)
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
        let err = e.u64(&vars::RATE).unwrap_err().0;
        assert_eq!(
            err,
            "REDTAIL_RATE: expected a non-negative integer, got \"fast\""
        );
        let e = env(&[("REDTAIL_MODE", "kafka")]);
        let err = e.choice(&vars::MODE, &["stream", "pubsub"]).unwrap_err().0;
        assert_eq!(
            err,
            "REDTAIL_MODE: expected stream or pubsub, got \"kafka\""
        );
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let e = env(&[("REDTAIL_RATE", "")]);
        assert_eq!(e.u64(&vars::RATE).unwrap(), 10);
        assert_eq!(e.u64(&vars::DEMO_RATE).unwrap(), 5);
        let generate = vars::command("generate").unwrap();
        assert_eq!(e.metrics_addr(generate).unwrap().unwrap().port(), 9101);
        assert!(env(&[("REDTAIL_METRICS_ADDR", "off")])
            .metrics_addr(generate)
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
