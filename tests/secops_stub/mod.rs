//! A loopback stand-in for Google SecOps and its OAuth2 token endpoint, holding the sink to
//! the documented contract (not to Google's behaviour, which cannot be reached from here).
//!
//! - `POST /token`: RFC 7523 JWT-bearer grant. The JWT's RS256 signature is verified with
//!   the public half of the test key (derived by openssl, independently of the code under
//!   test), and its claims (`iss`, `aud` = this URL, `scope`, `iat`/`exp`) are checked.
//! - `GET /computeMetadata/v1/instance/service-accounts/default/token`: the metadata server
//!   (requires `Metadata-Flavor: Google`).
//! - `GET …/logTypes`, `GET /v2/logtypes`: the startup check.
//! - `POST …/logs:import`, `…/events:import`, `/v2/unstructuredlogentries:batchCreate`: every
//!   request is recorded (headers, body, SHA-256 of the body, the ids pending in Redis at
//!   that moment) and answered per the scripted faults.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

pub const CLIENT_EMAIL: &str = "redtail-test@stub-project.iam.gserviceaccount.com";

/// What the next import request gets (the queue is consumed front first).
#[derive(Debug, Clone)]
pub enum Fault {
    /// Revoke every token and answer 401.
    Unauthorized,
    /// This status, with `Retry-After: <s>` if given.
    Status(u16, Option<u64>),
    /// Never answer (within this long: longer than the client's timeout).
    Hang(Duration),
}

/// Standing rules, applied when no scripted fault is queued.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// 400 for any request containing a line with this text.
    pub reject_marker: Option<String>,
    /// 413 for any request with more entries than this.
    pub max_entries: Option<usize>,
    /// Answer every import with this status (403, 503, …).
    pub always: Option<u16>,
    /// Hold every import reply this long (a slow API).
    pub hold: Option<Duration>,
}

