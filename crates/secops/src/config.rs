//! What the sink needs to know, checked by [`SecopsConfig::validate`] before any socket opens.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::SecopsError;

/// Which Google ingestion API receives the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Api {
    /// Chronicle API `logTypes/{t}/logs:import`: raw lines, SecOps' parsers map them.
    #[default]
    Logs,
    /// Chronicle API `events:import`: our UDM events.
    Events,
    /// Ingestion API v2 `unstructuredlogentries:batchCreate` (Google ends it on 2027-07-20).
    Legacy,
}

impl FromStr for Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "logs" => Ok(Api::Logs),
            "events" => Ok(Api::Events),
            "legacy" => Ok(Api::Legacy),
            other => Err(format!("expected logs, events or legacy, got {other:?}")),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Logs => "logs",
            Api::Events => "events",
            Api::Legacy => "legacy",
        })
    }
}

/// Where access tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsSource {
    /// A service-account key file (JSON): RS256 JWT-bearer grant at its `token_uri`.
    KeyFile(PathBuf),
    /// The GCE/GKE metadata server (Workload Identity), at this base URL
    /// (`http://metadata.google.internal` unless `GCE_METADATA_HOST` says otherwise).
    Metadata(String),
}

/// Sink settings. The `DEFAULT_*` constants are INTERFACE.md's defaults.
#[derive(Debug, Clone)]
pub struct SecopsConfig {
    pub api: Api,
    /// Base URL without a trailing slash, e.g. `https://us-chronicle.googleapis.com`.
    pub endpoint: String,
    /// `projects/<p>/locations/<l>/instances/<customer id>` (`logs`, `events`).
    pub instance: Option<String>,
    /// Legacy only: the customer id (a UUID).
    pub customer_id: Option<String>,
    /// The SecOps log type (`logs`, `legacy`).
    pub log_type: Option<String>,
    /// `environmentNamespace` (legacy `namespace`).
    pub namespace: Option<String>,
    pub credentials: CredentialsSource,
    /// Most bytes of uncompressed request body.
    pub batch_bytes: usize,
    pub batch_entries: usize,
    /// Longest wait to fill a batch, from its first entry.
    pub batch_wait: Duration,
    pub gzip: bool,
    /// A batch still failing after this long (from when it was sealed) is dead-lettered.
    pub max_age: Duration,
    /// Longest wait for one HTTP reply (connect, send, read).
    pub request_timeout: Duration,
    /// First retry delay; doubles (with jitter) up to [`SecopsConfig::MAX_BACKOFF`].
    pub retry_base: Duration,
    /// Delay between attempts while the API refuses us (403, 404, repeated 401): a
    /// configuration error an operator must fix, so there is no point in hammering.
    pub not_ready_retry: Duration,
}

impl SecopsConfig {
    pub const DEFAULT_BATCH_BYTES: usize = 3_500_000;
    pub const DEFAULT_LEGACY_BATCH_BYTES: usize = 950_000;
    pub const DEFAULT_BATCH_ENTRIES: usize = 1000;
    pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_millis(5000);
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_millis(86_400_000);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
    pub const DEFAULT_NOT_READY_RETRY: Duration = Duration::from_secs(60);
    /// INTERFACE.md: back off "up to 5 min".
    pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
    /// Google's documented limits: `logs:import` takes 4,000,000 bytes and 1,000 logs per
    /// request; the legacy API 1 MB.
    pub const API_MAX_BYTES: usize = 4_000_000;
    pub const LEGACY_MAX_BYTES: usize = 1_000_000;
    pub const API_MAX_ENTRIES: usize = 1000;
    pub const METADATA_HOST: &'static str = "http://metadata.google.internal";

    /// Defaults for `api`; the caller fills in endpoint, instance, log type, credentials.
    pub fn new(api: Api, endpoint: impl Into<String>, credentials: CredentialsSource) -> Self {
        SecopsConfig {
            api,
            endpoint: endpoint.into(),
            instance: None,
            customer_id: None,
            log_type: None,
            namespace: None,
            credentials,
            batch_bytes: Self::default_batch_bytes(api),
            batch_entries: Self::DEFAULT_BATCH_ENTRIES,
            batch_wait: Self::DEFAULT_BATCH_WAIT,
            gzip: false,
            max_age: Self::DEFAULT_MAX_AGE,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            retry_base: Self::DEFAULT_RETRY_BASE,
            not_ready_retry: Self::DEFAULT_NOT_READY_RETRY,
        }
    }

    pub fn default_batch_bytes(api: Api) -> usize {
        match api {
            Api::Legacy => Self::DEFAULT_LEGACY_BATCH_BYTES,
            _ => Self::DEFAULT_BATCH_BYTES,
        }
    }

