//! Request bodies of the three APIs, built from stream entries alone.
//!
//! Determinism is the point: every byte of a body is a function of the entries (line, `ct`,
//! id) and the configuration, never of the clock at send time, so a resend after a retry, a
//! restart or a claim is byte-identical and SecOps' content-based de-duplication absorbs it.
//! Each entry is rendered once into a *fragment* (its JSON object in the array); a body is
//! `prefix + fragments joined by ',' + suffix`, so its size is known exactly before it is
//! built and batches can be cut to the byte.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use redtail_bus::consumer::StreamEntry;
use serde_json::{json, Value};

use crate::{Api, SecopsConfig};

/// What the sink needs from the parser (implemented by the subscriber, which owns parsing).
pub trait EventRenderer: Send + Sync {
    /// The time the line says it happened, if it says.
    fn line_time(&self, entry: &StreamEntry) -> Option<DateTime<Utc>>;
    /// The UDM event of the entry (`events` API). Must be a function of the entry and
    /// `collected` only (no clock), or resends would differ.
    fn udm(&self, entry: &StreamEntry, collected: DateTime<Utc>) -> Value;
}

/// When the watcher read the line: its `ct`, else when Redis appended the entry.
pub fn collection_time(entry: &StreamEntry) -> DateTime<Utc> {
    entry
        .collected_us
        .and_then(DateTime::from_timestamp_micros)
        .or_else(|| {
            i64::try_from(entry.id_ms)
                .ok()
                .and_then(DateTime::from_timestamp_millis)
        })
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// RFC 3339, UTC, microseconds: what the APIs accept and what our lines carry.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The fixed parts of every body of one sink.
#[derive(Debug, Clone)]
pub struct Envelope {
    api: Api,
    prefix: Vec<u8>,
    suffix: &'static [u8],
    namespace: Option<String>,
}

impl Envelope {
    pub fn new(cfg: &SecopsConfig) -> Self {
        let namespace = cfg.namespace.clone().filter(|n| !n.trim().is_empty());
        let (prefix, suffix): (Vec<u8>, &'static [u8]) = match cfg.api {
            Api::Logs => (br#"{"inlineSource":{"logs":["#.to_vec(), b"]}}"),
            Api::Events => (br#"{"inlineSource":{"events":["#.to_vec(), b"]}}"),
            Api::Legacy => {
                // serde_json writes the strings escaped; the key order is ours.
                let mut p = format!(
                    "{{\"customer_id\":{},\"log_type\":{},",
                    Value::from(cfg.customer_id.clone().unwrap_or_default()),
                    Value::from(cfg.log_type.clone().unwrap_or_default())
                );
                if let Some(ns) = &namespace {
                    p.push_str(&format!("\"namespace\":{},", Value::from(ns.clone())));
                }
                p.push_str("\"entries\":[");
                (p.into_bytes(), b"]}")
            }
        };
        Envelope {
            api: cfg.api,
            prefix,
            suffix,
            namespace,
        }
    }

    /// The entry's JSON object, or why it cannot be sent (it then goes to the dead letters).
    pub fn fragment(
        &self,
        entry: &StreamEntry,
        renderer: &dyn EventRenderer,
    ) -> Result<Vec<u8>, &'static str> {
        let collected = collection_time(entry);
        // `logEntryTime ≤ collectionTime`: a line claiming the future (a skewed clock) is
        // taken as written when it was read.
        let event_time = renderer
            .line_time(entry)
            .map_or(collected, |t| t.min(collected));
        let value = match self.api {
            Api::Events => json!({ "udm": renderer.udm(entry, collected) }),
            Api::Logs => {
                let line = entry
                    .line
                    .as_deref()
                    .ok_or("stream entry without a line field")?;
                let mut log = json!({
                    "data": STANDARD.encode(line),
                    "logEntryTime": rfc3339(event_time),
                    "collectionTime": rfc3339(collected),
                });
                if let Some(ns) = &self.namespace {
                    log["environmentNamespace"] = Value::from(ns.clone());
                }
                log
            }
            Api::Legacy => {
                let line = entry
                    .line
                    .as_deref()
                    .ok_or("stream entry without a line field")?;
                json!({
                    "log_text": String::from_utf8_lossy(line),
                    "ts_rfc3339": rfc3339(event_time),
                })
            }
        };
        // A `Value` of strings and objects always serialises.
        serde_json::to_vec(&value).map_err(|_| "could not serialise the entry")
    }

    /// Exact body size of `n` fragments totalling `fragment_bytes`.
    pub fn body_len(&self, n: usize, fragment_bytes: usize) -> usize {
        self.prefix.len() + self.suffix.len() + fragment_bytes + n.saturating_sub(1)
    }

    pub fn body<'a>(&self, fragments: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = self.prefix.clone();
        for (i, f) in fragments.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(f);
        }
        out.extend_from_slice(self.suffix);
        out
    }
}

