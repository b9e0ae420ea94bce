//! `webhooks create | update | delete` black-box, against the shared fake
//! Danube API (`tests/common/fake_danube.rs`, SPEC §11) over loopback: the
//! secret Danube shows once is printed once and kept 0600 with `--save`,
//! and never appears anywhere else; a non-https URL never reaches Danube
//! (a local Danube, `emulate`, judges it itself); an update sends only the
//! fields given; every error status is one line that says what to do; a
//! stalled create is never retried while a stalled list is. Config lives under a temporary `XDG_CONFIG_HOME`.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::emulator::{self, Emulator};
use common::fake_danube::{FakeDanube, Fault, KEY};
use common::{
    ALL_EVENTS, TempDir, assert_contains, assert_exit, command, run_command, stderr, stdout,
};

const TUNNEL: &str = "https://abc.ngrok.app/webhooks/danube";
/// The request timeout the binary is given for stalls (a hidden test hook).
const TEST_TIMEOUT_MS: &str = "400";

/// One fake Danube and one config folder, and the binary pointed at both
/// with the fake's key and short timing, nothing from the shell.
struct Setup {
    danube: FakeDanube,
    config: TempDir,
}

impl Setup {
    fn new(name: &str) -> Self {
        Self {
            danube: FakeDanube::start(),
            config: TempDir::new(name),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let url = self.danube.url();
        let mut cmd = command();
        cmd.env("XDG_CONFIG_HOME", &self.config.0)
            .env_remove("DANUBE_API_TOKEN")
            .env_remove("DANUBE_ORG_ID")
            .env("DANUBE_API_KEY", KEY)
            .env("DANUBE_API_URL", &url)
            .env("DANUBE_HOOKS_API_TIMEOUT_MS", TEST_TIMEOUT_MS)
            .env("DANUBE_HOOKS_API_RETRY_WAIT_MS", "20")
            .args(["webhooks"])
            .args(args);
        run_command(&mut cmd, b"")
    }

    fn saved_file(&self) -> PathBuf {
        self.config.join("danube-hooks").join("webhooks.json")
    }

    fn saved(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read(self.saved_file()).expect("webhooks.json exists");
        serde_json::from_slice(&text).unwrap()
    }

    /// How many requests the fake saw with `method` on exactly `path`.
    fn count(&self, method: &str, path: &str) -> usize {
        self.danube
            .seen()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }

    /// Create one webhook through the binary with `--save`; its id and secret.
    fn create_saved(&self) -> (String, String) {
        let output = self.run(&["create", "--url", TUNNEL, "--save"]);
        assert_exit(&output, 0);
        let webhooks = self.danube.webhooks();
        let made = webhooks.last().expect("the fake has the webhook");
        (
            made["id"].as_str().unwrap().to_owned(),
            made["secret"].as_str().unwrap().to_owned(),
        )
    }
}

fn all_output(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

#[test]
fn create_prints_the_secret_once_and_sends_all_five_events_by_default() {
    let setup = Setup::new("wh-create");
    let output = setup.run(&["create", "--url", TUNNEL, "--description", "laptop"]);
    assert_exit(&output, 0);
    let webhooks = setup.danube.webhooks();
    assert_eq!(webhooks.len(), 1);
    let secret = webhooks[0]["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(webhooks[0]["url"], TUNNEL);
    assert_eq!(webhooks[0]["events"], serde_json::json!(ALL_EVENTS));
    assert_eq!(webhooks[0]["description"], "laptop");

    let out = stdout(&output);
    assert_eq!(out.matches(secret).count(), 1, "{out}");
    assert!(!stderr(&output).contains(secret));
    assert!(out.contains(webhooks[0]["id"].as_str().unwrap()), "{out}");
    assert!(
        out.contains("shown once — copy it now, or use --save"),
        "{out}"
    );
    // Without --save nothing is written.
    assert!(!setup.saved_file().exists());

    // --json: Danube's answer, the secret in it, the note on stderr.
    let output = setup.run(&["create", "--url", TUNNEL, "--json"]);
    assert_exit(&output, 0);
    let answer: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let second = setup.danube.webhooks()[1].clone();
    assert_eq!(answer["id"], second["id"]);
    assert_eq!(answer["secret"], second["secret"]);
    assert_eq!(answer["is_active"], second["is_active"]);
    assert_contains(&stderr(&output), "shown once");
}

#[test]
fn create_save_keeps_the_secret_0600_and_it_shows_nowhere_else() {
    let setup = Setup::new("wh-save");
    let output = setup.run(&[
        "create",
        "--url",
        TUNNEL,
        "--event",
        "workflow.completed",
        "--save",
    ]);
    assert_exit(&output, 0);
    let made = setup.danube.webhooks()[0].clone();
    let (id, secret) = (
        made["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    );
    let out = stdout(&output);
    assert_eq!(out.matches(&secret).count(), 1, "{out}");
    let fingerprint = format!("whsec_…{}", &secret[secret.len() - 4..]);
    let path = setup.saved_file();
    assert!(
        out.contains(&fingerprint) && out.contains(&path.display().to_string()),
        "{out}"
    );

    let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600);
    let saved = setup.saved();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["id"], id.as_str());
    assert_eq!(saved[0]["secret"], secret.as_str());
    assert_eq!(saved[0]["origin"], "create");
    assert_eq!(saved[0]["url"], TUNNEL);
    assert_eq!(
        saved[0]["events"],
        serde_json::json!(["workflow.completed"])
    );

    // Every other command's output, human and JSON, holds no secret.
    let new_url = "https://def.trycloudflare.com/webhooks/danube";
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["update", &id, "--url", new_url],
        vec!["update", &id, "--active", "false", "--json"],
        vec!["delete", &id],
    ] {
        let output = setup.run(&args);
        assert_exit(&output, 0);
        let text = all_output(&output);
        assert!(
            !text.contains(&secret),
            "{args:?} showed the secret:\n{text}"
        );
    }
    assert!(setup.danube.webhooks().is_empty());
}

#[test]
fn save_with_an_unreadable_webhooks_json_creates_nothing() {
    let setup = Setup::new("wh-corrupt");
    let path = setup.saved_file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "[{\"id\": \"wh_1\", \"secret\": \"whsec_half").unwrap();
    let output = setup.run(&["create", "--url", TUNNEL, "--save"]);
    // A saved file that is not what danube-hooks wrote: a local file failed.
    assert_exit(&output, 4);
    let err = stderr(&output);
    assert!(
        err.contains("nothing was created")
            && err.contains(&format!("{} is not a webhooks file", path.display())),
        "{err}"
    );
    assert!(!err.contains("whsec_half"), "{err}");
    assert!(setup.danube.seen().is_empty());
}

#[test]
fn a_non_https_url_is_refused_before_reaching_danube() {
    let setup = Setup::new("wh-http");
    // Danube itself (any https:// API): refused here, nothing is sent.
    let danube = ["--api-url", "https://api.danube.invalid"];
    for url in ["http://abc.ngrok.app/webhooks/danube", "abc.ngrok.app"] {
        let output = setup.run(&[&["create", "--url", url][..], &danube].concat());
        assert_exit(&output, 2);
        let err = stderr(&output);
        assert!(
            err.contains("--url") && err.contains("delivers only to https://"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let output = setup.run(&[
        "update",
        "wh_1",
        "--url",
        "http://abc.ngrok.app/x",
        danube[0],
        danube[1],
    ]);
    assert_exit(&output, 2);
    assert_contains(&stderr(&output), "delivers only to https://");

    // A local Danube (this fake, over http:// on loopback) keeps its own
    // rule: it refuses with its 422, in one line.
    let output = setup.run(&["create", "--url", "http://abc.ngrok.app/webhooks/danube"]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("422: url must start with https://"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // What is no URL at all is still refused here.
    let output = setup.run(&["create", "--url", "abc.ngrok.app"]);
    assert_exit(&output, 2);
    assert_contains(&stderr(&output), "http:// or https://");
    assert_eq!(setup.count("POST", "/v1/webhooks"), 1);
    assert!(setup.danube.webhooks().is_empty());
}

#[test]
fn the_emulator_with_allow_http_takes_an_http_receiver() {
    let dir = TempDir::new("wh-emulate-http");
    let receiver = "http://127.0.0.1:3000/webhooks/danube";
    let webhooks = |emulator: &Emulator, args: &[&str]| {
        let mut cmd = command();
        cmd.env("XDG_CONFIG_HOME", dir.join("config"))
            .env_remove("DANUBE_API_TOKEN")
            .env_remove("DANUBE_ORG_ID")
            .env("DANUBE_API_KEY", emulator::KEY)
            .arg("webhooks")
            .args(args)
            .args(["--api-url", &emulator.url]);
        run_command(&mut cmd, b"")
    };

    let allowing = Emulator::start(&dir.join("allowing.json"), &["--allow-http"]);
    let output = webhooks(
        &allowing,
        &["create", "--url", receiver, "--event", "workflow.failed"],
    );
    assert_exit(&output, 0);
    assert_contains(&stdout(&output), "Created webhook");
    let (status, listed) = allowing.call("GET", "/v1/webhooks", Some(emulator::KEY), None);
    assert_eq!(status, 200);
    assert_eq!(listed[0]["url"], receiver, "{listed}");
    let id = listed[0]["id"].as_str().unwrap();
    let moved = "http://127.0.0.1:3001/webhooks/danube";
    assert_exit(&webhooks(&allowing, &["update", id, "--url", moved]), 0);

    // Without --allow-http the emulator refuses it, as Danube would.
    let strict = Emulator::start(&dir.join("strict.json"), &[]);
    let output = webhooks(&strict, &["create", "--url", receiver]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("(422: "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn danubes_422_is_shown_in_one_line() {
    let setup = Setup::new("wh-422");
    setup.danube.fail_next(
        "POST",
        "/v1/webhooks",
        Fault::Status {
            status: 422,
            body: r#"{"detail":"url host is not allowed"}"#.to_owned(),
            retry_after: None,
        },
    );
    let output = setup.run(&["create", "--url", TUNNEL]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("422: url host is not allowed"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(setup.danube.webhooks().is_empty());
}

#[test]
fn an_unknown_event_type_is_sent_with_a_warning() {
    let setup = Setup::new("wh-event");
    let output = setup.run(&["create", "--url", TUNNEL, "--event", "workflow.paused"]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert!(
        err.contains("warning: --event workflow.paused") && err.contains("workflow.completed"),
        "{err}"
    );
    assert_eq!(
        setup.danube.webhooks()[0]["events"],
        serde_json::json!(["workflow.paused"])
    );
}

#[test]
fn update_sends_only_the_given_fields_and_keeps_the_saved_copy_in_step() {
    let setup = Setup::new("wh-update");
    let (id, secret) = setup.create_saved();
    let webhook_path = format!("/v1/webhooks/{id}");
    let last_patch = || {
        let patches = setup.danube.seen_of("PATCH", "/v1/webhooks/");
        let last = patches.last().expect("a PATCH was sent").clone();
        assert_eq!(last.path, webhook_path);
        serde_json::from_str::<serde_json::Value>(&last.body).unwrap()
    };

    let output = setup.run(&["update", &id, "--active", "false"]);
    assert_exit(&output, 0);
    assert_eq!(last_patch(), serde_json::json!({"is_active": false}));
    assert_contains(&stdout(&output), "paused");

    let new_url = "https://def.trycloudflare.com/webhooks/danube";
    let output = setup.run(&[
        "update",
        &id,
        "--url",
        new_url,
        "--event",
        "tool.execution.failed",
        "--json",
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        last_patch(),
        serde_json::json!({"url": new_url, "events": ["tool.execution.failed"]})
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(answer["url"], new_url);
    assert_eq!(answer["is_active"], false);
    assert!(answer.get("secret").is_none(), "{answer}");

    let now = &setup.danube.webhooks()[0];
    assert_eq!(now["url"], new_url);
    assert_eq!(now["is_active"], false);
    assert_eq!(now["secret"], secret.as_str(), "an update keeps the secret");
    let saved = setup.saved();
    assert_eq!(saved[0]["url"], new_url);
    assert_eq!(
        saved[0]["events"],
        serde_json::json!(["tool.execution.failed"])
    );
    assert_eq!(saved[0]["secret"], secret.as_str());

    // Nothing to change: refused before sending, naming the flags.
    let before = setup.danube.seen().len();
    let output = setup.run(&["update", &id]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    for flag in ["--url", "--event", "--active", "--description"] {
        assert!(err.contains(flag), "{err}");
    }
    assert_eq!(setup.danube.seen().len(), before);
}

#[test]
fn update_and_delete_work_on_a_webhook_made_elsewhere() {
    let setup = Setup::new("wh-foreign");
    let (id, secret) = setup.danube.add_webhook(TUNNEL, &["workflow.completed"]);
    let output = setup.run(&["update", &id, "--description", "made in the dashboard"]);
    assert_exit(&output, 0);
    assert_eq!(
        setup.danube.webhooks()[0]["description"],
        "made in the dashboard"
    );
    let output = setup.run(&["delete", &id]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.contains(&format!("Deleted webhook {id}")), "{out}");
    assert!(!all_output(&output).contains(&secret));
    assert!(setup.danube.webhooks().is_empty());
    assert!(!setup.saved_file().exists());
}

#[test]
fn delete_forgets_the_saved_secret() {
    let setup = Setup::new("wh-delete");
    let (id, secret) = setup.create_saved();
    let (other, _) = setup.create_saved();
    let output = setup.run(&["delete", &id]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(
        out.contains(&format!("Deleted webhook {id} ({TUNNEL})")),
        "{out}"
    );
    assert!(
        out.contains(&format!("whsec_…{}", &secret[secret.len() - 4..])),
        "{out}"
    );
    assert_eq!(setup.count("DELETE", &format!("/v1/webhooks/{id}")), 1);
    let saved = setup.saved();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["id"], other.as_str());
    let remaining = setup.danube.webhooks();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["id"], other.as_str());
}

#[test]
fn each_error_status_is_one_line_that_says_what_to_do() {
    let setup = Setup::new("wh-errors");
    let (id, _) = setup.danube.add_webhook(TUNNEL, &["workflow.completed"]);

    // 404 from the fake itself: the id is named.
    for args in [
        vec!["update", "wh_nope", "--active", "false"],
        vec!["delete", "wh_nope"],
    ] {
        let output = setup.run(&args);
        assert_exit(&output, 2);
        let err = stderr(&output);
        assert!(
            err.contains("no webhook wh_nope") && err.contains("webhooks list"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }

    let status = |status: u16, body: &str, retry_after: Option<u64>| Fault::Status {
        status,
        body: body.to_owned(),
        retry_after,
    };
    let cases: [(&str, &str, Fault, Vec<&str>, &str); 4] = [
        (
            "PATCH",
            "/v1/webhooks/",
            status(401, r#"{"detail":"Invalid API key"}"#, None),
            vec!["update", &id, "--active", "false"],
            "log in again with `danube-hooks login`",
        ),
        (
            "DELETE",
            "/v1/webhooks/",
            status(
                429,
                r#"{"error":{"code":"rate_limited","message":"Too many requests","details":null}}"#,
                Some(17),
            ),
            vec!["delete", &id],
            "wait 17 s",
        ),
        (
            "POST",
            "/v1/webhooks",
            status(500, r#"{"detail":"Internal error"}"#, None),
            vec!["create", "--url", TUNNEL],
            "Danube failed (500: Internal error); try again",
        ),
        (
            "GET",
            "/v1/webhooks",
            status(401, r#"{"detail":"Invalid API key"}"#, None),
            vec!["list"],
            "401: Invalid API key",
        ),
    ];
    for (method, prefix, fault, args, want) in cases {
        // Danube's 4xx but 429 is usage (2); its 429 and 5xx, Danube failing (3).
        let code = match &fault {
            Fault::Status { status, .. } if (400..500).contains(status) && *status != 429 => 2,
            _ => 3,
        };
        setup.danube.fail_next(method, prefix, fault);
        let output = setup.run(&args);
        assert_exit(&output, code);
        let err = stderr(&output);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains(KEY), "{err}");
    }
    // The faults changed nothing.
    let webhooks = setup.danube.webhooks();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["is_active"], true);
}

#[test]
fn a_stalled_create_is_never_retried_and_says_to_look_first() {
    let setup = Setup::new("wh-stall-create");
    setup.danube.fail_next(
        "POST",
        "/v1/webhooks",
        Fault::ApplyThenStall(Duration::from_secs(3)),
    );
    let output = setup.run(&["create", "--url", TUNNEL, "--save"]);
    // No answer from Danube: its failure, not usage (SPEC §2).
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("did not answer the create within 0.4 s")
            && err.contains("danube-hooks webhooks list"),
        "{err}"
    );
    assert_eq!(setup.count("POST", "/v1/webhooks"), 1);
    // Danube made it, and nothing was saved without its secret.
    assert_eq!(setup.danube.webhooks().len(), 1);
    assert!(!setup.saved_file().exists());
}

#[test]
fn a_stalled_list_is_retried() {
    let setup = Setup::new("wh-stall-list");
    let (id, _) = setup.danube.add_webhook(TUNNEL, &["workflow.completed"]);
    setup
        .danube
        .fail_next("GET", "/v1/webhooks", Fault::Stall(Duration::from_secs(3)));
    let output = setup.run(&["list"]);
    assert_exit(&output, 0);
    assert_contains(&stdout(&output), &id);
    assert_eq!(setup.count("GET", "/v1/webhooks"), 2);

    // Stalled every time: four tries (the SDKs' three retries), then one line.
    for _ in 0..4 {
        setup
            .danube
            .fail_next("GET", "/v1/webhooks", Fault::Stall(Duration::from_secs(3)));
    }
    let output = setup.run(&["list"]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("did not answer within 0.4 s (tried 4 times)"),
        "{err}"
    );
    assert_eq!(setup.count("GET", "/v1/webhooks"), 6);
}
