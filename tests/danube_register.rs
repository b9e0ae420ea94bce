//! `listen --register` black-box, against the fake Danube API
//! (`common::fake_danube`) and fake ngrok and cloudflared agents on
//! loopback: the webhook is created (and its secret verifies at once),
//! reused across restarts with another public URL (PATCH, same secret, no
//! second create), paused on exit (or left on, or deleted), a webhook
//! danube-hooks did not create is never touched, a timed-out create is
//! never made twice, and the public URL is found through ngrok or
//! cloudflared, or the error names the three ways.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::time::Duration;

use common::fake_danube::{self, FakeDanube, Fault, KEY, register_args};
use common::tunnel::{FakeTunnels, alive, ends_within};
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
    // Danube's answer never came: its failure (SPEC §2).
    assert_exit(&output, 3);
    let made = at(&danube, URL);
    assert_eq!(made.len(), 1);
    let id = made[0]["id"].as_str().unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("did not answer the create within 1 s"),
        "{err}"
    );
    assert!(err.contains(&format!("webhooks delete {id}")), "{err}");
    // It looked (a list after the create), made nothing more, and paused
    // the one it made: active, with a secret nobody has, it would post
    // deliveries that can never verify.
    assert!(
        err.contains(&format!("paused Danube webhook {id}")),
        "{err}"
    );
    assert_eq!(at(&danube, URL)[0]["is_active"], false);
    assert_eq!(danube.seen_of("POST", "/v1/webhooks").len(), 1);

    // Run again: the webhook with our URL is found and named; no create.
    let again = run_listen(&config, &danube, &["--public-url", PUBLIC]);
    // A webhook danube-hooks must not change: the user decides, usage.
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
fn a_store_that_cannot_be_opened_registers_nothing() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-error");
    // A store that cannot be opened (a directory) stops the start before
    // anything is asked of Danube.
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
        "--no-verify-url",
        "--api-url",
        &url,
        "--public-url",
        PUBLIC,
    ]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 2);
    assert!(danube.seen().is_empty(), "{:?}", danube.seen());
}

