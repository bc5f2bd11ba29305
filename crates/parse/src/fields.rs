//! Key aliases: which field of a structured line (JSON, logfmt, regex groups) feeds which
//! UDM slot. When several aliases of one slot are present, the earlier alias in the list wins
//! (`level` over `type`, as INTERFACE.md orders them) and the others stay in `additional`.

use std::borrow::Cow;

use crate::level::Level;
use crate::record::{FieldValue, Record};
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Time,
    Level,
    Message,
    Host,
    User,
    Service,
    Method,
    Url,
    Status,
    UserAgent,
    Referrer,
    ClientIp,
}

const SLOTS: usize = 12;

/// The slot and rank (lower wins) of a key, case-sensitive as the loggers write them.
fn slot_of(key: &str) -> Option<(Slot, u8)> {
    use Slot::*;
    Some(match key {
        "timestamp" => (Time, 0),
        "time" => (Time, 1),
        "ts" => (Time, 2),
        "@timestamp" => (Time, 3),
        "datetime" => (Time, 4),
        "level" => (Level, 0),
        "type" => (Level, 1),
        "severity" => (Level, 2),
        "lvl" => (Level, 3),
        "loglevel" => (Level, 4),
        "log.level" => (Level, 5),
        "levelname" => (Level, 6),
        "message" => (Message, 0),
        "msg" => (Message, 1),
        "log" => (Message, 2),
        "text" => (Message, 3),
        "host" => (Host, 0),
        "hostname" => (Host, 1),
        "user" => (User, 0),
        "username" => (User, 1),
        "user_id" => (User, 2),
        "userid" => (User, 3),
        "service" => (Service, 0),
        "app" => (Service, 1),
        "method" => (Method, 0),
        "http_method" => (Method, 1),
        "request_method" => (Method, 2),
        "url" => (Url, 0),
        "path" => (Url, 1),
        "uri" => (Url, 2),
        "request_uri" => (Url, 3),
        "status" => (Status, 0),
        "status_code" => (Status, 1),
        "response_code" => (Status, 2),
        "user_agent" => (UserAgent, 0),
        "http_user_agent" => (UserAgent, 1),
        "referrer" => (Referrer, 0),
        "referer" => (Referrer, 1),
        "http_referer" => (Referrer, 2),
        "src_ip" => (ClientIp, 0),
        "client_ip" => (ClientIp, 1),
        "remote_addr" => (ClientIp, 2),
        _ => return None,
    })
}

fn index(slot: Slot) -> usize {
    slot as usize
}

/// Collects a structured line's fields, then fills a [`Record`] with [`Fields::finish`].
pub(crate) struct Fields<'a> {
    best: [Option<(u8, Cow<'a, str>, FieldValue<'a>)>; SLOTS],
    record: Record<'a>,
}

impl<'a> Fields<'a> {
    pub fn new(record: Record<'a>) -> Self {
        Fields {
            best: Default::default(),
            record,
        }
    }

    /// The record being filled, for what a parser reads from the line's structure.
    pub fn record_mut(&mut self) -> &mut Record<'a> {
        &mut self.record
    }

    pub fn add(&mut self, key: Cow<'a, str>, value: FieldValue<'a>) {
        let Some((slot, rank)) = slot_of(&key).filter(|(slot, _)| fits(*slot, &value)) else {
            return self.record.push_field(key, value);
        };
        let cell = &mut self.best[index(slot)];
        match cell {
            Some((current, _, _)) if *current <= rank => self.record.push_field(key, value),
            _ => {
                if let Some((_, old_key, old_value)) = cell.replace((rank, key, value)) {
                    self.record.push_field(old_key, old_value);
                }
            }
        }
    }

    /// The record with every slot decoded. A value a slot cannot read (a timestamp in an
    /// unknown format, a status that is not a number) goes back to `additional` unchanged.
    pub fn finish(self) -> Record<'a> {
        let Fields { best, mut record } = self;
        let [time, level, message, host, user, service, method, url, status, ua, referrer, ip] =
            best;
        if let Some((_, key, value)) = time {
            match time_of(&value) {
                Some(t) => record.time = Some(t),
                None => record.push_field(key, value),
            }
        }
        // A value the parser set from the line's structure (a syslog header) wins over a field.
        fn keep<'a>(
            slot: &mut Option<Cow<'a, str>>,
            found: Option<(u8, Cow<'a, str>, FieldValue<'a>)>,
        ) {
            if slot.is_none() {
                *slot = found.map(|(_, _, v)| text(v));
            }
        }
        if record.level.is_none() {
            record.level = level.map(|(_, _, v)| Level::from_text(text(v)));
        }
        keep(&mut record.message, message);
        keep(&mut record.host, host);
        keep(&mut record.user, user);
        // INTERFACE.md keeps `service` in `additional` too (it names the product as well).
        if let Some((_, key, value)) = &service {
            record.push_field(key.clone(), value.clone());
        }
        keep(&mut record.service, service);
        keep(&mut record.http.method, method);
        keep(&mut record.http.url, url);
        if let Some((_, key, value)) = status {
            match text(value.clone()).trim().parse::<u16>() {
                Ok(code) if (100..=999).contains(&code) && record.http.status.is_none() => {
                    record.http.status = Some(code)
                }
                _ => record.push_field(key, value),
            }
        }
        keep(&mut record.http.user_agent, ua);
        keep(&mut record.http.referrer, referrer);
        keep(&mut record.http.client_ip, ip);
        record
    }
}

