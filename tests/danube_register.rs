//! `listen --register` black-box, against the fake Danube API
//! (`common::fake_danube`) and fake ngrok and cloudflared agents on
//! loopback: the webhook is created (and its secret verifies at once),
//! reused across restarts with another public URL (PATCH, same secret, no
//! second create), paused on exit (or left on, or deleted), a webhook
//! danube-hooks did not create is never touched, a timed-out create is
//! never made twice, and the public URL is found through ngrok or
//! cloudflared, or the error names the three ways.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::time::Duration;

use common::fake_danube::{self, FakeDanube, Fault, KEY, register_args};
use common::{
    ALL_EVENTS, Capture, Listener, TempDir, assert_contains, assert_exit, closed_port, json_answer,
    now, run_command, signed_post, stderr,
};
use serde_json::Value;

const PUBLIC: &str = "https://abc.ngrok.app";
const URL: &str = "https://abc.ngrok.app/webhooks/danube";

fn danube_hooks(config: &TempDir) -> Command {
    fake_danube::danube_hooks(&config.0)
}

fn start(config: &TempDir, danube: &FakeDanube, args: &[&str]) -> Listener {
    let url = danube.url();
    Listener::start_with(danube_hooks(config), &register_args(&url, args))
}

/// A run that ends before listening (a refusal): its output.
fn run_listen(config: &TempDir, danube: &FakeDanube, args: &[&str]) -> Output {
    let url = danube.url();
    let mut cmd = danube_hooks(config);
    cmd.args(["listen", "--port", "0"])
        .args(register_args(&url, args));
    run_command(&mut cmd, b"")
}

/// The fake's webhooks at `url`.
fn at(danube: &FakeDanube, url: &str) -> Vec<Value> {
    danube
        .webhooks()
        .into_iter()
        .filter(|w| w["url"] == url)
        .collect()
}

/// A delivery signed with `secret` reaches `listener` and verifies.
fn assert_verifies(listener: &Listener, secret: &str) {
    let body = common::event_body("workflow.completed", 1);
    let reply = signed_post(listener.addr, secret, now(), &body);
    assert_eq!(reply.status(), 200);
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "valid", "{record}");
}

/// SIGTERM, exit 0, and what it said on the way out.
fn stop(listener: &mut Listener) -> String {
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    listener.stderr_so_far()
}

fn saved_webhooks(config: &TempDir) -> (Vec<Value>, u32) {
    let path = config.join("danube-hooks").join("webhooks.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let all: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (all, mode)
}

/// `agent` (a fake ngrok API or cloudflared metrics server) was asked
/// once, with `request_line`.
fn assert_asked_once(agent: &Capture, request_line: &str) {
    let request = agent.next_request(Duration::from_secs(5)).unwrap();
    let text = String::from_utf8_lossy(&request);
    assert_eq!(text.lines().next(), Some(request_line), "{text}");
    assert_eq!(agent.connections(), 1);
}

#[test]
fn create_verify_at_once_and_pause_on_exit() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-create");
    let mut listener = start(&config, &danube, &["--public-url", PUBLIC]);

    let made = at(&danube, URL);
    assert_eq!(made.len(), 1, "{:?}", danube.webhooks());
    let webhook = &made[0];
    let (id, secret) = (
        webhook["id"].as_str().unwrap(),
        webhook["secret"].as_str().unwrap(),
    );
    assert_eq!(webhook["is_active"], true);
    assert_eq!(webhook["events"], serde_json::json!(ALL_EVENTS));
    let create = &danube.seen_of("POST", "/v1/webhooks")[0];
    assert_eq!(create.json()["url"], URL);

    // The banner: which webhook, its URL, the fingerprint, and the pause.
    let banner = &listener.banner;
    assert!(
        banner.contains(&format!("webhook {id} → {URL}")),
        "{banner}"
    );
    let fingerprint = format!("whsec_…{}", &secret[secret.len() - 4..]);
    assert!(banner.contains(&fingerprint), "{banner}");
    assert!(
        !banner.contains(secret),
        "the secret was printed whole:\n{banner}"
    );
    assert!(banner.contains("paused on exit"), "{banner}");

    // Kept for the next run, privately.
    let (saved, file_mode) = saved_webhooks(&config);
    assert_eq!(file_mode, 0o600);
    assert_eq!(saved.len(), 1);
    assert_eq!(
        (saved[0]["id"].as_str(), saved[0]["secret"].as_str()),
        (Some(id), Some(secret))
    );
    assert_eq!(saved[0]["origin"], "register");

    assert_verifies(&listener, secret);

    let said = stop(&mut listener);
    assert!(
        said.contains(&format!("paused Danube webhook {id}")),
        "{said}"
    );
    assert_eq!(at(&danube, URL)[0]["is_active"], false);
    let pause = danube.seen_of("PATCH", &format!("/v1/webhooks/{id}"));
    assert_eq!(pause.len(), 1);
    assert_eq!(pause[0].json(), serde_json::json!({ "is_active": false }));
}

