//! The admin HTTP server: `/metrics`, `/healthz`, `/readyz`.
//!
//! It listens on a port reachable by anything in the cluster network, so it is built to shrug
//! off misbehaving clients: every connection runs on its own task (a slow client never stalls
//! the accept loop), headers must arrive within [`HEADER_READ_TIMEOUT`] (slowloris), header size
//! is capped, at most [`MAX_CONNECTIONS`] are served at once, and hyper answers malformed
//! requests with 400 itself.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::readiness::{Liveness, Readiness};
use crate::shutdown::Shutdown;

/// Longest time a client may take to send a request's headers (also the keep-alive idle limit,
/// since hyper restarts the timer while waiting for the next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted request head; our endpoints need a few hundred bytes.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Connections served at once; more are closed on accept. Scrapers and probes need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// How long in-flight requests get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Everything the endpoints report on. Cheap to clone: every field is shared.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Rendered by `/metrics`.
    pub registry: Registry,
    /// Decides `/readyz`.
    pub readiness: Readiness,
    /// Decides `/healthz`.
    pub liveness: Liveness,
}

/// Binds the admin listener now, so a bad or busy address fails at start-up (before any work
/// begins) and port 0 resolves to a real port the caller can log.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves, then gives in-flight
/// requests a second (`DRAIN_TIMEOUT`) to finish and returns.
pub async fn serve(listener: TcpListener, state: AdminState, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let (close_all, closing) = Shutdown::new();
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Admin server listening.");
    }

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                        tracing::debug!(%peer, "Admin connection limit reached; closing connection.");
                        continue;
                    };
                    let state = state.clone();
                    let closing = closing.clone();
                    connections.spawn(async move {
                        serve_connection(stream, peer, state, closing).await;
                        drop(permit);
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Admin server cannot accept a connection.");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }

    drop(listener);
    close_all.trigger();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            remaining = connections.len(),
            "Admin connections still open after the drain timeout; closing them."
        );
        connections.shutdown().await;
    }
    tracing::debug!("Admin server stopped.");
}

/// Drives one HTTP/1 connection; on shutdown, lets the current request finish, then closes.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: AdminState,
    closing: Shutdown,
) {
    let service = service_fn(move |req| {
        let response = respond(&req, &state);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(32);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = closing.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        // Timeouts, resets and garbage from clients are routine on an open port.
        tracing::debug!(%peer, error = %err, "Admin connection ended with an error.");
    }
}

/// Routes one request. Synchronous: every answer is computed from in-memory state.
fn respond(req: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(StatusCode::NOT_FOUND, "not found".to_string());
    }
    if req.method() != Method::GET {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".to_string(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match path {
        "/metrics" => metrics(&state.registry),
        "/healthz" => match state.liveness.check() {
            Ok(()) => text(StatusCode::OK, "ok".to_string()),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
        },
        _ => match state.readiness.check() {
            Ok(()) => text(StatusCode::OK, "ready".to_string()),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
        },
    }
}

fn metrics(registry: &Registry) -> Response<Full<Bytes>> {
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(16 * 1024);
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        Err(err) => {
            tracing::warn!(error = %err, "Cannot encode metrics.");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode metrics".to_string(),
            )
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;