/// A panic once listening (asked for through the debug build's
/// `DANUBE_HOOKS_TEST_PANIC`) still pauses the webhook and ends the tunnel.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "DANUBE_HOOKS_TEST_PANIC exists in debug builds only"
)]
fn a_panic_after_registering_still_pauses_the_webhook_and_ends_the_tunnel() {
    let danube = FakeDanube::start();
    let tunnels = FakeTunnels::new("panic");
    let config = TempDir::new("register-panic");
    let url = danube.url();
    let ca = tunnels.ca();
    let mut cmd = danube_hooks(&config);
    tunnels.put_on_path(&mut cmd);
    cmd.env("DANUBE_HOOKS_TEST_PANIC", "1").args([
        "listen",
        "--port",
        "0",
        "--json",
        "--no-store",
        "--tunnel",
        "cloudflared",
        "--cacert",
        &ca,
        "--api-url",
        &url,
    ]);
    let output = run_command(&mut cmd, b"");
    assert_eq!(output.status.code(), Some(101), "{}", stderr(&output));
    let err = stderr(&output);
    assert_contains(&err, "panicking as asked");
    let made = danube.webhooks();
    assert_eq!(made.len(), 1, "{err}");
    assert_eq!(made[0]["is_active"], false, "{err}");
    let pid = tunnels.pids("cloudflared")[0];
    assert!(
        ends_within(pid, Duration::from_secs(5)),
        "cloudflared outlived the panic"
    );
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

// ---- `listen --tunnel`: the tunnel started, proved, registered, kept.

/// The binary with the stand-ins first on PATH, and a Danube credential
/// when `danube` is given.
fn tunnel_command(config: &TempDir, tunnels: &FakeTunnels, danube: Option<&FakeDanube>) -> Command {
    let mut cmd = match danube {
        Some(_) => danube_hooks(config),
        None => common::command_with_config(&config.0),
    };
    tunnels.put_on_path(&mut cmd);
    cmd
}

/// `--tunnel PROGRAM --cacert CA [--api-url URL]`.
fn tunnel_args(tunnels: &FakeTunnels, program: &str, danube: Option<&FakeDanube>) -> Vec<String> {
    let mut args: Vec<String> = ["--tunnel", program, "--cacert", &tunnels.ca()]
        .map(str::to_owned)
        .to_vec();
    if let Some(danube) = danube {
        args.extend(["--api-url".to_owned(), danube.url()]);
    }
    args
}

/// Start `listen --json --no-store --tunnel PROGRAM …`, then `extra`.
fn start_tunnel(
    config: &TempDir,
    tunnels: &FakeTunnels,
    program: &str,
    danube: Option<&FakeDanube>,
    extra: &[&str],
) -> Listener {
    let tunnel = tunnel_args(tunnels, program, danube);
    let mut args = vec!["--json", "--no-store"];
    args.extend(tunnel.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Listener::start_with(tunnel_command(config, tunnels, danube), &args)
}

/// The `https://localhost:PORT` a stand-in's start gave, from the banner.
fn public_origin_in(text: &str) -> String {
    let start = text.find("https://localhost:").expect("a public URL");
    text[start..]
        .split(|c: char| c != ':' && c != '/' && !c.is_ascii_alphanumeric() && c != '.')
        .next()
        .unwrap()
        .to_owned()
}

/// A delivery signed with `secret`, sent as Danube sends it: through the
/// tunnel's public https side.
fn deliver_through(tunnels: &FakeTunnels, url: &str, secret: &str) -> Output {
    let mut cmd = common::command();
    cmd.args([
        "trigger",
        "workflow.completed",
        "--to",
        url,
        "--secret",
        secret,
        "--attempts",
        "1",
        "--cacert",
        &tunnels.ca(),
    ]);
    run_command(&mut cmd, b"")
}

#[test]
fn tunnel_starts_proves_registers_and_a_delivery_through_it_verifies() {
    for program in ["cloudflared", "ngrok"] {
        let danube = FakeDanube::start();
        let tunnels = FakeTunnels::new(program);
        let config = TempDir::new("tunnel-register");
        let mut listener = start_tunnel(&config, &tunnels, program, Some(&danube), &[]);
        let banner = listener.banner.clone();

        // Its own control address on a loopback port, never the default
        // ones a tunnel the user runs would hold; none of Danube's key or
        // secrets in its environment.
        let argv = tunnels.argv(program);
        let env = std::fs::read_to_string(tunnels.dir.join(&format!("{program}.env"))).unwrap();
        assert_eq!(env, "", "the tunnel program saw {env}");
        let local = format!("http://{}", listener.addr);
        if program == "cloudflared" {
            assert_eq!(&argv[..2], ["tunnel", "--no-autoupdate"], "{argv:?}");
            let metrics = &argv[argv.iter().position(|a| a == "--metrics").unwrap() + 1];
            assert!(metrics.starts_with("127.0.0.1:"), "{argv:?}");
            assert!(!metrics.ends_with(":20241"), "{argv:?}");
            assert!(argv.windows(2).any(|w| w == ["--url", &local]), "{argv:?}");
        } else {
            assert_eq!(&argv[..2], ["http", &local], "{argv:?}");
            assert!(argv.windows(2).any(|w| w == ["--log", "stdout"]));
            assert!(argv.windows(2).any(|w| w == ["--log-format", "json"]));
            assert!(argv.iter().any(|a| a == "--config"), "{argv:?}");
        }
        // Progress and proof, then the banner naming tunnel and webhook.
        let public = public_origin_in(&banner);
        assert_contains(&banner, &format!("{program} (pid "));
        assert_contains(&banner, &format!("{public} reaches this listener"));
        assert_contains(&banner, &format!("tunnel:   {program} {public}"));
        let url = format!("{public}/webhooks/danube");
        let made = at(&danube, &url);
        assert_eq!(
            made.len(),
            1,
            "{program}: {:?}\n{banner}",
            danube.webhooks()
        );
        let secret = made[0]["secret"].as_str().unwrap().to_owned();
        assert_contains(
            &banner,
            &format!("webhook {} → {url}", made[0]["id"].as_str().unwrap()),
        );
        assert!(!banner.contains(&secret), "the secret was printed whole");

        // A real delivery through the public side verifies; the probe was
        // never recorded.
        let sent = deliver_through(&tunnels, &url, &secret);
        assert_exit(&sent, 0);
        let record = listener.next_record();
        assert_eq!(record["path"], "/webhooks/danube", "{record}");
        assert_eq!(record["signature"]["verdict"], "valid", "{record}");

        let pid = tunnels.pids(program)[0];
        assert!(alive(pid));
        let said = stop(&mut listener);
        assert_contains(&said, "paused Danube webhook");
        assert!(
            ends_within(pid, Duration::from_secs(5)),
            "{program} outlived SIGTERM"
        );
        assert_eq!(at(&danube, &url)[0]["is_active"], false);
    }
}

/// Another local user can read the program's metrics or API port from its
/// command line and answer there first; the URL is taken from what the
/// program itself prints, so whatever is served there chooses nothing.
#[test]
fn the_url_is_what_the_program_prints_not_what_its_port_serves() {
    for program in ["cloudflared", "ngrok"] {
        let danube = FakeDanube::start();
        let tunnels = FakeTunnels::new("served-host");
        tunnels.knob("served-host", Some("evil.example"));
        let config = TempDir::new("tunnel-served-host");
        let mut listener = start_tunnel(&config, &tunnels, program, Some(&danube), &[]);
        let public = public_origin_in(&listener.banner);
        let all = danube.webhooks();
        assert_eq!(all.len(), 1, "{program}");
        assert_eq!(
            all[0]["url"],
            format!("{public}/webhooks/danube"),
            "{program}"
        );
        assert!(
            !listener.banner.contains("evil.example"),
            "{}",
            listener.banner
        );
        stop(&mut listener);
    }
}

#[test]
fn a_tunnel_that_starts_again_with_a_new_url_gets_the_webhook_re_pointed() {
    let danube = FakeDanube::start();
    let tunnels = FakeTunnels::new("restart");
    let config = TempDir::new("tunnel-restart");
    let mut listener = start_tunnel(&config, &tunnels, "cloudflared", Some(&danube), &[]);
    let first = public_origin_in(&listener.banner);
    let webhook = danube.webhooks()[0].clone();
    let secret = webhook["secret"].as_str().unwrap().to_owned();

    // The tunnel dies; it is started again (quick tunnels get a new name).
    let pids = tunnels.wait_starts("cloudflared", 1, Duration::from_secs(5));
    common::tunnel::kill(pids[0], "KILL");
    let pids = tunnels.wait_starts("cloudflared", 2, Duration::from_secs(10));
    let said = wait_for_stderr(&listener, "re-pointed", Duration::from_secs(30));
    assert_contains(&said, "cloudflared stopped: it ended");
    assert_contains(&said, "starting it again in 1 s");
    let now = danube.webhooks();
    assert_eq!(now.len(), 1, "no second webhook: {now:?}");
    let second = now[0]["url"]
        .as_str()
        .unwrap()
        .trim_end_matches("/webhooks/danube")
        .to_owned();
    assert_ne!(second, first);
    assert_contains(
        &said,
        &format!(
            "re-pointed Danube webhook {} to {second}/webhooks/danube",
            webhook["id"].as_str().unwrap()
        ),
    );
    let patches = danube.seen_of(
        "PATCH",
        &format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap()),
    );
    assert_eq!(
        patches.last().unwrap().json(),
        serde_json::json!({ "url": format!("{second}/webhooks/danube") })
    );
    // The same secret, through the new URL.
    assert_exit(
        &deliver_through(&tunnels, &format!("{second}/webhooks/danube"), &secret),
        0,
    );
    assert_eq!(listener.next_record()["signature"]["verdict"], "valid");
    stop(&mut listener);
    assert!(ends_within(pids[1], Duration::from_secs(5)));
}

/// Stopped while a re-point is under way (Danube applied it, its answer
/// has not come): the webhook, now at the new URL, is still this run's and
/// is paused, not taken for another listener's and left active.
#[test]
fn stopping_during_a_re_point_still_pauses_the_webhook() {
    let danube = FakeDanube::start();
    let tunnels = FakeTunnels::new("repoint-stop");
    let config = TempDir::new("tunnel-repoint-stop");
    let mut listener = start_tunnel(&config, &tunnels, "cloudflared", Some(&danube), &[]);
    let id = danube.webhooks()[0]["id"].as_str().unwrap().to_owned();
    let patch = format!("/v1/webhooks/{id}");
    danube.fail_next(
        "PATCH",
        &patch,
        Fault::ApplyThenStall(Duration::from_secs(20)),
    );
    let pids = tunnels.wait_starts("cloudflared", 1, Duration::from_secs(5));
    common::tunnel::kill(pids[0], "KILL");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while danube.seen_of("PATCH", &patch).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no re-point was sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = stop(&mut listener);
    assert_contains(&said, &format!("paused Danube webhook {id}"));
    let webhook = danube.webhooks()[0].clone();
    assert_eq!(webhook["is_active"], false, "{said}");
    assert_ne!(
        webhook["url"],
        format!("{}/webhooks/danube", public_origin_in(&listener.banner))
    );
}

/// Stderr lines after the banner until one contains `needle`.
fn wait_for_stderr(listener: &Listener, needle: &str, wait: Duration) -> String {
    let deadline = std::time::Instant::now() + wait;
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(line) = listener
            .stderr_lines
            .recv_timeout(Duration::from_millis(100))
        {
            text.push_str(&line);
            text.push('\n');
            if line.contains(needle) {
                return text;
            }
        }
    }
    panic!("no {needle:?} on stderr within {wait:?}:\n{text}");
}