#[test]
fn a_restart_with_another_public_url_updates_the_same_webhook_and_keeps_its_secret() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-restart");
    let mut first = start(&config, &danube, &["--public-url", PUBLIC]);
    stop(&mut first);
    let (id, secret) = {
        let webhook = &at(&danube, URL)[0];
        (
            webhook["id"].as_str().unwrap().to_owned(),
            webhook["secret"].as_str().unwrap().to_owned(),
        )
    };

    let other = "https://tall-river-1234.trycloudflare.com/webhooks/danube";
    let mut second = start(
        &config,
        &danube,
        &[
            "--public-url",
            "https://tall-river-1234.trycloudflare.com",
            "--event",
            "workflow.failed",
        ],
    );
    let all = danube.webhooks();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], id.as_str());
    assert_eq!(all[0]["url"], other);
    assert_eq!(all[0]["is_active"], true);
    assert_eq!(all[0]["events"], serde_json::json!(["workflow.failed"]));
    assert_eq!(
        danube.seen_of("POST", "/v1/webhooks").len(),
        1,
        "a second create"
    );
    let patches = danube.seen_of("PATCH", &format!("/v1/webhooks/{id}"));
    // The first run's pause, then the re-pointing.
    assert_eq!(patches.len(), 2);
    assert_eq!(
        patches[1].json(),
        serde_json::json!({ "url": other, "is_active": true, "events": ["workflow.failed"] })
    );
    assert!(second.banner.contains("reused"), "{}", second.banner);

    // The same secret verifies, and nothing new had to be pasted.
    assert_verifies(&second, &secret);
    stop(&mut second);
    assert_eq!(danube.webhooks()[0]["is_active"], false);
    let (saved, _) = saved_webhooks(&config);
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["url"], other);
}

#[test]
fn a_webhook_deleted_in_danube_meanwhile_is_forgotten_and_made_anew() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-deleted");
    let mut first = start(&config, &danube, &["--public-url", PUBLIC]);
    stop(&mut first);
    let first_id = at(&danube, URL)[0]["id"].as_str().unwrap().to_owned();
    // Deleted behind the tool's back (on Danube's site, say).
    let delete = format!(
        "DELETE /v1/webhooks/{first_id} HTTP/1.1\r\nHost: {}\r\ndanube-api-key: {KEY}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        danube.addr()
    );
    let reply = common::exchange(danube.addr(), delete.as_bytes(), Duration::from_secs(10));
    assert_eq!(reply.status(), 204);

    let mut second = start(&config, &danube, &["--public-url", PUBLIC]);
    let made = at(&danube, URL);
    assert_eq!(made.len(), 1);
    assert_ne!(made[0]["id"], first_id.as_str());
    let (saved, _) = saved_webhooks(&config);
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0]["id"], made[0]["id"]);
    // Never a PATCH to the one that is gone.
    assert_eq!(
        danube
            .seen_of("PATCH", &format!("/v1/webhooks/{first_id}"))
            .len(),
        1
    );
    assert_verifies(&second, made[0]["secret"].as_str().unwrap());
    stop(&mut second);
}

