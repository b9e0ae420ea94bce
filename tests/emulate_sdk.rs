//! Danube's official Python SDK is the judge of `danube-hooks emulate`:
//! whatever the SDK expects of Danube's API, the
//! emulator must give.
//!
//! The test starts two real emulators on `127.0.0.1:0` (one with
//! `--allow-http`, one without, both with `--api-key`; the banner line
//! `danube-hooks emulating Danube on http://127.0.0.1:PORT` says where), then runs
//! `tests/sdk/judge.py` with the SDK from `target/sdk-venv` (made by
//! `.ci/sdk-venv`, which `.ci/run` calls). The script drives the emulator
//! through the SDK as an application would, runs the receiver the emulator
//! delivers to, and prints one JSON object of what it found; the
//! expectations live here, so a failure names the exact one.
//!
//! The judge is `#[ignore]`d, with the reason, so a plain `cargo test` on a
//! machine without the venv says `ignored` rather than `ok`; CI runs it
//! with `--ignored` after `.ci/sdk-venv`. Run on purpose without the venv,
//! it fails, naming `.ci/sdk-venv`.
//!
//! What `danube` 1.0.0 (on `PyPI`) expects of the API, read from its source
//! (`danube/_http.py`, `async_client.py`, `models/webhooks.py`):
//!
//! - Requests: base URL from `DANUBE_API_URL` (alias `DANUBE_BASE_URL`),
//!   trailing `/` stripped; every call carries `danube-api-key: KEY`,
//!   `Content-Type: application/json`, `User-Agent: danube-python-sdk/0.2.0`,
//!   and `danube-org-id` when `DANUBE_ORG_ID` is set. The client refuses to
//!   start with an empty key, so the SDK never sends a request without one.
//! - `webhooks.list()`: `GET /v1/webhooks`. `create(url, events, description?)`:
//!   `POST /v1/webhooks` `{url, events, description?}`. `update(id, url?,
//!   events?, is_active?, description?)`: `PATCH /v1/webhooks/{id}` with only
//!   the fields given (possibly `{}`). `delete(id)`: `DELETE
//!   /v1/webhooks/{id}`, no body, returns `True`. `get_deliveries(id,
//!   limit=20)`: `GET /v1/webhooks/{id}/deliveries?limit=N`, N capped at 100.
//! - Success is status **200 and nothing else**: a 201 on create or a 204 on
//!   delete raises `DanubeError(status_code=201/204)`. A 200 whose body is
//!   empty or not JSON reads as `{}`.
//! - `list` and `get_deliveries` need a bare JSON array; anything else (an
//!   object wrapping the array) silently reads as an empty list.
//! - Types (pydantic 2): a webhook's `id`, `url`, `created_at`, `updated_at`
//!   are strings (a number fails), `events` a list of strings (never null),
//!   `is_active` a bool, `description` a string or null; `secret` is read
//!   from the create answer only. A delivery's `id`, `webhook_id`,
//!   `event_type`, `status` are strings and `payload` an object, none null;
//!   `attempts` an int, not null; `response_status` int or null;
//!   `response_body`, `delivered_at`, `created_at` string or null. Extra keys
//!   are ignored.
//! - Errors: 400 → `ValidationError`, 401 → `AuthenticationError`, 403 →
//!   `AuthorizationError`, 404 → `NotFoundError`, 429 → `RateLimitError`
//!   (`Retry-After` must be integer seconds, or the SDK itself raises
//!   `ValueError`); every other status, 422 among them, is the base
//!   `DanubeError` with `.status_code`. The message is the body's `"detail"`
//!   when the body is a JSON object holding one, else the raw body's first
//!   500 characters: `{"detail": "…"}` reads cleanly, `{"error": {…}}` alone
//!   shows as JSON text.
//! - Retries: connect errors and timeouts after 1, 2, 4 s (`max_retries`
//!   3); 5xx is not retried.
//! - Device flow: `POST /v1/auth/device/code` `{"client_name"}` and `POST
//!   /v1/auth/device/token` `{"device_code"}`, with the key header too;
//!   reads `verification_url` (or `verification_uri`), `expires_in`,
//!   `interval`, then `api_key` and `key_prefix`; 428 and 410 are plain
//!   `DanubeError`s.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use common::emulator::Emulator;

