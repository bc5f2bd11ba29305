//! `redtail generate` as a library: append realistic JSON log lines to a file at a steady rate,
//! rotate it by size, and keep one unbroken `seq` across restarts and rotations — the input the
//! rest of the pipeline is tested against.
#![forbid(unsafe_code)]

mod config;
mod error;
mod file;
mod line;
mod messages;
mod metrics;
mod run;

pub use config::{local_hostname, Config, MAX_ROTATE_KEEP};
pub use error::GeneratorError;
pub use messages::Level;
pub use metrics::Metrics;
pub use run::{run, GeneratorSummary};