/// One import request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Decompressed when `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    pub raw_len: usize,
    pub hash: String,
    /// What the stub answered (0: nothing, a hang).
    pub status: u16,
    /// Stream ids pending in the consumer group when the request arrived.
    pub pending: Option<HashSet<String>>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// The lines carried, decoded (`logs`: base64 `data`; `legacy`: `log_text`; `events`: the
    /// UDM event's `metadata.description`).
    pub fn lines(&self) -> Vec<Vec<u8>> {
        lines_of(&self.json())
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn lines_of(v: &Value) -> Vec<Vec<u8>> {
    if let Some(logs) = v["inlineSource"]["logs"].as_array() {
        return logs
            .iter()
            .map(|l| {
                STANDARD
                    .decode(l["data"].as_str().unwrap_or(""))
                    .expect("data is base64")
            })
            .collect();
    }
    if let Some(events) = v["inlineSource"]["events"].as_array() {
        return events
            .iter()
            .map(|e| {
                e["udm"]["metadata"]["description"]
                    .as_str()
                    .unwrap_or("")
                    .as_bytes()
                    .to_vec()
            })
            .collect();
    }
    if let Some(entries) = v["entries"].as_array() {
        return entries
            .iter()
            .map(|e| e["log_text"].as_str().unwrap_or("").as_bytes().to_vec())
            .collect();
    }
    Vec::new()
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    rules: Rules,
    seen: Vec<Seen>,
    tokens: HashSet<String>,
    issued: Vec<String>,
    token_requests: u32,
    jwt_errors: Vec<String>,
    token_lifetime_s: u64,
    /// (redis URL, stream, group) probed at each import.
    probe: Option<(String, String, String)>,
    log_types: Vec<String>,
    expected_scope: String,
}

/// The running stub; stops on drop.
pub struct Stub {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    public_key: Arc<Vec<u8>>,
}

/// A fresh RSA test key: `(PKCS#8 PEM private key, PKCS#1 DER public key)`, made by openssl.
pub fn test_key(dir: &Path) -> (String, Vec<u8>) {
    let key = dir.join("test-only-key.pem");
    let public = dir.join("test-only-key.pub.der");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl genpkey")
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl rsa")
        .success();
    assert!(ok, "openssl rsa failed");
    let mut pem = String::new();
    std::fs::File::open(&key)
        .unwrap()
        .read_to_string(&mut pem)
        .unwrap();
    (pem, std::fs::read(&public).unwrap())
}

impl Stub {
    pub fn start(public_key: Vec<u8>, log_types: &[&str], scope: &str) -> Stub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind stub");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            token_lifetime_s: 3600,
            log_types: log_types.iter().map(|s| s.to_string()).collect(),
            expected_scope: scope.to_string(),
            ..State::default()
        }));
        let public_key = Arc::new(public_key);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = Arc::clone(&state);
        let pk = Arc::clone(&public_key);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = &mut stopped => return,
                        a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    };
                    let st = Arc::clone(&st);
                    let pk = Arc::clone(&pk);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let st = Arc::clone(&st);
                            let pk = Arc::clone(&pk);
                            async move {
                                Ok::<_, std::convert::Infallible>(handle(req, st, pk, addr).await)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
            });
        });
        Stub {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
            public_key,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    pub fn set_rules(&self, rules: Rules) {
        self.lock().rules = rules;
    }

    pub fn probe_pending(&self, redis_url: &str, stream: &str, group: &str) {
        self.lock().probe = Some((redis_url.into(), stream.into(), group.into()));
    }

    pub fn set_token_lifetime(&self, s: u64) {
        self.lock().token_lifetime_s = s;
    }

    /// Every import request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    pub fn token_requests(&self) -> u32 {
        self.lock().token_requests
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    pub fn jwt_errors(&self) -> Vec<String> {
        self.lock().jwt_errors.clone()
    }

    /// Lines of the accepted requests after de-duplicating bodies by hash, as SecOps does.
    pub fn delivered_lines(&self) -> Vec<Vec<u8>> {
        let mut hashes = HashSet::new();
        self.seen()
            .into_iter()
            .filter(|s| s.accepted() && hashes.insert(s.hash.clone()))
            .flat_map(|s| s.lines())
            .collect()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    public_key: Arc<Vec<u8>>,
    addr: SocketAddr,
) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());

    if method == "POST" && path == "/token" {
        let form = String::from_utf8_lossy(&raw).to_string();
        let token_uri = format!("http://{addr}/token");
        let scope = lock().expected_scope.clone();
        return match verify_grant(&form, &public_key, &token_uri, &scope) {
            Ok(()) => issue(&mut lock()),
            Err(e) => {
                lock().jwt_errors.push(e.clone());
                reply(
                    400,
                    json!({"error": "invalid_grant", "error_description": e}),
                )
            }
        };
    }
    if path.starts_with("/computeMetadata/v1/instance/service-accounts/default/token") {
        if header("metadata-flavor").as_deref() != Some("Google") {
            return reply(403, json!({"error": "missing Metadata-Flavor"}));
        }
        return issue(&mut lock());
    }
    let authorized = header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string))
        .is_some_and(|t| lock().tokens.contains(&t));
    if method == "GET" && (path.contains("/logTypes") || path == "/v2/logtypes") {
        if !authorized {
            return reply(401, json!({"error": {"code": 401}}));
        }
        let types = lock().log_types.clone();
        let list: Vec<Value> = if path == "/v2/logtypes" {
            types
                .iter()
                .map(|t| json!({"logType": t, "description": "stub"}))
                .collect()
        } else {
            let instance = path
                .trim_start_matches("/v1alpha/")
                .split("/logTypes")
                .next()
                .unwrap_or("")
                .to_string();
            types
                .iter()
                .map(|t| json!({"name": format!("{instance}/logTypes/{t}")}))
                .collect()
        };
        return reply(200, json!({ "logTypes": list }));
    }
    if method != "POST"
        || !(path.ends_with("/logs:import")
            || path.ends_with("/events:import")
            || path == "/v2/unstructuredlogentries:batchCreate")
    {
        return reply(404, json!({"error": "no such path in the stub"}));
    }

    let body = if header("content-encoding").as_deref() == Some("gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gzip body");
        out
    } else {
        raw.to_vec()
    };
    let hash = hex(ring::digest::digest(&ring::digest::SHA256, &raw).as_ref());
    let probe = lock().probe.clone();
    let pending = probe.map(|(url, stream, group)| pending_ids(&url, &stream, &group));
    let mut seen = Seen {
        method,
        path,
        headers,
        raw_len: raw.len(),
        body,
        hash,
        status: 0,
        pending,
        at: std::time::Instant::now(),
    };

    let (fault, rules) = {
        let mut st = lock();
        (
            if authorized {
                st.faults.pop_front()
            } else {
                None
            },
            st.rules.clone(),
        )
    };
    let lines = serde_json::from_slice::<Value>(&seen.body)
        .map(|v| lines_of(&v))
        .unwrap_or_default();
    let (status, retry_after, hang) = if !authorized {
        (401, None, None)
    } else {
        match fault {
            Some(Fault::Unauthorized) => {
                lock().tokens.clear();
                (401, None, None)
            }
            Some(Fault::Status(code, ra)) => (code, ra, None),
            Some(Fault::Hang(d)) => (0, None, Some(d)),
            None => {
                if let Some(code) = rules.always {
                    (code, None, None)
                } else if rules.max_entries.is_some_and(|m| lines.len() > m) {
                    (413, None, None)
                } else if rules.reject_marker.as_ref().is_some_and(|m| {
                    lines
                        .iter()
                        .any(|l| String::from_utf8_lossy(l).contains(m.as_str()))
                }) {
                    (400, None, None)
                } else {
                    (200, None, None)
                }
            }
        }
    };
    seen.status = status;
    lock().seen.push(seen);
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
        return reply(504, json!({}));
    }
    if let Some(d) = rules.hold {
        tokio::time::sleep(d).await;
    }
    let mut resp = reply(
        status,
        if status == 200 {
            json!({})
        } else {
            json!({"error": {"code": status, "message": "stub says no"}})
        },
    );
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.to_string().parse().unwrap());
    }
    resp
}

