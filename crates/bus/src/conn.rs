//! One Redis endpoint and a lazily (re)established multiplexed connection.
//!
//! We manage reconnection ourselves instead of using `ConnectionManager`: the
//! callers own the retry loop (with backoff, metrics and readiness), so a
//! connection here is either healthy or dropped, never silently retrying for
//! seconds behind the caller's back.

use std::path::PathBuf;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ClientTlsConfig, IntoConnectionInfo, TlsCertificates};

use crate::BusError;

/// Where Redis is and how to talk to it. Built by the binary from the environment.
#[derive(Clone)]
pub struct RedisTarget {
    /// `redis://` or `rediss://`, optional `user:password@`, optional `/db`.
    pub url: String,
    /// PEM CA bundle for `rediss://` when the server's certificate is not in the system store.
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate and key for mutual TLS (both or neither).
    pub client_cert_path: Option<PathBuf>,
    pub client_key_path: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Longest wait for one reply. A batch script takes milliseconds; anything far
    /// longer means a paused or wedged server, and the caller retries on a fresh connection.
    pub response_timeout: Duration,
}

impl std::fmt::Debug for RedisTarget {
    // Hand-written so the password in the URL can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &redact_url(&self.url))
            .field("ca_path", &self.ca_path)
            .field("client_cert_path", &self.client_cert_path)
            .field("client_key_path", &self.client_key_path)
            .finish()
    }
}

impl RedisTarget {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_path: None,
            client_cert_path: None,
            client_key_path: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// Checks the URL (scheme, host, port, db) without connecting.
    pub fn validate(&self) -> Result<(), BusError> {
        if !(self.url.starts_with("redis://") || self.url.starts_with("rediss://")) {
            return Err(BusError::Config(
                "expected a redis:// or rediss:// URL".to_string(),
            ));
        }
        self.url
            .as_str()
            .into_connection_info()
            .map_err(|e| BusError::Config(format!("malformed URL: {}", e.kind_str())))?;
        if self.client_cert_path.is_some() != self.client_key_path.is_some() {
            return Err(BusError::Config(
                "a client certificate needs its key and the other way round".to_string(),
            ));
        }
        if !self.url.starts_with("rediss://")
            && (self.ca_path.is_some() || self.client_cert_path.is_some())
        {
            return Err(BusError::Config(
                "TLS files were given but the URL is not rediss://".to_string(),
            ));
        }
        Ok(())
    }

    /// The URL with any password replaced by `***`, for logs and error messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }

    /// A client for this target (reads the TLS files, if any).
    pub fn client(&self) -> Result<Client, BusError> {
        self.validate()?;
        let needs_custom_tls = self.ca_path.is_some() || self.client_cert_path.is_some();
        if !needs_custom_tls {
            return Client::open(self.url.as_str())
                .map_err(|e| BusError::Config(format!("malformed URL: {}", e.kind_str())));
        }
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| BusError::Config(format!("reading {}: {e}", p.display())))
        };
        let root_cert = self.ca_path.as_ref().map(read).transpose()?;
        let client_tls = match (&self.client_cert_path, &self.client_key_path) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read(cert)?,
                client_key: read(key)?,
            }),
            _ => None,
        };
        Client::build_with_tls(
            self.url.as_str(),
            TlsCertificates {
                client_tls,
                root_cert,
            },
        )
        .map_err(|e| BusError::Config(format!("TLS set-up: {}", e.kind_str())))
    }

    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
    }
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    /// The error text without anything that could echo the URL back.
    fn kind_str(&self) -> String {
        let text = self.to_string();
        if text.contains('@') {
            "invalid URL".to_string()
        } else {
            text
        }
    }
}

/// `redis://user:secret@host/0` → `redis://user:***@host/0`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => "***".to_string(),
    };
    format!("{}{}@{}", &url[..scheme_end + 3], user, &rest[at + 1..])
}

/// A multiplexed connection that is re-established on demand after a failure.
pub struct Connection {
    target: RedisTarget,
    client: Client,
    conn: Option<MultiplexedConnection>,
}

impl Connection {
    pub fn new(target: RedisTarget) -> Result<Self, BusError> {
        let client = target.client()?;
        Ok(Self {
            target,
            client,
            conn: None,
        })
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// A handle to the current connection, connecting first if there is none.
    /// Cloning a multiplexed connection is cheap; all clones share one socket.
    pub async fn get(&mut self) -> Result<MultiplexedConnection, BusError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.target.connection_config())
            .await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Forget the connection after an error that may have broken it; the next
    /// `get` dials again.
    pub fn reset(&mut self) {
        self.conn = None;
    }

    /// Drop the connection if `err` says it is broken, then hand the error back.
    pub fn on_error(&mut self, err: BusError) -> BusError {
        if err.breaks_connection() {
            self.reset();
        }
        err
    }

    /// One PING round trip.
    pub async fn ping(&mut self) -> Result<(), BusError> {
        let mut conn = self.get().await?;
        let result: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.on_error(e.into())),
        }
    }

    /// A separate client for a dedicated (e.g. pub/sub) connection.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("rediss://:pw@h"), "rediss://:***@h");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
        assert_eq!(redact_url("redis://tok@h"), "redis://***@h");
    }

    #[test]
    fn validates_urls() {
        assert!(RedisTarget::new("redis://127.0.0.1:6379/0")
            .validate()
            .is_ok());
        assert!(RedisTarget::new("rediss://u:p@host:6380")
            .validate()
            .is_ok());
        assert!(RedisTarget::new("http://host").validate().is_err());
        assert!(RedisTarget::new("redis://host:notaport")
            .validate()
            .is_err());
        let mut t = RedisTarget::new("redis://h");
        t.ca_path = Some("/tmp/ca.pem".into());
        assert!(t.validate().is_err(), "TLS files need rediss://");
    }

    #[test]
    fn debug_hides_password() {
        let t = RedisTarget::new("redis://u:topsecret@h");
        assert!(!format!("{t:?}").contains("topsecret"));
    }
}
