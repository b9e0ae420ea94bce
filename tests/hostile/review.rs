//! Holes found by attacking the release binary as a stranger on the
//! tunnel would, after the rest of issue 12 was merged: each test is an
//! attack that worked, kept so it stays closed.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{Listener, SECRET, event_body, now, signed_post};

const CAP: usize = 4;

/// Open a connection that pipelines requests and never reads an answer,
/// until the answers it will not read fill the socket buffers both ways:
/// hyper is then stuck writing an answer, between requests.
fn never_reads(listener: &Listener) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small receive window: the answers back up sooner.
    socket.set_recv_buffer_size(1024).unwrap();
    socket.connect(&listener.addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_nonblocking(true).unwrap();
    let requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64);
    let mut stuck_since: Option<Instant> = None;
    // Blocked for 300 ms in a row: the listener has stopped reading.
    while stuck_since.is_none_or(|since| since.elapsed() < Duration::from_millis(300)) {
        match stream.write(&requests) {
            Ok(n) if n > 0 => stuck_since = None,
            _ => {
                stuck_since.get_or_insert_with(Instant::now);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    stream
}

#[test]
fn connections_that_never_read_their_answers_give_way_at_the_cap() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--max-connections",
        &CAP.to_string(),
        // Long, so that only making room at the cap can explain an answer.
        "--first-byte-timeout",
        "60s",
        "--idle-timeout",
        "60s",
        "--body-timeout",
        "60s",
    ]);
    let _held: Vec<TcpStream> = (0..CAP).map(|_| never_reads(&listener)).collect();
    let body = event_body("tool.execution.completed", 1);
    let started = Instant::now();
    let reply = signed_post(listener.addr, SECRET, now(), &body);
    let took = started.elapsed();
    assert_eq!(reply.status(), 200, "{reply:?}");
    // The bound: a delivery gets through a held cap within 1 s.
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    assert_eq!(listener.next_record()["signature"]["verdict"], "valid");
}