/// The rank of `key` as a time alias when `value` can feed the time slot (`None` when it
/// cannot): what [`Fields::add`] decides for that slot alone, for [`crate::json::time_of`].
pub(crate) fn time_rank(key: &str, value: &FieldValue<'_>) -> Option<u8> {
    match slot_of(key) {
        Some((Slot::Time, rank)) if fits(Slot::Time, value) => Some(rank),
        _ => None,
    }
}

/// Only scalars feed slots (an ECS `host: {"name": …}` object stays in `additional`); the
/// message takes anything, as its JSON text.
fn fits(slot: Slot, value: &FieldValue<'_>) -> bool {
    match value {
        FieldValue::Json(raw) => {
            let first = raw.get().as_bytes().first().copied().unwrap_or(b'n');
            match first {
                b'n' => false,
                b'{' | b'[' => slot == Slot::Message,
                _ => true,
            }
        }
        _ => true,
    }
}

pub(crate) fn time_of(value: &FieldValue<'_>) -> Option<chrono::DateTime<chrono::Utc>> {
    match value {
        FieldValue::Str(s) => time::from_field_text(s),
        FieldValue::Int(n) => time::from_epoch(*n as f64),
        FieldValue::Json(raw) => {
            let s = raw.get();
            if s.starts_with('"') {
                time::from_field_text(&json_str(raw))
            } else {
                time::from_epoch(s.parse().ok()?)
            }
        }
    }
}

/// A value as text: strings decoded (borrowed when they hold no escape), others as written.
fn text(value: FieldValue<'_>) -> Cow<'_, str> {
    match value {
        FieldValue::Str(s) => s,
        FieldValue::Int(n) => Cow::Owned(n.to_string()),
        FieldValue::Json(raw) => {
            if raw.get().starts_with('"') {
                json_str(raw)
            } else {
                Cow::Borrowed(raw.get())
            }
        }
    }
}

/// A JSON string's content, borrowed from the line when it has no escape sequence.
pub(crate) fn json_str(raw: &serde_json::value::RawValue) -> Cow<'_, str> {
    let s = raw.get();
    let inner = &s[1..s.len().saturating_sub(1).max(1)];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    // The raw value came from serde_json itself, so it is a well-formed string.
    Cow::Owned(serde_json::from_str::<String>(s).unwrap_or_else(|_| inner.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;

    #[test]
    fn earlier_alias_wins_and_losers_stay() {
        let mut f = Fields::new(Record::new(Format::Logfmt));
        f.add("type".into(), FieldValue::Str("INFO".into()));
        f.add("level".into(), FieldValue::Str("ERROR".into()));
        f.add("severity".into(), FieldValue::Str("DEBUG".into()));
        f.add("ts".into(), FieldValue::Str("not a time".into()));
        f.add("status".into(), FieldValue::Str("abc".into()));
        f.add("msg".into(), FieldValue::Str("hello".into()));
        f.add("service".into(), FieldValue::Str("shop".into()));
        let r = f.finish();
        assert_eq!(r.level.expect("level").written, "ERROR");
        assert_eq!(r.message.as_deref(), Some("hello"));
        let keys: Vec<_> = r.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["type", "severity", "ts", "service", "status"]);
        assert_eq!(r.service.as_deref(), Some("shop"));
    }
}
