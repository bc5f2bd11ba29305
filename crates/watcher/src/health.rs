//! `redtail_watcher_redis_up` and readiness "redis": one writer, one meaning.
//!
//! Both say "batches are being accepted". Only the publish path writes them: a batch
//! committed sets them up, a refused batch (connection lost, `OOM`, `NOPERM`, too few
//! replicas) sets them down with the reason. When there is nothing to publish, the
//! pipeline's idle probe (a `PING` on the publish connection itself) keeps them true to
//! a Redis that went away meanwhile. A PING can never set "up" while a batch is being
//! refused: the probe runs only while no batch is waiting, i.e. after the last batch was
//! accepted. (Before, a separate PING loop and the publisher both wrote the gauge, so under
//! OOM or an ACL refusal it flipped every second and `/readyz` said ready while nothing
//! shipped.)

use prometheus::IntGauge;
use redtail_bus::BusError;
use redtail_telemetry::readiness::Readiness;

/// Readiness condition name.
pub(crate) const READY_REDIS: &str = "redis";

pub(crate) struct RedisHealth {
    redis_up: IntGauge,
    readiness: Readiness,
}

impl RedisHealth {
    /// Starts down: nothing has been accepted yet.
    pub fn new(redis_up: IntGauge, readiness: Readiness) -> Self {
        redis_up.set(0);
        readiness.set_failing(READY_REDIS, "not connected yet");
        RedisHealth {
            redis_up,
            readiness,
        }
    }

    /// A batch was accepted (or, at start, the offsets were read; or, idle, a PING on the
    /// publish connection answered after the last batch had been accepted).
    pub fn accepted(&self) {
        self.redis_up.set(1);
        self.readiness.set_ok(READY_REDIS);
    }

    /// Redis refused a batch or did not answer: not ready, with the reason named.
    pub fn refused(&self, error: &BusError) {
        self.redis_up.set(0);
        self.readiness.set_failing(
            READY_REDIS,
            format!("batches refused ({}): {error}", error.reason()),
        );
    }

    /// The idle probe could not reach Redis.
    pub fn unreachable(&self, error: &BusError) {
        self.redis_up.set(0);
        self.readiness.set_failing(
            READY_REDIS,
            format!("unreachable ({}): {error}", error.reason()),
        );
    }

    /// The batch is in Redis but fewer replicas than required confirmed it: not committed.
    pub fn under_replicated(&self, acked: u64, wanted: u32) {
        self.redis_up.set(0);
        self.readiness.set_failing(
            READY_REDIS,
            format!("batches not replicated ({acked} of {wanted} replicas acknowledged)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_meaning_for_gauge_and_readiness() {
        let up = IntGauge::new("t_up", "h").expect("gauge");
        let readiness = Readiness::default();
        let health = RedisHealth::new(up.clone(), readiness.clone());
        assert_eq!(up.get(), 0);
        assert!(readiness.check().is_err());
        health.accepted();
        assert_eq!(up.get(), 1);
        assert_eq!(readiness.check(), Ok(()));
        health.refused(&BusError::Protocol("garbled".into()));
        assert_eq!(up.get(), 0);
        let reason = readiness.check().expect_err("not ready");
        assert!(
            reason.starts_with("redis: batches refused (protocol)"),
            "{reason}"
        );
        health.under_replicated(0, 1);
        let reason = readiness.check().expect_err("not ready");
        assert!(reason.contains("0 of 1 replicas"), "{reason}");
    }
}
