//! One line in, one output record out, metrics counted on the way.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::output::Output;
use crate::udm::{to_udm, LineContext};
use crate::{Metrics, OutputFormat, SubscriberError};

/// A line and what is known about it.
pub(crate) struct Item<'a> {
    /// `None`: a stream entry without a `line` field (a foreign producer).
    pub line: Option<&'a [u8]>,
    pub ctx: LineContext<'a>,
    /// Processed before (own pending re-read or claimed).
    pub redelivered: bool,
}

/// Formats items and writes them to the output.
pub(crate) struct Pipeline {
    output: Output,
    format: OutputFormat,
    product_name: String,
    metrics: Metrics,
    /// Reused serialisation buffer: one allocation for the life of the process.
    buf: Vec<u8>,
}

impl Pipeline {
    pub fn new(
        output: Output,
        format: OutputFormat,
        product_name: String,
        metrics: Metrics,
    ) -> Self {
        Pipeline {
            output,
            format,
            product_name,
            metrics,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Writes one item (buffered); returns its event time, for the lag gauge.
    pub async fn write(
        &mut self,
        item: &Item<'_>,
        ingested: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, SubscriberError> {
        self.buf.clear();
        let (parse_error, line_time, event_time) = match self.format {
            OutputFormat::Udm => {
                let event = to_udm(item.line, &item.ctx, ingested, &self.product_name);
                // Serialising a `Value` into a Vec cannot fail: keys are strings, and
                // writing to memory has no I/O error.
                if serde_json::to_writer(&mut self.buf, &event.event).is_ok() {
                    self.buf.push(b'\n');
                }
                (
                    event.parse_error.is_some(),
                    event.line_time,
                    event.event_time,
                )
            }
            OutputFormat::Raw => {
                let (ok, line_time) = item.line.map_or((false, None), peek_timestamp);
                if let Some(line) = item.line {
                    self.buf.extend_from_slice(line);
                    self.buf.push(b'\n');
                }
                let event_time = line_time.or(item.ctx.collected).unwrap_or(ingested);
                (!ok, line_time, event_time)
            }
        };
        if parse_error {
            self.metrics.parse_errors.inc();
        }
        if item.redelivered {
            self.metrics.redeliveries.inc();
        }
        if self.buf.is_empty() {
            // Raw output of an entry without a line: there is nothing to write.
            tracing::warn!(
                stream_id = item.ctx.stream_id.unwrap_or("-"),
                "Stream entry without a line field skipped."
            );
            return Ok(event_time);
        }
        self.output.write(&self.buf).await?;
        self.metrics.lines_received.inc();
        if let Some(line_time) = line_time {
            let latency = (ingested - line_time).to_std().unwrap_or_default();
            self.metrics
                .end_to_end_latency
                .observe(latency.as_secs_f64());
        }
        Ok(event_time)
    }

    pub async fn flush(&mut self) -> Result<(), SubscriberError> {
        self.output.flush().await
    }
}

/// Just the `timestamp` of a JSON object line; serde skips (validates, but does not
/// allocate) every other field.
#[derive(Deserialize)]
struct TimestampOnly {
    timestamp: Option<serde_json::Value>,
}

/// Raw mode still counts parse errors and measures latency; this validates the line and
/// reads its timestamp without building the whole object. `(is a JSON object, timestamp)`.
fn peek_timestamp(line: &[u8]) -> (bool, Option<DateTime<Utc>>) {
    let object = line
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !object {
        return (false, None);
    }
    // serde_json does not check the UTF-8 of strings it skips: validate the whole line first.
    let Ok(text) = std::str::from_utf8(line) else {
        return (false, None);
    };
    match serde_json::from_str::<TimestampOnly>(text) {
        Ok(parsed) => (
            true,
            parsed
                .timestamp
                .as_ref()
                .and_then(crate::timestamp::parse_timestamp),
        ),
        Err(_) => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_timestamps_and_validity() {
        let (ok, ts) = peek_timestamp(br#"{"a":[1,{"b":2}],"timestamp":"2024-01-01T00:00:00Z"}"#);
        assert!(ok);
        assert_eq!(ts.map(|t| t.timestamp()), Some(1_704_067_200));
        assert_eq!(peek_timestamp(b" {\"x\":1}"), (true, None));
        assert_eq!(peek_timestamp(b"[1]"), (false, None));
        assert_eq!(peek_timestamp(b"{\"a\":\"\xff\"}"), (false, None));
        assert_eq!(peek_timestamp(b"{\"a\":1"), (false, None));
        assert_eq!(peek_timestamp(b""), (false, None));
    }

    #[tokio::test]
    async fn writes_raw_and_udm_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).expect("metrics");
        let path = dir.path().join("raw.log");
        let out = Output::open(Some(&path)).await.expect("open");
        let mut p = Pipeline::new(out, OutputFormat::Raw, "redtail".into(), metrics.clone());
        let now = Utc::now();
        for (line, redelivered) in [(&b"{\"k\":1}"[..], false), (b"not json \xff", true)] {
            let item = Item {
                line: Some(line),
                ctx: LineContext::default(),
                redelivered,
            };
            p.write(&item, now).await.expect("write");
        }
        let foreign = Item {
            line: None,
            ctx: LineContext::default(),
            redelivered: false,
        };
        p.write(&foreign, now).await.expect("skip");
        p.flush().await.expect("flush");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"{\"k\":1}\nnot json \xff\n"
        );
        assert_eq!(metrics.lines_received.get(), 2);
        assert_eq!(metrics.parse_errors.get(), 2);
        assert_eq!(metrics.redeliveries.get(), 1);

        let path = dir.path().join("udm.log");
        let out = Output::open(Some(&path)).await.expect("open");
        let mut p = Pipeline::new(out, OutputFormat::Udm, "prod".into(), metrics.clone());
        let line = br#"{"timestamp":"2020-01-01T00:00:00Z","message":"m"}"#;
        let item = Item {
            line: Some(line),
            ctx: LineContext::default(),
            redelivered: false,
        };
        p.write(&item, now).await.expect("write");
        p.flush().await.expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let event: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(event["metadata"]["product_name"], "prod");
        assert_eq!(metrics.end_to_end_latency.get_sample_count(), 1);
        assert!(
            metrics.end_to_end_latency.get_sample_sum() > 1e8,
            "years of latency"
        );
    }
}
