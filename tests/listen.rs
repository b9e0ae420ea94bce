//! Black-box: `danube-hooks listen` over real sockets, the real binary.

use crate::common;

use base64::Engine as _;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    Listener, Reply, SECRET, TempDir, event_body, exchange, now, request_bytes, signed_post,
};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn default_listen_answers_200_and_prints_one_human_line() {
    let listener = Listener::start(&["--no-store"]);
    assert!(
        listener.banner.contains("ngrok http"),
        "{}",
        listener.banner
    );
    assert!(
        listener
            .banner
            .contains("cloudflared tunnel --url http://localhost:"),
        "{}",
        listener.banner
    );
    assert!(
        listener.banner.contains("policy:   200"),
        "{}",
        listener.banner
    );
    let body = event_body("tool.execution.completed", 1);
    let reply = exchange(listener.addr, &request_bytes("/any/path", &[], &body), WAIT);
    assert_eq!(reply.status(), 200);
    assert!(
        reply
            .header("x-danube-hooks-rule")
            .unwrap()
            .contains("default 200")
    );
    let line = listener.next_line(WAIT);
    for part in [
        "#1",
        "tool.execution.completed",
        "missing ",
        "attempt 1",
        "→ 200",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
}

#[test]
fn json_output_is_records_only_and_banner_goes_to_stderr() {
    let listener = Listener::start(&["--json", "--no-store", "--secret", SECRET]);
    assert!(listener.banner.contains("whsec_…LaSw"));
    assert!(!listener.banner.contains(SECRET), "a secret printed whole");
    let body = event_body("workflow.completed", 2);
    assert_eq!(
        signed_post(listener.addr, SECRET, now(), &body).status(),
        200
    );
    let record = listener.next_record();
    assert_eq!(record["event"], "workflow.completed");
    assert_eq!(record["signature"]["verdict"], "valid");
    assert_eq!(record["signature"]["secret"], "whsec_…LaSw");
    assert_eq!(record["response"]["status"], 200);
    assert_eq!(record["attempt"], 1);
    assert_eq!(record["method"], "POST");
    assert_eq!(record["path"], "/webhooks/danube");
    assert_eq!(record["http_version"], "HTTP/1.1");
    assert_eq!(record["body_size"], body.len());
    let stored = base64::engine::general_purpose::STANDARD
        .decode(record["body_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(stored, body);
}

#[test]
fn get_is_an_info_page_and_not_recorded_other_methods_get_405() {
    let listener = Listener::start(&["--json", "--no-store"]);
    let reply = exchange(
        listener.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(reply.status(), 200);
    assert!(String::from_utf8_lossy(reply.body()).contains("danube-hooks is listening"));
    let reply = exchange(
        listener.addr,
        b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        WAIT,
    );
    assert_eq!(reply.status(), 405);
    let record = listener.next_record();
    assert_eq!(
        record["method"], "PUT",
        "the GET was not recorded, the PUT was"
    );
    assert_eq!(record["response"]["status"], 405);
}

#[test]
fn verdicts_rotation_and_reject_invalid() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--reject-invalid",
        "--secret",
        "whsec_the_next_secret_00000009",
        "--secret",
        SECRET,
    ]);
    let body = event_body("tool.execution.failed", 3);
    assert_eq!(
        signed_post(listener.addr, SECRET, now(), &body).status(),
        200
    );
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "valid");
    assert_eq!(record["signature"]["secret"], "whsec_…LaSw");

    let reply = signed_post(
        listener.addr,
        "whsec_some_other_secret_0000",
        now(),
        &event_body("tool.execution.failed", 4),
    );
    assert_eq!(reply.status(), 401);
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "mismatch");
    assert!(
        record["response"]["rule"]
            .as_str()
            .unwrap()
            .contains("--reject-invalid")
    );

    assert_eq!(
        signed_post(listener.addr, SECRET, now() - 1000, &event_body("x", 5)).status(),
        401
    );
    assert_eq!(listener.next_record()["signature"]["verdict"], "stale");

    let unsigned = exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT);
    assert_eq!(unsigned.status(), 401);
    assert_eq!(listener.next_record()["signature"]["verdict"], "missing");

    let malformed = exchange(
        listener.addr,
        &request_bytes("/", &[("X-Danube-Signature", "t=1,v1=00")], b"{}"),
        WAIT,
    );
    assert_eq!(malformed.status(), 401);
    assert_eq!(listener.next_record()["signature"]["verdict"], "malformed");
}