const API_KEY: &str = "dk_judge_4f1c9a";
const EVENT: &str = "tool.execution.completed";
/// What the judge's receiver answers each delivery (tests/sdk/judge.py).
const RECEIVER_ANSWER: &str = "judge received it";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Why the judge is ignored by a plain `cargo test`, as libtest prints it.
const NEEDS_THE_SDK: &str = "needs Danube's Python SDK in target/sdk-venv: run \
     `bash .ci/sdk-venv`, then `cargo test --test suite emulate_sdk -- --ignored`";

/// Where the venv is: `target/sdk-venv`, or `DANUBE_SDK_VENV` (the tests
/// of this file point it at a folder with no venv).
fn sdk_venv() -> PathBuf {
    std::env::var_os("DANUBE_SDK_VENV")
        .map_or_else(|| repo().join("target/sdk-venv"), PathBuf::from)
}

/// The venv's python when it holds the SDK; `.ci/sdk-venv` makes it.
fn sdk_python() -> Option<PathBuf> {
    let python = sdk_venv().join("bin/python");
    let has_sdk = Command::new(&python)
        .args(["-c", "import danube"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    has_sdk.then_some(python)
}

/// Runs the judge against the two emulators; its JSON, or a panic with
/// everything printed. A judge that outlives 150 s is killed.
fn judge(python: &Path, open: &Emulator, strict: &Emulator) -> Value {
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/sdk/judge.py"))
        .env("DANUBE_API_URL", &open.url)
        .env("DANUBE_API_KEY", API_KEY)
        .env("JUDGE_STRICT_URL", &strict.url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Nothing from the shell may steer the SDK elsewhere: loopback only.
    for var in [
        "DANUBE_BASE_URL",
        "DANUBE_ORG_ID",
        "DANUBE_TIMEOUT",
        "DANUBE_MAX_RETRIES",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().expect("the venv's python runs");
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let output = done_rx
        .recv_timeout(Duration::from_secs(150))
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!(
                "the SDK judge ran over 150 s\n{}\n{}",
                open.output(),
                strict.output()
            )
        })
        .expect("the judge finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let found: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!(
            "the judge printed no JSON ({err}); stdout:\n{stdout}\nstderr:\n{stderr}\n{}",
            open.output()
        )
    });
    assert!(
        output.status.success(),
        "the judge stopped early ({}); it found:\n{found:#}\nstderr:\n{stderr}\n{}",
        output.status,
        open.output()
    );
    found
}

/// Collects every broken expectation, so one run names them all.
#[derive(Default)]
struct Verdict(Vec<String>);

impl Verdict {
    fn expect(&mut self, ok: bool, what: &str, found: &Value) {
        if !ok {
            self.0.push(format!("{what}; found {found}"));
        }
    }

    fn equal(&mut self, found: &Value, want: &Value, what: &str) {
        if found != want {
            self.0
                .push(format!("{what}: expected {want}, found {found}"));
        }
    }

    /// The SDK raised `class` with `status`.
    fn raised(&mut self, found: &Value, class: &str, status: u16, what: &str) {
        let want = json!({"raised": class, "status_code": status});
        let got = json!({"raised": found["raised"], "status_code": found["status_code"]});
        if got != want {
            self.0.push(format!(
                "{what}: expected the SDK to raise {class} ({status}), found {found}"
            ));
        }
    }
}

fn is_text(value: &Value) -> bool {
    value.as_str().is_some_and(|s| !s.is_empty())
}

/// The webhook fields that every answer about one webhook shares.
fn identity(webhook: &Value) -> Value {
    json!({
        "id": webhook["id"], "events": webhook["events"],
        "description": webhook["description"], "created_at": webhook["created_at"],
    })
}

