//! Black-box: `trigger`, `replay`, `log`, `show`, `export` and `check`,
//! against the real listener and against receivers written here.

use crate::common;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use base64::Engine as _;
use common::{Listener, SECRET, TempDir, assert_exit, run, stderr, stdout};

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn trigger_retries_until_success_and_the_listener_sees_one_group() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--respond",
        "500,500,200",
    ]);
    let output = run(
        &[
            "trigger",
            "workflow.failed",
            "--to",
            &url(listener.addr, "/hooks"),
            "--secret",
            SECRET,
            "--attempts",
            "3",
            "--backoff",
            "100ms",
        ],
        b"",
    );
    assert_exit(&output, 0);
    let report = &json_lines(&stdout(&output))[0];
    assert_eq!(report["status"], "success");
    assert_eq!(report["attempts"], 3);
    assert_eq!(report["event_type"], "workflow.failed");
    assert_eq!(report["response_status"], 200);
    assert_eq!(report["webhook_id"], "wh_local");
    assert!(report["id"].as_str().unwrap().starts_with("dlv_"));
    assert!(report["delivered_at"].is_string() && report["created_at"].is_string());
    assert_eq!(report["payload"]["event"], "workflow.failed");
    let timestamp = report["payload"]["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2026-11-23T09:14:07.123456Z".len(),
        "µs timestamp: {timestamp}"
    );
    assert!(
        stderr(&output).contains("attempt 1/3: 500"),
        "{}",
        stderr(&output)
    );

    let records: Vec<_> = (0..3).map(|_| listener.next_record()).collect();
    let statuses: Vec<_> = records
        .iter()
        .map(|r| r["response"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["group"], records[0]["group"]);
        assert_eq!(record["attempt"], i + 1);
        assert_eq!(record["signature"]["verdict"], "valid");
        assert!(record["headers"].to_string().contains("application/json"));
    }
    // Retries 100 ms apart usually fall in the same second as the attempt
    // before, and t counts seconds: trigger says so exactly when it
    // happened, and the listener flags exactly those as replays.
    for pair in records.windows(2) {
        let n = pair[1]["attempt"].as_u64().unwrap();
        let same_t = pair[0]["signature"]["timestamp"] == pair[1]["signature"]["timestamp"];
        let noted = stderr(&output).contains(&format!(
            "attempt {n}/3: signed with the same t as attempt {}",
            n - 1
        ));
        assert_eq!(noted, same_t, "attempt {n}: {}", stderr(&output));
        assert_eq!(!pair[1]["replay_of"].is_null(), same_t, "{}", pair[1]);
    }
}

