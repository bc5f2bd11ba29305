//! The level and message of each line: a seeded random mix resembling a web service's log.
//!
//! Every random choice comes from one seeded generator, so the same seed gives the same
//! level/message sequence (only timestamps differ) — useful to replay a run that broke a
//! downstream parser. Some messages carry quotes, backslashes, tabs and non-ASCII text on
//! purpose, so consumers' JSON escaping is exercised.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Severity of a line, spelled as in the `level` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Verbose internals.
    Debug,
    /// Normal operation.
    Info,
    /// Degraded but working.
    Warning,
    /// A request failed.
    Error,
    /// The service is in trouble.
    Critical,
}

impl Level {
    /// The `level` field value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// Relative frequencies (per 1000 lines): mostly INFO, a little noise, rare CRITICAL.
const LEVEL_WEIGHTS: [(Level, u32); 5] = [
    (Level::Debug, 150),
    (Level::Info, 650),
    (Level::Warning, 120),
    (Level::Error, 70),
    (Level::Critical, 10),
];

const PATHS: [&str; 8] = [
    "/",
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/users/{id}/profile",
    "/api/v1/cart/items",
    "/api/v1/search?q=red+tail&page=2",
    "/healthz",
    "/static/app.js",
];
const METHODS: [&str; 5] = ["GET", "GET", "GET", "POST", "DELETE"];
const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "o'brien", "zoë"];
const TABLES: [&str; 4] = ["orders", "users", "sessions", "inventory"];

/// Picks the level and message of each successive line.
#[derive(Debug)]
pub struct LinePicker {
    rng: StdRng,
}

impl LinePicker {
    /// A picker whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        LinePicker {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The next line's level and message.
    pub fn next_line(&mut self) -> (Level, String) {
        let level = self.level();
        let message = self.message(level);
        (level, message)
    }

    fn level(&mut self) -> Level {
        let total: u32 = LEVEL_WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        for (level, weight) in LEVEL_WEIGHTS {
            if roll < weight {
                return level;
            }
            roll -= weight;
        }
        Level::Info
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn path(&mut self) -> String {
        let id = self.rng.random_range(1..100_000u32);
        self.pick(&PATHS).replace("{id}", &id.to_string())
    }

    fn message(&mut self, level: Level) -> String {
        let variant = self.rng.random_range(0..4u8);
        match (level, variant) {
            (Level::Debug, 0) => format!(
                "cache miss for key \"user:{}:profile\"",
                self.rng.random_range(1..10_000u32)
            ),
            (Level::Debug, 1) => format!(
                "SQL: SELECT * FROM \"{}\" WHERE id = {} LIMIT 1\t-- {}ms",
                self.pick(&TABLES),
                self.rng.random_range(1..1_000_000u32),
                self.rng.random_range(0..40u32)
            ),
            (Level::Debug, 2) => format!(
                "connection pool stats: active={} idle={} waiting=0",
                self.rng.random_range(0..20u32),
                self.rng.random_range(0..20u32)
            ),
            (Level::Debug, _) => format!(
                "feature flag {{\"checkout_v2\": {}}} evaluated",
                self.rng.random_bool(0.5)
            ),
            (Level::Info, 0 | 1) => {
                let method = self.pick(&METHODS);
                let path = self.path();
                let status = self.pick(&["200", "200", "200", "201", "204", "304"]);
                let ms = self.rng.random_range(1..250u32);
                format!("{method} {path} {status} {ms}ms")
            }
            (Level::Info, 2) => format!("user {} logged in", self.pick(&USERS)),
            (Level::Info, _) => format!(
                "order {} placed: {} item(s), total {}.{:02} EUR",
                self.rng.random_range(10_000..99_999u32),
                self.rng.random_range(1..9u32),
                self.rng.random_range(1..500u32),
                self.rng.random_range(0..100u32)
            ),
            (Level::Warning, 0) => format!(
                "slow query on {} took {}ms (threshold 500ms)",
                self.pick(&TABLES),
                self.rng.random_range(500..5_000u32)
            ),
            (Level::Warning, 1) => format!(
                "GET {} 429 {}ms: rate limit exceeded for client 10.0.{}.{}",
                self.path(),
                self.rng.random_range(1..20u32),
                self.rng.random_range(0..255u8),
                self.rng.random_range(1..255u8)
            ),
            (Level::Warning, 2) => format!(
                "retrying upstream \"inventory-svc\" (attempt {}/3)",
                self.rng.random_range(1..4u8)
            ),
            (Level::Warning, _) => "config path C:\\app\\config.yaml not found, using defaults"
                .to_string(),
            (Level::Error, 0) => format!(
                "login failed for user \"{}\": invalid password",
                self.pick(&USERS)
            ),
            (Level::Error, 1) => {
                let method = self.pick(&METHODS);
                let path = self.path();
                let status = self.pick(&["500", "502", "503", "504"]);
                let ms = self.rng.random_range(100..30_000u32);
                format!("{method} {path} {status} {ms}ms")
            }
            (Level::Error, 2) => format!(
                "payment gateway timeout after {}ms\n\tat PaymentClient.charge(PaymentClient.java:88)",
                self.rng.random_range(5_000..30_000u32)
            ),
            (Level::Error, _) => format!(
                "cannot parse request body: expected value at line 1 column {}",
                self.rng.random_range(1..200u32)
            ),
            (Level::Critical, 0) => "database primary unreachable: connection refused".to_string(),
            (Level::Critical, 1) => format!(
                "disk usage at {}% on /var/lib/app",
                self.rng.random_range(95..100u8)
            ),
            (Level::Critical, 2) => "out of memory: killed worker 3 — restarting".to_string(),
            (Level::Critical, _) => "TLS certificate for \"api.example.com\" expired".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(seed: u64, n: usize) -> Vec<(Level, String)> {
        let mut picker = LinePicker::new(seed);
        (0..n).map(|_| picker.next_line()).collect()
    }

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        assert_eq!(sequence(42, 500), sequence(42, 500));
        assert_ne!(sequence(42, 500), sequence(43, 500));
    }

    #[test]
    fn levels_follow_a_realistic_mix() {
        let lines = sequence(7, 20_000);
        let share = |level: Level| {
            lines.iter().filter(|(l, _)| *l == level).count() as f64 / lines.len() as f64
        };
        assert!((0.60..0.70).contains(&share(Level::Info)));
        assert!((0.12..0.18).contains(&share(Level::Debug)));
        assert!((0.09..0.15).contains(&share(Level::Warning)));
        assert!((0.05..0.09).contains(&share(Level::Error)));
        assert!((0.003..0.02).contains(&share(Level::Critical)));
    }

    #[test]
    fn messages_include_characters_that_need_escaping() {
        let lines = sequence(1, 20_000);
        let any = |c: char| lines.iter().any(|(_, m)| m.contains(c));
        for c in ['"', '\\', '\t', '\n', 'ë', '{'] {
            assert!(any(c), "no message contains {c:?}");
        }
        assert!(lines.iter().all(|(_, m)| !m.is_empty()));
    }
}