/// list, create and update, as the SDK reads them.
fn check_webhooks(v: &mut Verdict, found: &Value) {
    v.equal(
        &found["sdk_version"],
        &json!("1.0.0"),
        "the judge's SDK version",
    );
    v.equal(&found["list_before"], &json!([]), "list() on a fresh state");

    // create: the answer the SDK turns into a WebhookCreateResponse.
    let created = &found["create"];
    let id = created["id"].clone();
    v.expect(is_text(&id), "create() gives a webhook id", created);
    v.expect(
        created["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && u.ends_with("/first")),
        "create() echoes the http://127.0.0.1 URL (--allow-http)",
        created,
    );
    v.equal(
        &created["events"],
        &json!([EVENT, "workflow.failed"]),
        "create() events",
    );
    v.equal(&created["is_active"], &json!(true), "create() is_active");
    v.equal(
        &created["description"],
        &json!("the SDK judge"),
        "create() description",
    );
    v.expect(
        is_text(&created["created_at"]),
        "create() gives created_at",
        created,
    );
    v.equal(
        &created["secret_prefix"],
        &json!("whsec_"),
        "create() secret prefix",
    );
    v.expect(
        created["secret_length"].as_u64().is_some_and(|n| n > 6),
        "create() gives a whole secret",
        created,
    );

    let listed = &found["list_after_create"];
    v.expect(
        listed.as_array().is_some_and(|l| l.len() == 1),
        "list() after create holds one webhook",
        listed,
    );
    v.equal(
        &identity(&listed[0]),
        &identity(created),
        "list() shows the created webhook",
    );
    v.equal(&listed[0]["url"], &created["url"], "list() url");

    // update: only the fields given change.
    let moved = &found["update_url"];
    v.expect(
        moved["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/second")),
        "update(url=…) answers the new URL",
        moved,
    );
    v.equal(
        &identity(moved),
        &identity(created),
        "update(url=…) keeps the other fields",
    );
    v.equal(
        &moved["is_active"],
        &json!(true),
        "update(url=…) keeps is_active",
    );
    let paused = &found["update_pause"];
    v.equal(
        &paused["is_active"],
        &json!(false),
        "update(is_active=False)",
    );
    v.equal(
        &paused["url"],
        &moved["url"],
        "update(is_active=False) keeps the URL",
    );
    v.equal(
        &found["event_while_paused"],
        &json!({"status": 202, "body": {"deliveries": []}}),
        "an event to a paused webhook makes no delivery",
    );
    v.equal(
        &found["update_resume"]["is_active"],
        &json!(true),
        "update(is_active=True)",
    );
}