#[test]
fn keep_active_leaves_it_on() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-keep");
    let mut listener = start(&config, &danube, &["--public-url", PUBLIC, "--keep-active"]);
    assert!(
        listener
            .banner
            .contains("left active on exit (--keep-active)"),
        "{}",
        listener.banner
    );
    let said = stop(&mut listener);
    assert!(said.contains("active (--keep-active)"), "{said}");
    assert_eq!(at(&danube, URL)[0]["is_active"], true);
    assert!(danube.seen_of("PATCH", "/v1/webhooks").is_empty());
}

#[test]
fn unregister_deletes_it_and_forgets_its_secret() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-unregister");
    let mut listener = start(&config, &danube, &["--public-url", PUBLIC, "--unregister"]);
    let id = at(&danube, URL)[0]["id"].as_str().unwrap().to_owned();
    assert!(
        listener.banner.contains("deleted on exit"),
        "{}",
        listener.banner
    );
    let said = stop(&mut listener);
    assert!(
        said.contains(&format!("deleted Danube webhook {id}")),
        "{said}"
    );
    assert!(danube.webhooks().is_empty(), "{:?}", danube.webhooks());
    assert_eq!(
        danube
            .seen_of("DELETE", &format!("/v1/webhooks/{id}"))
            .len(),
        1
    );
    assert!(saved_webhooks(&config).0.is_empty());
}

#[test]
fn a_failed_pause_is_said_not_fatal() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-pause-fails");
    let mut listener = start(&config, &danube, &["--public-url", PUBLIC]);
    let id = at(&danube, URL)[0]["id"].as_str().unwrap().to_owned();
    danube.fail_next(
        "PATCH",
        "/v1/webhooks",
        Fault::status(500, "Internal error"),
    );
    let said = stop(&mut listener);
    assert!(
        said.contains(&format!("could not pause Danube webhook {id}")),
        "{said}"
    );
    assert!(
        said.contains(&format!("webhooks update {id} --active false")),
        "{said}"
    );
    assert_eq!(at(&danube, URL)[0]["is_active"], true);
}

#[test]
fn a_webhook_danube_hooks_did_not_create_is_never_touched() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-foreign");
    let elsewhere = "https://prod.example.com/webhooks/danube";
    let (foreign, _) = danube.add_webhook(elsewhere, &["workflow.completed"]);
    let before = danube.webhooks();

    // Another URL: ours is made beside it, and it is left alone, on exit too.
    let mut listener = start(&config, &danube, &["--public-url", PUBLIC]);
    stop(&mut listener);
    let all = danube.webhooks();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all.iter().find(|w| w["id"] == foreign.as_str()),
        before.first()
    );

    // At our very URL: refused, since a second webhook there would double
    // every delivery and its secret is unknown; nothing is changed.
    let config = TempDir::new("register-foreign-same-url");
    let danube = FakeDanube::start();
    let (foreign, _) = danube.add_webhook(URL, &["workflow.completed"]);
    let before = danube.webhooks();
    let output = run_listen(&config, &danube, &["--public-url", PUBLIC]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("webhook {foreign} already posts to {URL}")),
        "{err}"
    );
    assert!(err.contains(&format!("webhooks delete {foreign}")), "{err}");
    assert!(err.contains("--secret"), "{err}");
    assert_eq!(danube.webhooks(), before);
    for method in ["POST", "PATCH", "DELETE"] {
        assert!(
            danube.seen_of(method, "/v1/webhooks").is_empty(),
            "{method}"
        );
    }
}

