//! Attacks on the connection and on how a request is read: holding the
//! connection cap, half-closes, `Expect: 100-continue` past the limit, a
//! second signature header, replays padded with junk digests.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{
    Listener, SECRET, TempDir, event_body, exchange, now, read_reply, request_bytes, signed_post,
};

const WAIT: Duration = Duration::from_secs(10);

fn sign(t: i64, body: &[u8]) -> String {
    danube_hooks::signature::sign(&danube_hooks::signature::Secret::new(SECRET), t, body)
}

fn signed_request(signature: &str, body: &[u8]) -> Vec<u8> {
    request_bytes(
        "/webhooks/danube",
        &[
            ("Content-Type", "application/json"),
            ("X-Danube-Signature", signature),
        ],
        body,
    )
}

#[test]
fn a_replay_padded_with_junk_digests_is_still_a_replay() {
    let listener = Listener::start(&["--json", "--no-store", "--secret", SECRET]);
    let body = event_body("tool.execution.completed", 1);
    let t = now();
    let real = sign(t, &body);
    assert_eq!(
        exchange(listener.addr, &signed_request(&real, &body), WAIT).status(),
        200
    );
    let first = listener.next_record();
    assert_eq!(first["signature"]["verdict"], "valid");
    assert!(first["replay_of"].is_null(), "{first}");

    let digest = real.split_once(",sha256=").unwrap().1;
    let junk = "0".repeat(64);
    for header in [
        format!("t={t},sha256={junk},sha256={digest}"),
        format!("t={t},sha256={digest},sha256={junk}"),
        format!("t={t},sha256={junk},sha256={junk},sha256={digest}"),
    ] {
        let reply = exchange(listener.addr, &signed_request(&header, &body), WAIT);
        assert_eq!(reply.status(), 200);
        let record = listener.next_record();
        assert_eq!(record["signature"]["verdict"], "valid", "{header}");
        assert_eq!(record["replay_of"], first["id"], "{header} was not flagged");
    }
}

#[test]
fn two_signature_headers_are_malformed_and_both_are_named() {
    let listener = Listener::start(&["--json", "--no-store", "--secret", SECRET]);
    let body = event_body("tool.execution.completed", 2);
    let good = sign(now(), &body);
    let request = request_bytes(
        "/webhooks/danube",
        &[
            ("X-Danube-Signature", &good),
            ("x-danube-signature", "t=1,sha256=\u{202e}der"),
        ],
        &body,
    );
    assert_eq!(exchange(listener.addr, &request, WAIT).status(), 200);
    let record = listener.next_record();
    let check = &record["signature"];
    assert_eq!(check["verdict"], "malformed", "{record}");
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains(&good), "{detail}");
    assert!(detail.contains(r"t=1,sha256=\u{202e}der"), "{detail}");
    assert!(!detail.contains('\u{202e}'), "{detail}");
}

#[test]
fn requests_followed_by_a_half_close_are_all_answered_and_recorded() {
    let dir = TempDir::new("half-close");
    let store = dir.join("deliveries.jsonl");
    let listener = Listener::start(&["--no-tui", "--store", store.to_str().unwrap()]);
    let body = event_body("tool.execution.completed", 3);
    for n in 0..100 {
        let mut stream = TcpStream::connect(listener.addr).unwrap();
        stream.write_all(&request_bytes("/", &[], &body)).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let reply = read_reply(&mut stream, WAIT);
        assert_eq!(reply.status(), 200, "request {n}: {reply:?}");
    }
    // Each record is written before its answer goes out.
    let stored = std::fs::read_to_string(&store).unwrap();
    assert_eq!(stored.lines().count(), 100);
}

#[test]
fn expect_continue_over_the_body_limit_gets_413_and_no_100() {
    let listener = Listener::start(&["--json", "--no-store", "--max-body", "1KiB"]);
    let head = "POST /webhooks/danube HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nExpect: 100-continue\r\n\
                Content-Length: 2000000\r\n\r\n";
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The client waits for `100 Continue` (or the final answer) before it
    // sends the body; nothing of the body is sent here.
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(
        &first,
        b"HTTP/1.1 413",
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    let record = listener.next_record();
    assert_eq!(record["response"]["action"], "too-large");
    assert_eq!(record["response"]["status"], 413);
    assert_eq!(record["body_size"], 2_000_000);
    assert_eq!(record["body_truncated"], true);

    // Within the limit, the client is still told to go on.
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"{}").unwrap();
    assert_eq!(read_reply(&mut stream, WAIT).status(), 200);
}

