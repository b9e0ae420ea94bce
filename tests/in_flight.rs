//! Black-box: what Danube is waiting on. A delivery
//! whose answer waits is shown as it arrives, and its record's duration is
//! how long its connection was held, over real sockets, the real binary.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Listener, TempDir, event_body, exchange, request_bytes};

const WAIT: Duration = Duration::from_secs(10);
/// How long the tests hold a connection before they give up on it.
const HOLD: Duration = Duration::from_millis(1500);

fn send(listener: &Listener, event: &str, n: u64) -> TcpStream {
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream
        .write_all(&request_bytes("/", &[], &event_body(event, n)))
        .unwrap();
    stream
}

/// Nothing has come back on `stream`, and it is still open, after `wait`.
fn still_held(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    matches!(
        stream.read(&mut byte),
        Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
    )
}

/// A headless listener answering by `respond`, storing in a fresh
/// directory (kept while the `TempDir` lives), and the store's path.
fn start_storing(name: &str, respond: &str) -> (TempDir, std::path::PathBuf, Listener) {
    let dir = TempDir::new(name);
    let store = dir.join("deliveries.jsonl");
    let listener = Listener::start(&[
        "--no-tui",
        "--store",
        store.to_str().unwrap(),
        "--respond",
        respond,
    ]);
    (dir, store, listener)
}

#[test]
fn a_held_delivery_is_shown_in_flight_at_once_and_its_record_covers_the_hold() {
    let (_dir, store, listener) = start_storing("in-flight-held", "timeout");
    let mut held = send(&listener, "tool.execution.completed", 1);
    let line = listener.next_line(WAIT);
    for part in [
        "tool.execution.completed",
        "missing",
        "attempt 1",
        "in flight",
        "timeout",
        "Danube gives up after 10s",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    // Shown while the connection is still held, with no answer yet.
    assert!(still_held(&mut held, Duration::from_millis(200)));
    std::thread::sleep(HOLD);
    assert!(
        common::store_records(&store).is_empty(),
        "recorded before the hold ended"
    );
    drop(held);

    let line = listener.next_line(WAIT);
    assert!(
        line.contains("#1") && line.contains("→ timeout"),
        "the usual line once the hold ends: {line:?}"
    );
    let stored = common::store_records(&store);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["response"]["action"], "timeout");
    let duration = stored[0]["duration_ms"].as_f64().unwrap();
    assert!(
        duration >= HOLD.as_secs_f64() * 1000.0,
        "the duration does not cover the hold: {duration} ms"
    );
}

#[test]
fn json_output_stays_one_record_per_delivery_with_the_hold_in_its_duration() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--respond",
        "workflow.failed=timeout",
    ]);
    let held = send(&listener, "workflow.failed", 2);
    let reply = exchange(
        listener.addr,
        &request_bytes("/", &[], &event_body("tool.execution.completed", 3)),
        WAIT,
    );
    assert_eq!(reply.status(), 200);
    // The answered one is recorded at once; the held one is not in the
    // output before its record, which is written when its hold ends.
    let first = listener.next_record();
    assert_eq!(first["event"], "tool.execution.completed");
    std::thread::sleep(HOLD);
    drop(held);
    let second = listener.next_record();
    assert_eq!(second["event"], "workflow.failed");
    assert_eq!(second["response"]["action"], "timeout");
    assert!(second["response"]["status"].is_null());
    // Held from before the first record was printed until after the
    // sleep: well over a second (a margin for when it was read).
    assert!(
        second["duration_ms"].as_f64().unwrap() >= 1000.0,
        "{second}"
    );
    assert!(
        listener
            .stdout_lines
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "more than one line per delivery"
    );
}

