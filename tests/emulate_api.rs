//! `danube-hooks emulate`'s API, black-box over real sockets (with bad
//! requests): Danube's shapes and rules, its
//! credentials and error envelope, bodies that are too large or not JSON,
//! and a state that survives a restart and a SIGKILL in a burst of writes.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::emulator::{Emulator, KEY, request};
use common::{Capture, Reply, TempDir, assert_exit, command, run_command, stderr, stdout};
use serde_json::{Value, json};

const WEBHOOK_FIELDS: [&str; 7] = [
    "id",
    "url",
    "events",
    "is_active",
    "description",
    "created_at",
    "updated_at",
];

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    keys.sort();
    keys
}

/// The answer is Danube's error envelope, `{"detail": "…"}`, whose text holds `expected`.
fn assert_refused(answer: &(u16, Value), status: u16, expected: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(keys_of(&answer.1), ["detail"], "{}", answer.1);
    let detail = answer.1["detail"].as_str().unwrap();
    assert!(detail.contains(expected), "{detail:?} lacks {expected:?}");
}

#[test]
fn every_endpoint_answers_with_danubes_shapes() {
    let dir = TempDir::new("emu-shapes");
    let emulator = Emulator::start(&dir.join("state.json"), &[]);
    let (status, list) = emulator.call("GET", "/v1/webhooks", Some(KEY), None);
    assert_eq!((status, list), (200, json!([])));

    // Create: the secret is in this answer, and only here.
    let body = json!({
        "url": "https://app.example/webhooks/danube",
        "events": ["workflow.failed", "tool.execution.completed"],
        "description": "staging",
    });
    let (status, created) =
        emulator.call("POST", "/v1/webhooks", Some(KEY), Some(&body.to_string()));
    assert_eq!(status, 200, "the SDK takes only 200 as success: {created}");
    let mut with_secret = WEBHOOK_FIELDS.to_vec();
    with_secret.push("secret");
    assert_eq!(keys_of(&created), sorted(&with_secret));
    let secret = created["secret"].as_str().unwrap();
    let random = secret.strip_prefix("whsec_").expect("whsec_…");
    assert_eq!(random.len(), 32);
    assert!(
        random.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{secret}"
    );
    assert_eq!(created["is_active"], true);
    assert_eq!(created["description"], "staging");
    assert_eq!(
        created["events"],
        json!(["workflow.failed", "tool.execution.completed"])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let other = emulator.create("https://other.example/h", &["workflow.completed"]);
    assert_ne!(other["secret"], created["secret"]);
    assert_ne!(other["id"], created["id"]);

    // List and get: no secret anywhere.
    let (_, list) = emulator.call("GET", "/v1/webhooks", Some(KEY), None);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], id.as_str(), "in creation order");
    for webhook in list.as_array().unwrap() {
        assert_eq!(keys_of(webhook), sorted(&WEBHOOK_FIELDS));
    }
    let (status, got) = emulator.call("GET", &format!("/v1/webhooks/{id}"), Some(KEY), None);
    assert_eq!(status, 200);
    assert!(got.get("secret").is_none());
    assert!(!list.to_string().contains(secret));
    update_log_and_delete(&emulator, &created);
}

