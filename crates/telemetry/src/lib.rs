//! redtail-telemetry
