//! Dev-only support shared by the integration tests (`tests/`, `crates/*/tests`) and the
//! benchmark (`crates/bench`): one way to run a private `redis-server` on a free loopback
//! port, and one way to read a stream back. Never a dependency of the shipped binary.
#![forbid(unsafe_code)]

mod server;
mod stream;

pub use server::{RedisServer, ServerOptions, StartError, INSTALL_HINT};
pub use stream::{for_each_entry, read_stream, StreamEntry};

use std::path::PathBuf;

/// A free loopback TCP port: bind port 0, read what the kernel chose, release it. Another
/// process can take it before it is used again; [`RedisServer`] retries on a fresh one then.
/// Panics (for tests) when loopback cannot be bound.
pub fn free_port() -> u16 {
    try_free_port().expect("bind 127.0.0.1:0 (is the loopback interface up?)")
}

fn try_free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `program` in one of the `PATH` directories, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
