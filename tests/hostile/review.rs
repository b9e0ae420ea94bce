//! Holes found by attacking the release binary as a stranger on the
//! tunnel would, once the first defences were in: each test is an
//! attack that worked, kept so it stays closed.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{
    Listener, SECRET, TempDir, assert_exit, event_body, exchange, now, proc_status_kib,
    raw_request, run, signed_post, stdout,
};

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
    // Every timeout long, so that only making room at the cap can explain
    // an answer.
    let listener = super::connections::capped_at(CAP);
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

/// A path with bytes past ASCII (UTF-8: accented letters, a bidi override
/// in the query) arrives as itself, and an export must send it as itself:
/// curl percent-encodes such bytes in a URL (`/%c3%a9`), so the receiver
/// got another path than the one recorded.
#[test]
fn an_export_sends_a_path_with_non_ascii_bytes_as_recorded() {
    let dir = TempDir::new("review-export-path");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = Listener::start(&["--json", "--store", store]);
    let path = "/hooks/caf\u{e9}/\u{202e}x?q=\u{e9}&r=\u{85}";
    let reply = exchange(
        listener.addr,
        &raw_request(path, &[], b"{}"),
        Duration::from_secs(10),
    );
    assert_eq!(reply.status(), 200);
    let id = reply.header("x-danube-hooks-delivery").unwrap().to_string();
    let original = listener.next_record();
    assert_eq!(original["path"], path);

    let export = run(&["export", &id, "--curl", "--store", store], b"");
    assert_exit(&export, 0);
    let command = stdout(&export);
    assert!(
        !command
            .chars()
            .any(|c| danube_hooks::display::is_dangerous(c) && c != '\n'),
        "the printed command is not terminal-safe: {command}"
    );
    let script = dir.join("export.sh");
    std::fs::write(&script, format!("{command}\n")).unwrap();
    for shell in ["dash", "bash"] {
        let output = std::process::Command::new(shell)
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            output.status.success() && output.stdout.starts_with(b"HTTP/1.1 200"),
            "{shell}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Back to the listener (the default URL): what it records is what
        // curl sent.
        let again = listener.next_record();
        assert_eq!(again["path"], path, "under {shell}");
    }
}

/// Replay detection remembers 100,000 `(t, digest)` pairs, oldest out
/// first. It remembered the pairs of every header that parsed, so a
/// stranger who sent 12,500 deliveries signed with eight junk digests each
/// (seconds of traffic) pushed every real signature out, and an exact
/// replay of a real delivery was then `valid` and not flagged. Once only
/// valid headers were remembered, a real header padded with seven junk
/// digests (each copy a flagged replay) still pushed the first arrival out,
/// and the replay named a later copy. Only digests that verified are
/// remembered now.
fn replay_is_flagged_after_a_flood(junk_header: impl Fn(i64, &str, u64, u64) -> String + Sync) {
    use std::io::Read as _;
    const PER_WORKER: u64 = 3600;
    // A store, not --no-store: on a loaded machine the headless printer
    // can fall behind 14,400 records, and only a store lets it catch up
    // (with --no-store it says how many it skipped, and this test would
    // wait for lines that never come).
    let dir = TempDir::new("replay-flood");
    let store = dir.join("deliveries.jsonl");
    let listener = Listener::start(&[
        "--json",
        "--store",
        store.to_str().unwrap(),
        "--secret",
        SECRET,
    ]);
    let body = event_body("tool.execution.completed", 7);
    let t = now();
    let real =
        danube_hooks::signature::sign(&danube_hooks::signature::Secret::new(SECRET), t, &body);
    let digest = real.split_once(",sha256=").unwrap().1;
    let signed = |header: &str, body: &[u8]| {
        let request = crate::common::request_bytes(
            "/webhooks/danube",
            &[("X-Danube-Signature", header)],
            body,
        );
        String::from_utf8(request)
            .unwrap()
            .replace("Connection: close\r\n", "")
            .into_bytes()
    };
    let first = exchange(
        listener.addr,
        &signed(&real, &body),
        Duration::from_secs(10),
    );
    assert_eq!(first.status(), 200);
    let first_id = first.header("x-danube-hooks-delivery").unwrap().to_string();

    // 4 × 3600 deliveries × 7 or 8 junk digests: more pairs than are
    // remembered.
    std::thread::scope(|scope| {
        let floods: Vec<_> = (0..4u64)
            .map(|worker| {
                let (junk_header, signed, body) = (&junk_header, &signed, &body);
                scope.spawn(move || {
                    let mut stream = TcpStream::connect(listener.addr).unwrap();
                    let mut reader = stream.try_clone().unwrap();
                    let counter = std::thread::spawn(move || {
                        let mut seen = Vec::new();
                        let mut buf = vec![0u8; 1 << 16];
                        while let Ok(n @ 1..) = reader.read(&mut buf) {
                            seen.extend_from_slice(&buf[..n]);
                        }
                        seen.windows(9).filter(|w| *w == b"HTTP/1.1 ").count()
                    });
                    let mut requests = Vec::new();
                    for n in 0..PER_WORKER {
                        requests.extend(signed(&junk_header(t, digest, worker, n), body));
                    }
                    requests.extend(crate::common::request_bytes("/", &[], b"{}"));
                    stream.write_all(&requests).unwrap();
                    counter.join().unwrap()
                })
            })
            .collect();
        for flood in floods {
            assert_eq!(flood.join().unwrap() as u64, PER_WORKER + 1);
        }
    });

    let replay = exchange(
        listener.addr,
        &signed(&real, &body),
        Duration::from_secs(10),
    );
    assert_eq!(replay.status(), 200);
    let records: Vec<serde_json::Value> = (0..2 + 4 * (PER_WORKER + 1))
        .map(|_| listener.next_record())
        .collect();
    let last = records.last().unwrap();
    assert_eq!(last["signature"]["verdict"], "valid", "{last}");
    assert_eq!(
        last["replay_of"].to_string(),
        first_id,
        "the replay was not flagged: {last}"
    );
}

