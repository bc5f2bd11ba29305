//! The stub's request handling: token grants, the metadata server, log types, imports.

use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::{lines_of, Fault, Seen, State, CLIENT_EMAIL};

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

pub(crate) async fn handle(
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
