//! A stranger steering forward, replay and export to a host of their
//! choosing: hyper takes request targets such as
//! `@127.0.0.1:PORT` and `127.0.0.1:PORT`, and a URL joined from text went
//! where they said. Every test here has a capturing server that a hostile
//! target names and that must see nothing. (The dashboard's `r` is tested
//! as a unit, on the replayer `listen` gives it: src/commands/listen.rs.)

use std::time::Duration;

use crate::common::{
    self, Arrived, Capture, Listener, TempDir, assert_exit, exchange, raw_request, request_bytes,
    run, stderr, stdout,
};

const WAIT: Duration = Duration::from_secs(10);

/// What the listener must make of a target.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Answered 400 by the listener and recorded as `bad-target`.
    Refused,
    /// Not a URI at all: hyper answers 400 itself and nothing is recorded.
    NotHttp,
    /// Taken: recorded, and forwarded with this path and query.
    Path(&'static str),
}

/// The hostile targets, naming `evil` (the capturing server's `ip:port`).
fn targets(evil: &str) -> Vec<(String, Fate)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    vec![
        (format!("@{evil}"), Fate::Refused),
        (evil.to_string(), Fate::Refused),
        ("*".to_string(), Fate::Refused),
        (format!("@{evil}/x?y"), Fate::NotHttp),
        (format!("//{evil}/"), Fate::Path(leak(format!("//{evil}/")))),
        (format!("http://{evil}/x?y"), Fate::Path("/x?y")),
        (format!("http://u@{evil}/x"), Fate::Path("/x")),
        (
            format!("/\\{evil}/x"),
            Fate::Path(leak(format!("/\\{evil}/x"))),
        ),
        (format!("\\\\{evil}/x"), Fate::NotHttp),
        (
            format!("/%40{evil}"),
            Fate::Path(leak(format!("/%40{evil}"))),
        ),
    ]
}

fn hostile_post(listener: &Listener, target: &str) -> common::Reply {
    // The exact bytes: `request_bytes` writes `POST {target} HTTP/1.1`.
    let body = br#"{"event":"tool.execution.completed","data":{}}"#;
    exchange(
        listener.addr,
        &request_bytes(target, &[("Content-Type", "application/json")], body),
        WAIT,
    )
}

/// Every hostile target through `--forward-to http://receiver{path}`.
fn forwarding_goes_only_to_the_receiver(forward_path: &str) {
    let evil = Capture::start();
    let receiver = Capture::start();
    let mirror = Capture::start();
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &receiver.url(forward_path),
        "--mirror-to",
        &mirror.url(forward_path),
    ]);
    for (target, fate) in targets(&evil.addr.to_string()) {
        let reply = hostile_post(&listener, &target);
        match fate {
            Fate::NotHttp => {
                assert_eq!(reply.status(), 400, "{target}");
                assert_eq!(reply.header("x-danube-hooks-delivery"), None, "{target}");
            }
            Fate::Refused => {
                assert_eq!(reply.status(), 400, "{target}");
                let rule = reply.header("x-danube-hooks-rule").unwrap_or_default();
                assert!(rule.contains("origin-form"), "{target}: {rule}");
                let record = listener.next_record();
                assert_eq!(record["response"]["action"], "bad-target", "{target}");
                assert_eq!(record["path"], target.as_str(), "kept as received");
                assert!(record["forward"].is_null(), "{target}: {record}");
            }
            Fate::Path(path) => {
                assert_eq!(reply.status(), 200, "{target}");
                let record = listener.next_record();
                assert_eq!(record["path"], path, "{target}");
                let arrived = Arrived::parse(
                    &receiver
                        .next_request(WAIT)
                        .unwrap_or_else(|| panic!("{target}: the receiver got nothing")),
                );
                let expected = if forward_path.is_empty() {
                    path
                } else {
                    forward_path
                };
                assert_eq!(
                    String::from_utf8_lossy(&arrived.target),
                    expected,
                    "{target}"
                );
                assert_eq!(record["forward"]["url"], receiver.url(expected), "{target}");
                // A mirror's copy is built the same way.
                let copy = Arrived::parse(
                    &mirror
                        .next_request(WAIT)
                        .unwrap_or_else(|| panic!("{target}: the mirror got nothing")),
                );
                assert_eq!(String::from_utf8_lossy(&copy.target), expected, "{target}");
                assert_eq!(
                    record["mirrors"][0]["url"],
                    mirror.url(expected),
                    "{target}"
                );
            }
        }
    }
    evil.assert_untouched("--forward-to and --mirror-to");
}

#[test]
fn forward_to_without_a_path_goes_only_to_the_receiver() {
    forwarding_goes_only_to_the_receiver("");
}

#[test]
fn forward_to_with_a_path_goes_only_to_the_receiver() {
    forwarding_goes_only_to_the_receiver("/webhooks/danube");
}

/// A record as a version before the fix would have written it: the
/// stranger's target joined to the forward URL.
fn old_record(template: &serde_json::Value, id: u64, path: &str, url: &str) -> String {
    let mut record = template.clone();
    record["id"] = id.into();
    record["path"] = path.into();
    record["response"] = serde_json::json!({
        "action": "forward", "status": 200, "delay_ms": 0, "rule": "default forward"
    });
    record["forward"] = serde_json::json!({
        "url": url, "status": 200, "headers": [], "error": null,
        "duration_ms": 1, "body_preview": ""
    });
    record.as_object_mut().unwrap().remove("local_addr");
    format!("{record}\n")
}

