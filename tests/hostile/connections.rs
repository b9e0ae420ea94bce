//! Attacks on the connection and on how a request is read: holding the
//! connection cap, half-closes, `Expect: 100-continue` past the limit, a
//! second signature header, replays padded with junk digests.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::common::{
    Listener, SECRET, TempDir, event_body, exchange, now, read_reply, request_bytes,
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
