//! The variables of the producing side, `generate`, `watch` and `demo`, and those every
//! command shares (Redis, process plumbing).

use super::{var, Unset, Var};

pub const REDIS_URL: Var = var(
    "REDTAIL_REDIS_URL",
    Unset::Value("redis://127.0.0.1:6379"),
    "redis:// or rediss:// (TLS), optional user:password@, optional /db; cluster: seed URLs separated by commas",
);

pub const REDIS_CLUSTER: Var = var(
    "REDTAIL_REDIS_CLUSTER",
    Unset::Value("false"),
    "true: Redis Cluster (one stream per source, <stream>:{<source>}; registry set <stream>:streams)",
);

pub const REDIS_CA_PATH: Var = var(
    "REDTAIL_REDIS_CA_PATH",
    Unset::Described("(system roots)"),
    "PEM CA bundle that signed the server certificate (rediss://)",
);

pub const REDIS_CLIENT_CERT_PATH: Var = var(
    "REDTAIL_REDIS_CLIENT_CERT_PATH",
    Unset::Described("(none)"),
    "PEM client certificate for mutual TLS (with the key)",
);

pub const REDIS_CLIENT_KEY_PATH: Var = var(
    "REDTAIL_REDIS_CLIENT_KEY_PATH",
    Unset::Described("(none)"),
    "PEM client key for mutual TLS",
);

pub const MODE: Var = var(
    "REDTAIL_MODE",
    Unset::Value("stream"),
    "stream (Redis Streams, durable) or pubsub (PUBLISH/SUBSCRIBE)",
);

pub const STREAM: Var = var(
    "REDTAIL_STREAM",
    Unset::Value(redtail_subscriber::Config::DEFAULT_STREAM),
    "stream key (stream mode)",
);

pub const CHANNEL: Var = var(
    "REDTAIL_CHANNEL",
    Unset::Value(redtail_subscriber::Config::DEFAULT_CHANNEL),
    "channel (pubsub mode)",
);

pub const METRICS_ADDR: Var = var(
    "REDTAIL_METRICS_ADDR",
    Unset::MetricsAddr,
    "listen address for /metrics, /healthz, /readyz; off disables; port 0 picks one",
);

pub const LOG_FORMAT: Var = var(
    "REDTAIL_LOG_FORMAT",
    Unset::Value("text"),
    "this process's own logs on stderr: text or json",
);

pub const RUST_LOG: Var = var(
    "RUST_LOG",
    Unset::Value("info"),
    "filter for this process's own logs",
);

pub const SHUTDOWN_TIMEOUT_MS: Var = var(
    "REDTAIL_SHUTDOWN_TIMEOUT_MS",
    Unset::Number(10_000),
    "longest graceful shutdown before giving up",
);

pub const LIVENESS_TIMEOUT_MS: Var = var(
    "REDTAIL_LIVENESS_TIMEOUT_MS",
    Unset::Number(60_000),
    "/healthz fails once the main loop made no progress for this long (stuck, not busy)",
);

pub const GENERATE_LOG_PATH: Var = var(
    "REDTAIL_LOG_PATH",
    Unset::Value("/var/log/app/app.log"),
    "file to append to (created with its directory)",
);

pub const RATE: Var = var(
    "REDTAIL_RATE",
    Unset::Number(10),
    "lines per second; 0 = as fast as possible",
);

pub const COUNT: Var = var(
    "REDTAIL_COUNT",
    Unset::Number(0),
    "stop after this many lines; 0 = until signalled",
);

pub const SEED: Var = var(
    "REDTAIL_SEED",
    Unset::Described("(random)"),
    "seed for the level/message choice",
);

pub const ROTATE_BYTES: Var = var(
    "REDTAIL_ROTATE_BYTES",
    Unset::Number(0),
    "rotate to <path>.1 when the file would exceed this size; 0 = never",
);

pub const ROTATE_KEEP: Var = var(
    "REDTAIL_ROTATE_KEEP",
    Unset::Number(5),
    "rotated files kept",
);

pub const WATCH_LOG_PATH: Var = var(
    "REDTAIL_LOG_PATH",
    Unset::Value("/var/log/app/app.log"),
    "file to tail; a glob in the file name tails every match",
);

pub const CHECKPOINT_PATH: Var = var(
    "REDTAIL_CHECKPOINT_PATH",
    Unset::Value("/var/lib/redtail/checkpoint.json"),
    "checkpoint file (its directory must be writable)",
);

pub const CHECKPOINT_EVERY_LINES: Var = var(
    "REDTAIL_CHECKPOINT_EVERY_LINES",
    Unset::Number(1000),
    "write the checkpoint after this many published lines...",
);

pub const CHECKPOINT_INTERVAL_MS: Var = var(
    "REDTAIL_CHECKPOINT_INTERVAL_MS",
    Unset::Number(1000),
    "...or after this long, whichever first (and at shutdown)",
);

pub const START_AT: Var = var(
    "REDTAIL_START_AT",
    Unset::Value("beginning"),
    "first start, file with no checkpoint: beginning or end",
);

pub const SOURCE: Var = var(
    "REDTAIL_SOURCE",
    Unset::Described("(host name)"),
    "source id of this watcher (the pod name)",
);

pub const MAX_LINE_BYTES: Var = var(
    "REDTAIL_MAX_LINE_BYTES",
    Unset::Number(1_048_576),
    "longer lines are cut to this size, flagged and counted",
);

pub const BATCH_MAX_LINES: Var = var(
    "REDTAIL_BATCH_MAX_LINES",
    Unset::Number(1024),
    "most lines sent to Redis in one round trip",
);

