//! One line in, one output record out, metrics counted on the way.

use chrono::{DateTime, Utc};
use prometheus::IntCounter;
use redtail_parse::{EventType, Format};

use crate::output::Output;
use crate::udm::{render, stamp, LineContext, Options, Parser};
use crate::{Metrics, OutputFormat, SubscriberError};

/// A line and what is known about it.
pub(crate) struct Item<'a> {
    /// `None`: a stream entry without a `line` field (a foreign producer).
    pub line: Option<&'a [u8]>,
    pub ctx: LineContext<'a>,
    /// Processed before (own pending re-read or claimed).
    pub redelivered: bool,
}

/// The labelled counters, resolved once: a label lookup per line would hash two strings.
struct Counters {
    /// `[format]`
    parse_errors: Vec<IntCounter>,
    /// `[format * EventType::ALL.len() + event_type]`
    events: Vec<IntCounter>,
}

impl Counters {
    fn new(metrics: &Metrics) -> Self {
        let parse_errors = Format::ALL
            .iter()
            .map(|f| metrics.parse_errors.with_label_values(&[f.as_str()]))
            .collect();
        let events = Format::ALL
            .iter()
            .flat_map(|f| {
                EventType::ALL
                    .iter()
                    .map(move |t| metrics.events.with_label_values(&[f.as_str(), t.as_str()]))
            })
            .collect();
        Counters {
            parse_errors,
            events,
        }
    }

    fn format_index(format: Format) -> usize {
        Format::ALL.iter().position(|f| *f == format).unwrap_or(0)
    }

    fn count(&self, format: Format, event_type: Option<EventType>, parse_error: bool) {
        let f = Self::format_index(format);
        if parse_error {
            self.parse_errors[f].inc();
        }
        if let Some(t) = event_type {
            let t = EventType::ALL.iter().position(|x| *x == t).unwrap_or(0);
            self.events[f * EventType::ALL.len() + t].inc();
        }
    }
}

/// Formats items and writes them to the output.
pub(crate) struct Pipeline {
    output: Output,
    format: OutputFormat,
    parser: Parser,
    options: Options,
    metrics: Metrics,
    counters: Counters,
    /// Reused serialisation buffer: one allocation for the life of the process.
    buf: Vec<u8>,
}

impl Pipeline {
    pub fn new(
        output: Output,
        format: OutputFormat,
        parser: Parser,
        options: Options,
        metrics: Metrics,
    ) -> Self {
        Pipeline {
            output,
            format,
            parser,
            options,
            counters: Counters::new(&metrics),
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
        let (line_time, event_time) = match self.format {
            OutputFormat::Udm => {
                let ctx = item.ctx.to_parse(item.line.is_some());
                let r = render(
                    &self.parser,
                    item.line,
                    ctx,
                    &self.options,
                    ingested,
                    &mut self.buf,
                );
                self.counters
                    .count(r.format, Some(r.event_type), r.parse_error.is_some());
                if r.cut {
                    self.metrics.events_cut.inc();
                }
                (r.line_time, r.event_time)
            }
            OutputFormat::Raw => {
                // The line is still looked at for its time (latency) and for parse errors
                // (`Parser::stamp`); no UDM event is made, so `events_total` is not counted.
                let line_time = item.line.and_then(|line| {
                    let reference = item.ctx.collected.unwrap_or(ingested);
                    let stamp = stamp(&self.parser, line, reference);
                    self.counters
                        .count(stamp.format, None, stamp.error.is_some());
                    stamp.time
                });
                if let Some(line) = item.line {
                    self.buf.extend_from_slice(line);
                    self.buf.push(b'\n');
                }
                (
                    line_time,
                    line_time.or(item.ctx.collected).unwrap_or(ingested),
                )
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use redtail_parse::ParseMode;

    fn parser() -> Parser {
        Parser::new(ParseMode::Auto, None).expect("auto")
    }

    fn value(metrics: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
        metrics.with_label_values(labels).get()
    }

    #[tokio::test]
    async fn writes_raw_and_udm_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).expect("metrics");
        let path = dir.path().join("raw.log");
        let out = Output::open(Some(&path)).await.expect("open");
        let mut p = Pipeline::new(
            out,
            OutputFormat::Raw,
            parser(),
            Options::default(),
            metrics.clone(),
        );
        let now = Utc::now();
        for (line, redelivered) in [
            (&b"{\"k\":1}"[..], false),
            (b"not json \xff", true),
            (b"{\"broken", false),
            (b"plain text is fine", false),
        ] {
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
            b"{\"k\":1}\nnot json \xff\n{\"broken\nplain text is fine\n"
        );
        assert_eq!(metrics.lines_received.get(), 4);
        assert_eq!(value(&metrics.parse_errors, &["text"]), 1, "invalid UTF-8");
        assert_eq!(value(&metrics.parse_errors, &["json"]), 1, "broken JSON");
        assert_eq!(metrics.redeliveries.get(), 1);

        let path = dir.path().join("udm.log");
        let out = Output::open(Some(&path)).await.expect("open");
        let options = Options {
            product: Some("prod".into()),
            ..Options::default()
        };
        let mut p = Pipeline::new(out, OutputFormat::Udm, parser(), options, metrics.clone());
        for line in [
            &br#"{"timestamp":"2020-01-01T00:00:00Z","message":"m"}"#[..],
            b"2020-01-01 00:00:00,123 INFO user alice logged in",
        ] {
            let item = Item {
                line: Some(line),
                ctx: LineContext::default(),
                redelivered: false,
            };
            p.write(&item, now).await.expect("write");
        }
        p.flush().await.expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n') && text.lines().count() == 2);
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(events[0]["metadata"]["product_name"], "prod");
        assert_eq!(events[1]["metadata"]["event_type"], "USER_LOGIN");
        assert_eq!(
            value(&metrics.events, &["json", "GENERIC_EVENT"]),
            1,
            "events_total{{format,event_type}}"
        );
        assert_eq!(value(&metrics.events, &["text", "USER_LOGIN"]), 1);
        assert_eq!(metrics.end_to_end_latency.get_sample_count(), 2);
        assert!(
            metrics.end_to_end_latency.get_sample_sum() > 1e8,
            "years of latency"
        );
    }
}
