//! One Redis endpoint (or one Redis Cluster) and a lazily (re)established connection.
//!
//! We manage reconnection ourselves instead of using `ConnectionManager`: the
//! callers own the retry loop (with backoff, metrics and readiness), so a
//! connection here is either healthy or dropped, never silently retrying for
//! seconds behind the caller's back. The exception is Redis Cluster: its connection keeps one
//! socket per node and must re-learn the slot map after a failover or resharding, which
//! redis-rs does inside the handle (bounded by [`CLUSTER_RETRIES`] per command); dropping it
//! would only throw that knowledge away.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{AsyncConnectionConfig, Client, ClientTlsConfig, IntoConnectionInfo, TlsCertificates};
use tokio::sync::OnceCell;

use crate::{BusError, RedisConn};

/// Attempts redis-rs makes for one cluster command (following MOVED/ASK, waiting for a
/// promoted replica) before the error reaches our own retry loop. Small: our loop adds
/// backoff, metrics and readiness; a script call is idempotent, so a retry at either level
/// is safe.
pub const CLUSTER_RETRIES: u32 = 4;

/// Where Redis is and how to talk to it. Built by the binary from the environment.
#[derive(Clone)]
pub struct RedisTarget {
    /// `redis://` or `rediss://`, optional `user:password@`, optional `/db`. With
    /// [`RedisTarget::cluster`], one or more seed node URLs separated by commas.
    pub url: String,
    /// Talk Redis Cluster: route every command to the shard owning its key, follow MOVED/ASK
    /// and topology changes. Off (the default) = one server, exactly as before.
    pub cluster: bool,
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
            .field("url", &self.redacted())
            .field("cluster", &self.cluster)
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
            cluster: false,
            ca_path: None,
            client_cert_path: None,
            client_key_path: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// The cluster seed URLs (the URL split at commas); the one URL in standalone mode.
    pub fn seeds(&self) -> Vec<&str> {
        if !self.cluster {
            return vec![self.url.as_str()];
        }
        self.url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Checks the URL (scheme, host, port, db) without connecting.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.cluster {
            return self.validate_cluster();
        }
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

    /// Every seed must be a valid URL of the same scheme (one TLS setting for the whole
    /// cluster), and a cluster has only database 0.
    fn validate_cluster(&self) -> Result<(), BusError> {
        let seeds = self.seeds();
        if seeds.is_empty() {
            return Err(BusError::Config("no cluster seed URL".to_string()));
        }
        for seed in &seeds {
            let single = RedisTarget {
                url: seed.to_string(),
                cluster: false,
                ..self.clone()
            };
            single.validate()?;
            let info = seed
                .into_connection_info()
                .map_err(|e| BusError::Config(format!("malformed URL: {}", e.kind_str())))?;
            if info.redis_settings().db() != 0 {
                return Err(BusError::Config(
                    "Redis Cluster has only database 0: drop the /db from the URL".to_string(),
                ));
            }
        }
        let tls = seeds[0].starts_with("rediss://");
        if seeds.iter().any(|s| s.starts_with("rediss://") != tls) {
            return Err(BusError::Config(
                "cluster seed URLs mix redis:// and rediss://".to_string(),
            ));
        }
        Ok(())
    }

    /// The URL with any password replaced by `***`, for logs and error messages.
    pub fn redacted(&self) -> String {
        if self.cluster {
            return self
                .seeds()
                .into_iter()
                .map(redact_url)
                .collect::<Vec<_>>()
                .join(",");
        }
        redact_url(&self.url)
    }

    /// A client for this target (reads the TLS files, if any); for a cluster target, a
    /// client of the first seed node.
    pub fn client(&self) -> Result<Client, BusError> {
        self.validate()?;
        if self.url.starts_with("rediss://") {
            install_crypto_provider();
        }
        // A cluster target's plain client talks to the first seed only: that is what a
        // classic SUBSCRIBE needs (PUBLISH reaches every node of a cluster).
        let url = self.seeds().first().copied().unwrap_or(self.url.as_str());
        let Some(certificates) = self.tls_certificates()? else {
            return Client::open(url)
                .map_err(|e| BusError::Config(format!("malformed URL: {}", e.kind_str())));
        };
        Client::build_with_tls(url, certificates)
            .map_err(|e| BusError::Config(format!("TLS set-up: {}", e.kind_str())))
    }

    /// A cluster client for the seed URLs (reads the TLS files, if any). TLS and credentials
    /// come from the first seed; redis-rs uses them for every node it discovers.
    pub fn cluster_client(&self) -> Result<ClusterClient, BusError> {
        self.validate()?;
        if self.seeds().iter().any(|s| s.starts_with("rediss://")) {
            install_crypto_provider();
        }
        let mut builder = ClusterClientBuilder::new(self.seeds())
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(50)
            .max_retry_wait(1000);
        if let Some(certificates) = self.tls_certificates()? {
            builder = builder.certs(certificates);
        }
        builder
            .build()
            .map_err(|e| BusError::Config(format!("cluster client: {}", e.kind_str())))
    }

    /// The CA and client certificate files, read; `None` when the system roots will do.
    fn tls_certificates(&self) -> Result<Option<TlsCertificates>, BusError> {
        let needs_custom_tls = self.ca_path.is_some() || self.client_cert_path.is_some();
        if !needs_custom_tls {
            return Ok(None);
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
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }

    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
    }
}

/// rustls 0.23 needs a process-wide crypto provider, and the redis crate enables rustls
/// without one: the first TLS handshake would panic ("Could not automatically determine the
/// process-level CryptoProvider"). Install ring's, once; an already installed provider (the
/// binary's choice, or an earlier call) is kept.
fn install_crypto_provider() {
    // Err only means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
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

/// How a [`Connection`] reaches Redis.
enum Backend {
    Single {
        client: Client,
        conn: Option<redis::aio::MultiplexedConnection>,
    },
    /// Shared by every clone of the [`Connection`]: one cluster connection (one socket per
    /// node) per process role, however many streams it reads.
    Cluster {
        client: ClusterClient,
        conn: Arc<OnceCell<redis::cluster_async::ClusterConnection>>,
    },
}

/// A connection that is re-established on demand after a failure.
pub struct Connection {
    target: RedisTarget,
    backend: Backend,
}

impl Clone for Connection {
    /// A standalone clone starts unconnected (its own socket); a cluster clone shares the
    /// cluster connection, established once.
    fn clone(&self) -> Self {
        let backend = match &self.backend {
            Backend::Single { client, .. } => Backend::Single {
                client: client.clone(),
                conn: None,
            },
            Backend::Cluster { client, conn } => Backend::Cluster {
                client: client.clone(),
                conn: Arc::clone(conn),
            },
        };
        Self {
            target: self.target.clone(),
            backend,
        }
    }
}

impl Connection {
    pub fn new(target: RedisTarget) -> Result<Self, BusError> {
        let backend = if target.cluster {
            Backend::Cluster {
                client: target.cluster_client()?,
                conn: Arc::new(OnceCell::new()),
            }
        } else {
            Backend::Single {
                client: target.client()?,
                conn: None,
            }
        };
        Ok(Self { target, backend })
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster { .. })
    }

    /// A handle to the current connection, connecting first if there is none.
    /// Cloning a handle is cheap; all clones share the socket(s).
    pub async fn get(&mut self) -> Result<RedisConn, BusError> {
        match &mut self.backend {
            Backend::Single { client, conn } => {
                if let Some(conn) = conn {
                    return Ok(RedisConn::Single(conn.clone()));
                }
                let new = client
                    .get_multiplexed_async_connection_with_config(&self.target.connection_config())
                    .await?;
                *conn = Some(new.clone());
                Ok(RedisConn::Single(new))
            }
            Backend::Cluster { client, conn } => {
                let conn = conn
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(RedisConn::Cluster(conn.clone()))
            }
        }
    }

    /// A handle to the current connection if there is one, without connecting: for work
    /// that must not wait (or be cancelled half-way) at an await point.
    pub fn connected(&self) -> Option<RedisConn> {
        match &self.backend {
            Backend::Single { conn, .. } => conn.clone().map(RedisConn::Single),
            Backend::Cluster { conn, .. } => conn.get().cloned().map(RedisConn::Cluster),
        }
    }

    /// Forget the connection after an error that may have broken it; the next
    /// `get` dials again. A cluster connection is kept: it reconnects to the nodes (and,
    /// when all are gone, to the seeds) by itself.
    pub fn reset(&mut self) {
        if let Backend::Single { conn, .. } = &mut self.backend {
            *conn = None;
        }
    }

    /// Drop the connection if `err` says it is broken, then hand the error back.
    pub fn on_error(&mut self, err: BusError) -> BusError {
        if err.breaks_connection() {
            self.reset();
        }
        err
    }

    /// One PING round trip (in a cluster: to every primary, so it fails while a shard is
    /// down).
    pub async fn ping(&mut self) -> Result<(), BusError> {
        let mut conn = self.get().await?;
        let result: Result<redis::Value, _> = redis::cmd("PING").query_async(&mut conn).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.on_error(e.into())),
        }
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
    fn tls_client_builds_with_a_crypto_provider() {
        let target = RedisTarget::new("rediss://127.0.0.1:6380");
        assert!(target.client().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn debug_hides_password() {
        let t = RedisTarget::new("redis://u:topsecret@h");
        assert!(!format!("{t:?}").contains("topsecret"));
    }
}
