//! A realistic mix of log lines in every supported format, for `redtail demo`, the
//! benchmark and the end-to-end test. Deterministic: line `n` is always the same shape.
//! The shapes follow the public samples cited in each parser's tests.

use chrono::{DateTime, Utc};

use crate::classify::EventType;
use crate::format::Format;
use crate::time;

/// One generated line (a stack trace holds several, joined by `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub text: String,
    /// What `auto` must detect.
    pub format: Format,
    pub event_type: EventType,
}

/// How many shapes [`sample`] cycles through (the stack trace is shape 0 of every
/// [`TRACE_EVERY`]-th line on top).
pub const SHAPES: u64 = 11;
/// One line in this many is a Java stack trace (several physical lines).
pub const TRACE_EVERY: u64 = 37;

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const PATHS: [&str; 4] = ["/api/orders", "/api/cart", "/login", "/static/app.js"];

/// Line `n` of the mix, stamped `now`, from host `host`. `traces`: include stack traces.
pub fn sample(n: u64, now: DateTime<Utc>, host: &str, traces: bool) -> Sample {
    let iso = time::format(&now);
    let ms = now.timestamp_millis();
    let user = USERS[(n / SHAPES) as usize % USERS.len()];
    let path = PATHS[(n / 3) as usize % PATHS.len()];
    let ip = format!("10.0.{}.{}", (n / 7) % 255, n % 250 + 1);
    let asctime = now.format("%Y-%m-%d %H:%M:%S,%3f");
    let bsd = now.format("%b %e %H:%M:%S");
    let clf = now.format("%d/%b/%Y:%H:%M:%S +0000");
    use EventType::*;
    use Format::*;
    let (text, format, event_type) = if traces && n % TRACE_EVERY == TRACE_EVERY - 1 {
        (
            format!(
                "{asctime} ERROR [http-nio-8080-exec-{t}] c.e.shop.Checkout - Payment failed for order {n}\n\
                 java.lang.IllegalStateException: card declined\n\
                 \tat com.example.shop.Checkout.pay(Checkout.java:42)\n\
                 \tat com.example.shop.Checkout.run(Checkout.java:17)\n\
                 \t... 12 more",
                t = n % 8
            ),
            Text,
            Generic,
        )
    } else {
        match n % SHAPES {
            0 => (
                format!(r#"{{"level":30,"time":{ms},"pid":7,"hostname":"{host}","msg":"order {n} created","order_id":{n}}}"#),
                Json,
                Generic,
            ),
            1 => (
                format!("{asctime} INFO  [http-nio-8080-exec-3] c.e.shop.OrderService - Order {n} shipped to warehouse 3"),
                Text,
                Generic,
            ),
            2 => (
                format!(r#"{ip} - {user} [{clf}] "GET {path}?page={p} HTTP/1.1" 200 {b} "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0""#, p = n % 9, b = 200 + n % 4000),
                Combined,
                NetworkHttp,
            ),
            3 => (
                format!(r#"time={iso} level=info msg="cache refreshed" entries={n} duration_ms={d}"#, d = n % 40),
                Logfmt,
                Generic,
            ),
            4 => (
                format!("<38>{bsd} {host} sshd[4242]: Accepted publickey for {user} from 192.0.2.{o} port 52144 ssh2", o = n % 200 + 1),
                Syslog,
                UserLogin,
            ),
            5 => (
                format!("{asctime} - payments - WARNING - Retrying charge for order {n} (attempt 2)"),
                Text,
                Generic,
            ),
            6 => (
                format!(r#"{{"timestamp":"{iso}","level":"WARN","message":"login failed for user {user}: bad password","user":"{user}","service":"auth","src_ip":"{ip}"}}"#),
                Json,
                UserLogin,
            ),
            7 => (
                format!(r#"<165>1 {iso} {host} billing 812 ID47 [meta@32473 tenant="acme"] invoice {n} sent"#),
                Syslog,
                Generic,
            ),
            8 => (
                format!("{iso} INFO GET /health 200 {d}ms", d = n % 9 + 1),
                Text,
                NetworkHttp,
            ),
            9 => (
                format!(r#"{ip} - - [{clf}] "POST /api/pay HTTP/1.1" 502 157 "-" "okhttp/4.12.0""#),
                Combined,
                NetworkHttp,
            ),
            _ => (
                format!(r#"{{"time":"{iso}","level":"info","msg":"user {user} logged out","service":"web"}}"#),
                Json,
                UserLogout,
            ),
        }
    };
    Sample {
        text,
        format,
        event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{render, Context, Options, ParseMode, Parser};

    #[test]
    fn every_shape_is_detected_and_classified_as_promised() {
        let parser = Parser::new(ParseMode::Auto, None).expect("auto");
        let now = time::parse_str("2026-12-02T02:30:57.123456Z").expect("now");
        for n in 0..(SHAPES * TRACE_EVERY) {
            let s = sample(n, now, "web-1", true);
            let mut buf = Vec::new();
            let r = render(
                &parser,
                Some(s.text.as_bytes()),
                Context::default(),
                &Options::default(),
                now,
                &mut buf,
            );
            assert_eq!(
                (r.format, r.event_type, r.parse_error),
                (s.format, s.event_type, None),
                "{}",
                s.text
            );
            assert!(r.line_time.is_some(), "{}", s.text);
        }
    }
}

/// `cargo test -p redtail-parse readme_examples -- --ignored --nocapture` prints the
/// README's Parsing examples (one line of each format and its event).
#[cfg(test)]
mod readme {
    use super::*;
    use crate::{render, Context, Options, ParseMode, Parser};

    #[test]
    #[ignore]
    fn readme_examples() {
        let parser = Parser::new(ParseMode::Auto, None).expect("auto");
        let now = time::parse_str("2026-12-02T02:30:57.123456Z").expect("now");
        let ctx = Context {
            source: Some("shop-7d9f-x2x4z"),
            collected: Some(now),
            ..Context::default()
        };
        for n in [0, 1, 2, 3, 4, 6, 8, 10, 36] {
            let s = sample(n, now, "web-1", true);
            let mut buf = Vec::new();
            render(
                &parser,
                Some(s.text.as_bytes()),
                ctx,
                &Options::default(),
                now,
                &mut buf,
            );
            println!("{}\n{}", s.text, String::from_utf8_lossy(&buf));
        }
    }
}