#[test]
fn trigger_gives_up_after_the_attempts_and_says_failed() {
    let stalling = TcpListener::bind("127.0.0.1:0").unwrap();
    let output = run(
        &[
            "trigger",
            "tool.execution.completed",
            "--to",
            &url(stalling.local_addr().unwrap(), "/"),
            "--secret",
            SECRET,
            "--attempts",
            "2",
            "--timeout",
            "300ms",
            "--backoff",
            "50ms",
        ],
        b"",
    );
    assert_exit(&output, 1);
    let report = &json_lines(&stdout(&output))[0];
    assert_eq!(report["status"], "failed");
    assert_eq!(report["attempts"], 2);
    assert!(report["response_status"].is_null());
    assert!(stderr(&output).contains("no answer"), "{}", stderr(&output));

    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = run(
        &[
            "trigger",
            "workflow.completed",
            "--to",
            &url(refused, "/"),
            "--attempts",
            "1",
        ],
        b"",
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot connect"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn attempts_that_never_connected_are_no_replays() {
    // Five refused attempts 1 ms apart: most share a second, but none
    // reached a receiver, so no signature was ever seen to repeat.
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = run(
        &[
            "trigger",
            "workflow.completed",
            "--to",
            &url(refused, "/"),
            "--secret",
            SECRET,
            "--attempts",
            "5",
            "--backoff",
            "1ms",
        ],
        b"",
    );
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert_eq!(err.matches("cannot connect").count(), 5, "{err}");
    assert!(!err.contains("same t"), "{err}");
    assert!(!err.contains("replay"), "{err}");
}

#[test]
fn trigger_all_sets_and_data_files() {
    let listener = Listener::start(&["--json", "--no-store", "--secret", SECRET]);
    let output = run(
        &[
            "trigger",
            "--all",
            "--to",
            &url(listener.addr, "/"),
            "--secret",
            SECRET,
        ],
        b"",
    );
    assert_exit(&output, 0);
    let reports = json_lines(&stdout(&output));
    let events: Vec<_> = reports
        .iter()
        .map(|r| r["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "tool.execution.completed",
            "tool.execution.failed",
            "workflow.completed",
            "workflow.failed",
            "agent.spend.limit_approaching"
        ]
    );
    for _ in 0..5 {
        assert_eq!(listener.next_record()["signature"]["verdict"], "valid");
    }

    let dir = TempDir::new("data-file");
    let data = dir.join("data.json");
    std::fs::write(&data, br#"{"workflow_id":"wf-9","steps":[1,2]}"#).unwrap();
    let output = run(
        &[
            "trigger",
            "workflow.completed",
            "--to",
            &url(listener.addr, "/"),
            "--secret",
            SECRET,
            "--data-file",
            data.to_str().unwrap(),
            "--set",
            "data.ok=true",
            "--set",
            "data.count=3",
            "--set",
            "data.note=null",
            "--set",
            "data.name=x",
        ],
        b"",
    );
    assert_exit(&output, 0);
    let payload = &json_lines(&stdout(&output))[0]["payload"];
    assert_eq!(
        payload["data"],
        serde_json::json!({"workflow_id":"wf-9","steps":[1,2],"ok":true,"count":3,"note":null,"name":"x"})
    );
}

#[test]
fn trigger_refuses_unknown_events_with_the_list() {
    let output = run(
        &["trigger", "order.created", "--to", "http://127.0.0.1:9/"],
        b"",
    );
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(
        message.contains("order.created") && message.contains("agent.spend.limit_approaching"),
        "{message}"
    );
    let output = run(
        &["trigger", "workflow.failed", "--to", "ftp://127.0.0.1:9/"],
        b"",
    );
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("it must start with http:// or https://"),
        "{}",
        stderr(&output)
    );
}

/// A listener with a store, and one stored delivery forwarded to `forward`.
fn stored_listener(dir: &TempDir, extra: &[&str]) -> (Listener, String) {
    let store = dir.join("deliveries.jsonl").to_str().unwrap().to_string();
    let mut args = vec!["--json", "--store", &store, "--secret", SECRET];
    args.extend_from_slice(extra);
    (Listener::start(&args), store)
}

#[test]
fn replay_resigns_by_default_and_as_is_is_byte_identical() {
    let dir = TempDir::new("replay");
    let (listener, store) = stored_listener(&dir, &[]);
    let first = common::signed_post(
        listener.addr,
        SECRET,
        common::now() - 200,
        &common::event_body("workflow.completed", 1),
    );
    assert_eq!(first.status(), 200);
    let original = listener.next_record();

    let target = url(listener.addr, "/replayed");
    let output = run(
        &[
            "replay", "1", "--store", &store, "--to", &target, "--secret", SECRET,
        ],
        b"",
    );
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("200 in "),
        "{}",
        stdout(&output)
    );
    let resigned = listener.next_record();
    assert_eq!(resigned["body_b64"], original["body_b64"]);
    assert_eq!(resigned["signature"]["verdict"], "valid");
    assert_ne!(
        resigned["signature"]["timestamp"], original["signature"]["timestamp"],
        "a fresh t"
    );
    assert!(resigned.get("replay_of").is_none());

    let output = run(
        &["replay", "1", "--store", &store, "--to", &target, "--as-is"],
        b"",
    );
    assert_exit(&output, 0);
    let as_is = listener.next_record();
    assert_eq!(as_is["body_b64"], original["body_b64"]);
    assert_eq!(
        common::signature_header(&as_is),
        common::signature_header(&original),
        "original signature kept"
    );
    assert_eq!(
        as_is["replay_of"], original["id"],
        "the listener flags it as a replay"
    );

    let no_secret = run(&["replay", "1", "--store", &store, "--to", &target], b"");
    assert_exit(&no_secret, 2);
    assert!(
        stderr(&no_secret).contains("--secret"),
        "{}",
        stderr(&no_secret)
    );
    // No --to, and it was not forwarded: back to the listener it arrived
    // at, on the path it arrived on (SPEC §2), recorded as a copy of it.
    let home = run(&["replay", "1", "--store", &store, "--secret", SECRET], b"");
    assert_exit(&home, 0);
    let copy = listener.next_record();
    assert_eq!(copy["path"], original["path"]);
    assert_eq!(copy["resent_from"], original["id"]);
    assert_eq!(copy["signature"]["verdict"], "valid");
    let unknown = run(&["replay", "99", "--store", &store, "--to", &target], b"");
    assert_exit(&unknown, 2);
    assert!(stderr(&unknown).contains("99"), "{}", stderr(&unknown));
}

