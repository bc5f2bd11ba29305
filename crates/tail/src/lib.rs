//! redtail-tail
