//! Redis reachability as the outside sees it: `redis_up`, readiness "redis", an error counter
//! and the log lines, kept consistent in one place for both modes.

use prometheus::{IntCounterVec, IntGauge};
use redtail_bus::BusError;
use redtail_telemetry::readiness::Readiness;

use crate::SubscriberError;

/// Readiness condition name shared with the other roles.
pub(crate) const REDIS: &str = "redis";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No round trip finished yet.
    Starting,
    Up,
    Down,
}

pub(crate) struct RedisHealth {
    redis_up: IntGauge,
    readiness: Readiness,
    errors: IntCounterVec,
    /// The redacted URL, for messages.
    target: String,
    state: State,
    /// Failures since the last success, for the log.
    failures: u32,
}

impl RedisHealth {
    /// Starts "not ready": nothing has been read from Redis yet.
    pub fn new(
        redis_up: IntGauge,
        readiness: Readiness,
        errors: IntCounterVec,
        target: String,
    ) -> Self {
        redis_up.set(0);
        readiness.set_failing(REDIS, format!("not connected yet to {target}"));
        RedisHealth {
            redis_up,
            readiness,
            errors,
            target,
            state: State::Starting,
            failures: 0,
        }
    }

    /// A round trip succeeded.
    pub fn up(&mut self) {
        if self.state != State::Up {
            match self.state {
                State::Down => tracing::info!(
                    redis = %self.target,
                    failures = self.failures,
                    "Redis reachable again."
                ),
                _ => tracing::info!(redis = %self.target, "Connected to Redis."),
            }
            self.redis_up.set(1);
            self.readiness.set_ok(REDIS);
            self.state = State::Up;
            self.failures = 0;
        }
    }

    /// A round trip failed. Returns the error back when retrying cannot help.
    pub fn down(&mut self, err: BusError) -> Result<(), SubscriberError> {
        let reason = err.reason();
        self.errors.with_label_values(&[reason]).inc();
        self.redis_up.set(0);
        self.readiness
            .set_failing(REDIS, format!("{reason} error talking to {}", self.target));
        self.failures = self.failures.saturating_add(1);
        if !err.is_retryable() {
            tracing::error!(redis = %self.target, error = %err, "Redis failure that retrying cannot fix.");
            return Err(SubscriberError::Bus(err));
        }
        // One warning per outage, then quieter: a long outage must not flood the log.
        if self.state != State::Down {
            tracing::warn!(redis = %self.target, error = %err, reason, "Redis round trip failed; retrying with backoff.");
        } else {
            tracing::debug!(redis = %self.target, error = %err, reason, attempt = self.failures, "Redis still failing.");
        }
        self.state = State::Down;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    #[test]
    fn tracks_up_and_down() {
        let up = IntGauge::new("t_up", "h").expect("gauge");
        let errors = IntCounterVec::new(Opts::new("t_err", "h"), &["reason"]).expect("vec");
        let readiness = Readiness::default();
        let mut h = RedisHealth::new(
            up.clone(),
            readiness.clone(),
            errors.clone(),
            "redis://x".into(),
        );
        assert!(readiness.check().is_err());
        h.up();
        assert_eq!(up.get(), 1);
        assert!(readiness.check().is_ok());
        let refused = BusError::from(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        h.down(refused).expect("retryable");
        assert_eq!(up.get(), 0);
        let reason = readiness.check().expect_err("not ready");
        assert!(reason.starts_with("redis: connect"), "{reason}");
        assert_eq!(errors.with_label_values(&["connect"]).get(), 1);
        h.up();
        assert!(readiness.check().is_ok());
        assert!(h.down(BusError::Config("bad".into())).is_err());
    }
}
