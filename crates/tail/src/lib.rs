//! redtail-tail: the tailing engine.
//!
//! Reads a log file (or every file matching a glob in the last path component) that
//! other processes append to, rotate and truncate, and hands out complete lines with
//! their exact byte ranges, so the caller can publish them and commit offsets that
//! are always line ends. Files are known by inode + first-line fingerprint (not by
//! path, not by device), which survives rotation, restarts and re-mounts.
//!
//! The library never logs: it reports through [`TailEvents`].

#![forbid(unsafe_code)]

mod config;
mod discovery;
mod error;
mod events;
mod file;
mod framer;
mod id;
mod item;
mod multiline;
mod signal;
mod stamp;
mod tailer;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod paused_tests;
#[cfg(test)]
mod rotation_tests;
#[cfg(test)]
mod tailer_tests;

pub use config::{KnownFile, StartAt, TailConfig};
pub use error::TailError;
pub use events::{LossReason, NoEvents, TailEvents};
pub use id::{
    check_hash, check_of, fingerprint, fnv1a64, FileId, CHECK_BYTES, FINGERPRINT_MAX_BYTES,
};
pub use item::{Batch, Line, TailItem};
pub use multiline::{Aggregator, Event, InLine, MultilineConfig, MultilineError, MultilineMode};
pub use signal::TailWaker;
pub use tailer::Tailer;
