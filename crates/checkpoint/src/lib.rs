//! Durable byte-offset checkpoints for the watcher.
//!
//! A checkpoint maps each tracked file identity to the end of the last line Redis acknowledged,
//! so a restarted watcher resumes there instead of re-reading (and in pub/sub mode re-publishing)
//! whole files. Three concerns, one file each:
//! - [`Checkpoint`]: the in-memory state; offsets only move forward.
//! - [`CheckpointStore`]: the file on disk — atomic replace (temp file, fsync, rename, directory
//!   fsync), recovery of a write interrupted by a crash, and a corrupt file set aside rather than
//!   fatal (Redis keeps offsets too, so losing the file costs duplicates skipped, not data).
//! - [`FlushPolicy`]: when to write (every N lines or T elapsed).
//!
//! The library neither logs nor counts: [`CheckpointStore::open`] returns a [`LoadNote`] and errors
//! carry a [`CheckpointError::reason`] for the caller's metrics.

#![forbid(unsafe_code)]

mod error;
mod format;
mod policy;
mod state;
mod store;

pub use error::CheckpointError;
pub use format::CURRENT_VERSION;
pub use policy::FlushPolicy;
pub use state::{Checkpoint, FileEntry};
pub use store::{CheckpointStore, LoadNote};
