//! redtail-generator
