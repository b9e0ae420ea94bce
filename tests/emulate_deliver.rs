//! From outside: `trigger EVENT --emulator URL` hands an
//! event to `danube-hooks emulate`, which delivers it to each active
//! subscribed webhook, signed with that webhook's secret, and tells each
//! attempt on stdout.

use crate::common;

use std::time::Duration;

use common::emulator::{Emulator, KEY};
use common::{Arrived, Capture, TempDir, assert_exit, command, run_command, stderr, stdout};
use danube_hooks::signature::{self, Secret, Verdict};
use serde_json::Value;

/// `trigger ARGS…` as a user with a key in the environment and no saved
/// login (a config folder of its own).
fn trigger(dir: &TempDir, args: &[&str]) -> std::process::Output {
    let mut cmd = command();
    cmd.env("DANUBE_API_KEY", KEY)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env_remove("DANUBE_API_TOKEN")
        .env_remove("DANUBE_ORG_ID")
        .arg("trigger")
        .args(args);
    run_command(&mut cmd, b"")
}

#[test]
fn an_event_sent_through_the_emulator_reaches_each_subscribed_webhook_signed_with_its_secret() {
    let dir = TempDir::new("emulate-trigger");
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http"]);
    let receiver = Capture::start();
    let other = Capture::start();
    let paused = Capture::start();
    let subscribed = emulator.create(&receiver.url("/hooks"), &["tool.execution.failed"]);
    emulator.create(&other.url("/hooks"), &["workflow.completed"]);
    let paused_id = emulator.create(&paused.url("/hooks"), &["tool.execution.failed"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = emulator.call(
        "PATCH",
        &format!("/v1/webhooks/{paused_id}"),
        Some(KEY),
        Some(r#"{"is_active": false}"#),
    );
    assert_eq!(status, 200);

    let output = trigger(
        &dir,
        &[
            "tool.execution.failed",
            "--emulator",
            &emulator.url,
            "--set",
            "data.error=quota exceeded",
        ],
    );
    assert_exit(&output, 0);
    let answer: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    let deliveries = answer["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "only the active subscriber: {answer}");
    assert_eq!(deliveries[0]["webhook_id"], subscribed["id"]);
    let delivery_id = deliveries[0]["id"].as_str().unwrap();
    assert!(
        stderr(&output).contains(&format!("1 delivery: {delivery_id} to ")),
        "{}",
        stderr(&output)
    );

    let arrived = Arrived::parse(
        &receiver
            .next_request(Duration::from_secs(10))
            .expect("the delivery arrives"),
    );
    let envelope: Value = serde_json::from_slice(&arrived.body).unwrap();
    assert_eq!(envelope["event"], "tool.execution.failed");
    assert_eq!(envelope["data"]["error"], "quota exceeded");
    assert_eq!(
        envelope["data"]["tool_name"], "Gmail - Send Email",
        "the fixture's data, --set applied"
    );
    let header = arrived
        .headers
        .iter()
        .find(|(name, _)| name == "x-danube-signature")
        .map(|(_, value)| String::from_utf8(value.clone()).unwrap());
    let secret = Secret::new(subscribed["secret"].as_str().unwrap());
    let check = signature::verify(
        &[secret],
        header.as_deref(),
        &arrived.body,
        common::now(),
        300,
    );
    assert_eq!(check.verdict, Verdict::Valid, "{check:?}");

    // The attempt, told on the emulator's stdout, re-signing said.
    let line = emulator
        .next_line(Duration::from_secs(10))
        .expect("one line per attempt");
    assert!(
        line.contains(delivery_id)
            && line.contains("tool.execution.failed attempt 1/3 t=")
            && line.contains("(signed anew): 200 in ")
            && line.ends_with("; success"),
        "{line}"
    );
    other.assert_untouched("a webhook not subscribed to the event");
    paused.assert_untouched("a paused webhook");
}

#[test]
fn an_event_no_webhook_wants_is_told_and_posting_options_do_not_mix_with_emulator() {
    let dir = TempDir::new("emulate-trigger-none");
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http"]);
    let output = trigger(&dir, &["workflow.failed", "--emulator", &emulator.url]);
    assert_exit(&output, 0);
    let answer: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(answer["deliveries"], serde_json::json!([]));
    assert!(
        stderr(&output).contains("no active webhook subscribed to it; nothing was delivered"),
        "{}",
        stderr(&output)
    );

    for (args, why) in [
        (
            vec![
                "workflow.failed",
                "--emulator",
                &emulator.url,
                "--to",
                "http://127.0.0.1:9/",
            ],
            "cannot be used with '--to",
        ),
        (
            vec![
                "workflow.failed",
                "--emulator",
                &emulator.url,
                "--secret",
                common::SECRET,
            ],
            "cannot be used with '--secret",
        ),
        (
            vec![
                "workflow.failed",
                "--emulator",
                &emulator.url,
                "--set",
                "event=x",
            ],
            "with --emulator only data.",
        ),
        (vec!["workflow.failed"], "--to <URL>"),
    ] {
        let output = trigger(&dir, &args);
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(why),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    // No key at all: refused before anything is sent, saying how to give one.
    let mut cmd = command();
    cmd.env_remove("DANUBE_API_KEY")
        .env_remove("DANUBE_API_TOKEN")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .args(["trigger", "workflow.failed", "--emulator", &emulator.url]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("no Danube credentials"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_emulator_that_is_not_running_is_named_with_how_to_start_it() {
    let dir = TempDir::new("emulate-trigger-down");
    let port = common::closed_port().port();
    let url = format!("http://127.0.0.1:{port}");
    let output = trigger(&dir, &["workflow.failed", "--emulator", &url]);
    // Not reached: the network's failure (SPEC §2).
    assert_exit(&output, 3);
    let err = stderr(&output);
    // An event is never retried: one try, told in the singular.
    assert!(
        err.contains(&format!(
            "cannot reach the local Danube (emulate?) at {url}: "
        )) && err.contains(&format!(
            "(tried once); start it with `danube-hooks emulate --port {port}`"
        )),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