// ---- The connection cap, held by a stranger.

/// A small cap, and every timeout far longer than the waits below, so
/// that only making room at the cap can explain a prompt answer. The
/// first-byte timeout is also the grace of a request trickling in, so at
/// 60 s no head or body here gives way.
const CAP: usize = 16;

fn capped() -> Listener {
    capped_at(CAP)
}

/// As [`capped`], at another cap.
pub(crate) fn capped_at(cap: usize) -> Listener {
    Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--max-connections",
        &cap.to_string(),
        "--first-byte-timeout",
        "60s",
        "--idle-timeout",
        "60s",
        "--body-timeout",
        "60s",
    ])
}

/// The issue's bound: Danube's deadline is 10 s, and a delivery must get
/// through a held cap within 1 s.
fn assert_a_delivery_gets_through(listener: &Listener, n: u64) {
    let body = event_body("tool.execution.completed", n);
    let started = Instant::now();
    let reply = signed_post(listener.addr, SECRET, now(), &body);
    let took = started.elapsed();
    assert_eq!(reply.status(), 200, "{reply:?}");
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "valid", "{record}");
}

/// Whether the listener has closed `stream` (EOF or reset), waiting at
/// most `wait` for it.
fn closed_within(mut stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // an answer already read elsewhere, or a 408
            Err(err) => {
                return !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

/// Open `n` connections that send nothing, and give the listener time to
/// accept them.
fn silent_connections(listener: &Listener, n: usize) -> Vec<TcpStream> {
    let streams = (0..n)
        .map(|_| TcpStream::connect(listener.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    streams
}

/// A new connection that has sent one keep-alive delivery of `event`.
fn send_keep_alive(listener: &Listener, event: &str, n: u64) -> TcpStream {
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream
        .write_all(&keep_alive_request(&event_body(event, n)))
        .unwrap();
    stream
}

fn keep_alive_request(body: &[u8]) -> Vec<u8> {
    let request = String::from_utf8(request_bytes("/", &[], body)).unwrap();
    request.replace("Connection: close\r\n", "").into_bytes()
}

#[test]
fn silent_connections_holding_the_cap_give_way_to_a_delivery() {
    let listener = capped();
    let silent = silent_connections(&listener, CAP);
    assert_a_delivery_gets_through(&listener, 10);
    assert!(
        closed_within(&silent[0], WAIT),
        "the oldest silent connection was not the one closed"
    );
    let still_open = silent[CAP / 2..]
        .iter()
        .filter(|s| !closed_within(s, Duration::from_millis(50)))
        .count();
    assert_eq!(still_open, CAP - CAP / 2, "more were closed than needed");
}

#[test]
fn keep_alive_connections_silent_at_the_cap_give_way_to_a_delivery() {
    let listener = capped();
    let mut idle: Vec<TcpStream> = (0..CAP)
        .map(|n| {
            let mut stream = TcpStream::connect(listener.addr).unwrap();
            let body = event_body("workflow.completed", n as u64);
            stream.write_all(&keep_alive_request(&body)).unwrap();
            assert_eq!(read_reply(&mut stream, WAIT).status(), 200);
            listener.next_record();
            stream
        })
        .collect();
    assert_a_delivery_gets_through(&listener, 11);
    assert!(
        closed_within(&idle[0], WAIT),
        "the connection idle longest was not the one closed"
    );
    // The others are kept, and still serve.
    let last = idle.last_mut().unwrap();
    last.write_all(&keep_alive_request(b"{}")).unwrap();
    assert_eq!(read_reply(last, WAIT).status(), 200);
}

/// Within the grace (here the 60 s first-byte timeout) a stalled body
/// never gives way; past it, see the slowloris tests below.
#[test]
fn a_connection_mid_request_at_the_cap_is_not_closed_for_a_newcomer() {
    let listener = capped();
    let body = event_body("tool.execution.completed", 12);
    let request = request_bytes(
        "/webhooks/danube",
        &[("X-Danube-Signature", &sign(now(), &body))],
        &body,
    );
    let half = request.len() - body.len() / 2;
    let mut slow = TcpStream::connect(listener.addr).unwrap();
    slow.write_all(&request[..half]).unwrap();
    let _silent = silent_connections(&listener, CAP - 1);
    // Newcomers well past the cap, each of which must make room.
    let mut newcomers = Vec::new();
    for _ in 0..2 * CAP {
        newcomers.push(TcpStream::connect(listener.addr).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_a_delivery_gets_through(&listener, 13);
    // The slow body was never cut off: it completes and is answered.
    slow.write_all(&request[half..]).unwrap();
    let reply = read_reply(&mut slow, WAIT);
    assert_eq!(reply.status(), 200, "{reply:?}");
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "valid", "{record}");
    assert_eq!(record["body_size"], body.len());
}

#[test]
fn held_and_delayed_answers_at_the_cap_are_not_closed_for_a_newcomer() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--max-connections",
        &CAP.to_string(),
        "--first-byte-timeout",
        "60s",
        "--idle-timeout",
        "60s",
        "--respond",
        "workflow.failed=timeout",
        "--respond",
        "workflow.completed=2s+200",
    ]);
    let send = |event: &str, n: u64| send_keep_alive(&listener, event, n);
    let held = send("workflow.failed", 30);
    // A held delivery is recorded when its hold ends (its duration is the
    // hold's); until then, no answer and no close is what shows it held.
    assert!(
        !closed_within(&held, Duration::from_millis(300)),
        "the held connection was closed"
    );
    let mut delayed = send("workflow.completed", 31);
    let _silent = silent_connections(&listener, CAP - 2);
    let newcomers: Vec<TcpStream> = (0..CAP)
        .map(|_| TcpStream::connect(listener.addr).unwrap())
        .collect();
    assert_a_delivery_gets_through(&listener, 32);
    let reply = read_reply(&mut delayed, WAIT);
    assert_eq!(reply.status(), 200, "the delayed answer was cut: {reply:?}");
    assert!(
        !closed_within(&held, Duration::from_millis(200)),
        "a held connection was closed for a newcomer"
    );
    drop(newcomers);
}

#[test]
fn a_silent_connection_is_closed_sooner_than_a_slow_head() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--first-byte-timeout",
        "1s",
        "--idle-timeout",
        "8s",
    ]);
    let started = Instant::now();
    let silent = TcpStream::connect(listener.addr).unwrap();
    let mut slow_head = TcpStream::connect(listener.addr).unwrap();
    slow_head
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        closed_within(&silent, Duration::from_secs(6)),
        "a silent connection was kept"
    );
    let silent_closed_after = started.elapsed();
    assert!(
        silent_closed_after < Duration::from_secs(6),
        "closed after {silent_closed_after:?}, no sooner than the header timeout"
    );
    // The slow head has its full header timeout: still open now.
    assert!(
        !closed_within(&slow_head, Duration::from_millis(200)),
        "a connection sending its head was closed by the first-byte timeout"
    );
    assert!(closed_within(&slow_head, Duration::from_secs(15)));
}

