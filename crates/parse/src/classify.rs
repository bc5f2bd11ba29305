//! `metadata.event_type` from what a line says: a login, a logout, an HTTP request, or
//! else a generic event. Deliberately conservative: a wrong `USER_LOGIN` pollutes a SIEM's
//! authentication analytics more than a `GENERIC_EVENT` that could have been one.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::bytes::RegexSet;

use crate::record::Record;

/// UDM `metadata.event_type` values this project emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserLogin,
    UserLogout,
    NetworkHttp,
    Generic,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::UserLogin,
        EventType::UserLogout,
        EventType::NetworkHttp,
        EventType::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserLogin => "USER_LOGIN",
            EventType::UserLogout => "USER_LOGOUT",
            EventType::NetworkHttp => "NETWORK_HTTP",
            EventType::Generic => "GENERIC_EVENT",
        }
    }
}

/// UDM `SecurityResult.Action` values this project emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Block => "BLOCK",
        }
    }
}

/// What the classification adds to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification<'a> {
    pub event_type: EventType,
    pub action: Option<Action>,
    /// The user logging in or out (`target.user.userid`).
    pub user: Option<Cow<'a, str>>,
    /// Where a login came from (sshd's `from 192.0.2.10`), for `principal.ip`.
    pub login_ip: Option<Cow<'a, str>>,
}

/// Words that mark a failed login, a login, a logout (ASCII-lowercased message; first match
/// of the first list that matches wins, failures before successes: "login failed").
const LOGIN_FAILED: &[&str] = &[
    "failed password",
    "failed login",
    "login failed",
    "login failure",
    "failed to log in",
    "authentication failed",
    "authentication failure",
    "invalid password",
    "invalid credentials",
    "bad password",
    "invalid user",
];
const LOGIN_OK: &[&str] = &[
    "logged in",
    "login succeeded",
    "login successful",
    "successful login",
    "successfully authenticated",
    "accepted password",
    "accepted publickey",
    "accepted keyboard-interactive",
    "signed in",
    "user login",
];
const LOGOUT: &[&str] = &[
    "logged out",
    "logout",
    "log out",
    "signed out",
    "signed off",
];

/// Only the head of a message is searched: a login is said at once, and a megabyte of stack
/// trace must not cost a megabyte of scanning.
const SEARCH_BYTES: usize = 512;

const HTTP_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// Decides the event type; fills `record.http` from a message like `GET /path 200 12ms`.
pub fn classify<'a>(record: &mut Record<'a>) -> Classification<'a> {
    // Owned messages (unescaped JSON strings, joined multi-line events) are copied, at most
    // SEARCH_BYTES of them, so what is found can be stored in the record.
    let head: Cow<'a, str> = match &record.message {
        Some(Cow::Borrowed(m)) => Cow::Borrowed(head_of(m)),
        Some(Cow::Owned(m)) => Cow::Owned(head_of(m).to_string()),
        None => Cow::Borrowed(""),
    };
    let own = |s: &str| -> Cow<'a, str> {
        match &head {
            Cow::Borrowed(h) => {
                // `s` is a slice of `h`: re-slice the borrowed head for the 'a lifetime.
                let start = s.as_ptr() as usize - h.as_ptr() as usize;
                Cow::Borrowed(&h[start..start + s.len()])
            }
            Cow::Owned(_) => Cow::Owned(s.to_string()),
        }
    };
    // A request line that says "login" in its URL is still an HTTP request.
    if !has_request(record) {
        if let Some((method, url, status)) = request_in(&head) {
            record.http.method.get_or_insert_with(|| own(method));
            record.http.url.get_or_insert_with(|| own(url));
            if record.http.status.is_none() {
                record.http.status = status;
            }
        }
    }
    if has_request(record) {
        return Classification {
            event_type: EventType::NetworkHttp,
            action: None,
            user: None,
            login_ip: None,
        };
    }
    // One pass over the head for every phrase (ASCII case-insensitive).
    let matched = phrases().matches(head.as_bytes());
    let (event_type, action) = if matched.matched(0) {
        (EventType::UserLogin, Some(Action::Block))
    } else if matched.matched(1) {
        (EventType::UserLogin, Some(Action::Allow))
    } else if matched.matched(2) {
        (EventType::UserLogout, None)
    } else {
        return Classification {
            event_type: EventType::Generic,
            action: None,
            user: None,
            login_ip: None,
        };
    };
    let user = record.user.clone().or_else(|| user_in(&head).map(&own));
    let login_ip = ip_after_from(&head).map(&own);
    Classification {
        event_type,
        action,
        user,
        login_ip,
    }
}

/// The three phrase lists as one set: index 0 failed log-in, 1 log-in, 2 log-out.
fn phrases() -> &'static RegexSet {
    static SET: LazyLock<RegexSet> = LazyLock::new(|| {
        let alternation = |words: &[&str]| {
            let escaped: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
            format!("(?i-u){}", escaped.join("|"))
        };
        // Built from constant, escaped literals: it cannot fail to compile.
        RegexSet::new([
            alternation(LOGIN_FAILED),
            alternation(LOGIN_OK),
            alternation(LOGOUT),
        ])
        .expect("constant phrase patterns compile")
    });
    &SET
}

fn has_request(record: &Record<'_>) -> bool {
    record.http.method.is_some() && (record.http.url.is_some() || record.http.status.is_some())
}