#[test]
fn the_tunnel_never_outlives_the_listener() {
    // SIGINT and SIGTERM end it in order; `kill -9` of the listener takes
    // it along by the parent-death signal. (The panic has its own test,
    // `q` the dashboard's.)
    for signal in ["INT", "TERM", "KILL"] {
        let tunnels = FakeTunnels::new("orphan");
        let config = TempDir::new("tunnel-orphan");
        let mut listener = start_tunnel(&config, &tunnels, "ngrok", None, &[]);
        let pid = tunnels.wait_starts("ngrok", 1, Duration::from_secs(5))[0];
        assert!(alive(pid));
        let code = listener.signal_and_wait(signal);
        if signal != "KILL" {
            assert_eq!(code, Some(0), "SIG{signal}");
        }
        assert!(
            ends_within(pid, Duration::from_secs(5)),
            "ngrok outlived SIG{signal} of the listener"
        );
    }
}

#[test]
fn without_a_credential_the_tunnel_opens_and_says_how_to_register() {
    let tunnels = FakeTunnels::new("no-credential");
    let config = TempDir::new("tunnel-no-credential");
    let mut listener = start_tunnel(&config, &tunnels, "cloudflared", None, &[]);
    let banner = listener.banner.clone();
    let public = public_origin_in(&banner);
    assert_contains(&banner, "not registered (no Danube credential)");
    assert_contains(&banner, &format!("paste {public}/webhooks/danube"));
    assert_contains(&banner, "danube-hooks login");
    // The URL works: an unsigned delivery arrives through it.
    let sent = deliver_through(
        &tunnels,
        &format!("{public}/hooks"),
        "whsec_anything12345678",
    );
    assert_exit(&sent, 0);
    assert_eq!(listener.next_record()["path"], "/hooks");
    stop(&mut listener);

    // --no-register with a credential: nothing is asked of Danube.
    let danube = FakeDanube::start();
    let mut listener = start_tunnel(
        &config,
        &tunnels,
        "cloudflared",
        Some(&danube),
        &["--no-register"],
    );
    assert_contains(&listener.banner, "not registered (--no-register)");
    stop(&mut listener);
    assert!(danube.seen().is_empty(), "{:?}", danube.seen());
}

