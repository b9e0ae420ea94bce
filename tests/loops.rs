//! A forward or mirror that leads back to the listener: refused at start
//! when the target is the listener itself, cut with `508` when the loop
//! goes through another hop.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common::{self, Listener, closed_port, event_body, exchange, request_bytes};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_target_that_is_the_listener_itself_is_refused_at_start() {
    // A port nobody holds, for the listener to bind and the target to name.
    let port = closed_port().port().to_string();
    let own = |host: &str| format!("http://{host}:{port}/webhooks/danube-v2");
    // The README shows the refusal of its own example as printed.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let printed = readme
        .lines()
        .find(|line| line.starts_with("danube-hooks: --mirror-to http://localhost:4000/"))
        .expect("the README shows the refusal")
        .replace(":4000", &format!(":{port}"));
    for (flag, target) in [
        ("--mirror-to", own("localhost")),
        ("--forward-to", own("127.0.0.1")),
        ("--forward-to", format!("tool.*={}", own("[::1]"))),
    ] {
        let output = common::run(
            &["listen", "--port", &port, "--no-store", flag, &target],
            b"",
        );
        common::assert_exit(&output, 2);
        let stderr = common::stderr(&output);
        common::assert_contains(&stderr, &format!("{flag} http://"));
        common::assert_contains(&stderr, "may not be the listener");
        common::assert_contains(&stderr, &format!("listening on 127.0.0.1:{port}"));
        common::assert_contains(&stderr, "another port");
        assert!(
            !stderr.contains("listening on http://"),
            "never served: {stderr}"
        );
        if flag == "--mirror-to" {
            common::assert_contains(&stderr, &printed);
        }
    }
}

/// A stand-in for a tunnel that leads back to the listener: each request
/// it gets is sent on to the address set later (the listener's, known once
/// it has started), and its answer relayed back. Keeps what it got.
struct Relay {
    addr: SocketAddr,
    to: Arc<OnceLock<SocketAddr>>,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Relay {
    fn start() -> Self {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let to = Arc::new(OnceLock::<SocketAddr>::new());
        let got = Arc::new(Mutex::new(Vec::new()));
        let (relay_to, relay_got) = (Arc::clone(&to), Arc::clone(&got));
        std::thread::spawn(move || {
            for stream in server.incoming() {
                let Ok(mut stream) = stream else { break };
                let (to, got) = (Arc::clone(&relay_to), Arc::clone(&relay_got));
                std::thread::spawn(move || {
                    let request = common::read_request(&mut stream, WAIT);
                    got.lock().unwrap().push(request.clone());
                    let mut onward = TcpStream::connect(to.get().unwrap()).unwrap();
                    onward.write_all(&request).unwrap();
                    let _ = stream.write_all(&read_answer(&mut onward));
                });
            }
        });
        Self { addr, to, got }
    }
}

/// One whole answer as it came, bytes and all (what follows it left out).
fn read_answer(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = common::read_request(stream, WAIT);
    if let Some(whole) = common::complete_message(&seen) {
        seen.truncate(whole);
    }
    seen
}

#[test]
fn a_loop_through_another_hop_is_cut_with_508() {
    let relay = Relay::start();
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &format!("http://{}/", relay.addr),
    ]);
    relay.to.set(listener.addr).unwrap();
    // A stranger's value of the header changes nothing: this one is
    // forwarded as any other.
    let reply = exchange(
        listener.addr,
        &request_bytes(
            "/webhooks/danube",
            &[("X-Danube-Hooks-Via", "a-guess")],
            &event_body("tool.execution.failed", 1),
        ),
        WAIT,
    );
    // The copy that came back was answered 508, and that answer relayed.
    assert_eq!(reply.status(), 508);
    let body = String::from_utf8_lossy(reply.body()).into_owned();
    common::assert_contains(&body, "loop detected");

    // The copy that came back is recorded first: it was answered first.
    let inner = listener.next_record();
    let outer = listener.next_record();
    assert_eq!(inner["response"]["action"], "loop", "{inner}");
    assert_eq!(inner["response"]["status"], 508, "{inner}");
    let rule = inner["response"]["rule"].as_str().unwrap();
    common::assert_contains(rule, "loop detected");
    assert!(inner["forward"].is_null(), "not sent on again: {inner}");
    assert_eq!(outer["response"]["action"], "forward", "{outer}");
    assert_eq!(outer["forward"]["status"], 508, "{outer}");
    // Two records for one POST, and no more.
    assert!(
        listener
            .stdout_lines
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "a third record"
    );

    // The relay saw the copy once, with the stranger's value and the nonce.
    let got = relay.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one copy went out");
    let copy = String::from_utf8_lossy(&got[0]).into_owned();
    let vias: Vec<&str> = copy
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-danube-hooks-via"))
        .map(|(_, value)| value.trim())
        .collect();
    let [guess, nonce] = vias[..] else {
        panic!("two X-Danube-Hooks-Via headers: {copy}")
    };
    assert_eq!(guess, "a-guess");
    assert!(nonce.len() >= 32, "{nonce}");
    // The nonce is never shown: not in a record, an answer or on stderr.
    let shown = format!("{inner}{outer}{body}{}", listener.stderr_so_far());
    assert!(!shown.contains(nonce), "the nonce was shown: {shown}");
    let recorded = inner["headers"].to_string();
    common::assert_contains(&recorded, "(this listener)");
}