#[test]
fn replay_defaults_to_the_recorded_forward_target() {
    let dir = TempDir::new("replay-forward");
    let receiver = Listener::start(&["--json", "--no-store"]);
    let forward = url(receiver.addr, "/receiver");
    let (listener, store) = stored_listener(&dir, &["--forward-to", &forward]);
    common::signed_post(
        listener.addr,
        SECRET,
        common::now(),
        b"{\"event\":\"workflow.failed\"}",
    );
    listener.next_record();
    assert_eq!(receiver.next_record()["path"], "/receiver");
    let output = run(&["replay", "1", "--store", &store, "--secret", SECRET], b"");
    assert_exit(&output, 0);
    assert_eq!(
        receiver.next_record()["path"],
        "/receiver",
        "replayed to the forward target"
    );
}

/// The query language (SPEC §15) over the store of
/// [`log_show_and_export_read_the_store`], as the listener wrote it: #1 a
/// valid tool failure, #2 a mismatched workflow failure, #3 an unsigned
/// tool completion to `/evil?q=%1b` with an `X-Note` header.
fn log_and_export_take_a_query(store: &str) {
    let ids_of = |query: &str, extra: &[&str]| -> Vec<u64> {
        let output = run(
            &[
                &["log", "--store", store, "--json", "--query", query][..],
                extra,
            ]
            .concat(),
            b"",
        );
        assert_exit(&output, 0);
        json_lines(&stdout(&output))
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect()
    };
    for (query, extra, ids) in [
        ("event:tool.* -path:/evil*", &[][..], &[1][..]),
        ("data.n>=1 data.n<2", &[], &[1]),
        ("data.n=2 verdict:mismatch status:2xx attempt:1", &[], &[2]),
        ("header:X-NOTE path:/evil", &[], &[3]),
        ("\"pwned\" id:>2", &[], &[3]),
        ("-verdict:valid", &["--event", "tool.*"], &[3]),
        ("since:1h until:2099-01-01", &["--last", "2"], &[2, 3]),
        ("status:5xx", &[], &[]),
    ] {
        assert_eq!(ids_of(query, extra), ids, "--query {query} {extra:?}");
    }
    let none = run(&["log", "--store", store, "--query", "status:5xx"], b"");
    assert!(
        stderr(&none).ends_with("matches --query status:5xx\n"),
        "{}",
        stderr(&none)
    );
    // A bad term is refused, never read as text: exit 2, the query, a
    // caret under the bad part, and what is allowed.
    let bad = run(
        &[
            "log",
            "--store",
            store,
            "--query",
            "event:tool.* stauts:500",
        ],
        b"",
    );
    assert_exit(&bad, 2);
    let message = stderr(&bad);
    assert!(
        message
            .contains("--query \"event:tool.* stauts:500\": at column 14, expected a key (event:")
            && message.contains("\n  event:tool.* stauts:500\n               ^"),
        "{message}"
    );
    assert_eq!(stdout(&bad), "");
    let exported = run(
        &[
            "export",
            "--store",
            store,
            "--query",
            "event:tool.execution.failed",
        ],
        b"",
    );
    assert_exit(&exported, 0);
    let text = stdout(&exported);
    assert!(
        text.starts_with("# delivery 1\n")
            && text.contains("\ncurl ")
            && !text.contains("# delivery 2"),
        "{text}"
    );
}

