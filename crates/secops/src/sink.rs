//! The sink: entries in, deterministic batches out, acknowledged only after SecOps took them.
//!
//! Life of an entry: [`Sink::offer`] renders it into the open batch; the batch is sealed when
//! full (bytes, entries) or old enough ([`Sink::tick`]); sealing records its ids in Redis
//! (see `inflight`), then its parts are sent front first under the retry matrix. A part is
//! `XACK`ed after a 2xx; a refused one is split in halves, down to the single entry SecOps
//! refuses, which goes to the dead-letter stream. The sink works one sealed batch at a time,
//! so the caller's read loop is held back while SecOps is slow: backpressure, not memory.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redtail_bus::consumer::{BatchOrigin, StreamBatch, StreamEntry};
use redtail_bus::{Backoff, RedisTarget};
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::Shutdown;
use tokio::time::Instant;

use crate::auth::{ServiceAccount, TokenProvider, TokenSource};
use crate::client::{ApiClient, Verdict};
use crate::envelope::{Envelope, EventRenderer};
use crate::inflight::{Record, Store};
use crate::metrics::SinkMetrics;
use crate::{CredentialsSource, SecopsConfig, SecopsError};

mod deliver;

/// Readiness condition name (shown in the `/readyz` body).
pub const READINESS: &str = "secops";
/// Redis retries inside the sink: quick at first, never more than the bus' 5 s cap.
pub(crate) const REDIS_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));
/// Longest sleep between liveness beats while waiting out a backoff.
const BEAT: Duration = Duration::from_secs(1);

/// Where the sink reads from (the subscriber's stream and group).
#[derive(Debug, Clone)]
pub struct Source {
    pub target: RedisTarget,
    pub stream: String,
    pub group: String,
    pub consumer: String,
    /// The group's claim idle time: held entries are kept alive well within it.
    pub claim_idle: Duration,
}

/// The process plumbing the sink reports to.
#[derive(Clone)]
pub struct Plumbing {
    pub readiness: Readiness,
    pub liveness: Liveness,
    pub shutdown: Shutdown,
}

/// One entry of a batch, rendered.
struct Held {
    entry: StreamEntry,
    fragment: Vec<u8>,
}

