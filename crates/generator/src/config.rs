//! What to generate, where, and how fast.

use std::path::PathBuf;

use serde::Deserialize;

use crate::GeneratorError;

/// Most rotated files kept; each rotation renames them all, so the count is kept modest.
pub const MAX_ROTATE_KEEP: u32 = 1000;

/// Configuration of `redtail generate`. Field names match the `REDTAIL_*` variables
/// (`log_path` ↔ `REDTAIL_LOG_PATH`), so the binary can fill it with `envy`; unknown variables
/// are ignored and missing ones take the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// File to append to; it and its directory are created if missing.
    pub log_path: PathBuf,
    /// Lines per second; 0 = as fast as possible.
    pub rate: u64,
    /// Stop after this many lines (this run); 0 = until shut down.
    pub count: u64,
    /// Seed of the level/message choice; `None` = a random seed (logged, so a run can be replayed).
    pub seed: Option<u64>,
    /// Rotate before a line would take the file past this size; 0 = never.
    pub rotate_bytes: u64,
    /// Rotated files kept (`<path>.1` … `<path>.<keep>`).
    pub rotate_keep: u32,
    /// Value of the `host` field.
    pub host: String,
    /// Value of the `service` field.
    pub service: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_path: PathBuf::from("/var/log/app/app.log"),
            rate: 10,
            count: 0,
            seed: None,
            rotate_bytes: 0,
            rotate_keep: 5,
            host: local_hostname(),
            service: "app".to_string(),
        }
    }
}

impl Config {
    /// Checks the values no type can express, before any file is touched.
    pub fn validate(&self) -> Result<(), GeneratorError> {
        let invalid = |field, message: &str| {
            Err(GeneratorError::InvalidConfig {
                field,
                message: message.to_string(),
            })
        };
        if self.log_path.file_name().is_none() || self.log_path.as_os_str().is_empty() {
            return invalid("log_path", "expected a file path, not a directory");
        }
        if self.rotate_bytes > 0 && self.rotate_keep == 0 {
            return invalid("rotate_keep", "expected at least 1 when rotating");
        }
        if self.rotate_keep > MAX_ROTATE_KEEP {
            return invalid("rotate_keep", "expected at most 1000");
        }
        if self.host.is_empty() {
            return invalid("host", "expected a non-empty host name");
        }
        if self.service.is_empty() {
            return invalid("service", "expected a non-empty service name");
        }
        Ok(())
    }
}

/// The kernel's host name (the pod name in Kubernetes), read from procfs so no FFI is needed.
pub fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::default();
        assert_eq!(c.log_path, PathBuf::from("/var/log/app/app.log"));
        assert_eq!(
            (c.rate, c.count, c.rotate_bytes, c.rotate_keep),
            (10, 0, 0, 5)
        );
        assert_eq!(c.service, "app");
        assert!(!c.host.is_empty());
        c.validate().expect("defaults valid");
    }

    #[test]
    fn deserializes_partial_input_with_defaults() {
        let c: Config =
            serde_json::from_str(r#"{"rate": 0, "seed": 7, "unrelated": "x"}"#).expect("parse");
        assert_eq!((c.rate, c.seed, c.rotate_keep), (0, Some(7), 5));
    }

    #[test]
    fn rejects_impossible_values() {
        let bad = |c: Config| c.validate().expect_err("invalid");
        let err = bad(Config {
            rotate_bytes: 1024,
            rotate_keep: 0,
            ..Config::default()
        });
        assert_eq!(err.reason(), "invalid_config");
        assert!(err.to_string().contains("rotate_keep"));
        // keep = 0 is fine when not rotating.
        Config {
            rotate_keep: 0,
            ..Config::default()
        }
        .validate()
        .expect("valid");
        bad(Config {
            rotate_keep: MAX_ROTATE_KEEP + 1,
            ..Config::default()
        });
        bad(Config {
            log_path: PathBuf::from("/var/log/app/.."),
            ..Config::default()
        });
        bad(Config {
            log_path: PathBuf::new(),
            ..Config::default()
        });
        bad(Config {
            host: String::new(),
            ..Config::default()
        });
        bad(Config {
            service: String::new(),
            ..Config::default()
        });
    }
}