/// Events in (through `/v1/emulator/events`), records out through `get_deliveries`.
fn check_deliveries(v: &mut Verdict, found: &Value) {
    let id = &found["create"]["id"];
    // Events in, deliveries out, read back through get_deliveries.
    let event = &found["event"];
    v.equal(
        &event["status"],
        &json!(202),
        "POST /v1/emulator/events status",
    );
    let dispatched = &event["body"]["deliveries"];
    v.expect(
        dispatched.as_array().is_some_and(|d| d.len() == 1) && dispatched[0]["webhook_id"] == *id,
        "the event makes one delivery, to the judge's webhook",
        event,
    );
    let first = &found["deliveries_first"];
    v.expect(
        first.as_array().is_some_and(|d| d.len() == 1),
        "get_deliveries() after one event holds one record",
        first,
    );
    v.equal(
        &first[0]["id"],
        &dispatched[0]["id"],
        "the record's id is the one the event endpoint answered",
    );
    let records = &found["deliveries"];
    v.expect(
        records.as_array().is_some_and(|d| d.len() == 2),
        "get_deliveries() after two events holds two records",
        records,
    );
    v.equal(
        &records[0]["payload"]["data"],
        &json!({"n": 2}),
        "get_deliveries() is newest first",
    );
    v.equal(
        &records[1]["id"],
        &first[0]["id"],
        "the older record keeps its id",
    );
    let record = &records[1];
    v.equal(&record["webhook_id"], id, "record webhook_id");
    v.equal(&record["event_type"], &json!(EVENT), "record event_type");
    v.equal(
        &record["status"],
        &json!("success"),
        "record status after a 200",
    );
    v.equal(
        &record["attempts"],
        &json!(1),
        "record attempts after a first-time 200",
    );
    v.equal(
        &record["response_status"],
        &json!(200),
        "record response_status",
    );
    v.equal(
        &record["response_body"],
        &json!(RECEIVER_ANSWER),
        "record response_body",
    );
    v.equal(
        &record["payload"]["event"],
        &json!(EVENT),
        "record payload.event",
    );
    v.equal(
        &record["payload"]["data"],
        &json!({"tool_id": "judge-1", "status": "success", "n": 1}),
        "record payload.data is the event's data",
    );
    v.expect(
        is_text(&record["payload"]["timestamp"]),
        "record payload has a timestamp",
        record,
    );
    v.expect(
        is_text(&record["delivered_at"]),
        "record delivered_at",
        record,
    );
    v.expect(is_text(&record["created_at"]), "record created_at", record);
    let limited = &found["deliveries_limit_1"];
    v.expect(
        limited.as_array().is_some_and(|d| d.len() == 1),
        "get_deliveries(limit=1) holds one record",
        limited,
    );
    v.equal(
        &limited[0]["id"],
        &records[0]["id"],
        "get_deliveries(limit=1) is the newest",
    );
}

/// What reached the judge's receiver: signed with the secret `create()` gave.
fn check_arrivals(v: &mut Verdict, found: &Value) {
    let record = &found["deliveries"][1];
    // What reached the receiver: signed with the secret create() gave.
    let arrived = &found["arrived"];
    v.expect(
        arrived.as_array().is_some_and(|a| a.len() == 2),
        "the receiver got two requests",
        arrived,
    );
    for (n, request) in arrived.as_array().into_iter().flatten().enumerate() {
        v.equal(
            &request["path"],
            &json!("/second"),
            &format!("request {n} went to the updated URL"),
        );
        v.equal(
            &request["signature_valid"],
            &json!(true),
            &format!("request {n} is signed with the create() secret"),
        );
        v.expect(
            request["content_type"]
                .as_str()
                .is_some_and(|c| c.starts_with("application/json")),
            &format!("request {n} is JSON"),
            request,
        );
    }
    v.equal(
        &arrived[0]["body"],
        &record["payload"],
        "the record's payload is the body delivered",
    );
}

/// The device flow of SPEC §11 through the SDK: approved at the first poll.
fn check_device_flow(v: &mut Verdict, found: &Value) {
    let code = &found["device_code"];
    for field in ["device_code", "user_code", "verification_url"] {
        v.expect(
            is_text(&code[field]),
            &format!("device_auth.request_code() gives {field}"),
            code,
        );
    }
    v.equal(
        &code["expires_in"],
        &json!(600),
        "request_code() expires_in",
    );
    v.equal(&code["interval"], &json!(5), "request_code() interval");
    let token = &found["device_token"];
    v.expect(
        is_text(&token["api_key"]) && is_text(&token["key_prefix"]),
        "device_auth.poll_token() is approved at once with api_key and key_prefix",
        token,
    );
}

