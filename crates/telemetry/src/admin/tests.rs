//! Drives the real server over loopback with raw TCP clients.

use super::*;
use prometheus::IntCounter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(5);

struct Harness {
    addr: SocketAddr,
    state: AdminState,
    stop: crate::shutdown::ShutdownTrigger,
    server: tokio::task::JoinHandle<()>,
}

async fn start(stale_after: Duration) -> Harness {
    let registry = Registry::new();
    let counter = IntCounter::new("redtail_test_requests_total", "test counter").unwrap();
    registry.register(Box::new(counter.clone())).unwrap();
    counter.inc_by(7);
    let state = AdminState {
        registry,
        readiness: Readiness::default(),
        liveness: Liveness::new(stale_after),
    };
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(listener, state.clone(), shutdown.wait_owned()));
    Harness {
        addr,
        state,
        stop,
        server,
    }
}

/// Sends `raw` and reads until the server closes; returns the whole response text.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    timeout(STEP, stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap_or_default();
    String::from_utf8_lossy(&buf).into_owned()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let response = exchange(addr, request.as_bytes()).await;
    let (head, body) = response.split_once("\r\n\r\n").expect("complete response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_string(), body.to_string())
}

#[tokio::test]
async fn metrics_are_served_in_text_format() {
    let h = start(STEP).await;
    let (status, head, body) = get(h.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("# TYPE redtail_test_requests_total counter"));
    assert!(body.contains("redtail_test_requests_total 7"));
    // The query string does not change routing.
    assert_eq!(get(h.addr, "/metrics?x=1").await.0, 200);
}

#[tokio::test]
async fn healthz_fails_once_the_main_loop_goes_quiet() {
    let h = start(Duration::from_millis(200)).await;
    h.state.liveness.beat();
    let (status, _, body) = get(h.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, body) = get(h.addr, "/healthz").await;
    assert_eq!(status, 503);
    assert!(body.contains("silent"), "{body}");
    h.state.liveness.beat();
    assert_eq!(get(h.addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn readyz_follows_the_conditions() {
    let h = start(STEP).await;
    h.state.readiness.set_ok("redis");
    let (status, _, body) = get(h.addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready"));
    h.state.readiness.set_failing("redis", "connection refused");
    let (status, _, body) = get(h.addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "redis: connection refused"));
    h.state.readiness.set_ok("redis");
    assert_eq!(get(h.addr, "/readyz").await.0, 200);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let h = start(STEP).await;
    assert_eq!(get(h.addr, "/").await.0, 404);
    assert_eq!(get(h.addr, "/metrics/extra").await.0, 404);
    let response = exchange(
        h.addr,
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(response.to_ascii_lowercase().contains("allow: get"));
}

#[tokio::test]
async fn malformed_requests_do_not_hurt_the_server() {
    let h = start(STEP).await;
    let response = exchange(h.addr, b"GARBAGE\r\n\r\n").await;
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 400"),
        "{response}"
    );
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let response = exchange(h.addr, huge.as_bytes()).await;
    assert!(
        response.is_empty()
            || response.starts_with("HTTP/1.1 431")
            || response.starts_with("HTTP/1.1 400"),
        "{response}"
    );
    assert_eq!(get(h.addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn a_silent_client_blocks_nobody_and_is_dropped() {
    let h = start(STEP).await;
    let mut silent = TcpStream::connect(h.addr).await.unwrap();
    let mut half = TcpStream::connect(h.addr).await.unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let (status, _, _) = timeout(STEP, get(h.addr, "/healthz"))
        .await
        .expect("not blocked");
    assert_eq!(status, 200);
    // The header read timeout closes both (408 or a plain close).
    let mut buf = Vec::new();
    let closed = timeout(HEADER_READ_TIMEOUT + STEP, silent.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "silent client closed by the server");
    let closed = timeout(HEADER_READ_TIMEOUT + STEP, half.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "slow client closed by the server");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let h = start(STEP).await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    timeout(STEP, stream.read_to_end(&mut buf))
        .await
        .expect("in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
}

#[tokio::test]
async fn serve_returns_on_shutdown_and_stops_listening() {
    let h = start(STEP).await;
    // An idle keep-alive connection must not hold the shutdown up.
    let _idle = TcpStream::connect(h.addr).await.unwrap();
    assert_eq!(get(h.addr, "/healthz").await.0, 200);
    h.stop.trigger();
    timeout(STEP, h.server)
        .await
        .expect("serve returned")
        .expect("no panic");
    assert!(TcpStream::connect(h.addr).await.is_err());
}

#[tokio::test]
async fn bind_reports_a_busy_address() {
    let first = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = first.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    assert!(bind(addr).await.is_err());
}
