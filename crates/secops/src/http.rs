//! A small HTTP/1.1 client: one kept-alive connection per authority, rustls for `https`.
//!
//! Why not reqwest: the tree already has hyper 1, rustls 0.23 (ring) and webpki-roots; the
//! sink sends one request at a time, so a pool, redirects, cookies and proxies would be
//! weight without use. Every call has one deadline covering connect, TLS, send and the whole
//! reply, so "a reply that never comes" is a timeout like any other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::SecopsError;

/// Longest reply body read: error details and token replies are small; a stub or a proxy
/// answering with megabytes must not make the sink buffer them.
const MAX_REPLY_BYTES: usize = 1 << 20;

/// One reply.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `Retry-After` in seconds, when given as seconds (the form Google uses).
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Reply {
    /// The start of the body on one line, for logs and dead-letter reasons.
    pub fn detail(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        line.chars().take(300).collect()
    }
}

/// A request to send.
pub struct Call<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

pub struct HttpClient {
    tls: TlsConnector,
    timeout: Duration,
    /// Live connections by `scheme://host:port`. A failed call removes its entry.
    conns: HashMap<String, SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Result<Self, SecopsError> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SecopsError::Config(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpClient {
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
            conns: HashMap::new(),
        })
    }

    /// Sends `call` and reads the whole reply within the client's timeout.
    pub async fn send(&mut self, call: Call<'_>) -> Result<Reply, SecopsError> {
        let uri: Uri = call
            .url
            .parse()
            .map_err(|e| SecopsError::Http(format!("bad URL: {e}")))?;
        let (key, host, port, tls) = authority(&uri)?;
        let result = tokio::time::timeout(
            self.timeout,
            self.send_on(&key, &host, port, tls, &uri, call),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SecopsError::Http(format!(
                "no reply within {} ms",
                self.timeout.as_millis()
            )))
        });
        if result.is_err() {
            // A timed-out or broken connection may still carry a late reply: never reuse it.
            self.conns.remove(&key);
        }
        result
    }

    async fn send_on(
        &mut self,
        key: &str,
        host: &str,
        port: u16,
        tls: bool,
        uri: &Uri,
        call: Call<'_>,
    ) -> Result<Reply, SecopsError> {
        let mut sender = match self.conns.remove(key) {
            Some(s) if !s.is_closed() => s,
            _ => self.connect(host, port, tls).await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| SecopsError::Http(format!("connection: {e}")))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let host_header = if (tls && port == 443) || (!tls && port == 80) {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let mut builder = Request::builder()
            .method(call.method)
            .uri(path)
            .header("host", host_header);
        for (name, value) in &call.headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder
            .body(Full::new(call.body))
            .map_err(|e| SecopsError::Http(format!("building the request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SecopsError::Http(format!("sending: {e}")))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
            .map_err(|e| SecopsError::Http(format!("reading the reply: {e}")))?
            .to_bytes();
        self.conns.insert(key.to_string(), sender);
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    async fn connect(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<SendRequest<Full<Bytes>>, SecopsError> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| SecopsError::Http(format!("connecting to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if tls {
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| SecopsError::Http(format!("TLS name {host:?}: {e}")))?;
            let stream = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| SecopsError::Http(format!("TLS with {host}: {e}")))?;
            handshake(TokioIo::new(stream)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Full<Bytes>>, SecopsError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| SecopsError::Http(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        // Ends when the connection closes; the error, if any, surfaces on the next send.
        let _ = conn.await;
    });
    Ok(sender)
}

/// `(key, host, port, tls)` of an absolute `http`/`https` URL.
fn authority(uri: &Uri) -> Result<(String, String, u16, bool), SecopsError> {
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(SecopsError::Http(format!("not an http(s) URL: {uri}"))),
    };
    let host = uri
        .host()
        .ok_or_else(|| SecopsError::Http(format!("URL without a host: {uri}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let key = format!("{}://{host}:{port}", if tls { "https" } else { "http" });
    Ok((key, host, port, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        let a = authority(&"https://x.googleapis.com/v1/a".parse().unwrap()).unwrap();
        assert_eq!(
            a,
            (
                "https://x.googleapis.com:443".into(),
                "x.googleapis.com".into(),
                443,
                true
            )
        );
        let a = authority(&"http://127.0.0.1:8080/t".parse().unwrap()).unwrap();
        assert_eq!(a.2, 8080);
        assert!(!a.3);
        assert!(authority(&"ftp://x/".parse().unwrap()).is_err());
    }

    /// A server that accepts and never answers: the call ends at the deadline (virtual time,
    /// so the test takes no real 30 s).
    #[tokio::test(start_paused = true)]
    async fn a_reply_that_never_comes_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let mut client = HttpClient::new(Duration::from_secs(30)).unwrap();
        let url = format!("http://127.0.0.1:{port}/x");
        let started = tokio::time::Instant::now();
        let err = client
            .send(Call {
                method: Method::POST,
                url: &url,
                headers: vec![],
                body: Bytes::from_static(b"{}"),
            })
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no reply within 30000 ms"),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_secs(30));
        holder.abort();
    }

    #[tokio::test]
    async fn connection_refused_is_an_error_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut client = HttpClient::new(Duration::from_secs(5)).unwrap();
        let url = format!("http://127.0.0.1:{port}/x");
        let err = client
            .send(Call {
                method: Method::GET,
                url: &url,
                headers: vec![],
                body: Bytes::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "http");
    }
}
