//! A Danube API (or whatever answers as one) that echoes the credential
//! back in its errors: `{"detail": "Invalid API key: dk_live_…"}`, the
//! key in `error.message` or `error.details`, split between fields,
//! percent-encoded, cut at a length limit. No more of the key (or the
//! bearer token) than its fingerprint may reach the terminal, through any
//! command that asks the API.

use std::fmt::Write as _;
use std::process::{Command, Output};

use serde_json::json;

use crate::common::fake_danube::{FakeDanube, Fault, KEY, danube_hooks, register_args};
use crate::common::{TempDir, run_command, stderr, stdout};

/// The longest run of the key that may show: its fingerprint shows 6.
const SHOWN: usize = 9;

/// `text` with every `%XX` decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every byte of `text` as `%XX`.
fn percent_encoded(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "%{b:02x}");
        out
    })
}

/// A run of more than [`SHOWN`] characters of the key in `output`'s
/// stdout or stderr, as printed or percent-decoded, said with the output.
fn key_in(output: &Output) -> Option<String> {
    let printed = format!("{}\n{}", stdout(output), stderr(output));
    for text in [printed.clone(), percent_decoded(&printed)] {
        for run in KEY.as_bytes().windows(SHOWN + 1) {
            let run = std::str::from_utf8(run).unwrap();
            if text.contains(run) {
                return Some(format!(
                    "{run:?} of the key reached the terminal:\n{printed}"
                ));
            }
        }
    }
    None
}

fn assert_no_key(output: &Output, what: &str) {
    if let Some(leak) = key_in(output) {
        panic!("{what}: {leak}");
    }
}