#[test]
fn tolerance_is_configurable() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--tolerance",
        "5000",
    ]);
    signed_post(listener.addr, SECRET, now() - 1000, &event_body("x", 6));
    assert_eq!(listener.next_record()["signature"]["verdict"], "valid");
}

#[test]
fn status_steps_follow_the_attempts_of_a_group() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--respond",
        "500,503,200",
    ]);
    let body = event_body("workflow.failed", 7);
    // Re-signed each time with a new t, as a retrying sender might.
    let statuses: Vec<u16> = (0..4)
        .map(|i| signed_post(listener.addr, SECRET, now() - i, &body).status())
        .collect();
    assert_eq!(statuses, [500, 503, 200, 200], "the last step repeats");
    let records: Vec<_> = (0..4).map(|_| listener.next_record()).collect();
    let group = &records[0]["group"];
    for (i, record) in records.iter().enumerate() {
        assert_eq!(&record["group"], group);
        assert_eq!(record["attempt"], i + 1);
    }
    assert_eq!(records[1]["response"]["rule"], "500,503,200 #2");
    // A new body is a new group, at attempt 1 again.
    assert_eq!(
        signed_post(
            listener.addr,
            SECRET,
            now(),
            &event_body("workflow.failed", 8)
        )
        .status(),
        500
    );
    let fresh = listener.next_record();
    assert_ne!(&fresh["group"], group);
    assert_eq!(fresh["attempt"], 1);
}

#[test]
fn same_body_without_resigning_is_a_group_and_flagged_as_replay() {
    let listener = Listener::start(&["--json", "--no-store", "--secret", SECRET]);
    let body = event_body("tool.execution.completed", 9);
    let t = now();
    for _ in 0..3 {
        signed_post(listener.addr, SECRET, t, &body);
    }
    let records: Vec<_> = (0..3).map(|_| listener.next_record()).collect();
    assert_eq!(records[2]["attempt"], 3);
    assert!(records[0].get("replay_of").is_none());
    assert_eq!(records[1]["replay_of"], records[0]["id"]);
    assert!(
        records[1]["signature"]["hints"]
            .to_string()
            .contains("same t and digest")
    );
}

#[test]
fn group_header_groups_by_delivery_id() {
    let listener = Listener::start(&["--json", "--no-store", "--group-header", "X-Delivery-Id"]);
    for (n, id) in [(1, "d-1"), (2, "d-1"), (3, "d-2")] {
        exchange(
            listener.addr,
            &request_bytes("/", &[("X-Delivery-Id", id)], &event_body("x", n)),
            WAIT,
        );
    }
    let records: Vec<_> = (0..3).map(|_| listener.next_record()).collect();
    assert_eq!(records[0]["group"], "x-delivery-id:d-1");
    assert_eq!(
        records[1]["attempt"], 2,
        "different bodies, same delivery id"
    );
    assert_eq!(records[2]["attempt"], 1);
}

#[test]
fn event_patterns_pick_the_rule() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--respond",
        "workflow.*=503",
        "--respond",
        "tool.execution.failed=418",
    ]);
    let send = |event: &str, n| {
        exchange(
            listener.addr,
            &request_bytes("/", &[], &event_body(event, n)),
            WAIT,
        )
        .status()
    };
    assert_eq!(send("workflow.completed", 10), 503);
    assert_eq!(send("tool.execution.failed", 11), 418);
    assert_eq!(send("tool.execution.completed", 12), 200);
    assert_eq!(
        exchange(listener.addr, &request_bytes("/", &[], b"not json"), WAIT).status(),
        200
    );
    let first = listener.next_record();
    assert_eq!(first["response"]["rule"], "workflow.*=503 #1");
}

#[test]
fn reset_close_garbage_and_timeout_reach_the_sender_as_such() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--respond",
        "tool.execution.completed=reset",
        "--respond",
        "tool.execution.failed=close",
        "--respond",
        "workflow.completed=garbage",
        "--respond",
        "workflow.failed=timeout",
    ]);
    let send = |event: &str, n, wait| {
        exchange(
            listener.addr,
            &request_bytes("/", &[], &event_body(event, n)),
            wait,
        )
    };
    assert!(
        matches!(send("tool.execution.completed", 20, WAIT), Reply::Reset),
        "reset is an RST"
    );
    assert!(
        matches!(send("tool.execution.failed", 21, WAIT), Reply::Empty),
        "close is an empty reply"
    );
    match send("workflow.completed", 22, WAIT) {
        Reply::NotHttp(bytes) => assert!(!bytes.is_empty()),
        other => panic!("garbage should not be HTTP: {other:?}"),
    }
    assert!(
        matches!(
            send("workflow.failed", 23, Duration::from_secs(2)),
            Reply::NoAnswer
        ),
        "timeout answers nothing within 2 s"
    );
    let actions: Vec<String> = (0..4)
        .map(|_| {
            listener.next_record()["response"]["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, ["reset", "close", "garbage", "timeout"]);
}

#[test]
fn a_delayed_answer_comes_only_after_the_delay() {
    let listener = Listener::start(&["--json", "--no-store", "--respond", "1500ms+202"]);
    let started = Instant::now();
    let reply = exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT);
    assert_eq!(reply.status(), 202);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "answered after {:?}",
        started.elapsed()
    );
    let record = listener.next_record();
    assert_eq!(record["response"]["delay_ms"], 1500);
    assert_eq!(record["response"]["rule"], "1.5s+202 #1");
}

