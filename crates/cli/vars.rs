//! The environment variables each role reads: one table drives parsing,
//! defaults and `--help`, so the three can never disagree.

/// One variable: name, default as shown in `--help`, meaning.
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

const fn var(name: &'static str, default: &'static str, help: &'static str) -> Var {
    Var {
        name,
        default,
        help,
    }
}

pub const REDIS: &[Var] = &[
    var(
        "REDTAIL_REDIS_URL",
        "redis://127.0.0.1:6379",
        "redis:// or rediss:// (TLS), optional user:password@, optional /db; cluster: seed URLs separated by commas",
    ),
    var(
        "REDTAIL_REDIS_CLUSTER",
        "false",
        "true: Redis Cluster (one stream per source, <stream>:{<source>}; registry set <stream>:streams)",
    ),
    var(
        "REDTAIL_REDIS_CA_PATH",
        "(system roots)",
        "PEM CA bundle that signed the server certificate (rediss://)",
    ),
    var(
        "REDTAIL_REDIS_CLIENT_CERT_PATH",
        "(none)",
        "PEM client certificate for mutual TLS (with the key)",
    ),
    var(
        "REDTAIL_REDIS_CLIENT_KEY_PATH",
        "(none)",
        "PEM client key for mutual TLS",
    ),
    var(
        "REDTAIL_MODE",
        "stream",
        "stream (Redis Streams, durable) or pubsub (PUBLISH/SUBSCRIBE)",
    ),
    var("REDTAIL_STREAM", "redtail:logs", "stream key (stream mode)"),
    var("REDTAIL_CHANNEL", "logs", "channel (pubsub mode)"),
];

pub const PROCESS: &[Var] = &[
    var(
        "REDTAIL_METRICS_ADDR",
        "0.0.0.0:<role port>",
        "listen address for /metrics, /healthz, /readyz; off disables; port 0 picks one",
    ),
    var(
        "REDTAIL_LOG_FORMAT",
        "text",
        "this process's own logs on stderr: text or json",
    ),
    var("RUST_LOG", "info", "filter for this process's own logs"),
    var(
        "REDTAIL_SHUTDOWN_TIMEOUT_MS",
        "10000",
        "longest graceful shutdown before giving up",
    ),
    var(
        "REDTAIL_LIVENESS_TIMEOUT_MS",
        "60000",
        "/healthz fails once the main loop made no progress for this long (stuck, not busy)",
    ),
];

pub const GENERATE: &[Var] = &[
    var(
        "REDTAIL_LOG_PATH",
        "/var/log/app/app.log",
        "file to append to (created with its directory)",
    ),
    var(
        "REDTAIL_RATE",
        "10",
        "lines per second; 0 = as fast as possible",
    ),
    var(
        "REDTAIL_COUNT",
        "0",
        "stop after this many lines; 0 = until signalled",
    ),
    var(
        "REDTAIL_SEED",
        "(random)",
        "seed for the level/message choice",
    ),
    var(
        "REDTAIL_ROTATE_BYTES",
        "0",
        "rotate to <path>.1 when the file would exceed this size; 0 = never",
    ),
    var("REDTAIL_ROTATE_KEEP", "5", "rotated files kept"),
];

pub const WATCH: &[Var] = &[
    var(
        "REDTAIL_LOG_PATH",
        "/var/log/app/app.log",
        "file to tail; a glob in the file name tails every match",
    ),
    var(
        "REDTAIL_CHECKPOINT_PATH",
        "/var/lib/redtail/checkpoint.json",
        "checkpoint file (its directory must be writable)",
    ),
    var(
        "REDTAIL_CHECKPOINT_EVERY_LINES",
        "1000",
        "write the checkpoint after this many published lines...",
    ),
    var(
        "REDTAIL_CHECKPOINT_INTERVAL_MS",
        "1000",
        "...or after this long, whichever first (and at shutdown)",
    ),
    var(
        "REDTAIL_START_AT",
        "beginning",
        "first start, file with no checkpoint: beginning or end",
    ),
    var(
        "REDTAIL_SOURCE",
        "(host name)",
        "source id of this watcher (the pod name)",
    ),
    var(
        "REDTAIL_MAX_LINE_BYTES",
        "1048576",
        "longer lines are cut to this size, flagged and counted",
    ),
    var(
        "REDTAIL_BATCH_MAX_LINES",
        "1024",
        "most lines sent to Redis in one round trip",
    ),
    var(
        "REDTAIL_BATCH_MAX_BYTES",
        "1048576",
        "most line bytes in one round trip (bounds memory)",
    ),
    var(
        "REDTAIL_STREAM_MAXLEN",
        "1000000",
        "approximate stream trim (MAXLEN ~); 0 = no trim",
    ),
    var(
        "REDTAIL_POLL_INTERVAL_MS",
        "250",
        "polling fallback when file events are not delivered",
    ),
    var(
        "REDTAIL_REPLICA_ACKS",
        "0",
        "WAIT for this many replicas to acknowledge each batch before committing it; 0 = off",
    ),
    var(
        "REDTAIL_REPLICA_ACK_TIMEOUT_MS",
        "1000",
        "longest WAIT per batch (below 5000); a shortfall resends the batch and waits again",
    ),
];

pub const SUBSCRIBE: &[Var] = &[
    var(
        "REDTAIL_GROUP",
        "redtail",
        "consumer group (created from the start of the stream if missing)",
    ),
    var(
        "REDTAIL_CONSUMER",
        "(host name)",
        "consumer name within the group",
    ),
    var(
        "REDTAIL_OUTPUT_FORMAT",
        "udm",
        "udm (normalized JSON event per line) or raw (the line as published)",
    ),
    var(
        "REDTAIL_OUTPUT_PATH",
        "-",
        "- = stdout; otherwise a file, appended to",
    ),
    var(
        "REDTAIL_CLAIM_IDLE_MS",
        "30000",
        "claim entries pending this long on another (dead) consumer",
    ),
    var(
        "REDTAIL_STREAM_REFRESH_MS",
        "5000",
        "cluster: re-read the stream registry this often to find new sources",
    ),
    var(
        "REDTAIL_DEAD_CONSUMER_IDLE_MS",
        "3600000",
        "remove group consumers idle this long with nothing pending (pods of earlier rollouts)",
    ),
];

/// The variables a command reads, in `--help` order.
pub fn for_command(command: &str) -> Vec<&'static Var> {
    let groups: &[&[Var]] = match command {
        "generate" => &[GENERATE, PROCESS],
        "watch" => &[WATCH, REDIS, PROCESS],
        "subscribe" => &[SUBSCRIBE, REDIS, PROCESS],
        "demo" => &[REDIS, PROCESS],
        _ => &[],
    };
    groups.iter().flat_map(|g| g.iter()).collect()
}

/// Every REDTAIL_ variable any command knows (to warn about typos).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    [REDIS, PROCESS, GENERATE, WATCH, SUBSCRIBE]
        .into_iter()
        .flat_map(|g| g.iter().map(|v| v.name))
}

pub fn help_text(command: &str, summary: &str) -> String {
    let mut out = format!(
        "redtail {command}: {summary}\n\nUsage: redtail {command}\n\nEnvironment variables:\n"
    );
    let vars = for_command(command);
    let width = vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in vars {
        out.push_str(&format!(
            "  {:width$}  {} (default: {})\n",
            v.name, v.help, v.default
        ));
    }
    out
}