/// A client that gives up on a delayed answer, as Danube does at its 10 s
/// deadline: `leave` closes the connection its way.
fn gone_during_a_delay(leave: fn(TcpStream)) {
    let (_dir, store, listener) = start_storing("in-flight-gone", "30s+200");
    let stream = send(&listener, "tool.execution.failed", 4);
    let arrival = listener.next_line(WAIT);
    assert!(arrival.contains("in flight (30s+200;"), "{arrival}");
    std::thread::sleep(HOLD);
    leave(stream);
    // Within WAIT, far sooner than the 30 s the answer waited for.
    let line = listener.next_line(WAIT);
    assert!(
        line.contains("#1") && line.contains("→ abandoned: the client went away"),
        "{line}"
    );
    let stored = common::store_records(&store);
    let record = &stored[0];
    assert_eq!(record["response"]["action"], "abandoned", "{record}");
    assert!(record["response"]["status"].is_null(), "nothing was sent");
    assert_eq!(record["response"]["delay_ms"], 30_000);
    assert_eq!(record["response"]["rule"], "30s+200 #1");
    let duration = record["duration_ms"].as_f64().unwrap();
    assert!(
        duration >= HOLD.as_secs_f64() * 1000.0 && duration < 30_000.0,
        "the duration is not how long the client waited: {duration} ms"
    );
}

#[test]
fn a_client_that_closes_during_a_delay_is_recorded_abandoned_with_how_long_it_waited() {
    gone_during_a_delay(drop);
}

#[test]
fn a_client_that_resets_during_a_delay_is_recorded_abandoned_with_how_long_it_waited() {
    gone_during_a_delay(|stream| {
        // Linger 0: the close is an RST.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
    });
}

#[test]
fn a_delayed_answer_is_recorded_before_it_is_sent_with_the_delay_in_its_duration() {
    let (_dir, store, listener) = start_storing("in-flight-delay", "1s+202");
    let started = Instant::now();
    let reply = exchange(
        listener.addr,
        &request_bytes("/", &[], &event_body("workflow.completed", 5)),
        WAIT,
    );
    assert_eq!(reply.status(), 202);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // In the store by the time the answer arrived.
    let stored = common::store_records(&store);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["response"]["status"], 202);
    assert!(stored[0]["duration_ms"].as_f64().unwrap() >= 1000.0);
    // In flight at arrival, then the usual line.
    let arrival = listener.next_line(WAIT);
    assert!(
        arrival.contains("in flight (1s+202;"),
        "no in-flight line at arrival: {arrival:?}"
    );
    let answered = listener.next_line(WAIT);
    assert!(
        answered.contains("#1") && answered.contains("→ 202 after 1s"),
        "{answered}"
    );
}

#[test]
fn an_answer_that_does_not_wait_gets_one_line_only() {
    let listener = Listener::start(&["--no-tui", "--no-store"]);
    let reply = exchange(
        listener.addr,
        &request_bytes("/", &[], &event_body("workflow.completed", 6)),
        WAIT,
    );
    assert_eq!(reply.status(), 200);
    let line = listener.next_line(WAIT);
    assert!(line.contains("#1") && line.contains("→ 200"), "{line}");
    assert!(
        listener
            .stdout_lines
            .recv_timeout(Duration::from_millis(500))
            .is_err()
    );
}

#[test]
fn a_delivery_held_at_shutdown_is_recorded_before_the_store_closes() {
    let mut listener = Listener::start(&["--json", "--no-store", "--respond", "timeout"]);
    let mut held = send(&listener, "workflow.failed", 7);
    assert!(still_held(&mut held, HOLD));
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    let record = listener.next_record();
    assert_eq!(record["response"]["action"], "timeout");
    // Held from its arrival to the signal: the wait above, less the moment
    // it took to arrive (a generous margin).
    assert!(
        record["duration_ms"].as_f64().unwrap() >= 1000.0,
        "{record}"
    );
}

#[test]
fn a_client_that_sends_more_during_a_delay_is_still_there_and_answered() {
    let listener = Listener::start(&["--json", "--no-store", "--respond", "1s+200"]);
    let keep_alive = |n| {
        String::from_utf8(request_bytes(
            "/",
            &[],
            &event_body("workflow.completed", n),
        ))
        .unwrap()
        .replace("Connection: close\r\n", "")
    };
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    // The second request pipelined behind the first, while its delay runs.
    stream.write_all(keep_alive(8).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(keep_alive(9).as_bytes()).unwrap();
    let reply = common::read_reply(&mut stream, WAIT);
    assert_eq!(reply.status(), 200);
    let record = listener.next_record();
    assert_eq!(record["response"]["action"], "status", "{record}");
    assert_eq!(record["response"]["status"], 200);
}