#[test]
fn a_tunnel_program_not_installed_is_named_with_how_to_install_it() {
    let config = TempDir::new("tunnel-missing");
    let empty = TempDir::new("tunnel-empty-path");
    for (program, hint) in [
        ("cloudflared", "developers.cloudflare.com"),
        ("ngrok", "ngrok.com/download"),
    ] {
        let mut cmd = common::command_with_config(&config.0);
        cmd.env("PATH", &empty.0).args([
            "listen",
            "--port",
            "0",
            "--no-store",
            "--tunnel",
            program,
        ]);
        let output = run_command(&mut cmd, b"");
        assert_exit(&output, 2);
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_contains(&err, &format!("{program} is not installed"));
        assert_contains(&err, hint);
    }
    let mut cmd = common::command_with_config(&config.0);
    cmd.args(["listen", "--port", "0", "--tunnel", "localtunnel"]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 2);
    assert_contains(&stderr(&output), "cloudflared, ngrok");
}

#[test]
fn a_tunnel_that_gives_no_url_is_given_up_with_its_last_lines_and_what_to_try() {
    let tunnels = FakeTunnels::new("no-url");
    let config = TempDir::new("tunnel-no-url");
    // It runs, but never gives a URL: given up after --tunnel-timeout.
    tunnels.knob("no-url", Some("1"));
    let mut cmd = tunnel_command(&config, &tunnels, None);
    cmd.args([
        "listen",
        "--port",
        "0",
        "--no-store",
        "--tunnel-timeout",
        "2s",
    ])
    .args(tunnel_args(&tunnels, "cloudflared", None));
    let started = std::time::Instant::now();
    let output = run_command(&mut cmd, b"");
    assert_ne!(output.status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&output);
    assert_contains(
        &err,
        "cloudflared gave no public URL: it gave no public URL within 2 s",
    );
    assert_contains(&err, "its last lines:");
    assert_contains(&err, "Requesting new quick Tunnel on trycloudflare.com");
    assert_contains(&err, "what to try:");
    let pid = tunnels.pids("cloudflared")[0];
    assert!(ends_within(pid, Duration::from_secs(5)));

    // It fails at once: its error is shown, and it is not started again.
    tunnels.knob("no-url", None);
    tunnels.knob(
        "fail",
        Some("ERR_NGROK_4018: authentication failed: \u{1b}[31musage requires an authtoken"),
    );
    let mut cmd = tunnel_command(&config, &tunnels, None);
    cmd.args(["listen", "--port", "0", "--no-store"])
        .args(tunnel_args(&tunnels, "ngrok", None));
    let output = run_command(&mut cmd, b"");
    assert_ne!(output.status.code(), Some(0));
    let err = stderr(&output);
    assert_contains(&err, "ngrok gave no public URL: it ended (exit status: 1)");
    assert_contains(&err, "ERR_NGROK_4018");
    assert!(
        !err.contains('\u{1b}'),
        "the program's output reached the terminal raw: {err}"
    );
    assert_contains(&err, "ngrok config add-authtoken");
    assert_eq!(
        tunnels.pids("ngrok").len(),
        1,
        "a first start that fails is not retried"
    );
}