pub struct Sink {
    cfg: SecopsConfig,
    envelope: Envelope,
    renderer: Arc<dyn EventRenderer>,
    api: ApiClient,
    store: Store,
    metrics: SinkMetrics,
    plumbing: Plumbing,
    claim_idle: Duration,
    /// The batch being filled, in stream order, and the sum of its fragments' sizes.
    open: Vec<Held>,
    open_bytes: usize,
    opened_at: Option<Instant>,
    /// Ids in `open` or in flight: an own-pending re-read (after a reconnect) hands them out
    /// again, and they must not enter a second batch.
    held: HashSet<String>,
    /// Redis time (ms) of the oldest in-flight entry, for the gauge.
    inflight_oldest_ms: Option<u64>,
    last_keep_alive: Instant,
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Sink {
    /// Reads the credentials (a key file is parsed now, so a bad one fails before any socket).
    pub fn new(
        cfg: SecopsConfig,
        source: Source,
        renderer: Arc<dyn EventRenderer>,
        metrics: SinkMetrics,
        plumbing: Plumbing,
    ) -> Result<Self, SecopsError> {
        cfg.validate()?;
        let token_source = token_source(&cfg.credentials)?;
        let tokens = TokenProvider::new(token_source, cfg.scope());
        Ok(Sink {
            envelope: Envelope::new(&cfg),
            api: ApiClient::new(&cfg, tokens, metrics.clone())?,
            store: Store::new(
                source.target,
                &source.stream,
                &source.group,
                &source.consumer,
            )?,
            cfg,
            renderer,
            metrics,
            plumbing,
            claim_idle: source.claim_idle,
            open: Vec::new(),
            open_bytes: 0,
            opened_at: None,
            held: HashSet::new(),
            inflight_oldest_ms: None,
            last_keep_alive: Instant::now(),
        })
    }

    /// The startup check (list log types), then the batch a previous run of this consumer
    /// left in flight, resent byte for byte. `Ok(false)`: shutdown came first.
    pub async fn start(&mut self) -> Result<bool, SecopsError> {
        self.plumbing
            .readiness
            .set_failing(READINESS, "startup check (listing log types) not done yet");
        let mut backoff = Backoff::new(self.cfg.retry_base, SecopsConfig::MAX_BACKOFF);
        loop {
            match self.api.check(&self.cfg).await {
                Ok(()) => break,
                Err(Verdict::NotReady { detail }) => return Err(SecopsError::Startup(detail)),
                Err(other) => {
                    let detail = match other {
                        Verdict::Retry { detail, .. } => detail,
                        v => format!("{v:?}"),
                    };
                    tracing::warn!(error = %detail, "SecOps startup check failed; retrying.");
                    self.plumbing.readiness.set_failing(READINESS, detail);
                    if !self.wait(backoff.next_delay()).await {
                        return Ok(false);
                    }
                }
            }
        }
        self.plumbing.readiness.set_ok(READINESS);
        tracing::info!(api = %self.cfg.api, "SecOps startup check passed.");
        let Some(record) = redis_retry!(self, self.store.load_own()) else {
            return Ok(false);
        };
        if let Some(record) = record {
            tracing::info!(
                entries = record.ids().count(),
                "Resending the batch a previous run left in flight."
            );
            self.deliver_recorded(record).await?;
        }
        Ok(!self.plumbing.shutdown.is_triggered())
    }

    /// Takes a read's entries. May seal and deliver batches before it returns.
    pub async fn offer(&mut self, batch: StreamBatch) -> Result<(), SecopsError> {
        if !batch.vanished.is_empty() {
            tracing::warn!(
                entries = batch.vanished.len(),
                "Pending entries were trimmed from the stream before they could be sent."
            );
            if redis_retry!(self, self.store.ack(&batch.vanished)).is_none() {
                return Ok(());
            }
        }
        let mut covered = HashSet::new();
        if batch.origin == BatchOrigin::Claimed {
            covered = self.adopt_records(&batch.entries).await?;
        }
        for entry in batch.entries {
            if self.plumbing.shutdown.is_triggered() {
                // What was not taken stays pending and is read again at restart.
                return Ok(());
            }
            if self.held.contains(&entry.id) || covered.contains(&entry.id) {
                continue;
            }
            let fragment = match self.envelope.fragment(&entry, &*self.renderer) {
                Ok(f) => f,
                Err(reason) => {
                    self.dead_letter_now(&entry, reason).await;
                    continue;
                }
            };
            let alone = self.envelope.body_len(1, fragment.len());
            if alone > self.cfg.batch_bytes {
                let reason = format!(
                    "entry alone makes a {alone}-byte request, over REDTAIL_SECOPS_BATCH_BYTES ({})",
                    self.cfg.batch_bytes
                );
                self.dead_letter_now(&entry, &reason).await;
                continue;
            }
            let with = self
                .envelope
                .body_len(self.open.len() + 1, self.open_bytes + fragment.len());
            if !self.open.is_empty() && with > self.cfg.batch_bytes {
                self.seal().await?;
            }
            self.held.insert(entry.id.clone());
            self.open_bytes += fragment.len();
            self.open.push(Held { entry, fragment });
            self.opened_at.get_or_insert_with(Instant::now);
            if self.open.len() >= self.cfg.batch_entries {
                self.seal().await?;
            }
        }
        self.update_gauge();
        Ok(())
    }

    /// Seals the open batch once it has waited `REDTAIL_SECOPS_BATCH_MS`.
    pub async fn tick(&mut self) -> Result<(), SecopsError> {
        self.update_gauge();
        if self
            .opened_at
            .is_some_and(|t| t.elapsed() >= self.cfg.batch_wait)
        {
            self.seal().await?;
        }
        Ok(())
    }

    /// Records the open batch in Redis, then delivers it.
    async fn seal(&mut self) -> Result<(), SecopsError> {
        let held = std::mem::take(&mut self.open);
        self.open_bytes = 0;
        self.opened_at = None;
        if held.is_empty() {
            return Ok(());
        }
        // Entries another consumer claimed while we were stalled are theirs now; sending them
        // too would put them into two different batches. This also resets the idle time of
        // the rest, so nobody claims them between here and the record.
        let ids: Vec<String> = held.iter().map(|h| h.entry.id.clone()).collect();
        let Some(lost) = redis_retry!(self, self.store.keep_alive(&ids)) else {
            self.release(&held);
            return Ok(());
        };
        self.last_keep_alive = Instant::now();
        let held: Vec<Held> = if lost.is_empty() {
            held
        } else {
            tracing::warn!(
                entries = lost.len(),
                "Entries of the open batch were claimed by another consumer; leaving them to it."
            );
            self.release_ids(&lost);
            held.into_iter()
                .filter(|h| !lost.contains(&h.entry.id))
                .collect()
        };
        if held.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = held.iter().map(|h| h.entry.id.clone()).collect();
        let record = Record::new(now_ms(), ids);
        let Some(written) = redis_retry!(self, self.store.write(&record)) else {
            self.release(&held);
            return Ok(());
        };
        if !written {
            // Our field held something we did not write; take it over explicitly.
            tracing::warn!("The in-flight record changed under us; sending the batch anyway.");
        }
        let entries = held.into_iter().map(|h| (h.entry.id.clone(), h)).collect();
        self.deliver(record, entries).await
    }

    /// Rebuilds a recorded batch from the stream and delivers it.
    async fn deliver_recorded(&mut self, record: Record) -> Result<(), SecopsError> {
        let ids: Vec<String> = record.ids().cloned().collect();
        let Some(found) = redis_retry!(self, self.store.fetch(&ids)) else {
            return Ok(());
        };
        if found.len() < ids.len() {
            tracing::warn!(
                missing = ids.len() - found.len(),
                "Entries of the recorded batch were trimmed from the stream; the resend differs."
            );
        }
        let mut entries = HashMap::new();
        for entry in found {
            match self.envelope.fragment(&entry, &*self.renderer) {
                Ok(fragment) => {
                    self.held.insert(entry.id.clone());
                    entries.insert(entry.id.clone(), Held { entry, fragment });
                }
                Err(reason) => self.dead_letter_now(&entry, reason).await,
            }
        }
        self.deliver(record, entries).await
    }

    /// Claimed entries may belong to a dead consumer's recorded batch: take the record over
    /// and resend that batch exactly. Returns the ids so handled.
    async fn adopt_records(
        &mut self,
        claimed: &[StreamEntry],
    ) -> Result<HashSet<String>, SecopsError> {
        let mut covered = HashSet::new();
        let claimed_ids: HashSet<&str> = claimed.iter().map(|e| e.id.as_str()).collect();
        let Some(records) = redis_retry!(self, self.store.load_all()) else {
            return Ok(covered);
        };
        for (owner, raw, record) in records {
            if !record.ids().any(|id| claimed_ids.contains(id.as_str())) {
                continue;
            }
            let Some(true) = redis_retry!(self, self.store.adopt(&owner, &raw)) else {
                continue;
            };
            let ids: Vec<String> = record.ids().cloned().collect();
            if let Err(err) = self.store.claim(&ids).await {
                tracing::debug!(error = %err, "Could not claim the rest of the adopted batch.");
            }
            tracing::info!(
                from = %owner,
                entries = ids.len(),
                "Took over a claimed consumer's in-flight batch; resending it unchanged."
            );
            covered.extend(ids);
            self.deliver_recorded(record).await?;
        }
        Ok(covered)
    }

    /// Forgets the in-flight entries (delivered, or left pending for a later resend).
    fn finish(&mut self, entries: &HashMap<String, Held>) -> Result<(), SecopsError> {
        for id in entries.keys() {
            self.held.remove(id);
        }
        self.inflight_oldest_ms = None;
        self.update_gauge();
        Ok(())
    }

    fn release_ids(&mut self, ids: &HashSet<String>) {
        for id in ids {
            self.held.remove(id);
        }
    }

    /// Keeps held entries ours; drops from the open batch any another consumer took.
    async fn refresh_held(&mut self) {
        self.last_keep_alive = Instant::now();
        let ids: Vec<String> = self.held.iter().cloned().collect();
        match self.store.keep_alive(&ids).await {
            Ok(lost) if !lost.is_empty() => {
                tracing::warn!(
                    entries = lost.len(),
                    "Held entries were claimed by another consumer; leaving them to it."
                );
                let held = &mut self.held;
                self.open.retain(|h| {
                    let keep = !lost.contains(&h.entry.id);
                    if !keep {
                        held.remove(&h.entry.id);
                    }
                    keep
                });
                self.open_bytes = self.open.iter().map(|h| h.fragment.len()).sum();
                if self.open.is_empty() {
                    self.opened_at = None;
                }
                // In-flight ones stay held: their record was adopted, so our next record
                // write fails and we let that batch go.
            }
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(error = %err, "Could not refresh the held entries' idle time.")
            }
        }
    }

