//! Serialising an event within `REDTAIL_UDM_MAX_EVENT_BYTES`.
//!
//! Over the cap, the event is cut in the order that loses least: first the line's own fields
//! in `additional` go and the description is shortened to what fits; if the nouns alone are
//! still too big (a megabyte user agent), every text is cut to [`SHORT_TEXT_BYTES`]. The cut
//! event says so (`additional.event_cut`, `event_original_bytes`).

use crate::udm::Event;
#[cfg(doc)]
use crate::udm::Options;

/// The length every text is cut to in the last resort. With some twenty texts of at most
/// 128 bytes each (6× when every byte needs a `\u00XX` escape), an event stays well under
/// [`Options::MIN_MAX_EVENT_BYTES`].
pub const SHORT_TEXT_BYTES: usize = 128;

/// Appends `event` as JSON (no newline) to `buf`, at most `max` bytes; returns whether it was
/// cut.
pub fn write_capped(buf: &mut Vec<u8>, event: &mut Event<'_>, max: usize) -> bool {
    let start = buf.len();
    write(buf, event);
    let full = buf.len() - start;
    if full <= max {
        return false;
    }
    event.additional.cut_from_bytes = Some(full);
    event.additional.fields_dropped = true;
    let description = event.metadata.description.take();
    buf.truncate(start);
    write(buf, event);
    let base = buf.len() - start;
    if base > max {
        shorten_everything(event);
        buf.truncate(start);
        write(buf, event);
        return true;
    }
    // Room for `,"description":"…"` within the cap; escaping may need more than one try.
    if let Some(text) = description {
        let mut budget = max.saturating_sub(base + 20);
        for _ in 0..8 {
            if budget == 0 {
                break;
            }
            event.metadata.description = Some(cut(text, budget));
            buf.truncate(start);
            write(buf, event);
            let len = buf.len() - start;
            if len <= max {
                return true;
            }
            budget = budget.saturating_sub((len - max) + 16);
        }
        event.metadata.description = None;
        buf.truncate(start);
        write(buf, event);
    }
    true
}

fn write(buf: &mut Vec<u8>, event: &Event<'_>) {
    // Serialising into memory cannot fail: every key is a string, and a Vec has no I/O error.
    let _ = serde_json::to_writer(&mut *buf, event);
}

fn shorten_everything(e: &mut Event<'_>) {
    let short = |s: &mut &str| *s = cut(s, SHORT_TEXT_BYTES);
    let opt = |s: &mut Option<&str>| {
        if let Some(v) = s {
            *v = cut(v, SHORT_TEXT_BYTES);
        }
    };
    e.metadata.description = None;
    short(&mut e.metadata.product_name);
    opt(&mut e.metadata.vendor_name);
    opt(&mut e.metadata.log_type);
    for noun in [&mut e.principal, &mut e.target] {
        opt(&mut noun.hostname);
        opt(&mut noun.url);
        if let Some([ip]) = &mut noun.ip {
            short(ip);
        }
        if let Some(user) = &mut noun.user {
            short(&mut user.userid);
        }
    }
    if let Some(n) = &mut e.network {
        opt(&mut n.http.method);
        opt(&mut n.http.user_agent);
        opt(&mut n.http.referral_url);
    }
    opt(&mut e.security_result[0].severity_details);
    let c = &mut e.additional.ctx;
    opt(&mut c.source);
    opt(&mut c.path);
    opt(&mut c.file_id);
    opt(&mut c.stream_id);
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::{render, Context, Options, ParseMode, Parser};

    fn event(line: &[u8], max: usize) -> (Value, usize, bool) {
        let parser = Parser::new(ParseMode::Auto, None).expect("auto");
        let opts = Options {
            max_event_bytes: max,
            ..Options::default()
        };
        let ctx = Context {
            source: Some("pod-1"),
            path: Some("/var/log/app.log"),
            offset: Some(42),
            ..Context::default()
        };
        let now = crate::time::parse_str("2026-12-02T00:00:00Z").expect("now");
        let mut buf = Vec::new();
        let r = render(&parser, Some(line), ctx, &opts, now, &mut buf);
        assert_eq!(buf.pop(), Some(b'\n'));
        let len = buf.len();
        (
            serde_json::from_slice(&buf).expect("valid JSON"),
            len,
            r.cut,
        )
    }

    #[test]
    fn description_and_fields_go_first_context_stays() {
        let fields: String = (0..500)
            .map(|i| format!(r#","f{i}":"{}""#, "v".repeat(50)))
            .collect();
        let line = format!(
            r#"{{"level":"ERROR","msg":"{}"{fields}}}"#,
            "x".repeat(100_000)
        );
        let (e, len, cut) = event(line.as_bytes(), 16_384);
        assert!(cut && len <= 16_384, "{len}");
        let d = e["metadata"]["description"]
            .as_str()
            .expect("description kept, shortened");
        assert!(
            d.len() > 10_000 && d.chars().all(|c| c == 'x'),
            "{}",
            d.len()
        );
        assert_eq!(e["additional"]["event_cut"], true);
        assert!(
            e["additional"]["event_original_bytes"]
                .as_u64()
                .expect("size")
                > 100_000
        );
        assert_eq!(e["additional"]["offset"], 42, "context survives the cut");
        assert!(e["additional"].get("f0").is_none(), "line fields dropped");
        assert_eq!(e["security_result"][0]["severity"], "ERROR");
    }

    #[test]
    fn huge_nouns_and_escapes_still_fit() {
        let ua = "\u{1}".repeat(200_000);
        let line = format!(
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /{} HTTP/1.0" 200 1 "-" "{ua}""#,
            "p".repeat(100_000)
        );
        for max in [16_384, 20_000, 1_000_000] {
            let (e, len, cut) = event(line.as_bytes(), max);
            assert!(cut && len <= max, "{len} > {max}");
            assert_eq!(e["metadata"]["event_type"], "NETWORK_HTTP");
        }
        let (_, len, cut) = event(b"short line", 16_384);
        assert!(!cut && len < 1000);
    }
}
