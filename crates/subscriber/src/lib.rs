//! redtail-subscriber