pub const BATCH_MAX_BYTES: Var = var(
    "REDTAIL_BATCH_MAX_BYTES",
    Unset::Number(1_048_576),
    "most line bytes in one round trip (bounds memory)",
);

pub const BATCH_LINGER_MS: Var = var(
    "REDTAIL_BATCH_LINGER_MS",
    Unset::Number(redtail_watcher::Config::DEFAULT_BATCH_LINGER.as_millis() as u64),
    "longest wait after a batch that was not full, so live-rate lines go out together; 0 = off",
);

pub const STREAM_MAXLEN: Var = var(
    "REDTAIL_STREAM_MAXLEN",
    Unset::Number(1_000_000),
    "approximate stream trim (MAXLEN ~); 0 = no trim",
);

pub const POLL_INTERVAL_MS: Var = var(
    "REDTAIL_POLL_INTERVAL_MS",
    Unset::Number(250),
    "polling fallback when file events are not delivered",
);

pub const ROTATE_WAIT_MS: Var = var(
    "REDTAIL_ROTATE_WAIT_MS",
    Unset::Number(5000),
    "a file renamed or deleted away is re-read until it has not grown for this long",
);

pub const MAX_OPEN_FILES: Var = var(
    "REDTAIL_MAX_OPEN_FILES",
    Unset::Number(256),
    "most files held open at once; idle ones are closed and reopened when they grow",
);

pub const CLOSE_INACTIVE_MS: Var = var(
    "REDTAIL_CLOSE_INACTIVE_MS",
    Unset::Number(300_000),
    "a file that has not grown for this long is closed (its position kept)",
);

pub const REPLICA_ACKS: Var = var(
    "REDTAIL_REPLICA_ACKS",
    Unset::Number(0),
    "WAIT for this many replicas to acknowledge each batch before committing it; 0 = off",
);

pub const REPLICA_ACK_TIMEOUT_MS: Var = var(
    "REDTAIL_REPLICA_ACK_TIMEOUT_MS",
    Unset::Number(redtail_watcher::Config::DEFAULT_REPLICA_ACK_TIMEOUT.as_millis() as u64),
    "longest WAIT per batch (below 5000); a shortfall resends the batch and waits again",
);

pub const MULTILINE: Var = var(
    "REDTAIL_MULTILINE",
    Unset::Value("off"),
    "multi-line events: off, java, python, go, indented, or regex",
);

pub const MULTILINE_START: Var = var(
    "REDTAIL_MULTILINE_START",
    Unset::Described("(none)"),
    "with regex: a line matching it starts an event, any other continues it",
);

pub const MULTILINE_TIMEOUT_MS: Var = var(
    "REDTAIL_MULTILINE_TIMEOUT_MS",
    Unset::Number(redtail_tail::MultilineConfig::DEFAULT_TIMEOUT.as_millis() as u64),
    "an open event is published after this long without a new line",
);

pub const MULTILINE_MAX_LINES: Var = var(
    "REDTAIL_MULTILINE_MAX_LINES",
    Unset::Number(redtail_tail::MultilineConfig::DEFAULT_MAX_LINES as u64),
    "an event is cut (trunc 1) beyond this many lines or REDTAIL_MAX_LINE_BYTES",
);

/// `redtail demo` reads the generator's rate and seed with its own defaults, and starts a
/// redis-server of its own when no URL is given.
pub const DEMO_REDIS_URL: Var = var(
    "REDTAIL_REDIS_URL",
    Unset::Described("(a redis-server started here on a free loopback port)"),
    "redis:// or rediss:// of a Redis to use instead",
);

pub const DEMO_RATE: Var = var(
    "REDTAIL_RATE",
    Unset::Number(5),
    "lines per second of the generator, and of the file with the mix of formats",
);

pub const REDIS: &[Var] = &[
    REDIS_URL,
    REDIS_CLUSTER,
    REDIS_CA_PATH,
    REDIS_CLIENT_CERT_PATH,
    REDIS_CLIENT_KEY_PATH,
    MODE,
    STREAM,
    CHANNEL,
];

pub const PROCESS: &[Var] = &[
    METRICS_ADDR,
    LOG_FORMAT,
    RUST_LOG,
    SHUTDOWN_TIMEOUT_MS,
    LIVENESS_TIMEOUT_MS,
];

pub const GENERATE: &[Var] = &[
    GENERATE_LOG_PATH,
    RATE,
    COUNT,
    SEED,
    ROTATE_BYTES,
    ROTATE_KEEP,
];

pub const WATCH: &[Var] = &[
    WATCH_LOG_PATH,
    CHECKPOINT_PATH,
    CHECKPOINT_EVERY_LINES,
    CHECKPOINT_INTERVAL_MS,
    START_AT,
    SOURCE,
    MAX_LINE_BYTES,
    BATCH_MAX_LINES,
    BATCH_MAX_BYTES,
    BATCH_LINGER_MS,
    STREAM_MAXLEN,
    POLL_INTERVAL_MS,
    ROTATE_WAIT_MS,
    MAX_OPEN_FILES,
    CLOSE_INACTIVE_MS,
    REPLICA_ACKS,
    REPLICA_ACK_TIMEOUT_MS,
    MULTILINE,
    MULTILINE_START,
    MULTILINE_TIMEOUT_MS,
    MULTILINE_MAX_LINES,
];

pub const DEMO: &[Var] = &[
    DEMO_REDIS_URL,
    REDIS_CLUSTER,
    REDIS_CA_PATH,
    REDIS_CLIENT_CERT_PATH,
    REDIS_CLIENT_KEY_PATH,
    MODE,
    DEMO_RATE,
    SEED,
];
