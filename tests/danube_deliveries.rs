//! `deliveries` black-box: Danube's delivery log from the fake API
//! (`common::fake_danube`) joined with a store that a real
//! `listen --json --store PATH` wrote while it received signed deliveries.
//! Every finding, the `--json` shape, the table, the
//! default webhook from a saved `--register` entry, and the errors.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use common::fake_danube::{FakeDanube, KEY};
use common::{
    Listener, TempDir, assert_contains, assert_exit, command, run_command, signed_post, stderr,
    stdout,
};
use serde_json::{Value, json};

/// `deliveries ARGS…` against `danube`, with the fake's key and its
/// config under `config`.
pub(crate) fn deliveries(danube: &FakeDanube, config: &Path, args: &[&str]) -> Output {
    let mut cmd = command();
    cmd.env("XDG_CONFIG_HOME", config)
        .env("DANUBE_API_KEY", KEY)
        .env_remove("DANUBE_API_TOKEN")
        .env_remove("DANUBE_ORG_ID")
        .env_remove("DANUBE_API_URL")
        .args(["deliveries", "--api-url", &danube.url()])
        .args(args);
    run_command(&mut cmd, b"")
}

/// An envelope Danube would send; `n` tells them apart.
pub(crate) fn envelope(event: &str, n: u64) -> Value {
    json!({
        "event": event,
        "timestamp": format!("2026-11-30T16:00:00.{n:06}Z"),
        "data": {"tool_id": "abc-123", "status": "success", "execution_time": 1.234, "n": n},
    })
}

/// The same envelope as the body bytes a sender might write: other key
/// order, other spacing. JSON equality must still match it.
fn body_of(payload: &Value) -> Vec<u8> {
    let mut reordered = serde_json::Map::new();
    for key in ["data", "timestamp", "event"] {
        reordered.insert(key.to_owned(), payload[key].clone());
    }
    serde_json::to_vec_pretty(&Value::Object(reordered)).unwrap()
}

/// Danube's record of one delivery.
pub(crate) fn record(
    id: &str,
    webhook: &str,
    payload: &Value,
    status: &str,
    attempts: u32,
    answer: Option<u16>,
    created_at: &str,
) -> Value {
    json!({
        "id": id,
        "webhook_id": webhook,
        "event_type": payload["event"],
        "payload": payload,
        "status": status,
        "response_status": answer,
        "response_body": answer.map(|_| "{\"ok\":true}"),
        "attempts": attempts,
        "delivered_at": if status == "pending" { Value::Null } else { json!(created_at) },
        "created_at": created_at,
    })
}

pub(crate) fn json_rows(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub(crate) fn row_of<'a>(rows: &'a [Value], danube_id: &str) -> &'a Value {
    rows.iter()
        .find(|row| row["danube"]["id"] == danube_id)
        .unwrap_or_else(|| panic!("no row for {danube_id}: {rows:#?}"))
}