#[test]
fn no_double_create_after_a_timed_out_create() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-timeout");
    // The create happens, its answer never comes.
    danube.fail_next(
        "POST",
        "/v1/webhooks",
        Fault::ApplyThenStall(Duration::from_secs(20)),
    );
    let output = run_listen(
        &config,
        &danube,
        &["--public-url", PUBLIC, "--api-timeout", "1s"],
    );
    assert_exit(&output, 2);
    let made = at(&danube, URL);
    assert_eq!(made.len(), 1);
    let id = made[0]["id"].as_str().unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("did not answer the create within 1 s"),
        "{err}"
    );
    assert!(err.contains(&format!("webhooks delete {id}")), "{err}");
    // It looked (a list after the create), and made nothing more.
    let seen: Vec<String> = danube
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        seen,
        ["GET /v1/webhooks", "POST /v1/webhooks", "GET /v1/webhooks"]
    );

    // Run again: the webhook with our URL is found and named; no create.
    let again = run_listen(&config, &danube, &["--public-url", PUBLIC]);
    assert_exit(&again, 2);
    assert_contains(&stderr(&again), &format!("webhooks delete {id}"));
    assert_eq!(at(&danube, URL).len(), 1);
    assert_eq!(danube.seen_of("POST", "/v1/webhooks").len(), 1);
}

#[test]
fn ngrok_discovery_picks_the_https_tunnel_to_this_port() {
    let port = closed_port().port();
    let tunnels = serde_json::json!({
        "tunnels": [
            {"name": "other", "public_url": "https://other.ngrok.app", "proto": "https",
             "config": {"addr": "http://localhost:3000", "inspect": true}},
            {"name": "plain", "public_url": "http://plain.ngrok.app", "proto": "http",
             "config": {"addr": format!("http://localhost:{port}"), "inspect": true}},
            {"name": "ours", "public_url": "https://ours.ngrok.app", "proto": "https",
             "config": {"addr": format!("localhost:{port}"), "inspect": true}}
        ],
        "uri": "/api/tunnels"
    });
    let ngrok = Capture::answering(&json_answer(&tunnels.to_string()));
    let danube = FakeDanube::start();
    let config = TempDir::new("register-ngrok");
    let danube_url = danube.url();
    let ngrok_api = format!("http://{}", ngrok.addr);
    let closed = closed_port().to_string();
    let mut listener = Listener::start_on(
        danube_hooks(&config),
        port,
        &register_args(
            &danube_url,
            &[
                "--ngrok-api",
                &ngrok_api,
                "--cloudflared-metrics",
                &closed,
                "--path",
                "/hooks/danube",
            ],
        ),
    );
    assert_asked_once(&ngrok, "GET /api/tunnels HTTP/1.1");
    let all = danube.webhooks();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["url"], "https://ours.ngrok.app/hooks/danube");
    assert!(
        listener.banner.contains("ngrok (tunnel \"ours\""),
        "{}",
        listener.banner
    );
    stop(&mut listener);
}

#[test]
fn cloudflared_discovery_reads_the_quick_tunnel() {
    let cloudflared = Capture::answering(&json_answer(
        r#"{"hostname":"tall-river-1234.trycloudflare.com"}"#,
    ));
    let danube = FakeDanube::start();
    let config = TempDir::new("register-cloudflared");
    let ngrok_api = format!("http://{}", closed_port());
    let metrics = cloudflared.addr.to_string();
    let mut listener = start(
        &config,
        &danube,
        &["--ngrok-api", &ngrok_api, "--cloudflared-metrics", &metrics],
    );
    assert_asked_once(&cloudflared, "GET /quicktunnel HTTP/1.1");
    let all = danube.webhooks();
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0]["url"],
        "https://tall-river-1234.trycloudflare.com/webhooks/danube"
    );
    assert!(
        listener.banner.contains("cloudflared quick tunnel"),
        "{}",
        listener.banner
    );
    stop(&mut listener);
}

