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

mod handler;
pub mod rig;

use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
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

pub(crate) fn lines_of(v: &Value) -> Vec<Vec<u8>> {
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
pub(crate) struct State {
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) rules: Rules,
    pub(crate) seen: Vec<Seen>,
    pub(crate) tokens: HashSet<String>,
    pub(crate) issued: Vec<String>,
    pub(crate) token_requests: u32,
    pub(crate) jwt_errors: Vec<String>,
    pub(crate) token_lifetime_s: u64,
    /// (redis URL, stream, group) probed at each import.
    pub(crate) probe: Option<(String, String, String)>,
    pub(crate) log_types: Vec<String>,
    pub(crate) expected_scope: String,
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
                                Ok::<_, std::convert::Infallible>(
                                    handler::handle(req, st, pk, addr).await,
                                )
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
