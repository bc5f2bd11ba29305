//! What one read hands the caller: entries to write, then acknowledge.

use super::reply::StreamEntry;

/// Where the entries of a [`StreamBatch`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOrigin {
    /// Our own pending list (delivered before, never acknowledged): redeliveries.
    OwnPending,
    /// Claimed from an idle (dead) consumer: redeliveries.
    Claimed,
    /// Never delivered before.
    New,
}

/// One read's worth of entries; acknowledge [`StreamBatch::ack_ids`] once they are written.
#[derive(Debug)]
pub struct StreamBatch {
    /// The stream the entries come from (acknowledge them there).
    pub stream: String,
    pub origin: BatchOrigin,
    pub entries: Vec<StreamEntry>,
    /// Pending ids whose entries were trimmed (`MAXLEN`) or deleted before we processed
    /// them. Their content is gone, so nothing can be written; they are acknowledged with the
    /// batch, otherwise they would sit in the pending list forever.
    pub vanished: Vec<String>,
}

impl StreamBatch {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.vanished.is_empty()
    }

    /// Every id to acknowledge once the entries are written: entries and vanished ones.
    pub fn ack_ids(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.id.clone())
            .chain(self.vanished.iter().cloned())
            .collect()
    }
}
