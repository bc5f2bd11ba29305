//! redtail-watcher
