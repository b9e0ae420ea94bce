//! Black-box: `replay --set`, `--data-file`, `--header`, `--drop-header`
//! to the real listener: the copy's record names its original and says it
//! was changed, carries the changed body, and verifies when signed anew
//! and not when sent with the original signature; bad edits exit 2 before
//! anything is sent. (The dashboard's `e` is in tests/dashboard.rs.)

use crate::common;

use common::{Listener, SECRET, TempDir, assert_exit, run, stderr};

fn body_of(record: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&common::record_body(record)).unwrap()
}

fn header<'a>(record: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
}

#[test]
fn replay_sends_a_changed_copy_that_the_listener_records_as_a_copy() {
    let dir = TempDir::new("edit-replay");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = Listener::start(&["--json", "--store", store, "--secret", SECRET]);
    let reply = common::signed_post(
        listener.addr,
        SECRET,
        common::now() - 100,
        &common::event_body("tool.execution.completed", 1),
    );
    assert_eq!(reply.status(), 200);
    let original = listener.next_record();
    assert!(original.get("resent_from").is_none(), "{original}");
    assert!(original.get("edited").is_none(), "{original}");
    let id = original["id"].to_string();
    let data = dir.join("data.json");
    std::fs::write(&data, br#"{"n": 5, "status": "ok"}"#).unwrap();
    let to = format!("http://{}/copy", listener.addr);
    let data = data.to_str().unwrap();
    let edit = [
        "--data-file",
        data,
        "--set",
        "data.status=failed",
        "--set",
        r#"data.tags=["a",2]"#,
        "--header",
        "X-Test: yes",
        "--drop-header",
        "Content-Type",
    ];

    // Signed anew: valid, and the record says whose copy it is.
    let mut args = vec![
        "replay", &id, "--store", store, "--to", &to, "--secret", SECRET,
    ];
    args.extend_from_slice(&edit);
    let output = run(&args, b"");
    assert_exit(&output, 0);
    let said = stderr(&output);
    for line in [
        "changed against #1:",
        "~ data.n: 1 → 5",
        r#"+ data.status: "failed""#,
        r#"+ data.tags: ["a",2]"#,
        "+ header X-Test: yes",
        "- header content-type: application/json",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    let copy = listener.next_record();
    assert_eq!(copy["resent_from"], original["id"], "{copy}");
    assert_eq!(copy["edited"], true);
    assert_eq!(copy["path"], "/copy");
    assert_eq!(copy["signature"]["verdict"], "valid", "{copy}");
    let mut expected = body_of(&original);
    expected["data"] = serde_json::json!({"n": 5, "status": "failed", "tags": ["a", 2]});
    assert_eq!(body_of(&copy), expected);
    assert_eq!(header(&copy, "x-test"), Some("yes"));
    assert_eq!(header(&copy, "content-type"), None);
    let shown = run(&["show", &copy["id"].to_string(), "--store", store], b"");
    assert_exit(&shown, 0);
    assert!(
        common::stdout(&shown)
            .contains("copy of #1, changed, as its X-Danube-Hooks-Resent-From header claims"),
        "{}",
        common::stdout(&shown)
    );

    // The original signature over the changed body: a receiver must refuse it.
    let mut args = vec!["replay", &id, "--store", store, "--to", &to, "--as-is"];
    args.extend_from_slice(&edit);
    let output = run(&args, b"");
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("with the original signature over the changed body"),
        "{}",
        stderr(&output)
    );
    let as_is = listener.next_record();
    assert_eq!(as_is["signature"]["verdict"], "mismatch", "{as_is}");
    assert_eq!(
        common::signature_header(&as_is),
        common::signature_header(&original)
    );
    assert_eq!(
        (&as_is["resent_from"], &as_is["edited"]),
        (&original["id"], &serde_json::json!(true))
    );

    // No edit and no --to: a delivery that was not forwarded goes back to
    // the listener it arrived at, said to be unchanged.
    let output = run(&["replay", &id, "--store", store, "--secret", SECRET], b"");
    assert_exit(&output, 0);
    assert!(!stderr(&output).contains("changed"), "{}", stderr(&output));
    let plain = listener.next_record();
    assert_eq!(plain["body_b64"], original["body_b64"]);
    assert_eq!(plain["resent_from"], original["id"]);
    assert_eq!(plain["edited"], false);

    a_strangers_claim_is_recorded_as_claimed(&listener);
    bad_edits_exit_2_and_send_nothing(&listener, &dir, &id, store, &to);
}

/// A stranger can send the headers too: the record says what they claim.
fn a_strangers_claim_is_recorded_as_claimed(listener: &Listener) {
    let body = common::event_body("workflow.failed", 2);
    let claimed = common::exchange(
        listener.addr,
        &common::request_bytes(
            "/x",
            &[
                ("X-Danube-Hooks-Resent-From", "77"),
                ("X-Danube-Hooks-Edited", "true"),
            ],
            &body,
        ),
        std::time::Duration::from_secs(10),
    );
    assert_eq!(claimed.status(), 200);
    let claimed = listener.next_record();
    assert_eq!(
        (&claimed["resent_from"], &claimed["edited"]),
        (&serde_json::json!(77), &serde_json::json!(true))
    );
}

/// Bad edits: exit 2, saying what was wrong, and nothing is sent.
fn bad_edits_exit_2_and_send_nothing(
    listener: &Listener,
    dir: &TempDir,
    id: &str,
    store: &str,
    to: &str,
) {
    let missing = dir.join("missing.json");
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, b"{nope").unwrap();
    let bad: [(&[&str], &str); 6] = [
        (&["--set", "data..x=1"], "--set"),
        (&["--set", "data.x"], "expected PATH=VALUE"),
        (&["--set", "event.x=1"], "not an object"),
        (
            &["--data-file", missing.to_str().unwrap()],
            "cannot read --data-file",
        ),
        (&["--data-file", not_json.to_str().unwrap()], "is not JSON"),
        (&["--header", "Host: evil"], "cannot be changed"),
    ];
    for (flags, message) in bad {
        let mut args = vec![
            "replay", &id, "--store", store, "--to", &to, "--secret", SECRET,
        ];
        args.extend_from_slice(flags);
        let output = run(&args, b"");
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(message),
            "{flags:?}: {message:?} not in {}",
            stderr(&output)
        );
    }
    // Each replay returns once answered: a copy sent would be on its way.
    let sent = listener
        .stdout_lines
        .recv_timeout(std::time::Duration::from_millis(500));
    assert!(sent.is_err(), "a bad edit sent something: {sent:?}");
}

