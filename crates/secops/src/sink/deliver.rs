//! Sending a sealed batch: the retry matrix applied part by part, with the in-flight
//! record following every step so that a restart or a claim resumes exactly there.

use std::collections::HashMap;
use std::time::Duration;

use redtail_bus::Backoff;
use tokio::time::Instant;

use super::{now_ms, Held, Sink, BEAT, READINESS};
use crate::client::Verdict;
use crate::inflight::Record;
use crate::{SecopsConfig, SecopsError};

impl Sink {
    /// Sends every part of a sealed batch under the retry matrix.
    pub(super) async fn deliver(
        &mut self,
        mut record: Record,
        mut entries: HashMap<String, Held>,
    ) -> Result<(), SecopsError> {
        self.inflight_oldest_ms = entries.values().map(|h| h.entry.id_ms).min();
        let mut backoff = Backoff::new(self.cfg.retry_base, SecopsConfig::MAX_BACKOFF);
        while let Some(part) = record.parts.first().cloned() {
            let present: Vec<&Held> = part.iter().filter_map(|id| entries.get(id)).collect();
            if present.is_empty() {
                record.parts.remove(0);
                continue;
            }
            let body = self
                .envelope
                .body(present.iter().map(|h| h.fragment.as_slice()));
            let n = present.len();
            let Some(verdict) = self.post_keeping_alive(&body).await else {
                // Shutdown: the batch stays recorded and pending; the next run resends it.
                return self.finish(&entries);
            };
            match verdict {
                Verdict::Accepted => {
                    backoff.reset();
                    self.plumbing.readiness.set_ok(READINESS);
                    if redis_retry!(self, self.store.ack(&part)).is_none() {
                        return self.finish(&entries);
                    }
                    self.metrics.entries.inc_by(n as u64);
                    self.metrics.bytes.inc_by(body.len() as u64);
                    for id in &part {
                        if let Some(h) = entries.remove(id) {
                            self.held.remove(&h.entry.id);
                        }
                    }
                    record.parts.remove(0);
                }
                Verdict::Refused {
                    retry_reason,
                    reason,
                } => {
                    self.metrics
                        .retries
                        .with_label_values(&[retry_reason])
                        .inc();
                    if part.len() == 1 {
                        tracing::warn!(stream_id = %part[0], reason = %reason, "SecOps refused an entry; it goes to the dead letters.");
                        if !self.dead_letter_ids(&part, &entries, &reason).await {
                            return self.finish(&entries);
                        }
                        record.parts.remove(0);
                    } else {
                        tracing::info!(entries = part.len(), reason = %reason, "SecOps refused a request; splitting it.");
                        let (a, b) = part.split_at(part.len() / 2);
                        record.parts.splice(0..1, [a.to_vec(), b.to_vec()]);
                    }
                }
                Verdict::Retry {
                    reason,
                    after,
                    detail,
                } => {
                    self.metrics.retries.with_label_values(&[reason]).inc();
                    tracing::warn!(reason, error = %detail, "SecOps request failed; retrying with the same body.");
                    // Aged out only after a failed attempt of its own, so a restart never
                    // dead-letters a batch without trying it, and 403/404 never age it.
                    let age = Duration::from_millis(
                        u64::try_from(now_ms() - record.sealed_ms).unwrap_or(0),
                    );
                    if age > self.cfg.max_age {
                        let reason = format!(
                            "still failing after REDTAIL_SECOPS_MAX_AGE_MS ({} ms); last error: {detail}",
                            self.cfg.max_age.as_millis()
                        );
                        let rest: Vec<String> = record.ids().cloned().collect();
                        if !self.dead_letter_ids(&rest, &entries, &reason).await {
                            return self.finish(&entries);
                        }
                        record.parts.clear();
                        break;
                    }
                    let delay = retry_delay(after, &mut backoff);
                    if !self.wait(delay).await {
                        return self.finish(&entries);
                    }
                    continue;
                }
                Verdict::NotReady { detail } => {
                    self.metrics.retries.with_label_values(&["not_ready"]).inc();
                    tracing::error!(error = %detail, "SecOps refuses this sink's requests; nothing is acknowledged until it accepts.");
                    self.plumbing.readiness.set_failing(READINESS, detail);
                    if !self.wait(self.cfg.not_ready_retry).await {
                        return self.finish(&entries);
                    }
                    continue;
                }
            }
            // The record follows every step, so a restart resumes exactly here.
            let persisted = if record.parts.is_empty() {
                redis_retry!(self, self.store.clear())
            } else {
                redis_retry!(self, self.store.write(&record))
            };
            match persisted {
                None => return self.finish(&entries),
                Some(false) => {
                    tracing::warn!("Another consumer took this batch over; leaving it to them.");
                    return self.finish(&entries);
                }
                Some(true) => {}
            }
        }
        // Also when the last parts were dropped (trimmed) or dead-lettered by age.
        let _ = redis_retry!(self, self.store.clear());
        self.finish(&entries)
    }

