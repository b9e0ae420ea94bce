//! Routes and mirrors (SPEC §4): `--forward-to [PATTERN=]URL` chooses the
//! receiver by the event, `--mirror-to URL` sends a copy whose answer is
//! recorded and never waited for.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::common::{
    self, Arrived, Capture, Listener, TempDir, closed_port, event_body, exchange, request_bytes,
};

const WAIT: Duration = Duration::from_secs(10);

/// How long a mirror may take (`--forward-timeout`); the slow mirror
/// sleeps far longer.
const MIRROR_TIMEOUT_S: u64 = 4;

/// A mirror that reads each request and answers nothing for 10 s: a
/// thread per connection, so every copy is held.
fn sleeping_mirror() -> SocketAddr {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let _ = common::read_request(&mut stream, WAIT);
                std::thread::sleep(Duration::from_secs(10));
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
    addr
}

fn post(listener: &Listener, path: &str, body: &[u8]) -> (common::Reply, Duration) {
    let started = Instant::now();
    let reply = exchange(
        listener.addr,
        &request_bytes(path, &[("Content-Type", "application/json")], body),
        WAIT,
    );
    (reply, started.elapsed())
}

/// What mirror `index` of `record` came to: the record's result, or,
/// when the record was written before the mirror answered, the line the
/// listener printed for it later.
fn mirror_result(record: &serde_json::Value, index: usize, late: &[String]) -> String {
    let mirror = &record["mirrors"][index];
    let url = mirror["url"].as_str().unwrap();
    if let Some(status) = mirror["status"].as_u64() {
        return format!("{status}");
    }
    if let Some(error) = mirror["error"].as_str() {
        return format!("failed: {error}");
    }
    let id = record["id"].as_u64().unwrap();
    let prefix = format!("#{id:<5} mirror {url} → ");
    late.iter()
        .find_map(|line| line.trim_start().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no result for mirror {url} of #{id}: {late:#?}"))
        .split(" in ")
        .next()
        .unwrap()
        .to_string()
}

/// Three events, three rules (two patterns and a default), and three
/// mirrors (one that answers, one that sleeps, one that is not there):
/// each delivery reaches its receiver alone, the answers never wait for
/// the sleeping mirror, and each mirror's result lands in the record or,
/// when it comes later, in a line of its own.
#[test]
fn routes_choose_the_receiver_and_mirrors_never_hold_the_answer() {
    let tools = Capture::answering_status(201);
    let failures = Capture::start();
    let rest = Capture::answering_status(202);
    let mirror = Capture::answering_status(503);
    let sleeping = sleeping_mirror();
    let dead = closed_port();
    let dir = TempDir::new("routes");
    let store = dir.join("deliveries.jsonl");
    let timeout = format!("{MIRROR_TIMEOUT_S}s");
    let listener = Listener::start(&[
        "--no-tui",
        "--store",
        store.to_str().unwrap(),
        "--forward-timeout",
        &timeout,
        "--forward-to",
        &format!("tool.*={}", tools.url("/tools?a=b")),
        "--forward-to",
        &format!("workflow.failed={}", failures.url("/failed")),
        "--forward-to",
        &rest.url(""),
        "--mirror-to",
        &mirror.url("/copy"),
        "--mirror-to",
        &format!("http://{sleeping}"),
        "--mirror-to",
        &format!("http://{dead}"),
    ]);
    assert!(
        listener.banner.contains("tool.*=http://"),
        "{}",
        listener.banner
    );
    assert!(
        listener
            .banner
            .contains(&format!("mirror:   http://{sleeping}")),
        "{}",
        listener.banner
    );

    let cases = [
        ("tool.execution.completed", &tools, 201, "/tools?a=b"),
        ("workflow.failed", &failures, 200, "/failed"),
        ("workflow.completed", &rest, 202, "/hooks/x"),
    ];
    for (n, (event, receiver, status, path)) in cases.iter().enumerate() {
        let body = event_body(event, n as u64);
        let (reply, took) = post(&listener, "/hooks/x", &body);
        assert_eq!(
            reply.status(),
            *status,
            "{event}: the receiver's answer is relayed"
        );
        // A bound on not waiting, far from a speed test: a mirror that
        // held the answer would hold it to its timeout.
        assert!(
            took < Duration::from_secs(MIRROR_TIMEOUT_S - 1),
            "{event}: answered after {took:?}: the answer waited for a mirror"
        );
        let arrived = Arrived::parse(&receiver.next_request(WAIT).unwrap());
        assert_eq!(String::from_utf8_lossy(&arrived.target), *path, "{event}");
        assert_eq!(arrived.body, body, "{event}");
        let copy = Arrived::parse(&mirror.next_request(WAIT).unwrap());
        assert_eq!(String::from_utf8_lossy(&copy.target), "/copy", "{event}");
        assert_eq!(copy.body, body, "{event}: the mirror gets the same body");
    }
    for receiver in [&tools, &failures, &rest] {
        assert_eq!(
            receiver.connections(),
            1,
            "each delivery reached one receiver"
        );
    }

    // The sleeping mirror's timeout comes after the records are written:
    // a line of its own for each delivery.
    let late = lines_naming(&listener, &sleeping.to_string(), 3);
    let records = common::store_records(&store);
    assert_eq!(records.len(), 3);
    for (record, (event, receiver, _, path)) in records.iter().zip(&cases) {
        assert_eq!(record["event"], *event);
        assert_eq!(record["forward"]["url"], receiver.url(path), "{event}");
        assert_mirrors(record, &mirror.url("/copy"), &late);
    }
    assert_late_answers_are_kept(&store);
}

/// The sleeping mirror's later answers are kept too, each a line of its
/// own, and `log` gives each record with them folded in.
fn assert_late_answers_are_kept(store: &std::path::Path) {
    let answers = std::fs::read_to_string(store)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("{\"mirror_of\":"))
        .count();
    assert!(answers >= 3, "an answer line per late mirror: {answers}");
    let log = common::run(&["log", "--json", "--store", store.to_str().unwrap()], b"");
    common::assert_exit(&log, 0);
    let read: Vec<serde_json::Value> = common::stdout(&log)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(read.len(), 3, "answer lines are no records");
    for record in &read {
        let sleeper = &record["mirrors"][1];
        assert!(
            sleeper["error"].as_str().is_some_and(
                |error| error.starts_with("no answer from") && error.contains("4000 ms")
            ),
            "the late answer is in the record read back: {record}"
        );
        assert_eq!(record["mirrors"][0]["status"], 503, "{record}");
    }
}

