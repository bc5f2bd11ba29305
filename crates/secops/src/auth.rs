//! OAuth2 access tokens: a service-account key (RS256 JWT-bearer grant, RFC 7523, at the
//! key's `token_uri`) or the GCE/GKE metadata server (Workload Identity).
//!
//! The token is cached and refreshed [`REFRESH_MARGIN`] before it expires, so a request never
//! leaves with a token about to die in flight. Neither the token nor the key is ever logged:
//! both live in [`Secret`], whose `Debug` prints nothing.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;

use crate::http::{Call, HttpClient};
use crate::SecopsError;

/// Refresh this long before expiry (the interface asks for at least 300 s).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Lifetime asked for in the JWT (Google's maximum).
const ASSERTION_LIFETIME_S: i64 = 3600;

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The fields of a service-account key file we use.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: String,
}

/// A parsed service-account key.
pub struct ServiceAccount {
    pub client_email: String,
    pub token_uri: String,
    key_id: Option<String>,
    key: RsaKeyPair,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads and checks a key file; errors describe the file, never its content.
    pub fn from_file(path: &Path) -> Result<Self, SecopsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SecopsError::Credentials(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_json(&text).map_err(|e| match e {
            SecopsError::Credentials(m) => {
                SecopsError::Credentials(format!("{}: {m}", path.display()))
            }
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<Self, SecopsError> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            // serde_json's message names a position, never the value.
            SecopsError::Credentials(format!("not a service-account key file ({e})"))
        })?;
        if let Some(kind) = file.kind.as_deref() {
            if kind != "service_account" {
                return Err(SecopsError::Credentials(format!(
                    "expected \"type\": \"service_account\", got {kind:?}"
                )));
            }
        }
        let der = pem_pkcs8(&file.private_key).ok_or_else(|| {
            SecopsError::Credentials("private_key is not a PEM PKCS#8 private key".into())
        })?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            SecopsError::Credentials(format!("private_key is not a usable RSA key ({e})"))
        })?;
        if !file.token_uri.starts_with("https://") && !file.token_uri.starts_with("http://") {
            return Err(SecopsError::Credentials(
                "token_uri is not an http(s) URL".into(),
            ));
        }
        Ok(ServiceAccount {
            client_email: file.client_email,
            token_uri: file.token_uri,
            key_id: file.private_key_id,
            key,
        })
    }

    /// The signed JWT of the grant: `iss` the account, `aud` the token URI, one hour.
    pub fn assertion(&self, scope: &str, now_s: i64) -> Result<Secret, SecopsError> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = serde_json::Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now_s,
            "exp": now_s + ASSERTION_LIFETIME_S,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SecopsError::Token("signing the JWT failed".into()))?;
        Ok(Secret(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// The DER inside `-----BEGIN PRIVATE KEY-----` … `-----END PRIVATE KEY-----`.
fn pem_pkcs8(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem[start..].find("-----END PRIVATE KEY-----")? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

/// Where tokens come from.
pub enum TokenSource {
    ServiceAccount(Box<ServiceAccount>),
    /// Base URL of the metadata server.
    Metadata(String),
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: Option<u64>,
}

/// A cached access token, refreshed ahead of expiry.
pub struct TokenProvider {
    source: TokenSource,
    scope: &'static str,
    cached: Option<(Secret, Instant)>,
}

impl TokenProvider {
    pub fn new(source: TokenSource, scope: &'static str) -> Self {
        TokenProvider {
            source,
            scope,
            cached: None,
        }
    }

    /// A token valid for at least [`REFRESH_MARGIN`] more.
    pub async fn token(&mut self, http: &mut HttpClient) -> Result<Secret, SecopsError> {
        if let Some((token, expires)) = &self.cached {
            if Instant::now() + REFRESH_MARGIN < *expires {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.fetch(http).await?;
        self.cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Forgets the cached token (after a 401): the next [`TokenProvider::token`] fetches one.
    pub fn invalidate(&mut self) {
        self.cached = None;
    }

    async fn fetch(&self, http: &mut HttpClient) -> Result<(Secret, Duration), SecopsError> {
        let reply = match &self.source {
            TokenSource::ServiceAccount(sa) => {
                let assertion = sa.assertion(self.scope, chrono::Utc::now().timestamp())?;
                let body = format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
                    assertion.expose()
                );
                http.send(Call {
                    method: Method::POST,
                    url: &sa.token_uri,
                    headers: vec![(
                        "content-type",
                        "application/x-www-form-urlencoded".to_string(),
                    )],
                    body: Bytes::from(body),
                })
                .await
            }
            TokenSource::Metadata(base) => {
                let url = format!(
                    "{}/computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
                    base.trim_end_matches('/'),
                    self.scope
                );
                http.send(Call {
                    method: Method::GET,
                    url: &url,
                    headers: vec![("metadata-flavor", "Google".to_string())],
                    body: Bytes::new(),
                })
                .await
            }
        }
        .map_err(|e| SecopsError::Token(e.to_string()))?;
        if !reply.status.is_success() {
            // The body of a refused grant says why (`invalid_grant`, …) and holds no secret.
            let detail = format!(
                "{} from the token endpoint: {}",
                reply.status.as_u16(),
                reply.detail()
            );
            return Err(
                if reply.status.is_client_error() && reply.status.as_u16() != 429 {
                    SecopsError::TokenRefused(detail)
                } else {
                    SecopsError::Token(detail)
                },
            );
        }
        let parsed: TokenReply = serde_json::from_slice(&reply.body)
            .map_err(|_| SecopsError::Token("the token reply is not the JSON expected".into()))?;
        if parsed.access_token.is_empty() {
            return Err(SecopsError::Token(
                "the token reply has an empty token".into(),
            ));
        }
        // No expiry given: assume the shortest lifetime Google hands out that still beats the
        // refresh margin, rather than caching forever.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(600));
        Ok((Secret(parsed.access_token), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("ya29.very-secret".into());
        assert_eq!(format!("{s:?}"), "Secret(…)");
    }

    #[test]
    fn rejects_what_is_not_a_key_without_echoing_it() {
        let err = ServiceAccount::from_json(
            r#"{"client_email":"a","private_key":"hunter2","token_uri":"https://t"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PEM PKCS#8"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = ServiceAccount::from_json(r#"{"type":"authorized_user"}"#).unwrap_err();
        assert_eq!(err.reason(), "credentials");
    }
}