#[test]
fn log_show_and_export_read_the_store() {
    let dir = TempDir::new("inspect");
    let (listener, store) = stored_listener(&dir, &[]);
    common::signed_post(
        listener.addr,
        SECRET,
        common::now(),
        &common::event_body("tool.execution.failed", 1),
    );
    common::signed_post(
        listener.addr,
        "whsec_wrong_wrong_wrong_0000",
        common::now(),
        &common::event_body("workflow.failed", 2),
    );
    let evil = br#"{"event":"tool.execution.completed","note":"\u001b]0;pwned\u0007"}"#;
    common::exchange(
        listener.addr,
        &common::request_bytes("/evil?q=%1b", &[("X-Note", "a\u{202e}b")], evil),
        Duration::from_secs(5),
    );
    for _ in 0..3 {
        listener.next_record();
    }

    let all = run(&["log", "--store", &store], b"");
    assert_exit(&all, 0);
    let text = stdout(&all);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("mismatch"), "{text}");
    let tool = run(
        &["log", "--store", &store, "--json", "--event", "tool.*"],
        b"",
    );
    let ids: Vec<_> = json_lines(&stdout(&tool))
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
    let mismatched = run(
        &["log", "--store", &store, "--json", "--verdict", "mismatch"],
        b"",
    );
    assert_eq!(json_lines(&stdout(&mismatched))[0]["id"], 2);
    let last = run(&["log", "--store", &store, "--json", "--last", "1"], b"");
    assert_eq!(json_lines(&stdout(&last))[0]["id"], 3);
    let bad = run(&["log", "--store", &store, "--verdict", "nope"], b"");
    assert_exit(&bad, 2);

    log_and_export_take_a_query(&store);

    let show = run(&["show", "2", "--store", &store], b"");
    assert_exit(&show, 0);
    let text = stdout(&show);
    assert!(
        text.contains("MISMATCH") && text.contains("\"event\": \"workflow.failed\""),
        "{text}"
    );
    let raw = run(&["show", "3", "--store", &store, "--raw"], b"");
    let text = stdout(&raw);
    assert!(text.contains(r"\u001b]0;pwned"), "{text}");
    assert!(text.contains("a\\u{202e}b"), "{text}");
    assert!(
        !text.contains('\x1b') && !text.contains('\u{202e}'),
        "escaped: {text}"
    );

    let export = run(
        &[
            "export",
            "3",
            "--curl",
            "--store",
            &store,
            "--to",
            &url(listener.addr, "/again"),
        ],
        b"",
    );
    assert_exit(&export, 0);
    assert!(!stdout(&export).contains('\x1b'));
}

#[test]
fn export_prints_the_curl_command_without_being_asked_for_curl() {
    let store = common::fixtures().join("store/example.jsonl");
    let store = store.to_str().unwrap();
    let plain = run(&["export", "1", "--store", store], b"");
    assert_exit(&plain, 0);
    let command = stdout(&plain);
    assert!(
        command.starts_with("printf '%s' ") && command.contains("\ncurl --disable "),
        "{command}\n{}",
        stderr(&plain)
    );
    // --curl, the only format, is still taken, and changes nothing.
    let flagged = run(&["export", "1", "--curl", "--store", store], b"");
    assert_exit(&flagged, 0);
    assert_eq!(stdout(&flagged), command);
    let help = stdout(&run(&["export", "--help"], b""));
    assert!(
        help.contains("the default") && help.contains("danube-hooks export 42 | sh"),
        "{help}"
    );
}

#[test]
fn log_says_on_stderr_why_it_lists_nothing() {
    let dir = TempDir::new("log-empty");
    let empty = dir.join("deliveries.jsonl");
    std::fs::write(&empty, b"").unwrap();
    let empty = empty.to_str().unwrap();
    for args in [&["log"][..], &["log", "--json"], &["log", "--last", "5"]] {
        let output = run(&[args, &["--store", empty]].concat(), b"");
        assert_exit(&output, 0);
        assert_eq!(stdout(&output), "", "{args:?}: stdout is data only");
        assert_eq!(
            stderr(&output),
            format!(
                "danube-hooks: no deliveries in {empty} yet (danube-hooks listen records them \
                 there)\n"
            ),
            "{args:?}"
        );
    }

    let example = common::fixtures().join("store/example.jsonl");
    let example = example.to_str().unwrap();
    for (filters, named) in [
        (&["--event", "agent.*"][..], "--event agent.*"),
        (&["--verdict", "stale", "--last", "2"], "--verdict stale"),
        (
            &["--event", "workflow.*", "--verdict", "mismatch", "--json"],
            "--event workflow.* --verdict mismatch",
        ),
    ] {
        let output = run(&[&["log", "--store", example][..], filters].concat(), b"");
        assert_exit(&output, 0);
        assert_eq!(stdout(&output), "", "{filters:?}");
        assert_eq!(
            stderr(&output),
            format!("danube-hooks: none of the 4 deliveries in {example} matches {named}\n"),
            "{filters:?}"
        );
    }
    // Something listed: stderr stays quiet. --last 0 asks for nothing.
    for filters in [&["--event", "tool.*"][..], &["--last", "0"]] {
        let output = run(&[&["log", "--store", example][..], filters].concat(), b"");
        assert_exit(&output, 0);
        assert_eq!(stderr(&output), "", "{filters:?}");
    }
}

