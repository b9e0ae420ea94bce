//! The whole loop on one machine, every piece the real
//! binary: `emulate --allow-http` as Danube, `listen --register` pointed
//! at it with the listener's own address as the "public" URL, an event
//! sent with `trigger --emulator`, and `deliveries` reading the emulator's
//! log beside the listener's store. Danube's account and the listener's
//! must agree, with no finding.

use crate::common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::emulator::{Emulator, KEY};
use common::{
    Listener, SECRET, TempDir, assert_exit, command_with_config, now, run_command, signed_post,
    stderr, stdout,
};
use serde_json::Value;

/// The binary with its config under `dir` and the emulator's key.
fn danube_hooks(dir: &TempDir) -> Command {
    let mut cmd = command_with_config(&dir.join("config"));
    cmd.env("DANUBE_API_KEY", KEY);
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `listen --register` against `emulator`, answering as `respond` says,
/// its public URL its own address.
fn registered_listener(
    dir: &TempDir,
    emulator: &Emulator,
    store: &Path,
    respond: &str,
) -> Listener {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    Listener::start_on(
        danube_hooks(dir),
        port,
        &[
            "--json",
            "--store",
            store.to_str().unwrap(),
            "--register",
            "--api-url",
            &emulator.url,
            "--public-url",
            &public,
            "--respond",
            respond,
        ],
    )
}

fn trigger(dir: &TempDir, emulator: &Emulator, event: &str) -> Output {
    let mut cmd = danube_hooks(dir);
    cmd.args(["trigger", event, "--emulator", &emulator.url]);
    run_command(&mut cmd, b"")
}

/// `deliveries --json` for the registered webhook, until Danube's record
/// of the one delivery is no longer pending (or 30 s pass).
fn settled_rows(dir: &TempDir, emulator: &Emulator, store: &Path) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut cmd = danube_hooks(dir);
        cmd.args(["deliveries", "--json", "--api-url", &emulator.url])
            .args(["--store", store.to_str().unwrap()]);
        let output = run_command(&mut cmd, b"");
        assert_exit(&output, 0);
        let rows: Vec<Value> = stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let pending = rows.iter().any(|row| row["danube"]["status"] == "pending");
        if !rows.is_empty() && !pending {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "Danube's record stayed pending: {rows:#?}\n{}",
            stderr(&output)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_attempts_arrive_valid_and_danube_agrees() {
    let dir = TempDir::new("emulate-loop");
    let store = dir.join("deliveries.jsonl");
    let emulator = Emulator::start(
        &dir.join("emulator.json"),
        &["--allow-http", "--backoff", "100ms"],
    );
    let mut listener = registered_listener(&dir, &emulator, &store, "500,500,200");
    assert!(
        listener.banner.contains("danube:"),
        "not registered:\n{}",
        listener.banner
    );

    let sent = trigger(&dir, &emulator, "workflow.completed");
    assert_exit(&sent, 0);

    // The one event reaches the listener three times, each validly signed
    // with the registered webhook's secret, answered 500, 500, 200.
    let records: Vec<Value> = (0..3).map(|_| listener.next_record()).collect();
    for (record, status) in records.iter().zip([500, 500, 200]) {
        assert_eq!(record["signature"]["verdict"], "valid", "{record}");
        assert_eq!(record["response"]["status"], status, "{record}");
        assert_eq!(record["event"], "workflow.completed");
    }

    let rows = settled_rows(&dir, &emulator, &store);
    assert_eq!(
        rows.len(),
        1,
        "one Danube delivery, nothing unknown: {rows:#?}"
    );
    let row = &rows[0];
    assert_eq!(row["danube"]["status"], "success", "{row}");
    assert_eq!(row["danube"]["attempts"], 3, "{row}");
    assert_eq!(row["danube"]["response_status"], 200, "{row}");
    let answered: Vec<&Value> = row["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["status"])
        .collect();
    assert_eq!(answered, [500, 500, 200], "{row}");
    assert_eq!(row["findings"], serde_json::json!([]), "{row}");

    // On exit the webhook is paused in the emulator.
    listener.signal_and_wait("TERM");
    let (status, webhooks) = emulator.call("GET", "/v1/webhooks", Some(KEY), None);
    assert_eq!(status, 200);
    assert_eq!(webhooks[0]["is_active"], false, "{webhooks}");
}

#[test]
fn deliveries_from_before_the_webhook_existed_are_no_findings() {
    let dir = TempDir::new("emulate-loop-earlier");
    let store = dir.join("deliveries.jsonl");
    // The README's earlier sections, in the same store seconds before:
    // deliveries signed by hand to a listener with no webhook.
    let mut earlier = Listener::start(&[
        "--json",
        "--store",
        store.to_str().unwrap(),
        "--secret",
        SECRET,
    ]);
    for n in 1..=3 {
        let body = common::event_body("workflow.completed", n);
        assert_eq!(
            signed_post(earlier.addr, SECRET, now(), &body).status(),
            200
        );
        earlier.next_record();
    }
    let forged = common::event_body("workflow.failed", 4);
    signed_post(earlier.addr, "whsec_someone_elses_0000", now(), &forged);
    earlier.next_record();
    earlier.signal_and_wait("TERM");

    let emulator = Emulator::start(
        &dir.join("emulator.json"),
        &["--allow-http", "--backoff", "100ms"],
    );
    let listener = registered_listener(&dir, &emulator, &store, "200");
    assert_exit(&trigger(&dir, &emulator, "workflow.completed"), 0);
    listener.next_record();

    let rows = settled_rows(&dir, &emulator, &store);
    assert_eq!(rows.len(), 1, "only the webhook's own delivery: {rows:#?}");
    assert_eq!(rows[0]["local"].as_array().unwrap().len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["findings"], serde_json::json!([]), "{rows:#?}");

    // The table says the same: nothing unknown, no finding.
    let mut cmd = danube_hooks(&dir);
    cmd.args(["deliveries", "--api-url", &emulator.url])
        .args(["--store", store.to_str().unwrap()]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains(", 0 unknown to it, 0 findings;"), "{text}");
}

#[test]
fn a_receiver_that_never_answers_is_failed_after_three_and_danube_agrees() {
    let dir = TempDir::new("emulate-loop-timeout");
    let store = dir.join("deliveries.jsonl");
    let emulator = Emulator::start(
        &dir.join("emulator.json"),
        &["--allow-http", "--timeout", "1s", "--backoff", "100ms"],
    );
    let listener = registered_listener(&dir, &emulator, &store, "timeout");
    assert_exit(&trigger(&dir, &emulator, "tool.execution.failed"), 0);

    // Each held attempt is recorded once the emulator gives up on it.
    for _ in 0..3 {
        let record = listener.next_record();
        assert_eq!(record["signature"]["verdict"], "valid", "{record}");
        assert_eq!(record["response"]["action"], "timeout", "{record}");
    }

    let rows = settled_rows(&dir, &emulator, &store);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(row["danube"]["status"], "failed", "{row}");
    assert_eq!(row["danube"]["attempts"], 3, "{row}");
    assert_eq!(row["danube"]["response_status"], Value::Null, "{row}");
    assert_eq!(row["local"].as_array().unwrap().len(), 3, "{row}");
    assert_eq!(row["findings"], serde_json::json!([]), "{row}");
}