/// The hole `--register` had: a squatter on ngrok's agent port (or any
/// discovered URL) chose the URL registered. Now a URL that does not reach
/// this listener is never registered.
#[test]
fn a_url_that_does_not_reach_this_listener_is_never_registered() {
    // A "tunnel" whose public side answers 200 itself and forwards nothing.
    let squatter = Capture::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let danube = FakeDanube::start();
    let config = TempDir::new("register-unreached");
    let url = danube.url();
    // An http API is a local Danube, which may take an http URL: the URL
    // can point at the squatter without TLS in the way.
    let public = format!("http://{}", squatter.addr);
    let mut cmd = danube_hooks(&config);
    cmd.env("DANUBE_HOOKS_REACH_WINDOW_MS", "2000").args([
        "listen",
        "--port",
        "0",
        "--json",
        "--no-store",
        "--register",
        "--api-url",
        &url,
        "--public-url",
        &public,
    ]);
    let output = run_command(&mut cmd, b"");
    assert_ne!(output.status.code(), Some(0));
    let err = stderr(&output);
    assert_contains(
        &err,
        "does not reach this listener, so nothing was registered",
    );
    assert_contains(&err, "answered 200 but the probe never arrived here");
    assert_contains(&err, "--no-verify-url");
    assert!(
        danube.seen_of("POST", "/v1/webhooks").is_empty()
            && danube.seen_of("PATCH", "/").is_empty(),
        "{:?}",
        danube.seen()
    );
    assert!(squatter.connections() > 0, "the probe went to the URL");
    // (A URL that does reach it passes: tests/emulate_loop.rs registers
    // the listener's own http:// URL with a local Danube, proved.)
}

/// A `--secret` of another webhook (`DANUBE_WEBHOOK_SECRET` from the shell)
/// does not make every delivery of the registered webhook a "rotation":
/// the registered webhook's secret is the first one.
#[test]
fn the_registered_webhooks_secret_comes_first() {
    let danube = FakeDanube::start();
    let config = TempDir::new("register-first");
    let url = danube.url();
    let mut cmd = danube_hooks(&config);
    cmd.env(
        "DANUBE_WEBHOOK_SECRET",
        "whsec_anotherWebhooksSecret0000000",
    );
    let mut listener = Listener::start_with(cmd, &register_args(&url, &["--public-url", PUBLIC]));
    let secret = at(&danube, URL)[0]["secret"].as_str().unwrap().to_owned();
    let reply = signed_post(
        listener.addr,
        &secret,
        now(),
        &common::event_body("workflow.completed", 1),
    );
    assert_eq!(reply.status(), 200);
    let record = listener.next_record();
    assert_eq!(record["signature"]["verdict"], "valid");
    assert_eq!(
        record["signature"]["secret"],
        format!("whsec_…{}", &secret[secret.len() - 4..])
    );
    let hints = record["signature"]["hints"].to_string();
    assert!(!hints.contains("not the first one"), "{hints}");
    // The banner lists it first too.
    let secrets_line = listener
        .banner
        .lines()
        .find(|l| l.contains("secrets:"))
        .unwrap()
        .to_owned();
    assert!(
        secrets_line.find(&secret[secret.len() - 4..]).unwrap()
            < secrets_line.find("0000").unwrap(),
        "{secrets_line}"
    );
    stop(&mut listener);
}