    /// The OAuth scope the API wants.
    pub fn scope(&self) -> &'static str {
        match self.api {
            Api::Legacy => "https://www.googleapis.com/auth/malachite-ingestion",
            _ => "https://www.googleapis.com/auth/cloud-platform",
        }
    }

    /// Every problem names the variable it comes from, so the binary can print it as is.
    pub fn validate(&self) -> Result<(), SecopsError> {
        let bad = |msg: String| Err(SecopsError::Config(msg));
        match self.endpoint.parse::<hyper::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && matches!(uri.path(), "" | "/") => {}
            _ => {
                return bad(format!(
                    "REDTAIL_SECOPS_ENDPOINT: expected a base URL such as https://us-chronicle.googleapis.com, got {:?}",
                    self.endpoint
                ))
            }
        }
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match self.api {
            Api::Logs | Api::Events => {
                let Some(instance) = self.instance.as_deref().filter(|s| !s.trim().is_empty())
                else {
                    return bad(format!(
                        "REDTAIL_SECOPS_INSTANCE: required with REDTAIL_SECOPS_API={} (projects/<p>/locations/<l>/instances/<id>)",
                        self.api
                    ));
                };
                if !instance_shape_ok(instance) {
                    return bad(format!(
                        "REDTAIL_SECOPS_INSTANCE: expected projects/<p>/locations/<l>/instances/<id>, got {instance:?}"
                    ));
                }
            }
            Api::Legacy => {
                if !present(&self.customer_id) {
                    return bad(
                        "REDTAIL_SECOPS_CUSTOMER_ID: required with REDTAIL_SECOPS_API=legacy"
                            .into(),
                    );
                }
            }
        }
        if matches!(self.api, Api::Logs | Api::Legacy) {
            match self.log_type.as_deref() {
                Some(t) if is_log_type(t) => {}
                Some(t) => {
                    return bad(format!(
                        "REDTAIL_SECOPS_LOG_TYPE: expected a SecOps log type such as NGINX or JSON (letters, digits, _), got {t:?}"
                    ))
                }
                None => {
                    return bad(format!(
                        "REDTAIL_SECOPS_LOG_TYPE: required with REDTAIL_SECOPS_API={}",
                        self.api
                    ))
                }
            }
        }
        let cap = match self.api {
            Api::Legacy => Self::LEGACY_MAX_BYTES,
            _ => Self::API_MAX_BYTES,
        };
        if self.batch_bytes < 1024 || self.batch_bytes > cap {
            return bad(format!(
                "REDTAIL_SECOPS_BATCH_BYTES: expected 1024 to {cap} for the {} API, got {}",
                self.api, self.batch_bytes
            ));
        }
        if self.batch_entries == 0 || self.batch_entries > Self::API_MAX_ENTRIES {
            return bad(format!(
                "REDTAIL_SECOPS_BATCH_ENTRIES: expected 1 to {}, got {}",
                Self::API_MAX_ENTRIES,
                self.batch_entries
            ));
        }
        if self.max_age.is_zero() {
            return bad("REDTAIL_SECOPS_MAX_AGE_MS: expected at least 1 ms".into());
        }
        Ok(())
    }
}

/// `projects/<p>/locations/<l>/instances/<id>`, each part non-empty and slash-free.
fn instance_shape_ok(instance: &str) -> bool {
    let parts: Vec<&str> = instance.split('/').collect();
    parts.len() == 6
        && parts[0] == "projects"
        && parts[2] == "locations"
        && parts[4] == "instances"
        && [parts[1], parts[3], parts[5]].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// Log types are upper-case identifiers (`NGINX`, `GCP_CLOUDAUDIT`); they go into a URL path.
fn is_log_type(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> SecopsConfig {
        let mut c = SecopsConfig::new(
            Api::Logs,
            "https://us-chronicle.googleapis.com",
            CredentialsSource::Metadata(SecopsConfig::METADATA_HOST.into()),
        );
        c.instance = Some("projects/p/locations/us/instances/abc-123".into());
        c.log_type = Some("JSON".into());
        c
    }

    #[test]
    fn accepts_a_complete_logs_config() {
        logs().validate().expect("valid");
        assert_eq!("EVENTS".parse::<Api>(), Ok(Api::Events));
        assert!("kafka".parse::<Api>().is_err());
    }

    #[test]
    fn names_the_variable_at_fault() {
        let msg = |c: SecopsConfig| c.validate().unwrap_err().to_string();
        let mut c = logs();
        c.log_type = None;
        assert!(msg(c).contains("REDTAIL_SECOPS_LOG_TYPE: required"));
        let mut c = logs();
        c.instance = Some("projects/p".into());
        assert!(msg(c).starts_with("REDTAIL_SECOPS_INSTANCE: expected"));
        let mut c = logs();
        c.endpoint = "ftp://x".into();
        assert!(msg(c).starts_with("REDTAIL_SECOPS_ENDPOINT"));
        let mut c = logs();
        c.endpoint = "https://x/v1alpha".into();
        assert!(
            msg(c).starts_with("REDTAIL_SECOPS_ENDPOINT"),
            "a path is not a base URL"
        );
        let mut c = logs();
        c.batch_bytes = 5_000_000;
        assert!(msg(c).starts_with("REDTAIL_SECOPS_BATCH_BYTES"));
        let mut c = logs();
        c.batch_entries = 1001;
        assert!(msg(c).starts_with("REDTAIL_SECOPS_BATCH_ENTRIES"));
        let mut c = logs();
        c.log_type = Some("NGINX/../x".into());
        assert!(msg(c).starts_with("REDTAIL_SECOPS_LOG_TYPE: expected"));
    }

    #[test]
    fn legacy_needs_a_customer_and_a_smaller_cap() {
        let mut c = SecopsConfig::new(
            Api::Legacy,
            "https://malachiteingestion-pa.googleapis.com",
            CredentialsSource::Metadata(SecopsConfig::METADATA_HOST.into()),
        );
        c.log_type = Some("NGINX".into());
        assert_eq!(c.batch_bytes, 950_000);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("CUSTOMER_ID"));
        c.customer_id = Some("c0ffee".into());
        c.validate().expect("valid");
        c.batch_bytes = 3_500_000;
        assert!(c.validate().is_err());
        assert!(c.scope().ends_with("malachite-ingestion"));
    }
}
