//! redtail-checkpoint