/// `n` distinct junk digests for `worker`'s `n`th request.
fn junk(worker: u64, n: u64, count: u64) -> Vec<String> {
    (0..count)
        .map(|d| format!("sha256={:064x}", (worker << 40) | (n << 8) | d))
        .collect()
}

#[test]
fn junk_signatures_cannot_flush_replay_detection() {
    replay_is_flagged_after_a_flood(|t, _, worker, n| {
        format!("t={t},{}", junk(worker, n, 8).join(","))
    });
}

#[test]
fn a_real_signature_padded_with_junk_cannot_flush_replay_detection() {
    replay_is_flagged_after_a_flood(|t, real, worker, n| {
        format!("t={t},{},sha256={real}", junk(worker, n, 7).join(","))
    });
}

/// Bodies that stop short of their length hold the memory they arrived
/// in until the body timeout. Before a shared budget, 300 connections
/// each sending 900 KiB of a 1 MiB body took the listener from 12 MB to
/// 690 MB (here: 100 of 1.9 MiB); now what they hold together past 64 KiB each is capped by
/// `--max-body-memory`, the ones that find it full are answered 503 and
/// recorded, and a delivery of a few KiB still gets through.
#[test]
fn stalled_bodies_hold_no_more_memory_than_the_budget() {
    const STALLED: usize = 100;
    let listener = Listener::start(&[
        "--secret",
        SECRET,
        "--no-store",
        "--json",
        "--max-body",
        "2MiB",
        "--max-body-memory",
        "4MiB",
        "--body-timeout",
        "60s",
    ]);
    let start_kib = proc_status_kib(&listener.child.id().to_string(), "VmRSS");
    let head = "POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n";
    let part = vec![b'a'; 1900 * 1024];
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut stream = TcpStream::connect(listener.addr).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            // The listener may refuse the body half way, closing: what it
            // did not read is of no matter here.
            let _ = stream.write_all(&part);
            stream
        })
        .collect();
    let refused: Vec<serde_json::Value> = (0..STALLED)
        .map_while(|_| {
            let line = listener
                .stdout_lines
                .recv_timeout(Duration::from_secs(5))
                .ok()?;
            Some(serde_json::from_str(&line).unwrap())
        })
        .collect();
    let held_kib = proc_status_kib(&listener.child.id().to_string(), "VmRSS");
    let started = Instant::now();
    let reply = signed_post(
        listener.addr,
        SECRET,
        now(),
        &event_body("tool.execution.completed", 1),
    );
    let waited = started.elapsed();
    assert_eq!(reply.status(), 200, "a delivery of a few KiB gets through");
    assert!(waited < Duration::from_secs(1), "it waited {waited:?}");
    // 4 MiB of the budget and 64 KiB per body: 4 to 5 bodies fit, the
    // rest are answered 503 and recorded as such.
    assert!(
        refused.len() >= STALLED - 6,
        "only {} of {STALLED} stalled bodies were refused",
        refused.len()
    );
    for record in &refused {
        assert_eq!(record["response"]["action"], "body-memory", "{record}");
        assert_eq!(record["response"]["status"], 503);
        assert_eq!(record["body_truncated"], true);
    }
    // Without the budget the bodies grew the listener by 280 MiB (100
    // buffers of 2 MiB and their copies); with it, by 4 MiB, 64 KiB a body,
    // and the records of the refused ones passing through, each with the
    // 64 KiB it kept (40 to 60 MiB at the peak in the debug build).
    let grew_kib = held_kib.saturating_sub(start_kib);
    assert!(
        grew_kib < 128 * 1024,
        "{STALLED} stalled bodies grew the listener by {} MiB",
        grew_kib / 1024
    );
    drop(stalled);
}
