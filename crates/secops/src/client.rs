//! One attempt at the API and the verdict of the retry matrix on its reply.
//!
//! The matrix (INTERFACE.md): 2xx accepted; 401 refresh the token once and resend; 408, 429
//! (with `Retry-After`), 5xx, timeouts and connection errors: back off and resend; 413 and
//! 400 (and any other 4xx): split, down to the refused entry; 403 and 404: not ready, a
//! configuration error, retried slowly.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use hyper::{Method, StatusCode};

use crate::auth::TokenProvider;
use crate::envelope::{import_url, log_types_url};
use crate::http::{Call, HttpClient, Reply};
use crate::metrics::SinkMetrics;
use crate::{Api, SecopsConfig, SecopsError};

/// What to do with the part that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The API refused the content (400, 413, other 4xx): split it, or dead-letter a single
    /// entry with `reason`.
    Refused {
        retry_reason: &'static str,
        reason: String,
    },
    /// Transient: send the same bytes again after a backoff (at least `after` if given).
    Retry {
        reason: &'static str,
        after: Option<Duration>,
        detail: String,
    },
    /// The API will not take anything from us as configured (403, 404, 401 after a refresh).
    NotReady {
        detail: String,
    },
}

pub struct ApiClient {
    http: HttpClient,
    tokens: TokenProvider,
    url: String,
    gzip: bool,
    metrics: SinkMetrics,
}

impl ApiClient {
    pub fn new(
        cfg: &SecopsConfig,
        tokens: TokenProvider,
        metrics: SinkMetrics,
    ) -> Result<Self, SecopsError> {
        Ok(ApiClient {
            http: HttpClient::new(cfg.request_timeout)?,
            tokens,
            url: import_url(cfg),
            gzip: cfg.gzip,
            metrics,
        })
    }

    /// Posts `body` (uncompressed JSON); a 401 is answered here with one token refresh.
    pub async fn post(&mut self, body: &[u8]) -> Verdict {
        let payload = match self.encode(body) {
            Ok(p) => p,
            Err(e) => {
                return Verdict::Retry {
                    reason: "connection",
                    after: None,
                    detail: e,
                }
            }
        };
        let mut refreshed = false;
        loop {
            let token = match self.tokens.token(&mut self.http).await {
                Ok(t) => t,
                Err(e) => return token_verdict(e),
            };
            let mut headers = vec![
                ("authorization", format!("Bearer {}", token.expose())),
                ("content-type", "application/json".to_string()),
            ];
            if self.gzip {
                headers.push(("content-encoding", "gzip".to_string()));
            }
            let started = Instant::now();
            let reply = self
                .http
                .send(Call {
                    method: Method::POST,
                    url: &self.url,
                    headers,
                    body: payload.clone(),
                })
                .await;
            self.metrics
                .request_duration
                .observe(started.elapsed().as_secs_f64());
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    self.metrics.requests.with_label_values(&["error"]).inc();
                    let text = e.to_string();
                    let reason = if text.contains("no reply within") {
                        "timeout"
                    } else {
                        "connection"
                    };
                    return Verdict::Retry {
                        reason,
                        after: None,
                        detail: text,
                    };
                }
            };
            self.metrics
                .requests
                .with_label_values(&[reply.status.as_str()])
                .inc();
            if reply.status == StatusCode::UNAUTHORIZED && !refreshed {
                self.metrics
                    .retries
                    .with_label_values(&["unauthorized"])
                    .inc();
                self.tokens.invalidate();
                refreshed = true;
                continue;
            }
            return classify(&reply);
        }
    }

    fn encode(&self, body: &[u8]) -> Result<Bytes, String> {
        if !self.gzip {
            return Ok(Bytes::copy_from_slice(body));
        }
        // flate2's header has mtime 0 and no name: the same input gives the same bytes.
        let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
        enc.write_all(body).map_err(|e| format!("gzip: {e}"))?;
        enc.finish()
            .map(Bytes::from)
            .map_err(|e| format!("gzip: {e}"))
    }

    /// Startup check: list the log types (confirms credentials, instance and, for `logs` and
    /// `legacy`, that the log type exists). Transient failures come back as `Retry`.
    pub async fn check(&mut self, cfg: &SecopsConfig) -> Result<(), Verdict> {
        let mut url = log_types_url(cfg);
        let wanted = cfg.log_type.clone().filter(|_| cfg.api != Api::Events);
        for _page in 0..50 {
            let token = self
                .tokens
                .token(&mut self.http)
                .await
                .map_err(token_verdict)?;
            let reply = self
                .http
                .send(Call {
                    method: Method::GET,
                    url: &url,
                    headers: vec![("authorization", format!("Bearer {}", token.expose()))],
                    body: Bytes::new(),
                })
                .await
                .map_err(|e| Verdict::Retry {
                    reason: "connection",
                    after: None,
                    detail: e.to_string(),
                })?;
            match classify(&reply) {
                Verdict::Accepted => {}
                Verdict::Refused { reason, .. } => {
                    return Err(Verdict::NotReady { detail: reason })
                }
                other => return Err(other),
            }
            let page: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            let Some(wanted) = &wanted else { return Ok(()) };
            let found = page["logTypes"].as_array().is_some_and(|types| {
                types.iter().any(|t| {
                    let name = t["name"]
                        .as_str()
                        .or_else(|| t["logType"].as_str())
                        .unwrap_or("");
                    name == wanted || name.ends_with(&format!("/logTypes/{wanted}"))
                })
            });
            if found {
                return Ok(());
            }
            match page["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
                Some(next) => url = format!("{}&pageToken={next}", log_types_url(cfg)),
                None => {
                    return Err(Verdict::NotReady {
                        detail: format!("log type {wanted:?} is not among the instance's log types (REDTAIL_SECOPS_LOG_TYPE)"),
                    })
                }
            }
        }
        Err(Verdict::NotReady {
            detail: "the log type list did not end after 50 pages".into(),
        })
    }
}

