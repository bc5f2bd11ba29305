//! The variables of `subscribe`: the consumer group, the output, parsing, and the SecOps sink.

use super::{var, Unset, Var};

pub const GROUP: Var = var(
    "REDTAIL_GROUP",
    Unset::Value(redtail_subscriber::Config::DEFAULT_GROUP),
    "consumer group (created from the start of the stream if missing)",
);

pub const CONSUMER: Var = var(
    "REDTAIL_CONSUMER",
    Unset::Described("(host name)"),
    "consumer name within the group",
);

pub const OUTPUT_FORMAT: Var = var(
    "REDTAIL_OUTPUT_FORMAT",
    Unset::Value("udm"),
    "udm (normalized JSON event per line) or raw (the line as published)",
);

pub const OUTPUT_PATH: Var = var(
    "REDTAIL_OUTPUT_PATH",
    Unset::Value("-"),
    "- = stdout; otherwise a file, appended to",
);

pub const CLAIM_IDLE_MS: Var = var(
    "REDTAIL_CLAIM_IDLE_MS",
    Unset::Number(redtail_subscriber::Config::DEFAULT_CLAIM_IDLE.as_millis() as u64),
    "claim entries pending this long on another (dead) consumer",
);

pub const STREAM_REFRESH_MS: Var = var(
    "REDTAIL_STREAM_REFRESH_MS",
    Unset::Number(redtail_subscriber::Config::DEFAULT_STREAM_REFRESH.as_millis() as u64),
    "cluster: re-read the stream registry this often to find new sources",
);

pub const PARSE: Var = var(
    "REDTAIL_PARSE",
    Unset::Value("auto"),
    "auto (per line), json, logfmt, syslog, combined, text or regex",
);

pub const PARSE_REGEX: Var = var(
    "REDTAIL_PARSE_REGEX",
    Unset::Described("(none)"),
    "with REDTAIL_PARSE=regex: a regex with named groups (timestamp, level, message, host, user, src_ip, method, url, status, user_agent, referrer; others go to additional)",
);

pub const UDM_VENDOR: Var = var(
    "REDTAIL_UDM_VENDOR",
    Unset::Described("(omitted)"),
    "metadata.vendor_name",
);

pub const UDM_PRODUCT: Var = var(
    "REDTAIL_UDM_PRODUCT",
    Unset::Described("(the line's service/app, else the source)"),
    "metadata.product_name",
);

pub const UDM_LOG_TYPE: Var = var(
    "REDTAIL_UDM_LOG_TYPE",
    Unset::Described("(omitted)"),
    "metadata.log_type",
);

pub const UDM_MAX_EVENT_BYTES: Var = var(
    "REDTAIL_UDM_MAX_EVENT_BYTES",
    Unset::Number(redtail_subscriber::UdmOptions::DEFAULT_MAX_EVENT_BYTES as u64),
    "longest UDM event (16384 or more); a larger one is cut (description and additional first) and flagged",
);

pub const SINK: Var = var(
    "REDTAIL_SINK",
    Unset::Value("file"),
    "file (REDTAIL_OUTPUT_PATH) or secops (deliver to Google SecOps; stream mode, single Redis)",
);

pub const SECOPS_API: Var = var(
    "REDTAIL_SECOPS_API",
    Unset::Value("logs"),
    "logs (raw lines, logs:import), events (UDM, events:import) or legacy (unstructuredlogentries:batchCreate, deprecated)",
);

pub const SECOPS_ENDPOINT: Var = var(
    "REDTAIL_SECOPS_ENDPOINT",
    Unset::Described("(required)"),
    "base URL, e.g. https://us-chronicle.googleapis.com (legacy: https://malachiteingestion-pa.googleapis.com)",
);

pub const SECOPS_INSTANCE: Var = var(
    "REDTAIL_SECOPS_INSTANCE",
    Unset::Described("(required but legacy)"),
    "projects/<p>/locations/<l>/instances/<customer id>",
);

pub const SECOPS_CUSTOMER_ID: Var = var(
    "REDTAIL_SECOPS_CUSTOMER_ID",
    Unset::Described("(none)"),
    "legacy only: the customer id",
);

pub const SECOPS_LOG_TYPE: Var = var(
    "REDTAIL_SECOPS_LOG_TYPE",
    Unset::Described("(required for logs, legacy)"),
    "the SecOps log type, e.g. NGINX, JSON",
);