/// The SDK's exceptions, and delete.
fn check_errors(v: &mut Verdict, found: &Value) {
    // The SDK's errors.
    v.raised(
        &found["bad_key"],
        "AuthenticationError",
        401,
        "a key --api-key does not name",
    );
    v.raised(
        &found["unknown_update"],
        "NotFoundError",
        404,
        "update() of an unknown id",
    );
    v.raised(
        &found["unknown_deliveries"],
        "NotFoundError",
        404,
        "get_deliveries() of an unknown id",
    );
    // The SDK maps 422 to its base DanubeError (ValidationError is 400 only).
    let refused = &found["http_url_strict"];
    v.raised(
        refused,
        "DanubeError",
        422,
        "create() of an http:// URL without --allow-http",
    );
    v.expect(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("https://")),
        "the 422's detail names https://",
        refused,
    );
    v.equal(
        &found["list_strict"],
        &json!([]),
        "a refused create makes no webhook",
    );

    v.equal(&found["delete"], &json!(true), "delete()");
    v.equal(
        &found["list_after_delete"],
        &json!([]),
        "list() after delete",
    );
    v.raised(
        &found["delete_again"],
        "NotFoundError",
        404,
        "delete() of a deleted webhook",
    );
}

// The reason is NEEDS_THE_SDK's text: `ignore` takes only a literal.
#[test]
#[ignore = "needs Danube's Python SDK in target/sdk-venv: run `bash .ci/sdk-venv`, then `cargo test --test suite emulate_sdk -- --ignored`"]
fn the_official_python_sdk_drives_the_emulator() {
    let Some(python) = sdk_python() else {
        panic!(
            "{} has no Danube SDK, so the SDK cannot judge the emulator: run `bash \
             .ci/sdk-venv` (it needs python3 and the package index once); .ci/run does so \
             before the ignored tests",
            sdk_venv().display()
        );
    };
    let dir = common::TempDir::new("emulate-sdk");
    let open = Emulator::start(
        &dir.join("open.json"),
        &["--allow-http", "--api-key", API_KEY],
    );
    let strict = Emulator::start(&dir.join("strict.json"), &["--api-key", API_KEY]);
    let found = judge(&python, &open, &strict);
    let mut v = Verdict::default();
    check_webhooks(&mut v, &found);
    check_deliveries(&mut v, &found);
    check_arrivals(&mut v, &found);
    check_device_flow(&mut v, &found);
    check_errors(&mut v, &found);

    assert!(
        v.0.is_empty(),
        "the SDK judge found {} broken expectation(s):\n- {}\n\nall it found:\n{found:#}\n{}",
        v.0.len(),
        v.0.join("\n- "),
        open.output()
    );
}

/// This test binary, run again with `args`: libtest's own report.
fn this_binary(args: &[&str], venv: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(args).stdin(Stdio::null());
    if let Some(venv) = venv {
        cmd.env("DANUBE_SDK_VENV", venv);
    }
    let output = cmd.output().expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn a_plain_cargo_test_reports_the_judge_ignored_with_its_reason() {
    let (ok, text) = this_binary(
        &[
            "--exact",
            "emulate_sdk::the_official_python_sdk_drives_the_emulator",
        ],
        None,
    );
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "the_official_python_sdk_drives_the_emulator ... ignored, {NEEDS_THE_SDK}"
        )),
        "{text}"
    );
    assert!(text.contains("0 passed; 0 failed; 1 ignored"), "{text}");
    // CI runs the judge with --ignored, after .ci/sdk-venv; a CI whose
    // plain `cargo test` finds no venv has skipped that step.
    let under_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !under_ci || sdk_python().is_some(),
        "CI=true but {} has no Danube SDK: .ci/run must run .ci/sdk-venv, then the ignored \
         tests (cargo test --tests -- --ignored)",
        sdk_venv().display()
    );
}

#[test]
fn the_judge_run_on_purpose_without_the_venv_fails_and_says_how_to_make_it() {
    let dir = common::TempDir::new("no-sdk-venv");
    let (ok, text) = this_binary(
        &[
            "--ignored",
            "--exact",
            "emulate_sdk::the_official_python_sdk_drives_the_emulator",
        ],
        Some(&dir.join("sdk-venv")),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("has no Danube SDK") && text.contains("bash .ci/sdk-venv"),
        "{text}"
    );
    assert!(text.contains("0 passed; 1 failed"), "{text}");
}