/// PATCH, the delivery log's `limit`, DELETE, and 404 after.
fn update_log_and_delete(emulator: &Emulator, created: &Value) {
    let id = created["id"].as_str().unwrap();
    // Update: only the fields given change.
    let path = format!("/v1/webhooks/{id}");
    let (status, paused) =
        emulator.call("PATCH", &path, Some(KEY), Some(r#"{"is_active": false}"#));
    assert_eq!(status, 200, "{paused}");
    assert_eq!(keys_of(&paused), sorted(&WEBHOOK_FIELDS));
    assert_eq!(paused["is_active"], false);
    for same in ["url", "events", "description", "created_at"] {
        assert_eq!(paused[same], created[same], "{same} changed");
    }
    let (_, moved) = emulator.call(
        "PATCH",
        &path,
        Some(KEY),
        Some(r#"{"url": "https://new.example/h", "events": ["workflow.completed"], "description": null}"#),
    );
    assert_eq!(moved["url"], "https://new.example/h");
    assert_eq!(moved["events"], json!(["workflow.completed"]));
    assert_eq!(moved["description"], Value::Null);
    assert_eq!(moved["is_active"], false, "kept from the last update");

    // The delivery log: empty, bounded limit.
    let deliveries = format!("/v1/webhooks/{id}/deliveries");
    assert_eq!(
        emulator.call("GET", &deliveries, Some(KEY), None),
        (200, json!([]))
    );
    assert_eq!(
        emulator.call("GET", &format!("{deliveries}?limit=100"), Some(KEY), None),
        (200, json!([]))
    );
    for bad in ["0", "101", "ten"] {
        let answer = emulator.call("GET", &format!("{deliveries}?limit={bad}"), Some(KEY), None);
        assert_refused(&answer, 422, "limit must be a whole number from 1 to 100");
    }

    // Delete, and then the id is unknown everywhere.
    let (status, _) = emulator.call("DELETE", &path, Some(KEY), None);
    assert_eq!(status, 200);
    assert_refused(
        &emulator.call("DELETE", &path, Some(KEY), None),
        404,
        "not found",
    );
    assert_refused(
        &emulator.call("GET", &path, Some(KEY), None),
        404,
        "not found",
    );
    assert_refused(
        &emulator.call("PATCH", &path, Some(KEY), Some(r#"{"is_active": true}"#)),
        404,
        id,
    );
    assert_refused(
        &emulator.call("GET", &deliveries, Some(KEY), None),
        404,
        "not found",
    );
    let (_, list) = emulator.call("GET", "/v1/webhooks", Some(KEY), None);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_refused(
        &emulator.call("GET", "/v1/nothing", Some(KEY), None),
        404,
        "Not Found",
    );
    assert_refused(
        &emulator.call("PUT", "/v1/webhooks", Some(KEY), None),
        405,
        "GET, POST",
    );
}

#[test]
fn credentials_as_danube_takes_them() {
    let dir = TempDir::new("emu-keys");
    let open = Emulator::start(&dir.join("open.json"), &[]);
    assert_refused(
        &open.call("GET", "/v1/webhooks", None, None),
        401,
        "Missing API key",
    );
    assert_refused(
        &open.call("GET", "/v1/webhooks", Some(""), None),
        401,
        "Missing API key",
    );
    assert_eq!(
        open.call("GET", "/v1/webhooks", Some("anything"), None).0,
        200
    );
    let bearer = [("Authorization", "Bearer whatever")];
    assert_eq!(open.call_with("GET", "/v1/webhooks", &bearer, None).0, 200);
    // No key, no webhook made.
    let body = r#"{"url": "https://a.example/h", "events": ["workflow.failed"]}"#;
    assert_eq!(open.call("POST", "/v1/webhooks", None, Some(body)).0, 401);
    assert_eq!(
        open.call("GET", "/v1/webhooks", Some(KEY), None),
        (200, json!([]))
    );

    let locked = Emulator::start(
        &dir.join("locked.json"),
        &[
            "--api-key",
            "dk_live_right_key_1",
            "--api-key",
            "dk_live_right_key_2",
        ],
    );
    assert!(
        !locked.banner.contains("dk_live_right_key_1"),
        "a given key is the user's own, never shown whole:\n{}",
        locked.banner
    );
    assert!(
        locked.banner.contains("DANUBE_API_KEY=dk_liv…"),
        "{}",
        locked.banner
    );
    assert_refused(
        &locked.call("GET", "/v1/webhooks", Some("dk_live_wrong"), None),
        401,
        "Invalid API key",
    );
    assert_refused(
        &locked.call("GET", "/v1/webhooks", None, None),
        401,
        "Missing API key",
    );
    assert_eq!(
        locked
            .call("GET", "/v1/webhooks", Some("dk_live_right_key_2"), None)
            .0,
        200
    );
    let bearer = [("Authorization", "Bearer dk_live_right_key_1")];
    assert_eq!(
        locked.call_with("GET", "/v1/webhooks", &bearer, None).0,
        200
    );
    // With keys, the events door is locked too.
    let event = r#"{"event": "workflow.failed"}"#;
    assert_eq!(
        locked
            .call("POST", "/v1/emulator/events", None, Some(event))
            .0,
        401
    );
    assert_eq!(
        locked.call(
            "POST",
            "/v1/emulator/events",
            Some("dk_live_right_key_1"),
            Some(event)
        ),
        (202, json!({"deliveries": []}))
    );
}

/// JSON nested past any parser's depth, just under the body cap, is 422
/// at both doors that read JSON, and no panic: the emulator still answers.
fn deep_json_is_refused(emulator: &Emulator) {
    let deep = [
        &br#"{"event": "workflow.failed", "url": "https://a.example/h", "data": "#[..],
        &common::nested_json(30_000, 60 * 1024),
        b"}",
    ]
    .concat();
    for (path, expected) in [
        ("/v1/webhooks", "not valid JSON"),
        ("/v1/emulator/events", "at most 100"),
    ] {
        let answer = emulator.call_with("POST", path, &[("danube-api-key", KEY)], Some(&deep));
        assert_refused(&answer, 422, expected);
    }
    // An event name nested past any parser's depth is not a string, and
    // no panic: the emulator still answers.
    let deep_event = [
        &br#"{"event": "#[..],
        &common::nested_json(30_000, 60 * 1024),
        b"}",
    ]
    .concat();
    let answer = emulator.call_with(
        "POST",
        "/v1/emulator/events",
        &[("danube-api-key", KEY)],
        Some(&deep_event),
    );
    assert_refused(&answer, 422, "event must be a string, not an array");
}

#[test]
fn bad_requests_get_422_in_the_envelope_and_change_nothing() {
    let dir = TempDir::new("emu-422");
    let emulator = Emulator::start(&dir.join("state.json"), &[]);
    let table = [
        ("{\"url\": ", "not valid JSON"),
        ("\u{1}\u{2}garbage", "not valid JSON"),
        ("[1, 2]", "must be a JSON object, not an array"),
        (r#"{"events": ["workflow.failed"]}"#, "url is required"),
        (
            r#"{"url": 7, "events": ["workflow.failed"]}"#,
            "url must be a string",
        ),
        (r#"{"url": "https://a.example/h"}"#, "events is required"),
        (
            r#"{"url": "https://a.example/h", "events": []}"#,
            "at least one",
        ),
        (
            r#"{"url": "https://a.example/h", "events": "workflow.failed"}"#,
            "must be an array",
        ),
        (
            r#"{"url": "https://a.example/h", "events": [1]}"#,
            "must hold strings",
        ),
        (
            r#"{"url": "https://a.example/h", "events": ["workflow.exploded"]}"#,
            "unknown event type \"workflow.exploded\"",
        ),
        (
            r#"{"url": "https://a.example/h", "events": ["workflow.failed"], "description": 5}"#,
            "description must be a string or null",
        ),
        (
            r#"{"url": "http://127.0.0.1:3000/h", "events": ["workflow.failed"]}"#,
            "url must start with https://",
        ),
        (
            r#"{"url": "ftp://a.example/h", "events": ["workflow.failed"]}"#,
            "url must start with https://",
        ),
        (
            r#"{"url": "https://", "events": ["workflow.failed"]}"#,
            "url",
        ),
    ];
    for (body, expected) in table {
        let answer = emulator.call("POST", "/v1/webhooks", Some(KEY), Some(body));
        assert_refused(&answer, 422, expected);
    }
    deep_json_is_refused(&emulator);
    assert_eq!(
        emulator.call("GET", "/v1/webhooks", Some(KEY), None),
        (200, json!([]))
    );

    let id = emulator.create("https://a.example/h", &["workflow.failed"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/webhooks/{id}");
    for (body, expected) in [
        (r#"{"is_active": "no"}"#, "is_active must be true or false"),
        (r#"{"events": []}"#, "at least one"),
        (r#"{"url": "http://a.example/h"}"#, "https://"),
        ("not json", "not valid JSON"),
        // Checked whole: the valid field is not applied either.
        (r#"{"description": "x", "is_active": 1}"#, "is_active"),
    ] {
        assert_refused(
            &emulator.call("PATCH", &path, Some(KEY), Some(body)),
            422,
            expected,
        );
    }
    let (_, webhook) = emulator.call("GET", &path, Some(KEY), None);
    assert_eq!(webhook["description"], Value::Null);
    assert_eq!(webhook["is_active"], true);

    // The events door checks its body the same way.
    for (body, expected) in [
        ("{", "not valid JSON"),
        (r#"{"data": {}}"#, "event is required"),
        (r#"{"event": 5}"#, "event must be a string"),
        (r#"{"event": "workflow.nope"}"#, "unknown event type"),
    ] {
        assert_refused(
            &emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(body)),
            422,
            expected,
        );
    }
}

#[test]
fn allow_http_lets_http_in_and_nothing_else() {
    let dir = TempDir::new("emu-http");
    let http = Emulator::start(&dir.join("http.json"), &["--allow-http"]);
    assert!(http.banner.contains("--allow-http"), "{}", http.banner);
    let made = http.create("http://127.0.0.1:3000/h", &["workflow.failed"]);
    assert_eq!(made["url"], "http://127.0.0.1:3000/h");
    let answer = http.call(
        "POST",
        "/v1/webhooks",
        Some(KEY),
        Some(r#"{"url": "ftp://a.example/h", "events": ["workflow.failed"]}"#),
    );
    assert_refused(&answer, 422, "https:// or http://");
}

/// A 10 MiB body is answered 413 in the envelope without being held, by
/// its declared length and, chunked, by what arrives; the emulator goes on.
#[test]
fn a_10_mib_body_gets_413_and_the_emulator_goes_on() {
    let dir = TempDir::new("emu-413");
    let emulator = Emulator::start(&dir.join("state.json"), &[]);
    let huge = vec![b' '; 10 * 1024 * 1024];
    let key = [("danube-api-key", KEY)];
    let declared = request("POST", "/v1/webhooks", &key, Some(&huge));
    let chunked = {
        let mut bytes = format!(
            "POST /v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\ndanube-api-key: {KEY}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        for chunk in huge.chunks(64 * 1024) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    };
    for bytes in [declared, chunked] {
        let reply = send_while_reading(&emulator, bytes);
        assert_eq!(reply.status(), 413, "{reply:?}");
        let answer: Value = serde_json::from_slice(reply.body()).unwrap();
        assert!(
            answer["detail"].as_str().unwrap().contains("too large"),
            "{answer}"
        );
    }
    // Still there, and nothing was made.
    assert_eq!(
        emulator.call("GET", "/v1/webhooks", Some(KEY), None),
        (200, json!([]))
    );
    // Never waited for whole: a body declared 10 MiB of which nothing
    // came, and a chunked one that stops after 2 MiB, are answered 413 as
    // they stand; the emulator never needed the rest.
    let head_only = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\ndanube-api-key: {KEY}\r\n\
         Content-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    let mut chunked_part = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\ndanube-api-key: {KEY}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in huge[..2 * 1024 * 1024].chunks(64 * 1024) {
        chunked_part.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked_part.extend_from_slice(chunk);
        chunked_part.extend_from_slice(b"\r\n");
    }
    for partial in [head_only.into_bytes(), chunked_part] {
        // Written while the answer is read: past its 64 KiB cap the
        // emulator answers and closes while the rest is still being sent.
        let reply = send_while_reading(&emulator, partial);
        assert_eq!(reply.status(), 413, "{reply:?}");
    }
    assert_eq!(emulator.call("GET", "/v1/webhooks", Some(KEY), None).0, 200);
}

/// Write `bytes` on one thread while the answer is read on this one: the
/// emulator answers before the body is all sent.
fn send_while_reading(emulator: &Emulator, bytes: Vec<u8>) -> Reply {
    let mut stream = TcpStream::connect(emulator.addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let reply = common::read_reply(&mut stream, Duration::from_secs(20));
    drop(stream);
    let _ = sending.join();
    reply
}

/// With `--api-key`, the device flow does not hand the key to whoever asks:
/// without one of the keys it is 401, with one it works as before.
#[test]
fn with_api_key_the_device_flow_gives_no_key_to_a_stranger() {
    let dir = TempDir::new("emu-device-locked");
    let emulator = Emulator::start(&dir.join("state.json"), &["--api-key", "dk_only_this"]);
    let (status, answer) = emulator.call(
        "POST",
        "/v1/auth/device/code",
        None,
        Some(r#"{"client_name":"x"}"#),
    );
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = emulator.call(
        "POST",
        "/v1/auth/device/token",
        None,
        Some(r#"{"device_code":"anything"}"#),
    );
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.to_string().contains("dk_only_this"), "{answer}");
    let (status, answer) = emulator.call(
        "POST",
        "/v1/auth/device/code",
        Some("dk_only_this"),
        Some(r#"{"client_name":"x"}"#),
    );
    assert_eq!(status, 200, "{answer}");
}

/// A web page open in the developer's browser cannot drive the emulator:
/// a cross-origin POST (a browser always sends `Origin`) to the key-less
/// events door is refused, and no delivery is made.
#[test]
fn a_request_from_a_web_page_is_refused_and_fires_nothing() {
    let dir = TempDir::new("emu-origin");
    let receiver = Capture::start();
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http"]);
    emulator.create(&receiver.url("/hook"), &["workflow.failed"]);
    let event = br#"{"event": "workflow.failed"}"#;
    for origin in ["https://evil.example", "null", "http://127.0.0.1:4200"] {
        let (status, answer) = emulator.call_with(
            "POST",
            "/v1/emulator/events",
            &[("Origin", origin), ("Content-Type", "text/plain")],
            Some(event),
        );
        assert_eq!(status, 403, "{origin}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains("web page"),
            "{answer}"
        );
    }
    let (status, _) = emulator.call_with(
        "GET",
        "/v1/webhooks",
        &[("Origin", "https://evil.example"), ("danube-api-key", KEY)],
        None,
    );
    assert_eq!(status, 403);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.connections(), 0, "a delivery was fired");
    // Without Origin (curl, an SDK) the same request goes through.
    let (status, _) = emulator.call_with(
        "POST",
        "/v1/emulator/events",
        &[("danube-api-key", KEY)],
        Some(event),
    );
    assert_eq!(status, 202);
}

#[test]
fn the_events_door_answers_202_with_one_delivery_per_subscribed_active_webhook() {
    let dir = TempDir::new("emu-events");
    let receiver = Capture::start();
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http", "--json"]);
    let event = r#"{"event": "workflow.failed", "data": {"workflow_id": "wf_1"}}"#;
    assert_eq!(
        emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(event)),
        (202, json!({"deliveries": []})),
        "no webhook: no delivery"
    );
    let subscribed = emulator.create(&receiver.url("/hook"), &["workflow.failed"]);
    let paused = emulator.create(&receiver.url("/paused"), &["workflow.failed"]);
    let _other = emulator.create(&receiver.url("/other"), &["workflow.completed"]);
    let paused_path = format!("/v1/webhooks/{}", paused["id"].as_str().unwrap());
    emulator.call(
        "PATCH",
        &paused_path,
        Some(KEY),
        Some(r#"{"is_active": false}"#),
    );

    let (status, answer) = emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(event));
    assert_eq!(status, 202);
    let deliveries = answer["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{answer}");
    assert_eq!(deliveries[0]["webhook_id"], subscribed["id"]);
    let delivery_id = deliveries[0]["id"].as_str().unwrap();
    assert!(delivery_id.starts_with("dlv_"), "{delivery_id}");

    // It arrives signed with that webhook's secret.
    let arrived = receiver
        .next_request(Duration::from_secs(10))
        .expect("delivered");
    let arrived = common::Arrived::parse(&arrived);
    assert_eq!(arrived.target, b"/hook");
    assert_signed(&arrived, subscribed["secret"].as_str().unwrap());
    let envelope: Value = serde_json::from_slice(&arrived.body).unwrap();
    assert_eq!(envelope["event"], "workflow.failed");
    assert_eq!(envelope["data"], json!({"workflow_id": "wf_1"}));

    // Recorded with Danube's fields, newest first.
    let log = format!(
        "/v1/webhooks/{}/deliveries?limit=5",
        subscribed["id"].as_str().unwrap()
    );
    let record = wait_for_final(&emulator, &log);
    assert_eq!(record["id"], delivery_id);
    assert_eq!(record["status"], "success");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["response_status"], 200);
    assert_eq!(record["event_type"], "workflow.failed");
    assert_eq!(record["payload"], envelope);
    assert_eq!(
        keys_of(&record),
        sorted(&[
            "id",
            "webhook_id",
            "event_type",
            "payload",
            "status",
            "response_status",
            "response_body",
            "attempts",
            "delivered_at",
            "created_at"
        ])
    );
    let attempt: Value = serde_json::from_str(
        &emulator
            .next_line(Duration::from_secs(5))
            .expect("an attempt line"),
    )
    .unwrap();
    assert!(
        attempt.is_object(),
        "--json: one object per attempt: {attempt}"
    );
}

fn assert_signed(arrived: &common::Arrived, secret: &str) {
    let header = arrived
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-danube-signature"))
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        .expect("signed");
    let t: i64 = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .expect("t=…");
    let expected = danube_hooks::signature::sign(
        &danube_hooks::signature::Secret::new(secret),
        t,
        &arrived.body,
    );
    assert_eq!(header, expected);
}

/// The newest record of `log` once it is no longer pending.
fn wait_for_final(emulator: &Emulator, log: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, records) = emulator.call("GET", log, Some(KEY), None);
        assert_eq!(status, 200);
        if let Some(record) = records.get(0)
            && record["status"] != "pending"
        {
            return record.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still pending: {records}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_restart_serves_the_same_webhooks_secrets_and_log_and_reset_starts_empty() {
    let dir = TempDir::new("emu-restart");
    let folder = dir.join("fresh").join("danube");
    let state = folder.join("emulator.json");
    let receiver = Capture::start();
    let mut first = Emulator::start(&state, &["--allow-http"]);
    let webhook = first.create(&receiver.url("/hook"), &["workflow.failed"]);
    let id = webhook["id"].as_str().unwrap().to_owned();
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    first.create("https://b.example/h", &["workflow.completed"]);
    let (_, paused) = first.call(
        "PATCH",
        &format!(
            "/v1/webhooks/{}",
            first.call("GET", "/v1/webhooks", Some(KEY), None).1[1]["id"]
                .as_str()
                .unwrap()
        ),
        Some(KEY),
        Some(r#"{"is_active": false, "description": "paused"}"#),
    );
    first.call(
        "POST",
        "/v1/emulator/events",
        Some(KEY),
        Some(r#"{"event": "workflow.failed"}"#),
    );
    receiver
        .next_request(Duration::from_secs(10))
        .expect("delivered");
    let log = format!("/v1/webhooks/{id}/deliveries");
    let record = wait_for_final(&first, &log);
    let (_, before) = first.call("GET", "/v1/webhooks", Some(KEY), None);
    assert_eq!(first.signal_and_wait("TERM"), Some(0));

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o600);
    assert_eq!(mode(&folder), 0o700);
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        text.contains(&secret),
        "the secret is kept: it cannot be had again"
    );

    let second = Emulator::start(&state, &["--allow-http"]);
    assert!(
        second.banner.contains("2 webhooks, 1 delivery record)"),
        "{}",
        second.banner
    );
    let (_, after) = second.call("GET", "/v1/webhooks", Some(KEY), None);
    assert_eq!(after, before);
    assert_eq!(after[1], paused);
    let (_, records) = second.call("GET", &log, Some(KEY), None);
    assert_eq!(records, json!([record]));
    // The secret came back with the webhook: a new delivery is signed with it.
    second.call(
        "POST",
        "/v1/emulator/events",
        Some(KEY),
        Some(r#"{"event": "workflow.failed"}"#),
    );
    let arrived = common::Arrived::parse(&receiver.next_request(Duration::from_secs(10)).unwrap());
    assert_signed(&arrived, &secret);
    let newest = wait_for_final(&second, &log);
    assert_ne!(newest["id"], record["id"]);
    drop(second);

    let reset = Emulator::start(&state, &["--reset"]);
    assert!(reset.banner.contains("--reset"), "{}", reset.banner);
    assert_eq!(
        reset.call("GET", "/v1/webhooks", Some(KEY), None),
        (200, json!([]))
    );
}

/// SIGKILL in the middle of a burst of creates leaves a file that loads,
/// holding at least every webhook whose create was answered.
#[test]
fn a_sigkill_in_a_burst_of_creates_leaves_a_whole_state() {
    let dir = TempDir::new("emu-kill");
    let state = dir.join("emulator.json");
    for round in 0..3 {
        let mut emulator = Emulator::start(&state, &[]);
        let addr = emulator.addr;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    for n in 0..10_000 {
                        let body = json!({
                            "url": format!("https://r{round}-w{writer}-n{n}.example/h"),
                            "events": ["workflow.failed"],
                            "description": "x".repeat(2000),
                        })
                        .to_string();
                        let bytes = request(
                            "POST",
                            "/v1/webhooks",
                            &[("danube-api-key", KEY)],
                            Some(body.as_bytes()),
                        );
                        match common::exchange(addr, &bytes, Duration::from_secs(5)) {
                            Reply::Http {
                                status: 200, body, ..
                            } => {
                                let made: Value = serde_json::from_slice(&body).unwrap();
                                let _ = done_tx.send(made["id"].as_str().unwrap().to_owned());
                            }
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        // Let the burst run, then kill with no warning.
        let mut answered = Vec::new();
        let until = std::time::Instant::now() + Duration::from_millis(600 + 200 * round);
        while std::time::Instant::now() < until {
            if let Ok(id) = done_rx.recv_timeout(Duration::from_millis(10)) {
                answered.push(id);
            }
        }
        emulator.child.kill().unwrap();
        emulator.child.wait().unwrap();
        for writer in writers {
            writer.join().unwrap();
        }
        answered.extend(done_rx.try_iter());
        assert!(
            answered.len() > 5,
            "the burst made webhooks: {}",
            answered.len()
        );

        let text = std::fs::read(&state).unwrap();
        let parsed: Value = serde_json::from_slice(&text).expect("a whole JSON file");
        assert!(parsed["webhooks"].is_array());
        let again = Emulator::start(&state, &[]);
        let (_, list) = again.call("GET", "/v1/webhooks", Some(KEY), None);
        let kept: std::collections::HashSet<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        for id in &answered {
            assert!(
                kept.contains(id.as_str()),
                "an answered create was lost: {id}"
            );
        }
        drop(again);
    }
}

/// `login` against the emulator is approved at the first poll, and the
/// key it saved lists the emulator's webhooks: all offline.
#[test]
fn login_then_webhooks_list_work_against_the_emulator() {
    let dir = TempDir::new("emu-login");
    let emulator = Emulator::start(&dir.join("state.json"), &[]);
    emulator.create("https://app.example/webhooks/danube", &["workflow.failed"]);
    let env = |cmd: &mut std::process::Command| {
        cmd.env("XDG_CONFIG_HOME", dir.join("config"))
            .env("HOME", dir.join("home"))
            .env_remove("DANUBE_API_KEY")
            .env_remove("DANUBE_API_TOKEN")
            .env_remove("DANUBE_API_URL");
    };
    let mut login = command();
    env(&mut login);
    let output = run_command(login.args(["login", "--api-url", &emulator.url]), b"");
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("/device"), "{}", stdout(&output));
    let saved = std::fs::read_to_string(dir.join("config/danube-hooks/credentials.json")).unwrap();
    assert!(saved.contains("dk_emu_"), "a generated key was saved");

    let mut list = command();
    env(&mut list);
    let output = run_command(
        list.args(["webhooks", "list", "--api-url", &emulator.url]),
        b"",
    );
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("https://app.example/webhooks/danube"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}

#[test]
fn the_device_flow_has_danubes_shape_and_a_code_works_once() {
    let dir = TempDir::new("emu-device");
    // With --api-key the flow wants one of the keys (as the SDK sends it).
    let emulator = Emulator::start(
        &dir.join("state.json"),
        &["--api-key", "dk_given_key_123456"],
    );
    let (status, code) = emulator.call(
        "POST",
        "/v1/auth/device/code",
        Some("dk_given_key_123456"),
        Some(r#"{"client_name": "test"}"#),
    );
    assert_eq!(status, 200);
    assert_eq!(
        keys_of(&code),
        sorted(&[
            "device_code",
            "user_code",
            "verification_url",
            "expires_in",
            "interval"
        ])
    );
    assert_eq!(code["expires_in"], 600);
    assert_eq!(code["interval"], 5);
    let page = code["verification_url"].as_str().unwrap();
    let page_path = page
        .strip_prefix(&emulator.url)
        .expect("the emulator's own page");
    assert_eq!(emulator.call("GET", page_path, None, None).0, 200);
    let poll = json!({"device_code": code["device_code"]}).to_string();
    let (status, token) = emulator.call(
        "POST",
        "/v1/auth/device/token",
        Some("dk_given_key_123456"),
        Some(&poll),
    );
    assert_eq!(status, 200);
    assert_eq!(
        token["api_key"], "dk_given_key_123456",
        "the --api-key given"
    );
    assert!("dk_given_key_123456".starts_with(token["key_prefix"].as_str().unwrap()));
    assert_refused(
        &emulator.call(
            "POST",
            "/v1/auth/device/token",
            Some("dk_given_key_123456"),
            Some(&poll),
        ),
        410,
        "already used",
    );
    assert_refused(
        &emulator.call(
            "POST",
            "/v1/auth/device/token",
            Some("dk_given_key_123456"),
            Some("{}"),
        ),
        422,
        "device_code is required",
    );
    // The key handed over is one the emulator takes.
    assert_eq!(
        emulator
            .call("GET", "/v1/webhooks", token["api_key"].as_str(), None)
            .0,
        200
    );
}

#[test]
fn the_banner_says_where_what_to_export_and_the_state_file() {
    let dir = TempDir::new("emu-banner");
    let state = dir.join("state.json");
    let emulator = Emulator::start(&state, &[]);
    let banner = &emulator.banner;
    assert!(
        banner.contains(&format!("DANUBE_API_URL={}", emulator.url)),
        "{banner}"
    );
    assert!(banner.contains("DANUBE_API_KEY=dk_emu_local"), "{banner}");
    assert!(banner.contains(&state.display().to_string()), "{banner}");
    assert!(banner.contains("https:// webhook URLs only"), "{banner}");
    // A second emulator on the same state is refused, plainly.
    let mut second = command();
    let output = run_command(
        second
            .args(["emulate", "--port", "0", "--state"])
            .arg(&state),
        b"",
    );
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("another `danube-hooks emulate` uses"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_state_file_that_is_not_one_is_refused_without_its_text() {
    let dir = TempDir::new("emu-corrupt");
    let state = dir.join("state.json");
    std::fs::write(
        &state,
        r#"{"version": 1, "webhooks": [{"secret": "whsec_private"#,
    )
    .unwrap();
    let mut cmd = command();
    let output = run_command(
        cmd.args(["emulate", "--port", "0", "--state"]).arg(&state),
        b"",
    );
    // A state file that is not one: a local file failed (SPEC §2).
    assert_exit(&output, 4);
    let err = stderr(&output);
    assert!(err.contains("--reset"), "{err}");
    assert!(!err.contains("whsec_private"), "{err}");
    let mut raw = String::new();
    std::fs::File::open(&state)
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    assert!(raw.contains("whsec_private"), "the file is left as it was");
}

#[test]
fn keep_bounds_each_webhooks_log_to_the_newest() {
    let dir = TempDir::new("emu-keep");
    let receiver = Capture::start();
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http", "--keep", "2"]);
    let webhook = emulator.create(&receiver.url("/hook"), &["tool.execution.completed"]);
    let log = format!(
        "/v1/webhooks/{}/deliveries",
        webhook["id"].as_str().unwrap()
    );
    let mut sent = Vec::new();
    for n in 0..3 {
        let event = json!({"event": "tool.execution.completed", "data": {"n": n}}).to_string();
        let (_, answer) = emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(&event));
        sent.push(answer["deliveries"][0]["id"].as_str().unwrap().to_owned());
        receiver
            .next_request(Duration::from_secs(10))
            .expect("delivered");
        wait_for_final(&emulator, &log);
    }
    let (_, records) = emulator.call("GET", &log, Some(KEY), None);
    let ids: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [sent[2].as_str(), sent[1].as_str()],
        "newest first, the oldest dropped"
    );
    let (_, one) = emulator.call("GET", &format!("{log}?limit=1"), Some(KEY), None);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["id"], sent[2].as_str());
}

/// SIGKILL while delivery records are being written in a burst: the file
/// loads, and what was in flight is `failed` (no attempt of it will ever
/// follow), never left `pending` for ever.
#[test]
fn a_sigkill_while_records_pour_in_leaves_a_whole_log_with_nothing_pending() {
    let dir = TempDir::new("emu-kill-records");
    let state = dir.join("emulator.json");
    // A receiver that takes every request and never answers: each attempt
    // stays in flight until the emulator dies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let accepted = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(50) {
            held.push(stream);
        }
        held
    });
    let mut emulator = Emulator::start(&state, &["--allow-http"]);
    let webhook = emulator.create(&silent_url, &["workflow.completed"]);
    let log = format!(
        "/v1/webhooks/{}/deliveries?limit=100",
        webhook["id"].as_str().unwrap()
    );
    let event = r#"{"event": "workflow.completed", "data": {"pad": "xxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    for _ in 0..80 {
        let (status, _) = emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(event));
        assert_eq!(status, 202);
    }
    // Written at most 100 ms after the records were made.
    std::thread::sleep(Duration::from_millis(400));
    let (_, before) = emulator.call("GET", &log, Some(KEY), None);
    assert_eq!(before.as_array().unwrap().len(), 80);
    assert!(
        before
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "pending")
    );
    emulator.child.kill().unwrap();
    emulator.child.wait().unwrap();
    drop(accepted);

    let again = Emulator::start(&state, &["--allow-http"]);
    let (status, after) = again.call("GET", &log, Some(KEY), None);
    assert_eq!(status, 200);
    let after = after.as_array().unwrap();
    assert_eq!(
        after.len(),
        80,
        "every record made 400 ms before the kill was written"
    );
    for record in after {
        assert_eq!(record["status"], "failed", "{record}");
    }
}