/// Error answers that hold the key, each as its own case.
fn echoes() -> Vec<(&'static str, Fault)> {
    let fault = |status: u16, body: String| Fault::Status {
        status,
        body,
        retry_after: None,
    };
    let (head, tail) = KEY.split_at(KEY.len() / 2);
    let escaped = KEY.chars().fold(String::new(), |mut out, c| {
        let _ = write!(out, "\\u{:04x}", c as u32);
        out
    });
    vec![
        (
            "detail",
            Fault::status(401, &format!("Invalid API key: {KEY}")),
        ),
        (
            "error.message",
            fault(
                403,
                json!({"error": {"code": "forbidden", "message": format!("key {KEY} may not do this"), "details": null}}).to_string(),
            ),
        ),
        (
            "error.details",
            fault(
                422,
                json!({"error": {"code": "invalid", "message": "bad request", "details": {
                    "headers": {"danube-api-key": KEY}, "hint": format!("Authorization: Bearer {KEY}")}}})
                .to_string(),
            ),
        ),
        (
            "split between fields",
            fault(
                400,
                json!({"error": {"code": head, "message": tail, "details": [head, tail]}})
                    .to_string(),
            ),
        ),
        (
            "percent-encoded",
            Fault::status(500, &format!("failed GET /v1/webhooks?key={}", percent_encoded(KEY))),
        ),
        (
            "partly percent-encoded",
            Fault::status(404, &KEY.replace('_', "%5F")),
        ),
        (
            "JSON escapes",
            fault(401, format!(r#"{{"detail": "bad key {escaped}"}}"#)),
        ),
        (
            "not JSON",
            fault(502, format!("upstream refused key {KEY}\n")),
        ),
        (
            "upgrade_url",
            fault(
                429,
                json!({"detail": "plan limit", "upgrade_url": format!("https://danubeai.com/upgrade?key={KEY}")}).to_string(),
            ),
        ),
        (
            "cut at the length limit",
            Fault::status(400, &format!("{}{KEY}", "x".repeat(285))),
        ),
    ]
}

/// Run `cmd` once for each echo, the echo given to the request it makes
/// first (`method` on `path`), and assert that no more of the key than its
/// fingerprint was printed, and that the command failed. Every echo is
/// tried before the test fails, and every leak is named.
fn each_echo(what: &str, method: &str, path: &str, cmd: impl Fn(&FakeDanube) -> Command) {
    let mut leaks = Vec::new();
    for (how, fault) in echoes() {
        // Danube's 4xx but 429 is usage (2); its 5xx and 429, Danube failing (3).
        let code = match &fault {
            Fault::Status { status, .. } if (400..500).contains(status) && *status != 429 => 2,
            _ => 3,
        };
        let danube = FakeDanube::start();
        danube.fail_next(method, path, fault);
        let output = run_command(&mut cmd(&danube), b"");
        assert_eq!(
            output.status.code(),
            Some(code),
            "{what}, {how}: {output:?}"
        );
        assert!(
            !danube.seen_of(method, path).is_empty(),
            "{what}, {how}: the echo was never asked for"
        );
        if let Some(leak) = key_in(&output) {
            leaks.push(format!("{what}, key echoed in {how}: {leak}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} echoes leaked:\n{}",
        leaks.len(),
        echoes().len(),
        leaks.join("\n")
    );
}

#[test]
fn webhooks_list_never_prints_an_echoed_key() {
    let config = TempDir::new("echo-list");
    each_echo("webhooks list", "GET", "/v1/webhooks", |danube| {
        let mut cmd = danube_hooks(&config.0);
        cmd.args(["webhooks", "list", "--api-url", &danube.url()]);
        cmd
    });
}

#[test]
fn deliveries_never_prints_an_echoed_key() {
    let config = TempDir::new("echo-deliveries");
    each_echo(
        "deliveries",
        "GET",
        "/v1/webhooks/wh_1/deliveries",
        |danube| {
            let mut cmd = danube_hooks(&config.0);
            cmd.args(["deliveries", "wh_1", "--api-url", &danube.url()]);
            cmd
        },
    );
}

#[test]
fn listen_register_never_prints_an_echoed_key() {
    let config = TempDir::new("echo-register");
    each_echo("listen --register", "GET", "/v1/webhooks", |danube| {
        let url = danube.url();
        let mut cmd = danube_hooks(&config.0);
        cmd.args(["listen", "--port", "0"]).args(register_args(
            &url,
            &["--public-url", "https://abc.ngrok.app"],
        ));
        cmd
    });
}

#[test]
fn a_bearer_token_and_a_saved_key_are_hidden_too() {
    // The token, as DANUBE_API_TOKEN (the fake takes the key as one).
    let config = TempDir::new("echo-token");
    each_echo("webhooks list (token)", "GET", "/v1/webhooks", |danube| {
        let mut cmd = danube_hooks(&config.0);
        cmd.env_remove("DANUBE_API_KEY")
            .env("DANUBE_API_TOKEN", KEY)
            .args(["webhooks", "list", "--api-url", &danube.url()]);
        cmd
    });

    // The key `login --with-key` saved, which login itself never prints.
    let config = TempDir::new("echo-saved");
    let mut login = danube_hooks(&config.0);
    login
        .env_remove("DANUBE_API_KEY")
        .args(["login", "--with-key"]);
    let output = run_command(&mut login, KEY.as_bytes());
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_no_key(&output, "login --with-key");
    each_echo(
        "webhooks list (saved key)",
        "GET",
        "/v1/webhooks",
        |danube| {
            let mut cmd = danube_hooks(&config.0);
            cmd.env_remove("DANUBE_API_KEY")
                .args(["webhooks", "list", "--api-url", &danube.url()]);
            cmd
        },
    );
}

/// A successful answer is printed too: a webhook whose URL, description
/// and events hold the key (whole, cut, percent-encoded) is listed, and
/// made, with the key shown as its fingerprint, in the table and in JSON.
#[test]
fn a_key_in_a_successful_answer_is_hidden_too() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-key-echo-ok");
    let cut = &KEY[..KEY.len() - 3];
    let (id, _) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["workflow.completed"],
    );
    danube.edit_webhook(
        &id,
        &json!({
            "url": format!("https://abc.ngrok.app/hooks?k={KEY}"),
            "description": format!("made with {} and {cut}", percent_encoded(KEY)),
            "events": [KEY],
        }),
    );
    for json_flag in [&[][..], &["--json"]] {
        let mut cmd = danube_hooks(&config.0);
        cmd.args(["webhooks", "list", "--api-url", &danube.url()])
            .args(json_flag);
        let output = run_command(&mut cmd, b"");
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(
            stdout(&output).contains("abc.ngrok.app/hooks?k="),
            "{}",
            stdout(&output)
        );
        assert_no_key(&output, "webhooks list with the key in a webhook");
    }
    danube.fail_next(
        "POST",
        "/v1/webhooks",
        Fault::Status {
            status: 201,
            body: json!({"id": "wh_echo", "url": format!("https://x.example/?k={KEY}"),
                         "events": ["workflow.completed"], "is_active": true,
                         "description": KEY, "secret": "whsec_abcdefghijklmnopqrstuvwxyz012345"})
            .to_string(),
            retry_after: None,
        },
    );
    let mut cmd = danube_hooks(&config.0);
    cmd.args([
        "webhooks",
        "create",
        "--url",
        "https://x.example/",
        "--save",
    ])
    .args(["--api-url", &danube.url()]);
    let output = run_command(&mut cmd, b"");
    assert_no_key(&output, "webhooks create answered with the key");
}