fn issue(st: &mut State) -> Response<Full<Bytes>> {
    st.token_requests += 1;
    let token = format!("ya29.stub-secret-{}-{:x}", st.token_requests, rand_u64());
    st.tokens.insert(token.clone());
    st.issued.push(token.clone());
    reply(
        200,
        json!({"access_token": token, "expires_in": st.token_lifetime_s, "token_type": "Bearer"}),
    )
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks the form and the JWT as Google's token endpoint would.
fn verify_grant(form: &str, public_key: &[u8], token_uri: &str, scope: &str) -> Result<(), String> {
    let mut grant = None;
    let mut assertion = None;
    for pair in form.split('&') {
        let (k, v) = pair.split_once('=').ok_or("form pair without =")?;
        match k {
            "grant_type" => grant = Some(v.replace("%3A", ":")),
            "assertion" => assertion = Some(v.to_string()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err(format!("grant_type {grant:?}"));
    }
    let jwt = assertion.ok_or("no assertion")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("JWT without three parts".into());
    }
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts[0])
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| e.to_string())?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    )
    .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
    .map_err(|_| "bad JWT signature".to_string())?;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts[1])
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp();
    let iat = claims["iat"].as_i64().ok_or("no iat")?;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if claims["iss"] != CLIENT_EMAIL {
        return Err(format!("iss {}", claims["iss"]));
    }
    if claims["aud"] != token_uri {
        return Err(format!("aud {} (want {token_uri})", claims["aud"]));
    }
    if claims["scope"] != scope {
        return Err(format!("scope {} (want {scope})", claims["scope"]));
    }
    if (iat - now).abs() > 300 || exp <= now || exp - iat > 3600 {
        return Err(format!("times iat {iat} exp {exp} now {now}"));
    }
    Ok(())
}

/// Every id pending in the group (XPENDING, extended form).
fn pending_ids(url: &str, stream: &str, group: &str) -> HashSet<String> {
    let Ok(client) = redis::Client::open(url) else {
        return HashSet::new();
    };
    let Ok(mut conn) = client.get_connection() else {
        return HashSet::new();
    };
    let reply: Result<Vec<(String, String, u64, u64)>, _> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(1_000_000)
        .query(&mut conn);
    reply
        .map(|r| r.into_iter().map(|(id, ..)| id).collect())
        .unwrap_or_default()
}

/// A service-account key file pointing at the stub.
pub fn key_file(dir: &Path, pem: &str, token_uri: &str) -> std::path::PathBuf {
    let path = dir.join("service-account.json");
    let v = json!({
        "type": "service_account",
        "project_id": "stub-project",
        "private_key_id": "test-only-key-1",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "token_uri": token_uri,
    });
    std::fs::write(&path, v.to_string()).unwrap();
    path
}
