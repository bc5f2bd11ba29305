//! The stream(s) the subscriber reads, behind one interface for both deployments, and the
//! bookkeeping of an `XACK` sent without waiting ([`settle`]).

use std::time::Instant;

use redtail_bus::consumer::{AckInFlight, MultiStreamConsumer, StreamBatch, StreamConsumer};
use redtail_bus::BusError;

use crate::Metrics;

/// The stream(s) this subscriber reads: one (standalone) or every registered one (cluster).
pub(crate) enum Reader {
    One(StreamConsumer),
    Many(MultiStreamConsumer),
}

impl Reader {
    pub(crate) async fn next_batch(&mut self) -> Result<StreamBatch, BusError> {
        match self {
            Reader::One(c) => c.next_batch().await,
            Reader::Many(m) => m.next_batch().await,
        }
    }

    pub(crate) async fn ack(&mut self, stream: &str, ids: &[String]) -> Result<u64, BusError> {
        match self {
            Reader::One(c) => c.ack(ids).await,
            Reader::Many(m) => m.ack(stream, ids).await,
        }
    }

    /// Whether the next read is already in flight (so it returns without waiting on Redis).
    pub(crate) fn has_read_ahead(&self) -> bool {
        match self {
            Reader::One(c) => c.has_read_ahead(),
            Reader::Many(_) => false,
        }
    }

    /// Sends the `XACK` without waiting (standalone only); `Err(ids)`: acknowledge with
    /// [`Reader::ack`] instead.
    pub(crate) fn send_ack(&mut self, ids: Vec<String>) -> Result<AckInFlight, Vec<String>> {
        match self {
            Reader::One(c) => c.send_ack(ids),
            Reader::Many(_) => Err(ids),
        }
    }

    /// Waits for an `XACK` sent by [`Reader::send_ack`]; on failure, the ids to retry.
    pub(crate) async fn settle_ack(
        &mut self,
        ack: AckInFlight,
    ) -> Result<(u64, Instant), (Vec<String>, BusError)> {
        match self {
            Reader::One(c) => c.settle_ack(ack).await,
            // Never sent in cluster mode; handled all the same.
            Reader::Many(_) => ack.outcome().await,
        }
    }

    /// A batch read ahead and not yet handed out (standalone only).
    pub(crate) async fn finish_read_ahead(&mut self) -> Option<Result<StreamBatch, BusError>> {
        match self {
            Reader::One(c) => c.finish_read_ahead().await,
            Reader::Many(_) => None,
        }
    }
}

/// Collects the outcome of the XACK in flight, if any: counted on success (with its batch's
/// duration, read to answer); on failure the ids, their stream and the error, to retry.
pub(crate) async fn settle(
    consumer: &mut Reader,
    in_flight: &mut Option<(AckInFlight, Instant)>,
    metrics: &Metrics,
) -> Result<(), (Vec<String>, String, BusError)> {
    let Some((ack, started)) = in_flight.take() else {
        return Ok(());
    };
    let stream = ack.stream.clone();
    match consumer.settle_ack(ack).await {
        Ok((n, answered)) => {
            metrics.acked.inc_by(n);
            metrics
                .batch_duration
                .observe(answered.duration_since(started).as_secs_f64());
            Ok(())
        }
        Err((ids, err)) => Err((ids, stream, err)),
    }
}