/// stdout's lines until `n` of them name `needle`, within the mirrors'
/// timeout and a margin.
fn lines_naming(listener: &Listener, needle: &str, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + WAIT + Duration::from_secs(MIRROR_TIMEOUT_S);
    while lines
        .iter()
        .filter(|l: &&String| l.contains(needle))
        .count()
        < n
    {
        let line = listener
            .stdout_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("fewer than {n} lines name {needle}: {lines:#?}"));
        lines.push(line);
    }
    lines
}

/// The three mirrors of `record`: the one that answers 503, the sleeping
/// one (waiting when the record was written, timed out later), the dead
/// one (refused).
fn assert_mirrors(record: &serde_json::Value, answering: &str, late: &[String]) {
    let event = &record["event"];
    let mirrors = record["mirrors"].as_array().unwrap();
    assert_eq!(mirrors.len(), 3, "{record}");
    assert_eq!(mirrors[0]["url"], answering);
    assert_eq!(mirror_result(record, 0, late), "503", "{event}");
    let sleeper = &mirrors[1];
    assert!(
        sleeper["status"].is_null() && sleeper["error"].is_null(),
        "{event}: the sleeping mirror had not answered when the record was written: {sleeper}"
    );
    let timed_out = mirror_result(record, 1, late);
    assert!(
        timed_out.starts_with("failed: no answer from") && timed_out.contains("4000 ms"),
        "{event}: {timed_out}"
    );
    let refused = mirror_result(record, 2, late);
    assert!(
        refused.starts_with("failed: cannot connect"),
        "{event}: {refused}"
    );
}

/// Without a default rule, an event no rule matches is answered as
/// without --forward-to (200) and reaches no receiver; and a bad rule is
/// refused at start, naming the part and what is allowed.
#[test]
fn an_event_no_route_takes_is_answered_as_without_forwarding() {
    let tools = Capture::start();
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &format!("tool.*={}", tools.url("")),
    ]);
    let (reply, _) = post(&listener, "/x", &event_body("workflow.completed", 1));
    assert_eq!(reply.status(), 200);
    let record = listener.next_record();
    assert!(record["forward"].is_null(), "{record}");
    assert!(
        record.get("mirrors").is_none(),
        "written only with --mirror-to: {record}"
    );
    let rule = record["response"]["rule"].as_str().unwrap();
    assert!(rule.contains("no --forward-to rule matches"), "{rule}");
    let (reply, _) = post(&listener, "/x", &event_body("tool.execution.failed", 2));
    assert_eq!(reply.status(), 200);
    assert_eq!(listener.next_record()["forward"]["url"], tools.url("/x"));
    assert_eq!(tools.connections(), 1);

    for (args, wanted) in [
        (
            ["--forward-to", "to*ol=http://127.0.0.1:1/"],
            "--forward-to \"to*ol=http://127.0.0.1:1/\": at column 3, expected \"*\" only at the end",
        ),
        (["--forward-to", "tool.*="], "expected a URL after \"=\""),
        (["--forward-to", "tool.*=ftp://x"], "[PATTERN=]URL"),
        (
            ["--mirror-to", "ftp://x"],
            "--mirror-to: \"ftp://x\" is not a usable URL",
        ),
    ] {
        let output = common::run(
            &[&["listen", "--port", "0", "--no-store"], &args[..]].concat(),
            b"",
        );
        common::assert_exit(&output, 2);
        common::assert_contains(&common::stderr(&output), wanted);
    }
}