/// The URL batches are posted to.
pub fn import_url(cfg: &SecopsConfig) -> String {
    let base = cfg.endpoint.trim_end_matches('/');
    let instance = cfg.instance.as_deref().unwrap_or_default();
    match cfg.api {
        Api::Logs => format!(
            "{base}/v1alpha/{instance}/logTypes/{}/logs:import",
            cfg.log_type.as_deref().unwrap_or_default()
        ),
        Api::Events => format!("{base}/v1alpha/{instance}/events:import"),
        Api::Legacy => format!("{base}/v2/unstructuredlogentries:batchCreate"),
    }
}

/// The URL of the startup check (list log types).
pub fn log_types_url(cfg: &SecopsConfig) -> String {
    let base = cfg.endpoint.trim_end_matches('/');
    match cfg.api {
        Api::Legacy => format!("{base}/v2/logtypes"),
        _ => format!(
            "{base}/v1alpha/{}/logTypes?pageSize=1000",
            cfg.instance.as_deref().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CredentialsSource;

    struct Fixed(Option<DateTime<Utc>>);
    impl EventRenderer for Fixed {
        fn line_time(&self, _: &StreamEntry) -> Option<DateTime<Utc>> {
            self.0
        }
        fn udm(&self, entry: &StreamEntry, collected: DateTime<Utc>) -> Value {
            json!({"metadata": {"description": String::from_utf8_lossy(entry.line.as_deref().unwrap_or_default()), "collected_timestamp": rfc3339(collected)}})
        }
    }

    fn cfg(api: Api) -> SecopsConfig {
        let mut c = SecopsConfig::new(
            api,
            "https://h",
            CredentialsSource::Metadata("http://m".into()),
        );
        c.instance = Some("projects/p/locations/l/instances/i".into());
        c.log_type = Some("JSON".into());
        c.customer_id = Some("cust".into());
        c.namespace = Some("prod".into());
        c
    }

    fn entry(line: &[u8]) -> StreamEntry {
        StreamEntry {
            id: "1700000000000-0".into(),
            id_ms: 1_700_000_000_000,
            line: Some(line.to_vec()),
            collected_us: Some(1_700_000_000_123_456),
            ..StreamEntry::default()
        }
    }

    #[test]
    fn logs_body_round_trips_and_sizes_exactly() {
        let env = Envelope::new(&cfg(Api::Logs));
        let lines: [&[u8]; 2] = [b"{\"a\":1}", b"\xff binary \x00"];
        let frags: Vec<Vec<u8>> = lines
            .iter()
            .map(|l| env.fragment(&entry(l), &Fixed(None)).unwrap())
            .collect();
        let body = env.body(frags.iter().map(Vec::as_slice));
        assert_eq!(
            body.len(),
            env.body_len(2, frags.iter().map(Vec::len).sum())
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        let logs = v["inlineSource"]["logs"].as_array().unwrap();
        for (log, line) in logs.iter().zip(lines) {
            assert_eq!(
                STANDARD.decode(log["data"].as_str().unwrap()).unwrap(),
                line
            );
            assert_eq!(log["collectionTime"], "2023-11-14T22:13:20.123456Z");
            assert_eq!(log["environmentNamespace"], "prod");
        }
    }

    #[test]
    fn event_time_never_after_collection() {
        let env = Envelope::new(&cfg(Api::Logs));
        let future = DateTime::from_timestamp(1_800_000_000, 0);
        let f = env.fragment(&entry(b"x"), &Fixed(future)).unwrap();
        let v: Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["logEntryTime"], v["collectionTime"]);
        let past = DateTime::from_timestamp(1_600_000_000, 0);
        let f = env.fragment(&entry(b"x"), &Fixed(past)).unwrap();
        let v: Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["logEntryTime"], "2020-09-13T12:26:40.000000Z");
    }

    #[test]
    fn legacy_and_events_shapes() {
        let env = Envelope::new(&cfg(Api::Legacy));
        let f = env.fragment(&entry(b"hello"), &Fixed(None)).unwrap();
        let v: Value = serde_json::from_slice(&env.body([f.as_slice()])).unwrap();
        assert_eq!(v["customer_id"], "cust");
        assert_eq!(v["log_type"], "JSON");
        assert_eq!(v["namespace"], "prod");
        assert_eq!(v["entries"][0]["log_text"], "hello");
        let env = Envelope::new(&cfg(Api::Events));
        let f = env.fragment(&entry(b"hello"), &Fixed(None)).unwrap();
        let v: Value = serde_json::from_slice(&env.body([f.as_slice()])).unwrap();
        assert_eq!(
            v["inlineSource"]["events"][0]["udm"]["metadata"]["description"],
            "hello"
        );
        let mut foreign = entry(b"");
        foreign.line = None;
        assert!(Envelope::new(&cfg(Api::Logs))
            .fragment(&foreign, &Fixed(None))
            .is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            import_url(&cfg(Api::Logs)),
            "https://h/v1alpha/projects/p/locations/l/instances/i/logTypes/JSON/logs:import"
        );
        assert_eq!(
            import_url(&cfg(Api::Events)),
            "https://h/v1alpha/projects/p/locations/l/instances/i/events:import"
        );
        assert_eq!(
            import_url(&cfg(Api::Legacy)),
            "https://h/v2/unstructuredlogentries:batchCreate"
        );
        assert_eq!(log_types_url(&cfg(Api::Legacy)), "https://h/v2/logtypes");
    }
}
