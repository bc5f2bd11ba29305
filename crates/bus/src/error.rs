//! Errors of the Redis side, each with a short label for `publish_errors_total{reason}`.

use redis::{ErrorKind, RedisError, ServerErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL or TLS material is unusable: not retryable, the process exits.
    #[error("invalid Redis configuration: {0}")]
    Config(String),
    /// Anything Redis or the connection said; retried with backoff by the callers.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Redis answered something this code does not understand (a bug or a foreign key).
    #[error("unexpected reply from Redis: {0}")]
    Protocol(String),
}

impl BusError {
    /// Every value `reason()` can return, so metrics can start each at 0
    /// (a series that appears only on the first error breaks `rate()` and alerts).
    pub const REASONS: &'static [&'static str] = &[
        "config",
        "protocol",
        "timeout",
        "connect",
        "connection",
        "oom",
        "noscript",
        "busy",
        "auth",
        "noperm",
        "wrongtype",
        "loading",
        "readonly",
        "cluster",
        "server",
        "other",
    ];

    /// A bounded label for metrics: never built from the error text.
    pub fn reason(&self) -> &'static str {
        match self {
            BusError::Config(_) => "config",
            BusError::Protocol(_) => "protocol",
            BusError::Redis(e) => redis_reason(e),
        }
    }

    /// Whether trying again later can help. Configuration errors and
    /// authentication failures cannot; everything else (connection loss, OOM,
    /// LOADING, READONLY after a failover, timeouts) can.
    pub fn is_retryable(&self) -> bool {
        match self {
            BusError::Config(_) => false,
            BusError::Redis(e) => !matches!(
                e.kind(),
                ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
            ),
            BusError::Protocol(_) => true,
        }
    }

    /// Errors after which the connection should be dropped and re-established.
    pub fn breaks_connection(&self) -> bool {
        match self {
            BusError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
            }
            BusError::Protocol(_) => true,
            _ => false,
        }
    }
}

fn redis_reason(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    if e.is_connection_refusal() {
        return "connect";
    }
    if e.is_io_error() || e.is_connection_dropped() {
        return "connection";
    }
    match e.code() {
        Some("OOM") => return "oom",
        Some("NOSCRIPT") => return "noscript",
        Some("BUSY") => return "busy",
        Some("NOAUTH") | Some("WRONGPASS") => return "auth",
        Some("NOPERM") => return "noperm",
        Some("WRONGTYPE") => return "wrongtype",
        _ => {}
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => "auth",
        ErrorKind::Server(kind) => match kind {
            ServerErrorKind::BusyLoading => "loading",
            ServerErrorKind::ReadOnly => "readonly",
            ServerErrorKind::NoPerm => "noperm",
            ServerErrorKind::NoScript => "noscript",
            ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::CrossSlot
            | ServerErrorKind::MasterDown => "cluster",
            ServerErrorKind::ResponseError
            | ServerErrorKind::ExecAbort
            | ServerErrorKind::NotBusy
            | ServerErrorKind::NoSub => "server",
            // The enum is non-exhaustive: a kind added by a newer redis crate.
            _ => "server",
        },
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => "protocol",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_labels() {
        let io = BusError::from(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        assert_eq!(io.reason(), "connect");
        assert!(io.is_retryable());
        assert!(io.breaks_connection());
        let cfg = BusError::Config("bad".into());
        assert_eq!(cfg.reason(), "config");
        assert!(!cfg.is_retryable());
    }
}