/// Without `--to`, a copy goes to the listener running on the store now,
/// found by the address it noted as it opened the store: after a restart
/// on another port, before it has recorded anything, and never to the
/// port the delivery first arrived on. With no listener running, nothing
/// is sent and the message says what to do.
#[test]
fn replay_without_to_finds_the_listener_running_on_the_store() {
    let dir = TempDir::new("replay-home");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let first = Listener::start(&["--json", "--store", store, "--secret", SECRET]);
    let reply = common::signed_post(
        first.addr,
        SECRET,
        common::now(),
        &common::event_body("tool.execution.completed", 1),
    );
    assert_eq!(reply.status(), 200);
    let original = first.next_record();
    drop(first);

    let output = run(&["replay", "1", "--store", store, "--secret", SECRET], b"");
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("no listener is running"),
        "{}",
        stderr(&output)
    );

    let second = Listener::start(&["--json", "--store", store, "--secret", SECRET]);
    assert_ne!(
        second.addr,
        original["local_addr"].as_str().unwrap().parse().unwrap()
    );
    let output = run(&["replay", "1", "--store", store, "--secret", SECRET], b"");
    assert_exit(&output, 0);
    let copy = second.next_record();
    assert_eq!(copy["resent_from"], original["id"]);
    assert_eq!(copy["path"], original["path"]);
    assert_eq!(copy["signature"]["verdict"], "valid");
}