#[test]
fn bad_rules_are_refused_at_start_with_the_position() {
    let output = common::run(
        &[
            "listen",
            "--port",
            "0",
            "--no-store",
            "--respond",
            "tool.*=50x",
        ],
        b"",
    );
    common::assert_exit(&output, 2);
    let message = common::stderr(&output);
    assert!(message.contains("column 8"), "{message}");
    assert!(message.contains("50x"), "{message}");
    let output = common::run(
        &[
            "listen",
            "--port",
            "0",
            "--no-store",
            "--respond",
            "500,forward",
        ],
        b"",
    );
    common::assert_exit(&output, 2);
    assert!(
        common::stderr(&output).contains("--forward-to"),
        "{}",
        common::stderr(&output)
    );
}

/// A receiver that records the raw bytes of each request and answers
/// `answer`, in a thread. Returns its address and the requests it saw.
fn fake_receiver(answer: &'static [u8]) -> (std::net::SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { break };
            let seen = common::read_request(&mut stream, Duration::from_secs(5));
            let _ = stream.write_all(answer);
            if tx.send(seen).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

#[test]
fn forward_passes_bytes_and_headers_and_relays_the_answer() {
    let (receiver, requests) = fake_receiver(b"HTTP/1.1 201 Created\r\nContent-Length: 9\r\nX-Receiver: yes\r\nConnection: close\r\n\r\nstored-ok");
    let target = format!("http://{receiver}/hooks");
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--forward-to",
        &target,
    ]);
    let body = event_body("tool.execution.completed", 30);
    let reply = signed_post(listener.addr, SECRET, now(), &body);
    assert_eq!(reply.status(), 201);
    assert_eq!(reply.body(), b"stored-ok");
    assert_eq!(reply.header("x-receiver"), Some("yes"));
    let seen = requests.recv_timeout(WAIT).unwrap();
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.starts_with("POST /hooks HTTP/1.1\r\n"), "{text}");
    assert!(seen.ends_with(&body), "body byte-identical");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("x-danube-signature: t="), "{text}");
    assert!(lower.contains("content-type: application/json"), "{text}");
    assert!(
        !lower.contains("connection: close"),
        "hop-by-hop headers stay behind: {text}"
    );
    let record = listener.next_record();
    assert_eq!(record["response"]["action"], "forward");
    assert_eq!(record["forward"]["status"], 201);
    assert_eq!(record["forward"]["body_preview"], "stored-ok");
    assert_eq!(record["forward"]["url"], format!("http://{receiver}/hooks"));
    assert!(record["forward"]["error"].is_null());
}

#[test]
fn forward_failures_are_502_and_504_and_recorded() {
    let refused = {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    }; // dropped: nothing listens there now
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &format!("http://{refused}/"),
    ]);
    let reply = exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT);
    assert_eq!(reply.status(), 502);
    let record = listener.next_record();
    assert!(
        record["forward"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{record}"
    );

    let stalling = TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_addr = stalling.local_addr().unwrap();
    let slow = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &format!("http://{stall_addr}/"),
        "--forward-timeout",
        "500ms",
    ]);
    let reply = exchange(slow.addr, &request_bytes("/", &[], b"{}"), WAIT);
    assert_eq!(reply.status(), 504);
    let record = slow.next_record();
    assert!(
        record["forward"]["error"]
            .as_str()
            .unwrap()
            .contains("within 500 ms"),
        "{record}"
    );
    drop(stalling);
}

#[test]
fn forced_failures_hold_attempts_back_from_the_receiver() {
    let (receiver, requests) =
        fake_receiver(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &format!("http://{receiver}/"),
        "--respond",
        "500,500,forward",
    ]);
    let body = event_body("workflow.completed", 40);
    let statuses: Vec<u16> = (0..3)
        .map(|_| exchange(listener.addr, &request_bytes("/", &[], &body), WAIT).status())
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(
        requests.recv_timeout(WAIT).is_ok(),
        "the third attempt got through"
    );
    assert!(
        requests.recv_timeout(Duration::from_millis(300)).is_err(),
        "only the third attempt got through"
    );
}