// ---- Requests trickled in at the cap: slowloris.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The grace a head or a slow body has before it may give way at the
/// cap: the first-byte timeout.
const GRACE: &str = "1s";
/// Long enough for every trickle opened before it to be past the grace.
const PAST_GRACE: Duration = Duration::from_millis(1500);
/// How often a slowloris sends its next byte: 3 bytes a second, far below
/// the body rate floor, and far more often than any timeout.
const TRICKLE: Duration = Duration::from_millis(300);
const SLOW_HEAD: &[u8] = b"POST /webhooks/danube HTTP/1.1\r\nHost: x\r\nX-Slow: ";
const SLOW_BODY: &[u8] = b"POST /webhooks/danube HTTP/1.1\r\nHost: x\r\n\
    Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n";

/// A cap of `CAP` whose grace is short; only the timeouts that would
/// otherwise end a trickle are long.
fn capped_with_grace(extra: &[&str]) -> Listener {
    let cap = CAP.to_string();
    let mut args = vec![
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--max-connections",
        &cap,
        "--first-byte-timeout",
        GRACE,
        "--idle-timeout",
        "60s",
        "--body-timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    Listener::start(&args)
}

/// Connections that send `start` at once (in order, a little apart), then
/// one byte every [`TRICKLE`] until dropped, as slowloris does.
struct Trickler {
    streams: Vec<TcpStream>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trickler {
    fn start(listener: &Listener, n: usize, start: &[u8]) -> Self {
        let streams: Vec<TcpStream> = (0..n)
            .map(|i| {
                let mut stream = TcpStream::connect(listener.addr).unwrap();
                stream.write_all(start).unwrap();
                // The first is the oldest by far: the tests expect it to be
                // the one that gives way, and on a loaded machine the
                // listener may read the next few within the same 20 ms.
                let gap = if i == 0 { 200 } else { 20 };
                std::thread::sleep(Duration::from_millis(gap));
                stream
            })
            .collect();
        let writers: Vec<TcpStream> = streams.iter().map(|s| s.try_clone().unwrap()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TRICKLE);
                    for mut writer in &writers {
                        // Closed by the listener: nothing more to send.
                        let _ = writer.write(b"a");
                    }
                }
            }
        });
        Self {
            streams,
            stop,
            thread: Some(thread),
        }
    }

    /// How many of the connections the listener has closed.
    fn closed(&self) -> usize {
        self.streams
            .iter()
            .filter(|s| closed_within(s, Duration::from_millis(50)))
            .count()
    }
}