/// A refused grant will not fix itself (not ready, no aging); anything else is transient.
fn token_verdict(e: SecopsError) -> Verdict {
    match e {
        SecopsError::TokenRefused(_) => Verdict::NotReady {
            detail: e.to_string(),
        },
        other => Verdict::Retry {
            reason: "token",
            after: None,
            detail: other.to_string(),
        },
    }
}

/// The retry matrix on one reply (401 reaches here only after the refresh).
pub fn classify(reply: &Reply) -> Verdict {
    let code = reply.status.as_u16();
    match code {
        200..=299 => Verdict::Accepted,
        408 | 429 => Verdict::Retry {
            reason: "throttled",
            after: reply.retry_after,
            detail: format!("{code} {}", reply.detail()),
        },
        500..=599 => Verdict::Retry {
            reason: "server",
            after: reply.retry_after,
            detail: format!("{code} {}", reply.detail()),
        },
        401 | 403 | 404 => Verdict::NotReady {
            detail: format!("{code} from SecOps: {}", reply.detail()),
        },
        413 => Verdict::Refused {
            retry_reason: "too_large",
            reason: format!("413 request too large: {}", reply.detail()),
        },
        _ => Verdict::Refused {
            retry_reason: "rejected",
            reason: format!("{code} refused by SecOps: {}", reply.detail()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, retry_after: Option<u64>) -> Reply {
        Reply {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
            body: Bytes::from_static(b"{\"error\":{\"message\":\"bad\nthing\"}}"),
        }
    }

    #[test]
    fn the_matrix() {
        assert_eq!(classify(&reply(200, None)), Verdict::Accepted);
        assert!(
            matches!(classify(&reply(429, Some(7))), Verdict::Retry { reason: "throttled", after: Some(d), .. } if d.as_secs() == 7)
        );
        assert!(matches!(
            classify(&reply(408, None)),
            Verdict::Retry {
                reason: "throttled",
                ..
            }
        ));
        assert!(matches!(
            classify(&reply(503, None)),
            Verdict::Retry {
                reason: "server",
                ..
            }
        ));
        assert!(matches!(
            classify(&reply(403, None)),
            Verdict::NotReady { .. }
        ));
        assert!(matches!(
            classify(&reply(404, None)),
            Verdict::NotReady { .. }
        ));
        assert!(matches!(
            classify(&reply(413, None)),
            Verdict::Refused {
                retry_reason: "too_large",
                ..
            }
        ));
        match classify(&reply(400, None)) {
            Verdict::Refused { reason, .. } => assert!(
                reason.starts_with("400") && !reason.contains('\n'),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