pub const SECOPS_NAMESPACE: Var = var(
    "REDTAIL_SECOPS_NAMESPACE",
    Unset::Described("(none)"),
    "environmentNamespace (legacy namespace)",
);

pub const SECOPS_CREDENTIALS: Var = var(
    "REDTAIL_SECOPS_CREDENTIALS",
    Unset::Described("$GOOGLE_APPLICATION_CREDENTIALS"),
    "service-account key JSON; unset: the metadata server (GKE Workload Identity; GCE_METADATA_HOST overrides its address)",
);

pub const SECOPS_BATCH_BYTES: Var = var(
    "REDTAIL_SECOPS_BATCH_BYTES",
    Unset::Described("3500000 (legacy 950000)"),
    "most bytes of uncompressed request body",
);

pub const SECOPS_BATCH_ENTRIES: Var = var(
    "REDTAIL_SECOPS_BATCH_ENTRIES",
    Unset::Number(redtail_secops::SecopsConfig::DEFAULT_BATCH_ENTRIES as u64),
    "most entries per request",
);

pub const SECOPS_BATCH_MS: Var = var(
    "REDTAIL_SECOPS_BATCH_MS",
    Unset::Number(redtail_secops::SecopsConfig::DEFAULT_BATCH_WAIT.as_millis() as u64),
    "longest wait to fill a batch",
);

pub const SECOPS_GZIP: Var = var(
    "REDTAIL_SECOPS_GZIP",
    Unset::Value("false"),
    "gzip request bodies (Content-Encoding: gzip)",
);

pub const SECOPS_MAX_AGE_MS: Var = var(
    "REDTAIL_SECOPS_MAX_AGE_MS",
    Unset::Number(redtail_secops::SecopsConfig::DEFAULT_MAX_AGE.as_millis() as u64),
    "a batch still failing after this long goes to the <stream>:deadletter stream",
);

pub const SECOPS_TIMEOUT_MS: Var = var(
    "REDTAIL_SECOPS_TIMEOUT_MS",
    Unset::Number(redtail_secops::SecopsConfig::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64),
    "longest wait for one reply from SecOps or the token endpoint",
);

pub const SECOPS_RETRY_BASE_MS: Var = var(
    "REDTAIL_SECOPS_RETRY_BASE_MS",
    Unset::Number(redtail_secops::SecopsConfig::DEFAULT_RETRY_BASE.as_millis() as u64),
    "first retry delay (doubles with jitter up to 5 min)",
);

pub const SECOPS_NOT_READY_RETRY_MS: Var = var(
    "REDTAIL_SECOPS_NOT_READY_RETRY_MS",
    Unset::Number(redtail_secops::SecopsConfig::DEFAULT_NOT_READY_RETRY.as_millis() as u64),
    "retry interval while SecOps refuses the configuration (403, 404, 401 after a refresh)",
);

pub const DEAD_CONSUMER_IDLE_MS: Var = var(
    "REDTAIL_DEAD_CONSUMER_IDLE_MS",
    Unset::Number(redtail_subscriber::Config::DEFAULT_DEAD_CONSUMER_IDLE.as_millis() as u64),
    "remove group consumers idle this long with nothing pending (pods of earlier rollouts)",
);

pub const SUBSCRIBE: &[Var] = &[
    GROUP,
    CONSUMER,
    OUTPUT_FORMAT,
    OUTPUT_PATH,
    CLAIM_IDLE_MS,
    STREAM_REFRESH_MS,
    PARSE,
    PARSE_REGEX,
    UDM_VENDOR,
    UDM_PRODUCT,
    UDM_LOG_TYPE,
    UDM_MAX_EVENT_BYTES,
];

pub const SECOPS: &[Var] = &[
    SINK,
    SECOPS_API,
    SECOPS_ENDPOINT,
    SECOPS_INSTANCE,
    SECOPS_CUSTOMER_ID,
    SECOPS_LOG_TYPE,
    SECOPS_NAMESPACE,
    SECOPS_CREDENTIALS,
    SECOPS_BATCH_BYTES,
    SECOPS_BATCH_ENTRIES,
    SECOPS_BATCH_MS,
    SECOPS_GZIP,
    SECOPS_MAX_AGE_MS,
    SECOPS_TIMEOUT_MS,
    SECOPS_RETRY_BASE_MS,
    SECOPS_NOT_READY_RETRY_MS,
    DEAD_CONSUMER_IDLE_MS,
];
