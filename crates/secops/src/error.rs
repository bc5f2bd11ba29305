//! What can go wrong in the sink, with a bounded `reason()` for metric labels.

use redtail_bus::BusError;

#[derive(Debug, thiserror::Error)]
pub enum SecopsError {
    /// A setting is wrong; the message names the variable.
    #[error("{0}")]
    Config(String),
    /// The credentials file is missing, unreadable or not a service-account key.
    #[error("REDTAIL_SECOPS_CREDENTIALS: {0}")]
    Credentials(String),
    /// The token endpoint or the metadata server failed (unreachable, 5xx, a bad reply).
    #[error("getting an access token: {0}")]
    Token(String),
    /// The token endpoint refused the grant (4xx: revoked key, wrong account): a
    /// configuration error, not something a retry fixes.
    #[error("the token endpoint refused the grant: {0}")]
    TokenRefused(String),
    /// Connecting, TLS, sending or reading a reply failed, or no reply came in time.
    #[error("HTTP: {0}")]
    Http(String),
    /// The startup check (list log types) failed.
    #[error("SecOps startup check: {0}")]
    Startup(String),
    #[error(transparent)]
    Redis(#[from] BusError),
}

impl SecopsError {
    /// Short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            SecopsError::Config(_) => "config",
            SecopsError::Credentials(_) => "credentials",
            SecopsError::Token(_) | SecopsError::TokenRefused(_) => "token",
            SecopsError::Http(_) => "http",
            SecopsError::Startup(_) => "startup",
            SecopsError::Redis(_) => "redis",
        }
    }
}

impl From<redis::RedisError> for SecopsError {
    fn from(e: redis::RedisError) -> Self {
        SecopsError::Redis(BusError::from(e))
    }
}