#[test]
fn body_limit_answers_413_and_records_it_then_serves_on() {
    let listener = Listener::start(&["--json", "--no-store", "--max-body", "1KiB"]);
    let big = vec![b'x'; 4096];
    let reply = exchange(listener.addr, &request_bytes("/", &[], &big), WAIT);
    assert_eq!(reply.status(), 413);
    let record = listener.next_record();
    assert_eq!(record["body_truncated"], true);
    assert_eq!(record["body_size"], 4096);
    assert_eq!(record["response"]["action"], "too-large");
    assert_eq!(
        exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT).status(),
        200
    );
}

#[test]
fn a_stalled_header_is_cut_off_and_the_listener_serves_on() {
    let listener = Listener::start(&["--json", "--no-store", "--idle-timeout", "1s"]);
    let mut stalled = TcpStream::connect(listener.addr).unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Half: ")
        .unwrap();
    let reply = common::read_reply(&mut stalled, Duration::from_secs(5));
    assert!(
        !matches!(reply, Reply::NoAnswer),
        "the stalled connection was not cut: {reply:?}"
    );
    assert_eq!(
        exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT).status(),
        200
    );
}

#[test]
fn random_bytes_are_refused_and_the_listener_serves_on() {
    let listener = Listener::start(&["--json", "--no-store"]);
    let noise: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let reply = exchange(listener.addr, &noise, WAIT);
    match reply {
        Reply::Http { status, .. } => assert_eq!(status, 400),
        Reply::Empty | Reply::Reset => {}
        other => panic!("random bytes got {other:?}"),
    }
    assert_eq!(
        exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT).status(),
        200
    );
}

#[test]
fn two_thousand_idle_connections_do_not_lock_out_a_delivery() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--max-connections",
        "200",
        "--idle-timeout",
        "1s",
    ]);
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| TcpStream::connect(listener.addr).ok())
        .collect();
    assert!(idle.len() > 1000, "opened only {}", idle.len());
    let reply = exchange(
        listener.addr,
        &request_bytes("/", &[], b"{}"),
        Duration::from_secs(30),
    );
    assert_eq!(reply.status(), 200);
    drop(idle);
}

#[test]
fn sigterm_finishes_answers_in_flight_and_syncs_the_store() {
    let dir = TempDir::new("sigterm");
    let store = dir.join("deliveries.jsonl");
    let mut listener = Listener::start(&[
        "--json",
        "--store",
        store.to_str().unwrap(),
        "--respond",
        "3s+200",
    ]);
    let addr = listener.addr;
    let in_flight =
        std::thread::spawn(move || exchange(addr, &request_bytes("/", &[], b"{}"), WAIT));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    assert_eq!(
        in_flight.join().unwrap().status(),
        200,
        "the answer in flight was sent"
    );
    let stored = std::fs::read_to_string(&store).unwrap();
    assert_eq!(stored.lines().count(), 1, "{stored}");
}

#[test]
fn a_port_in_use_is_one_line_naming_the_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = common::run(&["listen", "--no-store", "--port", &port], b"");
    common::assert_exit(&output, 2);
    let message = common::stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains(&format!("port {port}")), "{message}");
}

#[test]
fn binding_all_interfaces_warns() {
    let listener = Listener::start(&["--no-store", "--host", "0.0.0.0"]);
    assert!(
        listener.banner.contains("reachable from the network"),
        "{}",
        listener.banner
    );
}

#[test]
fn a_secret_without_its_prefix_warns_once_at_start() {
    let bare = SECRET.strip_prefix("whsec_").unwrap();
    let listener = Listener::start(&["--no-store", "--secret", bare]);
    let warnings: Vec<&str> = listener
        .banner
        .lines()
        .filter(|line| line.contains("has no whsec_ prefix"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", listener.banner);
    assert!(
        warnings[0].contains("warning:  the secret …LaSw"),
        "{warnings:?}"
    );
    assert!(!listener.banner.contains(bare), "a secret printed whole");
}

#[test]
fn stopping_without_a_store_does_not_claim_a_synced_store() {
    let mut listener = Listener::start(&["--no-store"]);
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    let said = listener.stderr_so_far();
    assert!(!said.contains("store is synced"), "{said}");
    assert!(said.contains("kept in memory only (--no-store)"), "{said}");
}