pub(crate) fn kinds(row: &Value) -> Vec<&str> {
    row["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

fn statuses(row: &Value) -> Vec<Value> {
    row["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].clone())
        .collect()
}

/// The fake Danube with one webhook (to the tunnel, for
/// `workflow.completed`): the fake, the webhook's id and its secret.
pub(crate) fn danube_with_webhook() -> (FakeDanube, String, String) {
    let danube = FakeDanube::start();
    let (webhook, secret) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["workflow.completed"],
    );
    (danube, webhook, secret)
}

/// A JSON listener storing at `store`, verifying with `secret`, and
/// answering by `respond`.
pub(crate) fn storing_listener(store: &Path, secret: &str, respond: &[&str]) -> Listener {
    let mut args = vec![
        "--json",
        "--store",
        store.to_str().unwrap(),
        "--secret",
        secret,
    ];
    args.extend_from_slice(respond);
    Listener::start(&args)
}

/// Send `body` signed with `secret`, and wait until its record is out.
pub(crate) fn send(listener: &Listener, secret: &str, body: &[u8]) -> Value {
    let reply = signed_post(listener.addr, secret, common::now(), body);
    let record = listener.next_record();
    assert_eq!(
        Some(reply.status()),
        record["response"]["status"].as_u64().map(|s| s as u16)
    );
    record
}

/// A listener's store and Danube's log for one webhook, with one case of
/// each finding: what the two finding tests read.
struct Findings {
    danube: FakeDanube,
    webhook: String,
    config: TempDir,
    _dir: TempDir,
    store: String,
    /// The id of the request signed with a wrong secret.
    forged_id: Value,
}

fn findings_setup(name: &str) -> Findings {
    let (danube, webhook, secret) = danube_with_webhook();
    let dir = TempDir::new(name);
    let store = dir.join("deliveries.jsonl");
    let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    // Each delivery's first attempt gets 500, later ones 200.
    let listener = storing_listener(&store, &secret, &["--respond", "500,200"]);

    let ok = envelope("workflow.completed", 1);
    let missing = envelope("workflow.completed", 2);
    let never = envelope("workflow.failed", 3);
    let differs = envelope("tool.execution.completed", 4);
    let forged = envelope("workflow.completed", 5);
    for payload in [&ok, &missing, &differs] {
        send(&listener, &secret, &body_of(payload));
        send(&listener, &secret, &body_of(payload));
    }
    // Signed with another secret: forged, unknown to Danube.
    let forged_record = send(
        &listener,
        "whsec_not_the_webhooks_secret_0000",
        &body_of(&forged),
    );
    assert_eq!(forged_record["signature"]["verdict"], "mismatch");
    // Not even JSON.
    send(&listener, &secret, b"ping \x1b[2J");

    danube.set_deliveries(
        &webhook,
        vec![
            // A success after a retry, both attempts seen: nothing to say.
            record(
                "dlv_ok",
                &webhook,
                &ok,
                "success",
                2,
                Some(200),
                &created_at,
            ),
            // Danube counts 3 attempts, 2 arrived.
            record(
                "dlv_missing",
                &webhook,
                &missing,
                "success",
                3,
                Some(200),
                &created_at,
            ),
            // Nothing arrived.
            record(
                "dlv_never",
                &webhook,
                &never,
                "failed",
                3,
                Some(502),
                &created_at,
            ),
            // Danube recorded the tunnel's 502 where the listener answered 200.
            record(
                "dlv_differs",
                &webhook,
                &differs,
                "failed",
                2,
                Some(502),
                &created_at,
            ),
        ],
    );
    Findings {
        danube,
        webhook,
        config: TempDir::new(&format!("{name}-config")),
        store: store.to_str().unwrap().to_owned(),
        _dir: dir,
        forged_id: forged_record["id"].clone(),
    }
}

#[test]
fn every_finding_in_json() {
    let Findings {
        danube,
        webhook,
        config,
        store,
        forged_id,
        _dir,
    } = findings_setup("deliveries-json");
    let output = deliveries(&danube, &config.0, &[&webhook, "--json", "--store", &store]);
    assert_exit(&output, 0);
    let rows = json_rows(&output);
    assert_eq!(rows.len(), 6, "4 of Danube's and 2 unknown: {rows:#?}");
    for row in &rows {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["danube", "local", "findings"], "{row}");
        for local in row["local"].as_array().unwrap() {
            let keys: Vec<&str> = local
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["id", "attempt", "received_at", "verdict", "status"],
                "{local}"
            );
        }
        for finding in row["findings"].as_array().unwrap() {
            assert!(
                finding["detail"].as_str().is_some_and(|d| d.ends_with('.')),
                "{finding}"
            );
        }
    }
    // Danube's order, newest first as it lists them, then the unknown ones.
    let order: Vec<&Value> = rows.iter().map(|row| &row["danube"]["id"]).collect();
    assert_eq!(
        order,
        [
            &json!("dlv_ok"),
            &json!("dlv_missing"),
            &json!("dlv_never"),
            &json!("dlv_differs"),
            &Value::Null,
            &Value::Null
        ]
    );

    let row = row_of(&rows, "dlv_ok");
    assert!(kinds(row).is_empty(), "{row}");
    assert_eq!(statuses(row), [json!(500), json!(200)]);
    assert_eq!(row["local"][1]["attempt"], 2);
    assert_eq!(row["local"][0]["verdict"], "valid");
    assert_eq!(
        row["danube"]["payload"],
        envelope("workflow.completed", 1),
        "Danube's record, whole"
    );

    let row = row_of(&rows, "dlv_missing");
    assert_eq!(kinds(row), ["missing_attempts"]);
    assert_eq!(statuses(row), [json!(500), json!(200)]);

    let row = row_of(&rows, "dlv_never");
    assert_eq!(kinds(row), ["never_arrived"]);
    assert!(row["local"].as_array().unwrap().is_empty());

    let row = row_of(&rows, "dlv_differs");
    assert_eq!(kinds(row), ["answer_differs"]);
    let detail = row["findings"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("502") && detail.contains("answered 200"),
        "{detail}"
    );

    let unknown: Vec<&Value> = rows.iter().filter(|row| row["danube"].is_null()).collect();
    // Newest first: the non-JSON body came last.
    assert_eq!(unknown[1]["local"][0]["id"], forged_id);
    assert_eq!(unknown[1]["local"][0]["verdict"], "mismatch");
    for row in &unknown {
        assert_eq!(kinds(row), ["unknown_to_danube"]);
    }

    // --query keeps the rows with a request that matches: here the
    // workflows whose first attempt, validly signed, was answered 500.
    let query = "event:workflow.* status:500 verdict:valid";
    let args: [&str; 6] = [&webhook, "--json", "--store", &store, "--query", query];
    let output = deliveries(&danube, &config.0, &args);
    assert_exit(&output, 0);
    let rows = json_rows(&output);
    let order: Vec<&Value> = rows.iter().map(|row| &row["danube"]["id"]).collect();
    assert_eq!(order, [&json!("dlv_ok"), &json!("dlv_missing")]);
    let bad = deliveries(
        &danube,
        &config.0,
        &[&webhook, "--store", &store, "--query", "stauts:500"],
    );
    assert_exit(&bad, 2);
    assert!(
        stderr(&bad).contains("\n  stauts:500\n  ^"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn every_finding_in_the_table() {
    let Findings {
        danube,
        webhook,
        config,
        store,
        // Bound, so the store outlives the statement.
        _dir,
        ..
    } = findings_setup("deliveries-table");
    // The table: Danube's side beside the local one, findings under rows,
    // nothing raw from the wire.
    let output = deliveries(&danube, &config.0, &[&webhook, "--store", &store]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("DANUBE ID") && lines[0].contains("LOCAL"),
        "{text}"
    );
    let at = |id: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id}: {text}"))
    };
    assert!(
        lines[at("dlv_ok")].contains("2: 500, 200") && lines[at("dlv_ok")].contains("valid, valid"),
        "{text}"
    );
    assert!(
        lines[at("dlv_missing") + 1].starts_with("  ! missing_attempts: "),
        "{text}"
    );
    assert!(
        lines[at("dlv_never") + 1].starts_with("  ! never_arrived: "),
        "{text}"
    );
    assert!(
        lines[at("dlv_differs") + 1].starts_with("  ! answer_differs: "),
        "{text}"
    );
    assert_eq!(text.matches("  ! unknown_to_danube: ").count(), 2, "{text}");
    assert!(text.contains("4 from Danube"), "{text}");
}

#[test]
fn the_default_webhook_is_the_one_register_saved() {
    let (danube, webhook, secret) = danube_with_webhook();
    let (other, _) = danube.add_webhook("https://other.example/hook", &["workflow.completed"]);
    let config = TempDir::new("deliveries-default");
    let store = config.join("empty.jsonl");
    std::fs::write(&store, b"").unwrap();

    // No saved webhook: say what to pass.
    let output = deliveries(&danube, &config.0, &["--store", store.to_str().unwrap()]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("pass WEBHOOK_ID") && err.contains("webhooks list"),
        "{err}"
    );

    // webhooks.json as `listen --register` writes it (folder 0700, file 0600).
    let folder = config.join("danube-hooks");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let saved = json!([
        {"id": other, "api_url": "https://api.danubeai.com", "url": "https://other.example/hook",
         "events": ["workflow.completed"], "secret": "whsec_elsewhere_0000", "origin": "register",
         "saved_at": "2026-11-30T15:00:00Z"},
        {"id": webhook, "api_url": danube.url(), "url": "https://abc.ngrok.app/webhooks/danube",
         "events": ["workflow.completed"], "secret": secret, "origin": "register",
         "saved_at": "2026-11-30T16:00:00Z"},
    ]);
    let file = folder.join("webhooks.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let payload = envelope("workflow.completed", 1);
    let now = chrono::Utc::now().to_rfc3339();
    danube.set_deliveries(
        &webhook,
        vec![record(
            "dlv_1",
            &webhook,
            &payload,
            "success",
            1,
            Some(200),
            &now,
        )],
    );

    let output = deliveries(
        &danube,
        &config.0,
        &["--store", store.to_str().unwrap(), "--limit", "5", "--json"],
    );
    assert_exit(&output, 0);
    let asked = danube.seen_of("GET", "/v1/webhooks/");
    assert_eq!(
        asked.last().unwrap().path,
        format!("/v1/webhooks/{webhook}/deliveries?limit=5")
    );
    let rows = json_rows(&output);
    assert_eq!(rows.len(), 1);
    assert_eq!(kinds(&rows[0]), ["never_arrived"]);
    assert!(!stdout(&output).contains(&secret) && !stderr(&output).contains(&secret));
}

#[test]
fn an_unknown_webhook_is_a_404_that_says_which() {
    let danube = FakeDanube::start();
    let config = TempDir::new("deliveries-404");
    let output = deliveries(
        &danube,
        &config.0,
        &[
            "wh_nope",
            "--store",
            config.join("none.jsonl").to_str().unwrap(),
        ],
    );
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("no webhook wh_nope (404") && err.contains("webhooks list"),
        "{err}"
    );
}

#[test]
fn limit_is_1_to_100_and_a_missing_store_is_a_warning() {
    let (danube, webhook, _) = danube_with_webhook();
    let config = TempDir::new("deliveries-limit");
    for bad in ["0", "101", "lots"] {
        let output = deliveries(&danube, &config.0, &[&webhook, "--limit", bad]);
        assert_exit(&output, 2);
        assert_contains(&stderr(&output), "--limit");
    }
    let now = chrono::Utc::now().to_rfc3339();
    let payload = envelope("workflow.completed", 1);
    danube.set_deliveries(
        &webhook,
        vec![record("dlv_1", &webhook, &payload, "failed", 3, None, &now)],
    );
    let missing = config.join("nothing-here.jsonl");
    let output = deliveries(
        &danube,
        &config.0,
        &[&webhook, "--store", missing.to_str().unwrap()],
    );
    assert_exit(&output, 0);
    assert_contains(&stderr(&output), "no store at");
    assert_contains(&stdout(&output), "never_arrived");
}

#[test]
fn a_log_without_times_still_matches_the_newest_records() {
    let (danube, webhook, secret) = danube_with_webhook();
    let dir = TempDir::new("deliveries-untimed");
    let store = dir.join("deliveries.jsonl");
    let listener = storing_listener(&store, &secret, &[]);
    let payload =
        json!({"event": "workflow.completed", "timestamp": "not a time", "data": {"n": 1}});
    send(&listener, &secret, &body_of(&payload));
    let mut untimed = record("dlv_1", &webhook, &payload, "success", 1, Some(200), "");
    untimed["created_at"] = Value::Null;
    danube.set_deliveries(&webhook, vec![untimed]);
    let output = deliveries(
        &danube,
        &dir.0,
        &[&webhook, "--json", "--store", store.to_str().unwrap()],
    );
    assert_exit(&output, 0);
    let rows = json_rows(&output);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(statuses(&rows[0]), [json!(200)]);
    assert!(kinds(&rows[0]).is_empty(), "{rows:#?}");
}

#[test]
fn requests_from_before_the_webhook_existed_are_not_judged() {
    let danube = FakeDanube::start();
    let dir = TempDir::new("deliveries-before-webhook");
    let store = dir.join("deliveries.jsonl");
    let listener = storing_listener(&store, common::SECRET, &[]);
    // Seconds before the webhook: a test sent by hand, and a forgery.
    send(
        &listener,
        common::SECRET,
        &body_of(&envelope("workflow.completed", 1)),
    );
    send(&listener, "whsec_not_the_webhooks_secret_0000", b"ping");

    let (webhook, _) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["workflow.completed"],
    );
    let delivered = envelope("workflow.completed", 2);
    send(&listener, common::SECRET, &body_of(&delivered));
    // Once it existed, a request Danube did not send is still a finding.
    let after = send(&listener, common::SECRET, b"not an envelope");
    let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    danube.set_deliveries(
        &webhook,
        vec![record(
            "dlv_1",
            &webhook,
            &delivered,
            "success",
            1,
            Some(200),
            &created_at,
        )],
    );

    let output = deliveries(
        &danube,
        &dir.0,
        &[&webhook, "--json", "--store", store.to_str().unwrap()],
    );
    assert_exit(&output, 0);
    let rows = json_rows(&output);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(kinds(row_of(&rows, "dlv_1")).is_empty(), "{rows:#?}");
    assert_eq!(rows[1]["danube"], Value::Null);
    assert_eq!(rows[1]["local"][0]["id"], after["id"], "{rows:#?}");
    assert_eq!(kinds(&rows[1]), ["unknown_to_danube"]);
    // Danube has no call for one webhook: its list says when it was made.
    assert_eq!(danube.seen_of("GET", "/v1/webhooks").len(), 2);
}