#[test]
fn replay_with_and_without_to_goes_only_where_the_user_said() {
    let evil = Capture::start();
    let receiver = Capture::start();
    let dir = TempDir::new("hostile-replay");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = Listener::start(&[
        "--json",
        "--store",
        store,
        "--secret",
        common::SECRET,
        "--forward-to",
        &receiver.url(""),
    ]);
    assert_eq!(
        hostile_post(&listener, &format!("@{}", evil.addr)).status(),
        400
    );
    let refused = listener.next_record();
    drop(listener);

    // Written before the fix: `http://receiver` + `@evil`, and a record
    // whose path is fine but whose URL has a user name.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(store)
        .unwrap();
    let joined = format!("{}@{}", receiver.url(""), evil.addr);
    std::io::Write::write_all(
        &mut file,
        (old_record(&refused, 2, &format!("@{}", evil.addr), &joined)
            + &old_record(&refused, 3, "/x", &format!("{joined}/x")))
            .as_bytes(),
    )
    .unwrap();

    for id in ["1", "2", "3"] {
        for extra in [&["--as-is"][..], &["--secret", common::SECRET]] {
            let mut args = vec!["replay", id, "--store", store];
            args.extend_from_slice(extra);
            let output = run(&args, b"");
            assert_exit(&output, 2);
            let text = stderr(&output);
            assert!(text.contains("--to"), "#{id}: {text}");
            assert!(!text.contains('\x1b'));
        }
    }
    let err = stderr(&run(&["replay", "3", "--store", store, "--as-is"], b""));
    assert!(err.contains("user name before '@'"), "{err}");

    // --to is the user's word: used as given, whatever the record holds.
    for id in ["1", "2", "3"] {
        let output = run(
            &[
                "replay",
                id,
                "--store",
                store,
                "--secret",
                common::SECRET,
                "--to",
                &receiver.url("/again"),
            ],
            b"",
        );
        assert_exit(&output, 0);
        let arrived = Arrived::parse(&receiver.next_request(WAIT).unwrap());
        assert_eq!(arrived.target, b"/again", "#{id}");
    }
    // And a --to with a user name is refused, not followed.
    let output = run(
        &["replay", "1", "--store", store, "--as-is", "--to", &joined],
        b"",
    );
    assert_exit(&output, 2);
    evil.assert_untouched("replay");
}

#[test]
fn export_curl_goes_only_to_the_listener() {
    let evil = Capture::start();
    let dir = TempDir::new("hostile-export-target");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = Listener::start(&["--json", "--store", store]);
    let cases = targets(&evil.addr.to_string());
    let mut stored = Vec::new();
    for (target, fate) in &cases {
        let reply = hostile_post(&listener, target);
        if !matches!(fate, Fate::NotHttp) {
            let id = reply.header("x-danube-hooks-delivery").unwrap().to_string();
            let record = listener.next_record();
            stored.push((target.clone(), *fate, id, record));
        }
    }
    for (target, fate, id, _) in &stored {
        let export = run(&["export", id, "--curl", "--store", store], b"");
        assert_exit(&export, 0);
        if matches!(fate, Fate::Refused) {
            let note = stderr(&export);
            assert!(note.contains("sends to / instead"), "{target}: {note}");
        }
        let command = stdout(&export);
        assert!(
            command.contains(&format!("--url 'http://{}/", listener.addr)),
            "{target}: {command}"
        );
        let curl = std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .unwrap();
        assert!(curl.status.success(), "{target}: {}", stderr_of(&curl));
        // The command went back to the listener, to the path it recorded.
        let again = listener.next_record();
        let expected = match fate {
            Fate::Path(path) => *path,
            _ => "/",
        };
        assert_eq!(again["path"], expected, "{target}");
        assert_eq!(again["local_addr"], listener.addr.to_string());
    }
    evil.assert_untouched("export --curl");
}

/// Headers a sender names in `Connection:` are its hop's own: neither
/// forwarded nor replayed; a header value that is not
/// UTF-8 is forwarded and replayed as-is byte for byte.
#[test]
fn connection_named_headers_stay_behind_and_header_bytes_travel_exactly() {
    let receiver = Capture::start();
    let dir = TempDir::new("hostile-connection");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = Listener::start(&[
        "--json",
        "--store",
        store,
        "--forward-to",
        &receiver.url(""),
    ]);
    let request = raw_request(
        "/hooks",
        &[
            ("Connection", b"keep-alive, X-Secret-Thing"),
            ("X-Secret-Thing", b"for this hop only"),
            ("Connection", b"X-Other"),
            ("X-Other", b"also"),
            ("X-Latin", b"caf\xe9 \xff"),
            ("X-Kept", b"yes"),
        ],
        b"{}",
    );
    // `raw_request` says `Connection: close` first; hyper keeps every one.
    assert_eq!(exchange(listener.addr, &request, WAIT).status(), 200);
    let record = listener.next_record();
    let forwarded = Arrived::parse(&receiver.next_request(WAIT).unwrap());
    let replay = run(
        &[
            "replay",
            &record["id"].to_string(),
            "--store",
            store,
            "--as-is",
            "--to",
            &receiver.url("/hooks"),
        ],
        b"",
    );
    assert_exit(&replay, 0);
    let replayed = Arrived::parse(&receiver.next_request(WAIT).unwrap());
    for (how, arrived) in [("forwarded", forwarded), ("replayed", replayed)] {
        let names: Vec<&str> = arrived.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            !names.contains(&"x-secret-thing") && !names.contains(&"x-other"),
            "{how}: {names:?}"
        );
        let value = |name: &str| {
            arrived
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            value("x-latin").as_deref(),
            Some(&b"caf\xe9 \xff"[..]),
            "{how}"
        );
        assert_eq!(value("x-kept").as_deref(), Some(&b"yes"[..]), "{how}");
    }
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