#[test]
fn exported_curl_reproduces_the_exact_bytes() {
    let dir = TempDir::new("curl");
    let (listener, store) = stored_listener(&dir, &[]);
    let bodies: [&[u8]; 2] = [
        br#"{"event":"tool.execution.completed","data":{"quote":"it's","slash":"a/b"}}"#,
        b"\x00\x01binary\xff\r\n",
    ];
    for body in bodies {
        common::signed_post(listener.addr, SECRET, common::now(), body);
        listener.next_record();
    }
    for id in [1, 2] {
        let export = run(
            &[
                "export",
                &id.to_string(),
                "--curl",
                "--store",
                &store,
                "--to",
                &url(listener.addr, "/curl"),
            ],
            b"",
        );
        assert_exit(&export, 0);
        let command = stdout(&export);
        let curl = std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .expect("sh runs curl");
        assert!(
            curl.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&curl.stderr)
        );
        let original = &json_lines(&std::fs::read_to_string(&store).unwrap())[id - 1];
        let again = listener.next_record();
        assert_eq!(
            again["body_b64"], original["body_b64"],
            "body bytes of #{id}"
        );
        assert_eq!(
            common::signature_header(&again),
            common::signature_header(original)
        );
        assert_eq!(again["signature"]["verdict"], "valid");
        let body = base64::engine::general_purpose::STANDARD
            .decode(again["body_b64"].as_str().unwrap())
            .unwrap();
        assert_eq!(body, bodies[id - 1]);
    }
}

/// A receiver that answers every request with `status` after `delay`, a
/// thread per connection. Returns its address.
fn receiver(status: u16, delay: Duration) -> SocketAddr {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                common::read_request(&mut stream, Duration::from_secs(15));
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            });
        }
    });
    addr
}

#[test]
fn check_passes_a_listener_that_rejects_invalid_deliveries() {
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--reject-invalid",
    ]);
    let output = run(
        &["check", &url(listener.addr, "/"), "--secret", SECRET],
        b"",
    );
    assert_exit(&output, 0);
    let card = stdout(&output);
    assert!(card.contains("13 of 13 cases passed."), "{card}");
    assert!(!card.contains("FAIL"), "{card}");
    let json = run(
        &[
            "check",
            &url(listener.addr, "/"),
            "--secret",
            SECRET,
            "--json",
        ],
        b"",
    );
    assert_exit(&json, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["cases"].as_array().unwrap().len(), 13);
}

#[test]
fn check_fails_a_careless_receiver_naming_each_rejection_case() {
    let careless = receiver(200, Duration::ZERO);
    let output = run(
        &["check", &url(careless, "/"), "--secret", SECRET, "--json"],
        b"",
    );
    assert_exit(&output, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["passed"], false);
    let failed: Vec<String> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] == false)
        .map(|c| c["case"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        failed,
        [
            "wrong secret",
            "tampered body",
            "stale t (600 s old)",
            "future t (600 s ahead)",
            "missing signature header",
            "malformed signature header"
        ]
    );
    let card = run(&["check", &url(careless, "/"), "--secret", SECRET], b"");
    assert!(
        stdout(&card).contains("anyone could forge"),
        "{}",
        stdout(&card)
    );
}

#[test]
fn check_fails_a_receiver_slower_than_ten_seconds() {
    let slow = receiver(200, Duration::from_secs(11));
    let output = run(&["check", &url(slow, "/"), "--secret", SECRET], b"");
    assert_exit(&output, 1);
    let card = stdout(&output);
    assert!(card.contains("no answer within 10 s"), "{card}");
    assert!(card.contains("0 of 13 cases passed"), "{card}");
}