fn head_of(s: &str) -> &str {
    let s = s.split('\n').next().unwrap_or(s);
    if s.len() <= SEARCH_BYTES {
        return s;
    }
    let mut end = SEARCH_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// "user NAME", "user=NAME", "for NAME from" (sshd), "user 'NAME'".
fn user_in(s: &str) -> Option<&str> {
    let words: Vec<&str> = s.split_whitespace().take(64).collect();
    for (i, w) in words.iter().enumerate() {
        let lw = w.to_ascii_lowercase();
        if lw.starts_with("user=") || lw.starts_with("username=") {
            let start = w.find('=').map_or(0, |p| p + 1);
            return clean(&w[start..]);
        }
        if matches!(lw.as_str(), "user" | "username" | "user:") {
            if let Some(name) = words.get(i + 1).and_then(|n| clean(n)) {
                return Some(name);
            }
        }
        if lw == "for" && words.get(i + 2).is_some_and(|f| *f == "from") {
            if let Some(name) = words.get(i + 1).and_then(|n| clean(n)) {
                return Some(name);
            }
        }
    }
    None
}

/// A user name token without quotes and trailing punctuation; not a keyword.
fn clean(w: &str) -> Option<&str> {
    let w = w.trim_matches(['\'', '"', '`', ',', '.', ';', ':', '(', ')', '[', ']']);
    let keyword = matches!(
        w.to_ascii_lowercase().as_str(),
        "" | "invalid" | "unknown" | "logged" | "login" | "from" | "for" | "has" | "is"
    );
    (!keyword && w.len() <= 128).then_some(w)
}

fn ip_after_from(s: &str) -> Option<&str> {
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        if w == "from" {
            let candidate = words.next()?.trim_end_matches([',', '.', ';']);
            return candidate.parse::<IpAddr>().is_ok().then_some(candidate);
        }
    }
    None
}

/// `GET /path 200`, `"POST /api HTTP/1.1" 201`: (method, url, status).
fn request_in(s: &str) -> Option<(&str, &str, Option<u16>)> {
    let mut words = s.split_whitespace().take(32).peekable();
    while let Some(w) = words.next() {
        let method = w.trim_start_matches('"');
        if !HTTP_METHODS.contains(&method) {
            continue;
        }
        let url = words.peek()?.trim_end_matches('"');
        if !(url.starts_with('/') || url.starts_with("http://") || url.starts_with("https://")) {
            continue;
        }
        words.next();
        let status = words
            .take(2)
            .map(|w| w.trim_matches(['"', ',', '(', ')']))
            .find_map(|w| {
                (w.len() == 3)
                    .then(|| w.parse::<u16>().ok())
                    .flatten()
                    .filter(|c| (100..=599).contains(c))
            });
        return Some((method, url, status));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;

    fn of(message: &str) -> (Classification<'_>, Record<'_>) {
        let mut r = Record::new(Format::Text);
        r.message = Some(Cow::Borrowed(message));
        let c = classify(&mut r);
        (c, r)
    }

    #[test]
    fn logins_logouts_and_requests() {
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            (
                "user alice logged in",
                "USER_LOGIN",
                Some("ALLOW"),
                Some("alice"),
            ),
            (
                "Login failed for user 'bob': bad password",
                "USER_LOGIN",
                Some("BLOCK"),
                Some("bob"),
            ),
            // OpenSSH sshd, as in /var/log/auth.log.
            (
                "Accepted publickey for alice from 192.0.2.10 port 52144 ssh2",
                "USER_LOGIN",
                Some("ALLOW"),
                Some("alice"),
            ),
            (
                "Failed password for invalid user admin from 203.0.113.9 port 4242 ssh2",
                "USER_LOGIN",
                Some("BLOCK"),
                Some("admin"),
            ),
            ("user=carol logged out", "USER_LOGOUT", None, Some("carol")),
            ("GET /api/orders 200 12ms", "NETWORK_HTTP", None, None),
            ("\"POST /login HTTP/1.1\" 302", "NETWORK_HTTP", None, None),
            ("GET /logout 200", "NETWORK_HTTP", None, None),
            ("Connection pool low", "GENERIC_EVENT", None, None),
            ("GET is a verb", "GENERIC_EVENT", None, None),
        ];
        for (message, want, action, user) in cases {
            let (c, _) = of(message);
            assert_eq!(c.event_type.as_str(), *want, "{message}");
            assert_eq!(c.action.map(Action::as_str), *action, "{message}");
            assert_eq!(c.user.as_deref(), *user, "{message}");
        }
        let (c, r) = of("GET /api/orders?id=1 404 3ms");
        assert_eq!(c.event_type, EventType::NetworkHttp);
        assert_eq!(r.http.url.as_deref(), Some("/api/orders?id=1"));
        assert_eq!(r.http.status, Some(404));
        let (c, _) = of("Accepted password for alice from 192.0.2.10 port 22 ssh2");
        assert_eq!(c.login_ip.as_deref(), Some("192.0.2.10"));
    }

    #[test]
    fn an_access_log_request_to_login_is_http() {
        let mut r = Record::new(Format::Combined);
        r.http.method = Some("POST".into());
        r.http.url = Some("/login".into());
        r.message = Some("1.2.3.4 - - [..] \"POST /login HTTP/1.1\" 200 5 user logged in".into());
        assert_eq!(classify(&mut r).event_type, EventType::NetworkHttp);
    }
}
