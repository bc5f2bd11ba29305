//! Process plumbing shared by every redtail role: the shutdown token and signal handling, the
//! readiness/liveness state, the admin HTTP server (`/metrics`, `/healthz`, `/readyz`), shared
//! metrics and the global log subscriber.
//!
//! Roles depend on this crate instead of on hyper or tracing-subscriber directly, so the way a
//! process is observed and stopped is the same for `generate`, `watch`, `subscribe` and `demo`.
#![deny(unsafe_code)]

pub mod admin;
mod error;
pub mod logging;
pub mod metrics;
mod process;
pub mod readiness;
pub mod shutdown;

pub use error::TelemetryError;
