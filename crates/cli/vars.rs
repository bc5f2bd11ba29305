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
        "REDTAIL_BATCH_LINGER_MS",
        "20",
        "longest wait after a batch that was not full, so live-rate lines go out together; 0 = off",
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
        "REDTAIL_ROTATE_WAIT_MS",
        "5000",
        "a file renamed or deleted away is re-read until it has not grown for this long",
    ),
    var(
        "REDTAIL_MAX_OPEN_FILES",
        "256",
        "most files held open at once; idle ones are closed and reopened when they grow",
    ),
    var(
        "REDTAIL_CLOSE_INACTIVE_MS",
        "300000",
        "a file that has not grown for this long is closed (its position kept)",
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
    var(
        "REDTAIL_MULTILINE",
        "off",
        "multi-line events: off, java, python, go, indented, or regex",
    ),
    var(
        "REDTAIL_MULTILINE_START",
        "(none)",
        "with regex: a line matching it starts an event, any other continues it",
    ),
    var(
        "REDTAIL_MULTILINE_TIMEOUT_MS",
        "1000",
        "an open event is published after this long without a new line",
    ),
    var(
        "REDTAIL_MULTILINE_MAX_LINES",
        "500",
        "an event is cut (trunc 1) beyond this many lines or REDTAIL_MAX_LINE_BYTES",
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
        "REDTAIL_PARSE",
        "auto",
        "auto (per line), json, logfmt, syslog, combined, text or regex",
    ),
    var(
        "REDTAIL_PARSE_REGEX",
        "(none)",
        "with REDTAIL_PARSE=regex: a regex with named groups (timestamp, level, message, host, user, src_ip, method, url, status, user_agent, referrer; others go to additional)",
    ),
    var(
        "REDTAIL_UDM_VENDOR",
        "(omitted)",
        "metadata.vendor_name",
    ),
    var(
        "REDTAIL_UDM_PRODUCT",
        "(the line's service/app, else the source)",
        "metadata.product_name",
    ),
    var(
        "REDTAIL_UDM_LOG_TYPE",
        "(omitted)",
        "metadata.log_type",
    ),
    var(
        "REDTAIL_UDM_MAX_EVENT_BYTES",
        "1000000",
        "longest UDM event (16384 or more); a larger one is cut (description and additional first) and flagged",
    ),
];

pub const SECOPS: &[Var] = &[
    var(
        "REDTAIL_SINK",
        "file",
        "file (REDTAIL_OUTPUT_PATH) or secops (deliver to Google SecOps; stream mode, single Redis)",
    ),
    var(
        "REDTAIL_SECOPS_API",
        "logs",
        "logs (raw lines, logs:import), events (UDM, events:import) or legacy (unstructuredlogentries:batchCreate, deprecated)",
    ),
    var(
        "REDTAIL_SECOPS_ENDPOINT",
        "(required)",
        "base URL, e.g. https://us-chronicle.googleapis.com (legacy: https://malachiteingestion-pa.googleapis.com)",
    ),
    var(
        "REDTAIL_SECOPS_INSTANCE",
        "(required but legacy)",
        "projects/<p>/locations/<l>/instances/<customer id>",
    ),
    var("REDTAIL_SECOPS_CUSTOMER_ID", "(none)", "legacy only: the customer id"),
    var(
        "REDTAIL_SECOPS_LOG_TYPE",
        "(required for logs, legacy)",
        "the SecOps log type, e.g. NGINX, JSON",
    ),
    var(
        "REDTAIL_SECOPS_NAMESPACE",
        "(none)",
        "environmentNamespace (legacy namespace)",
    ),
    var(
        "REDTAIL_SECOPS_CREDENTIALS",
        "$GOOGLE_APPLICATION_CREDENTIALS",
        "service-account key JSON; unset: the metadata server (GKE Workload Identity; GCE_METADATA_HOST overrides its address)",
    ),
    var(
        "REDTAIL_SECOPS_BATCH_BYTES",
        "3500000 (legacy 950000)",
        "most bytes of uncompressed request body",
    ),
    var("REDTAIL_SECOPS_BATCH_ENTRIES", "1000", "most entries per request"),
    var("REDTAIL_SECOPS_BATCH_MS", "5000", "longest wait to fill a batch"),
    var("REDTAIL_SECOPS_GZIP", "false", "gzip request bodies (Content-Encoding: gzip)"),
    var(
        "REDTAIL_SECOPS_MAX_AGE_MS",
        "86400000",
        "a batch still failing after this long goes to the <stream>:deadletter stream",
    ),
    var(
        "REDTAIL_SECOPS_TIMEOUT_MS",
        "60000",
        "longest wait for one reply from SecOps or the token endpoint",
    ),
    var(
        "REDTAIL_SECOPS_RETRY_BASE_MS",
        "1000",
        "first retry delay (doubles with jitter up to 5 min)",
    ),
    var(
        "REDTAIL_SECOPS_NOT_READY_RETRY_MS",
        "60000",
        "retry interval while SecOps refuses the configuration (403, 404, 401 after a refresh)",
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
        "subscribe" => &[SUBSCRIBE, SECOPS, REDIS, PROCESS],
        "demo" => &[REDIS, PROCESS],
        _ => &[],
    };
    groups.iter().flat_map(|g| g.iter()).collect()
}

/// Every REDTAIL_ variable any command knows (to warn about typos).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    [REDIS, PROCESS, GENERATE, WATCH, SUBSCRIBE, SECOPS]
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