impl Drop for Trickler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the listener sent on `stream` before it closed it.
fn last_words(mut stream: &TcpStream) -> String {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        said.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&said).into_owned()
}

#[test]
fn slowloris_heads_holding_the_cap_give_way_to_a_delivery() {
    let listener = capped_with_grace(&[]);
    let heads = Trickler::start(&listener, CAP, SLOW_HEAD);
    std::thread::sleep(PAST_GRACE);
    for n in 0..3 {
        assert_a_delivery_gets_through(&listener, 40 + n);
    }
    let told = last_words(&heads.streams[0]);
    assert!(
        told.starts_with("HTTP/1.1 408"),
        "the head arriving longest was not the one closed, or not told why: {told:?}"
    );
    let still_open = heads.streams[CAP / 2..]
        .iter()
        .filter(|s| !closed_within(s, Duration::from_millis(50)))
        .count();
    assert_eq!(still_open, CAP - CAP / 2, "more were closed than needed");
}

#[test]
fn slowloris_bodies_holding_the_cap_give_way_to_a_delivery() {
    let listener = capped_with_grace(&[]);
    let bodies = Trickler::start(&listener, CAP, SLOW_BODY);
    std::thread::sleep(PAST_GRACE);
    for n in 0..3 {
        assert_a_delivery_gets_through(&listener, 50 + n);
    }
    let told = last_words(&bodies.streams[0]);
    assert!(
        told.starts_with("HTTP/1.1 408"),
        "the oldest slow body was not the one closed, or not told why: {told:?}"
    );
    assert!(bodies.closed() < CAP / 2, "more were closed than needed");
}

#[test]
fn at_the_cap_answers_in_progress_and_a_steady_body_outlast_the_grace() {
    let listener = capped_with_grace(&[
        "--respond",
        "workflow.failed=timeout",
        "--respond",
        "workflow.completed=4s+200",
    ]);
    let send = |event: &str, n: u64| send_keep_alive(&listener, event, n);
    let held = send("workflow.failed", 60);
    // A held delivery is recorded when its hold ends (its duration is the
    // hold's); until then, no answer and no close is what shows it held.
    assert!(
        !closed_within(&held, Duration::from_millis(300)),
        "the held connection was closed"
    );
    let mut delayed = send("workflow.completed", 61);
    // A big body over a slow link: 64 KiB at about 20 KiB/s, five times
    // the floor, for longer than the grace and the turnover below.
    let body = vec![b'x'; 64 * 1024];
    let mut steady = TcpStream::connect(listener.addr).unwrap();
    let steady_head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    steady.write_all(steady_head.as_bytes()).unwrap();
    let steady_sender = {
        let mut stream = steady.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || {
            for chunk in body.chunks(2048) {
                std::thread::sleep(Duration::from_millis(100));
                stream.write_all(chunk).unwrap();
            }
        })
    };
    let heads = Trickler::start(&listener, CAP - 3, SLOW_HEAD);
    std::thread::sleep(PAST_GRACE);
    // More newcomers than there are trickles to close: the last ones wait
    // for the first ones to be past the grace in turn.
    let newcomers = Trickler::start(&listener, CAP, SLOW_HEAD);

    let reply = read_reply(&mut delayed, WAIT);
    assert_eq!(reply.status(), 200, "the delayed answer was cut: {reply:?}");
    steady_sender.join().unwrap();
    let reply = read_reply(&mut steady, WAIT);
    assert_eq!(reply.status(), 200, "the steady body was cut: {reply:?}");
    assert!(
        !closed_within(&held, Duration::from_millis(200)),
        "a held connection was closed for a newcomer"
    );
    assert_eq!(heads.closed(), CAP - 3, "the old trickles were kept");
    let sizes: Vec<_> = (0..2)
        .map(|_| listener.next_record()["body_size"].clone())
        .collect();
    assert!(sizes.contains(&body.len().into()), "{sizes:?}");
    drop(newcomers);
}

