//! `REDTAIL_SINK` and the `REDTAIL_SECOPS_*` variables → the SecOps sink's configuration.
//! A bad value, a missing required one or an unreadable key file exits 2 naming it.

use std::path::PathBuf;

use redtail_secops::auth::ServiceAccount;
use redtail_secops::{Api, CredentialsSource, SecopsConfig};

use crate::env::{ConfigError, Env};
use crate::vars;

/// `None` with `REDTAIL_SINK=file` (the default).
pub fn sink(env: &Env) -> Result<Option<SecopsConfig>, ConfigError> {
    if env.choice(&vars::SINK, &["file", "secops"])? == "file" {
        return Ok(None);
    }
    let api: Api = env.parse(&vars::SECOPS_API, "logs, events or legacy")?;
    let endpoint = env
        .optional_string(&vars::SECOPS_ENDPOINT)
        .ok_or_else(|| {
            ConfigError(
                "REDTAIL_SECOPS_ENDPOINT: required with REDTAIL_SINK=secops (e.g. https://us-chronicle.googleapis.com)"
                    .to_string(),
            )
        })?;
    let credentials = credentials(env)?;
    let mut c = SecopsConfig::new(api, endpoint.trim_end_matches('/'), credentials);
    c.instance = env.optional_string(&vars::SECOPS_INSTANCE);
    c.customer_id = env.optional_string(&vars::SECOPS_CUSTOMER_ID);
    c.log_type = env.optional_string(&vars::SECOPS_LOG_TYPE);
    c.namespace = env.optional_string(&vars::SECOPS_NAMESPACE);
    let cap = match api {
        Api::Legacy => SecopsConfig::LEGACY_MAX_BYTES,
        _ => SecopsConfig::API_MAX_BYTES,
    } as u64;
    // Unset, the API's own default (the help text names both; a test checks it).
    c.batch_bytes = match env.is_set(&vars::SECOPS_BATCH_BYTES) {
        true => env.bounded(&vars::SECOPS_BATCH_BYTES, 1024, cap)? as usize,
        false => SecopsConfig::default_batch_bytes(api),
    };
    c.batch_entries = env.bounded(
        &vars::SECOPS_BATCH_ENTRIES,
        1,
        SecopsConfig::API_MAX_ENTRIES as u64,
    )? as usize;
    c.batch_wait = env.millis(&vars::SECOPS_BATCH_MS, 1)?;
    c.gzip = env.choice(&vars::SECOPS_GZIP, &["true", "false"])? == "true";
    c.max_age = env.millis(&vars::SECOPS_MAX_AGE_MS, 1)?;
    c.request_timeout = env.millis(&vars::SECOPS_TIMEOUT_MS, 10)?;
    c.retry_base = env.millis(&vars::SECOPS_RETRY_BASE_MS, 1)?;
    c.not_ready_retry = env.millis(&vars::SECOPS_NOT_READY_RETRY_MS, 1)?;
    c.validate().map_err(|e| ConfigError(e.to_string()))?;
    Ok(Some(c))
}

/// The key file (checked now: a file that is not a service-account key is a usage error),
/// else the metadata server.
fn credentials(env: &Env) -> Result<CredentialsSource, ConfigError> {
    let (name, path) = match env.optional_string(&vars::SECOPS_CREDENTIALS) {
        Some(p) => ("REDTAIL_SECOPS_CREDENTIALS", Some(p)),
        None => (
            "GOOGLE_APPLICATION_CREDENTIALS",
            env.google("GOOGLE_APPLICATION_CREDENTIALS")
                .map(str::to_string),
        ),
    };
    match path {
        Some(path) => {
            let path = PathBuf::from(path);
            ServiceAccount::from_file(&path).map_err(|e| {
                let text = e.to_string();
                let detail = text
                    .strip_prefix("REDTAIL_SECOPS_CREDENTIALS: ")
                    .unwrap_or(&text);
                ConfigError(format!("{name}: {detail}"))
            })?;
            Ok(CredentialsSource::KeyFile(path))
        }
        None => {
            let host = env
                .google("GCE_METADATA_HOST")
                .map(|h| {
                    if h.starts_with("http://") || h.starts_with("https://") {
                        h.to_string()
                    } else {
                        format!("http://{h}")
                    }
                })
                .unwrap_or_else(|| SecopsConfig::METADATA_HOST.to_string());
            Ok(CredentialsSource::Metadata(host))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    /// The least that turns the SecOps sink on (also used by the `--help` agreement tests).
    pub(crate) const BASE: &[(&str, &str)] = &[
        ("REDTAIL_SINK", "secops"),
        (
            "REDTAIL_SECOPS_ENDPOINT",
            "https://us-chronicle.googleapis.com",
        ),
        (
            "REDTAIL_SECOPS_INSTANCE",
            "projects/p/locations/us/instances/i",
        ),
        ("REDTAIL_SECOPS_LOG_TYPE", "JSON"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Env {
        let mut all: Vec<(&str, &str)> = BASE.to_vec();
        all.extend_from_slice(extra);
        env(&all)
    }

    #[test]
    fn file_is_the_default_sink() {
        assert!(sink(&env(&[])).unwrap().is_none());
        assert_eq!(
            sink(&env(&[("REDTAIL_SINK", "kafka")])).unwrap_err().0,
            "REDTAIL_SINK: expected file or secops, got \"kafka\""
        );
    }

    #[test]
    fn metadata_server_without_a_key_file() {
        let c = sink(&with(&[])).unwrap().unwrap();
        assert_eq!(
            c.credentials,
            CredentialsSource::Metadata("http://metadata.google.internal".into())
        );
        let c = sink(&with(&[("GCE_METADATA_HOST", "127.0.0.1:8999")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            c.credentials,
            CredentialsSource::Metadata("http://127.0.0.1:8999".into())
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let first = |e: &Env| sink(e).unwrap_err().0;
        assert!(first(&env(&[("REDTAIL_SINK", "secops")]))
            .starts_with("REDTAIL_SECOPS_ENDPOINT: required"));
        assert!(first(&with(&[("REDTAIL_SECOPS_API", "v3")]))
            .starts_with("REDTAIL_SECOPS_API: expected"));
        assert!(first(&with(&[("REDTAIL_SECOPS_BATCH_BYTES", "9000000")]))
            .starts_with("REDTAIL_SECOPS_BATCH_BYTES: expected"));
        assert!(first(&with(&[("REDTAIL_SECOPS_GZIP", "yes")]))
            .starts_with("REDTAIL_SECOPS_GZIP: expected"));
        assert!(first(&with(&[(
            "REDTAIL_SECOPS_CREDENTIALS",
            "/nonexistent/key.json"
        )]))
        .starts_with("REDTAIL_SECOPS_CREDENTIALS: cannot read"));
        assert!(first(&with(&[(
            "GOOGLE_APPLICATION_CREDENTIALS",
            "/nonexistent/k.json"
        )]))
        .starts_with("GOOGLE_APPLICATION_CREDENTIALS: cannot read"));
        let e = env(&[
            ("REDTAIL_SINK", "secops"),
            ("REDTAIL_SECOPS_ENDPOINT", "https://x"),
            ("REDTAIL_SECOPS_LOG_TYPE", "JSON"),
        ]);
        assert!(first(&e).starts_with("REDTAIL_SECOPS_INSTANCE: required"));
    }
}
