//! The subscriber's side of Redis.
//!
//! - [`StreamConsumer`]: consumer-group reader (`XREADGROUP`, own pending re-read,
//!   `XAUTOCLAIM` of dead consumers' entries, one `XACK` per batch). At-least-once.
//! - [`GroupMonitor`]: pending/lag statistics for gauges, on a connection of its own.
//! - [`PubSubListener`]: a self-reconnecting `SUBSCRIBE`r. At-most-once.

mod monitor;
mod pubsub;
mod reply;
mod stream;

pub use monitor::{GroupInfo, GroupMonitor};
pub use pubsub::{PubSubEvent, PubSubListener};
pub use reply::StreamEntry;
pub use stream::{BatchOrigin, StreamBatch, StreamConsumer, StreamConsumerConfig};
