//! Loopback servers for unit tests: one that answers every connection
//! alike (or holds it unanswered) and counts the connections, and a port
//! nothing listens on. Black-box tests have theirs in `tests/common`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A `200` with an empty body.
pub(crate) const OK_EMPTY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A `200` carrying `body`.
pub(crate) fn ok_with(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A server on a free loopback port, on a thread of its own (so it serves
/// under any runtime), that reads each request once and writes `answer`
/// (a whole HTTP message), or with `None` keeps every connection open and
/// never answers. Its address, and the connections accepted so far.
pub(crate) fn serve(answer: Option<Vec<u8>>) -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in socket.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let Some(answer) = &answer else {
                held.push(stream);
                continue;
            };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(answer);
        }
    });
    (addr, count)
}

/// A loopback address nothing listens on: bound, then let go at once.
pub(crate) fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
