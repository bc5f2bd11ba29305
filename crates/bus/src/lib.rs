//! redtail-bus