// ---- Churn at the cap: tricklers re-opened as soon as they are closed.

use std::sync::atomic::AtomicUsize;

/// The cap under churn, and the tricklers that keep it full: together
/// within the smallest listen backlog a kernel gives (128), so a
/// delivery waits on the listener, not on a dropped SYN.
const CHURN_CAP: usize = 64;
const CHURNERS: usize = 160;
/// How often the tricklers send their next byte, and re-open the ones
/// the listener closed.
const CHURN_TICK: Duration = Duration::from_millis(100);

/// `n` connections that each send `start`, then a byte every
/// [`CHURN_TICK`], each re-opened as soon as the listener has closed it:
/// slowloris that never lets go of the cap.
struct Churn {
    stop: Arc<AtomicBool>,
    reopened: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Churn {
    fn start(listener: &Listener, n: usize, start: &'static [u8]) -> Self {
        let addr = listener.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let reopened = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn({
            let (stop, reopened) = (Arc::clone(&stop), Arc::clone(&reopened));
            move || {
                let open = || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.write_all(start).unwrap();
                    stream.set_nonblocking(true).unwrap();
                    stream
                };
                let mut streams: Vec<TcpStream> = (0..n).map(|_| open()).collect();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(CHURN_TICK);
                    for stream in &mut streams {
                        if closed_now(stream) {
                            *stream = open();
                            reopened.fetch_add(1, Ordering::Relaxed);
                        } else {
                            let _ = stream.write(b"a");
                        }
                    }
                }
            }
        });
        Self {
            stop,
            reopened,
            thread: Some(thread),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether the listener has closed non-blocking `stream` (its 408 read
/// and dropped on the way).
fn closed_now(mut stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(err) => return err.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

/// While [`CHURNERS`] connections sending `start` churn at a cap of
/// [`CHURN_CAP`], five deliveries in turn are each answered, none reset,
/// each within Danube's margin of a second (they take milliseconds; the
/// rest is for a loaded machine).
fn deliveries_get_through_churn(start: &'static [u8], first_n: u64) {
    let cap = CHURN_CAP.to_string();
    // Default grace and timeouts: only the cap decides who gives way.
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--max-connections",
        &cap,
    ]);
    let churn = Churn::start(&listener, CHURNERS, start);
    // The cap full, the backlog behind it, and the tricklers well begun.
    std::thread::sleep(Duration::from_secs(1));
    for n in first_n..first_n + 5 {
        let body = event_body("tool.execution.completed", n);
        let started = Instant::now();
        let reply = signed_post(listener.addr, SECRET, now(), &body);
        let took = started.elapsed();
        assert!(
            matches!(reply, crate::common::Reply::Http { status: 200, .. }),
            "delivery {n}: {reply:?}"
        );
        assert!(
            took < Duration::from_secs(1),
            "delivery {n} answered after {took:?}"
        );
        let record = listener.next_record();
        assert_eq!(record["signature"]["verdict"], "valid", "{record}");
        std::thread::sleep(CHURN_TICK * 2);
    }
    let reopened = churn.reopened.load(Ordering::Relaxed);
    assert!(
        reopened >= CHURNERS,
        "only {reopened} tricklers were closed and re-opened: no churn"
    );
}

#[test]
fn under_churn_of_trickled_heads_at_the_cap_a_delivery_is_answered_within_a_second() {
    deliveries_get_through_churn(SLOW_HEAD, 70);
}

#[test]
fn under_churn_of_trickled_bodies_at_the_cap_a_delivery_is_answered_within_a_second() {
    deliveries_get_through_churn(SLOW_BODY, 80);
}

// ---- Secrets kept off the command line (`ps`, shell history).

use std::os::unix::fs::PermissionsExt as _;

use crate::common::{assert_exit, command, run, run_command, stderr, stdout};

const OTHER_SECRET: &str = "whsec_0therSecretForRotationTests000001";

/// A secret file with `text`, at `mode`.
fn secret_file(dir: &TempDir, text: &str, mode: u32) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_secret_file_signs_and_verifies_like_the_flag() {
    let dir = TempDir::new("secret-file");
    let body = b"{\"event\":\"workflow.completed\"}";
    // Rotation: blank lines and surrounding whitespace are ignored; the
    // first secret signs, any verifies.
    let file = secret_file(
        &dir,
        &format!("\n  {SECRET}  \r\n\n\t{OTHER_SECRET}\n"),
        0o600,
    );
    let by_file = run(&["sign", "--secret-file", &file, "-t", "1800000000"], body);
    assert_exit(&by_file, 0);
    assert_eq!(stderr(&by_file), "", "a 0600 file gets no warning");
    let by_flag = run(&["sign", "--secret", SECRET, "-t", "1800000000"], body);
    assert_eq!(stdout(&by_file), stdout(&by_flag));

    let by_other = run(&["sign", "-s", OTHER_SECRET, "-t", "1800000000"], body);
    let header = stdout(&by_other);
    let verified = run(
        &[
            "verify",
            "--secret-file",
            &file,
            "--now",
            "1800000001",
            "-H",
            header.trim(),
        ],
        body,
    );
    assert_exit(&verified, 0);
    assert!(
        stdout(&verified).contains("whsec_…0001"),
        "{}",
        stdout(&verified)
    );

    // The file beats the environment, as the flag does.
    let mut with_env = command();
    with_env.env("DANUBE_WEBHOOK_SECRET", OTHER_SECRET).args([
        "sign",
        "--secret-file",
        &file,
        "-t",
        "1800000000",
    ]);
    assert_eq!(stdout(&run_command(&mut with_env, body)), stdout(&by_flag));
    // And the environment alone still works.
    let mut env_only = command();
    env_only
        .env("DANUBE_WEBHOOK_SECRET", SECRET)
        .args(["sign", "-t", "1800000000"]);
    assert_eq!(stdout(&run_command(&mut env_only, body)), stdout(&by_flag));
}

#[test]
fn a_secret_file_open_to_others_is_used_with_a_warning() {
    let dir = TempDir::new("secret-file-open");
    let file = secret_file(&dir, SECRET, 0o644);
    let output = run(&["sign", "--secret-file", &file, "-t", "1800000000"], b"{}");
    assert_exit(&output, 0);
    let warning = stderr(&output);
    assert!(warning.contains(&file), "{warning}");
    assert!(warning.contains("0644"), "{warning}");
    assert!(warning.contains("chmod 600"), "{warning}");
    assert!(!warning.contains(SECRET), "{warning}");
}

#[test]
fn a_bad_secret_file_is_a_usage_error_naming_it_and_why() {
    let dir = TempDir::new("secret-file-bad");
    let blank = secret_file(&dir, "\n   \n\t\n", 0o600);
    let missing = dir.join("absent").to_str().unwrap().to_owned();
    let folder = dir.0.to_str().unwrap().to_owned();
    for (file, why) in [
        (&blank, "no secret"),
        (&missing, "No such file"),
        (&folder, "Is a directory"),
    ] {
        let output = run(&["sign", "--secret-file", file, "-t", "1"], b"{}");
        assert_exit(&output, 2);
        let message = stderr(&output);
        assert!(message.contains(file.as_str()), "{message}");
        assert!(message.contains(why), "{message}");
    }
}

#[test]
fn every_command_that_takes_a_secret_takes_a_secret_file() {
    let dir = TempDir::new("secret-file-commands");
    let missing = dir.join("absent").to_str().unwrap().to_owned();
    let file = secret_file(&dir, SECRET, 0o600);
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    // The listener verifies with it (and stores a delivery to replay).
    let listener = Listener::start(&["--json", "--store", store, "--secret-file", &file]);
    let body = event_body("tool.execution.completed", 20);
    assert_eq!(
        signed_post(listener.addr, SECRET, now(), &body).status(),
        200
    );
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "valid");
    drop(listener);
    let id = record["id"].to_string();

    let file_args = ["--secret-file", missing.as_str()];
    for args in [
        vec!["sign", "-t", "1"],
        vec!["verify", "-H", "t=1,sha256=00"],
        vec![
            "trigger",
            "--to",
            "http://127.0.0.1:9/",
            "workflow.completed",
        ],
        vec!["check", "http://127.0.0.1:9/"],
        vec!["listen", "--no-store", "--port", "0"],
        vec![
            "replay",
            &id,
            "--store",
            store,
            "--to",
            "http://127.0.0.1:9/",
        ],
    ] {
        let output = run(&[args.as_slice(), &file_args].concat(), b"{}");
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(&missing),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