#[test]
fn no_tunnel_running_names_the_three_ways() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-no-tunnel");
    let ngrok_api = format!("http://{}", closed_port());
    let metrics = closed_port().to_string();
    let output = run_listen(
        &config,
        &danube,
        &["--ngrok-api", &ngrok_api, "--cloudflared-metrics", &metrics],
    );
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("no public https:// URL to register"), "{err}");
    assert!(err.contains("--public-url https://"), "{err}");
    assert!(err.contains("ngrok http "), "{err}");
    assert!(
        err.contains("cloudflared tunnel --url http://localhost:"),
        "{err}"
    );
    assert!(err.contains(&ngrok_api) && err.contains(&metrics), "{err}");
    assert!(
        danube.seen().is_empty(),
        "Danube was asked before a URL was found"
    );
}

#[test]
fn register_flags_without_register_are_refused() {
    let output = common::run(&["listen", "--port", "0", "--unregister"], b"");
    assert_exit(&output, 2);
    assert_contains(&stderr(&output), "--register");
}

#[test]
fn an_error_after_registering_still_pauses_the_webhook() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-error");
    // A store that cannot be opened (a directory) fails the start after
    // the webhook was made.
    let url = danube.url();
    let store = config.0.to_str().unwrap().to_owned();
    let mut cmd = danube_hooks(&config);
    cmd.args([
        "listen",
        "--port",
        "0",
        "--json",
        "--store",
        &store,
        "--register",
        "--api-url",
        &url,
        "--public-url",
        PUBLIC,
    ]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 2);
    let made = at(&danube, URL);
    assert_eq!(made.len(), 1);
    let id = made[0]["id"].as_str().unwrap();
    assert_contains(&stderr(&output), &format!("paused Danube webhook {id}"));
    assert_eq!(made[0]["is_active"], false);
}

#[test]
fn a_webhook_made_by_webhooks_create_for_this_url_is_used_but_never_paused() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-adopt");
    let (id, secret) = danube.add_webhook(URL, &["workflow.completed"]);
    // As `webhooks create --save` keeps it.
    let saved = serde_json::json!([{
        "id": id, "api_url": danube.url(), "url": URL, "events": ["workflow.completed"],
        "secret": secret, "origin": "create", "saved_at": "2026-11-30T16:00:00Z"
    }]);
    std::fs::create_dir_all(config.join("danube-hooks")).unwrap();
    std::fs::write(
        config.join("danube-hooks").join("webhooks.json"),
        saved.to_string(),
    )
    .unwrap();
    let mut listener = start(&config, &danube, &["--public-url", PUBLIC]);
    assert!(
        listener.banner.contains("left as it is on exit"),
        "{}",
        listener.banner
    );
    assert_verifies(&listener, &secret);
    let said = stop(&mut listener);
    assert!(
        said.contains(&format!("left Danube webhook {id} as it is")),
        "{said}"
    );
    for method in ["POST", "PATCH", "DELETE"] {
        assert!(
            danube.seen_of(method, "/v1/webhooks").is_empty(),
            "{method}"
        );
    }
    assert_eq!(at(&danube, URL)[0]["is_active"], true);
}

/// An `http://` public URL is the API's to judge when the API is on this
/// machine (a local Danube such as `emulate --allow-http` takes it): sent,
/// and Danube's 422 told. Against Danube's own (https) API it is refused
/// before anything is sent.
#[test]
fn an_http_public_url_is_left_to_a_local_danube_and_refused_for_danube() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-http-public");
    let output = run_listen(&config, &danube, &["--public-url", "http://127.0.0.1:4000"]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("url must start with https://"), "{err}");
    assert_eq!(danube.seen_of("POST", "/v1/webhooks").len(), 1, "{err}");
    assert!(danube.webhooks().is_empty());

    let mut cmd = danube_hooks(&config);
    cmd.args([
        "listen",
        "--port",
        "0",
        "--json",
        "--no-store",
        "--register",
    ])
    .args(["--api-url", "https://api.danubeai.invalid"])
    .args(["--public-url", "http://127.0.0.1:4000"]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("Danube posts only to https:// URLs"), "{err}");
}
