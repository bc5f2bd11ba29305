//! The subscriber's side of Redis.
//!
//! - [`StreamConsumer`]: consumer-group reader (`XREADGROUP`, own pending re-read,
//!   `XAUTOCLAIM` of dead consumers' entries, one `XACK` per batch, sent without waiting
//!   when the caller likes ([`AckInFlight`])). At-least-once.
//! - [`GroupMonitor`]: pending/lag statistics for gauges, on a connection of its own.
//! - [`MultiStreamConsumer`]: cluster mode, the same group read over every per-source stream
//!   found in the registry set.
//! - [`PubSubListener`]: a self-reconnecting `SUBSCRIBE`r. At-most-once.
//! - [`ConsumerReaper`]: removes consumers that are long idle and hold nothing pending.

mod ack;
mod batch;
mod monitor;
mod multi;
mod pubsub;
mod read_conn;
mod reaper;
mod reply;
mod resp;
mod stream;

pub use ack::AckInFlight;
pub use monitor::{GroupInfo, GroupMonitor};
pub use multi::MultiStreamConsumer;
pub use pubsub::{PubSubEvent, PubSubListener};
pub use reaper::ConsumerReaper;
pub use reply::{decode_range, StreamEntry};
pub use stream::{BatchOrigin, StreamBatch, StreamConsumer, StreamConsumerConfig};