    fn release(&mut self, held: &[Held]) {
        for h in held {
            self.held.remove(&h.entry.id);
        }
    }

    /// An entry that can never be sent: dead letter, acknowledge.
    async fn dead_letter_now(&mut self, entry: &StreamEntry, reason: &str) {
        tracing::warn!(stream_id = %entry.id, reason, "Entry goes to the dead letters.");
        if redis_retry!(self, self.store.dead_letter(entry, reason)).is_none() {
            return;
        }
        self.metrics.deadletter.inc();
        let ids = [entry.id.clone()];
        let _ = redis_retry!(self, self.store.ack(&ids));
    }

    fn update_gauge(&self) {
        let oldest = self
            .open
            .iter()
            .map(|h| h.entry.id_ms)
            .chain(self.inflight_oldest_ms)
            .min();
        let age = oldest.map_or(0.0, |ms| {
            (now_ms() - i64::try_from(ms).unwrap_or(i64::MAX)).max(0) as f64 / 1000.0
        });
        self.metrics.oldest_unacked.set(age);
    }

    /// Sleeps `delay` in slices: beats liveness, refreshes the gauge, keeps held entries from
    /// being claimed. False when shutdown began.
    async fn wait(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            self.plumbing.liveness.beat();
            self.update_gauge();
            if self.plumbing.shutdown.is_triggered() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            if now.duration_since(self.last_keep_alive) >= self.claim_idle / 3 {
                self.refresh_held().await;
            }
            let slice = (deadline - now).min(BEAT).min(self.claim_idle / 3);
            let shutdown = self.plumbing.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(slice) => {}
                _ = shutdown.wait() => return false,
            }
        }
    }
}

fn token_source(credentials: &CredentialsSource) -> Result<TokenSource, SecopsError> {
    Ok(match credentials {
        CredentialsSource::KeyFile(path) => {
            TokenSource::ServiceAccount(Box::new(ServiceAccount::from_file(Path::new(path))?))
        }
        CredentialsSource::Metadata(base) => TokenSource::Metadata(base.clone()),
    })
}