    /// Dead-letters then acknowledges `ids`; false if shutdown interrupted it.
    async fn dead_letter_ids(
        &mut self,
        ids: &[String],
        entries: &HashMap<String, Held>,
        reason: &str,
    ) -> bool {
        for id in ids {
            let Some(h) = entries.get(id) else { continue };
            if redis_retry!(self, self.store.dead_letter(&h.entry, reason)).is_none() {
                return false;
            }
            self.metrics.deadletter.inc();
        }
        redis_retry!(self, self.store.ack(ids)).is_some()
    }

    /// One attempt, during which held entries are kept from being claimed and liveness
    /// beats (a reply may take up to the request timeout). `None`: shutdown came first; the
    /// request is abandoned, which is safe because any resend is the same body.
    async fn post_keeping_alive(&mut self, body: &[u8]) -> Option<Verdict> {
        let ids: Vec<String> = self.held.iter().cloned().collect();
        let every = (self.claim_idle / 3).clamp(Duration::from_millis(10), BEAT);
        let shutdown = self.plumbing.shutdown.clone();
        let post = self.api.post(body);
        tokio::pin!(post);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                verdict = &mut post => return Some(verdict),
                _ = shutdown.wait() => return None,
                _ = tick.tick() => {
                    self.plumbing.liveness.beat();
                    let now = Instant::now();
                    if now.duration_since(self.last_keep_alive) >= self.claim_idle / 3 {
                        self.last_keep_alive = now;
                        if let Err(err) = self.store.keep_alive(&ids).await {
                            tracing::debug!(error = %err, "Could not refresh the held entries' idle time.");
                        }
                    }
                }
            }
        }
    }
}

/// `Retry-After` when the server gave one (capped at the 5 min ceiling), else the backoff.
fn retry_delay(after: Option<Duration>, backoff: &mut Backoff) -> Duration {
    match after {
        Some(after) => after.min(SecopsConfig::MAX_BACKOFF),
        None => backoff.next_delay(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_and_everything_stays_under_five_minutes() {
        let mut b = Backoff::new(Duration::from_millis(1000), SecopsConfig::MAX_BACKOFF);
        assert_eq!(
            retry_delay(Some(Duration::from_secs(7)), &mut b),
            Duration::from_secs(7)
        );
        assert_eq!(
            retry_delay(Some(Duration::from_secs(3600)), &mut b),
            SecopsConfig::MAX_BACKOFF
        );
        let first = retry_delay(None, &mut b);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        let mut last = first;
        for _ in 0..40 {
            last = retry_delay(None, &mut b);
            assert!(last <= SecopsConfig::MAX_BACKOFF);
        }
        assert!(
            last >= SecopsConfig::MAX_BACKOFF / 2,
            "grows to the cap: {last:?}"
        );
    }
}
