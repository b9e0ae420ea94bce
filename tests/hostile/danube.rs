//! Danube's side, attacked: a hostile answer from Danube's API or
//! from whatever listens where the ngrok agent and cloudflared's metrics
//! are looked for (another local user can run a fake agent on
//! 127.0.0.1:4040), and a careless user running `--register` twice.
//! Each test asserts what must not happen.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_danube::{FakeDanube, Fault, KEY, danube_hooks, register_args};
use crate::common::{
    Listener, TempDir, assert_exit, closed_port, read_request, run_command, stderr, stdout,
};

/// Run `cmd` to its end, or kill it after `wait`: a run that should have
/// refused but serves on (as it would before a fix) fails its test rather
/// than hanging it.
fn run_within(cmd: &mut Command, wait: Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + wait;
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// A fake agent that answers every request with 200 and `body`.
fn agent(body: String) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in socket.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = read_request(&mut stream, Duration::from_secs(5));
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// No raw control character (ESC, BEL, CR…) and no bidi override in `text`.
fn assert_terminal_safe(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202A}'..='\u{202E}').contains(&c))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} reached the terminal raw ({bad:?}):\n{text}"
    );
}

/// `listen --register` through a hostile ngrok agent (and no cloudflared):
/// it must not register, and must say so in a short, safe message.
fn register_through_ngrok(name: &str, port: u16, tunnels: &Value) -> (Output, FakeDanube) {
    let ngrok = agent(tunnels.to_string());
    let danube = FakeDanube::start();
    let config = TempDir::new(name);
    let url = danube.url();
    let mut cmd = danube_hooks(&config.0);
    cmd.args(["listen", "--port", &port.to_string()])
        .args(register_args(&url, &[]))
        .args(["--ngrok-api", &format!("http://{ngrok}")])
        .args(["--cloudflared-metrics", &closed_port().to_string()]);
    (run_command(&mut cmd, b""), danube)
}

#[test]
fn a_fake_ngrok_agent_cannot_choose_a_userinfo_path_or_control_url() {
    let port = closed_port().port();
    let addr = format!("http://localhost:{port}");
    for (why, public_url) in [
        (
            "userinfo",
            "https://abc.ngrok.app@attacker.example".to_owned(),
        ),
        ("path", "https://abc.ngrok.app/steal?x=1".to_owned()),
        ("plain http", "http://abc.ngrok.app".to_owned()),
        (
            "control chars",
            "https://abc\u{1b}]0;pwned\u{7}.ngrok.app".to_owned(),
        ),
        (
            "huge",
            format!(
                "https://{}.ngrok.app/{}",
                "a".repeat(60),
                "\u{1b}[2J".repeat(40_000)
            ),
        ),
    ] {
        let tunnels = json!({"tunnels": [{
            "name": "evil\u{1b}[31m", "public_url": public_url, "proto": "https",
            "config": {"addr": addr}
        }]});
        let (output, danube) = register_through_ngrok("hostile-ngrok", port, &tunnels);
        assert_exit(&output, 2);
        assert!(
            danube.seen().is_empty(),
            "{why}: Danube was asked with the agent's URL {public_url:?}"
        );
        let err = stderr(&output);
        assert_terminal_safe(&err, why);
        assert!(
            err.len() < 8 * 1024,
            "{why}: the agent's answer was quoted whole ({} bytes of error)",
            err.len()
        );
    }
}

#[test]
fn a_fake_cloudflared_cannot_add_a_path_port_or_user() {
    for hostname in [
        "evil.example/x",
        "evil.example:22",
        "user@evil.example",
        "evil.example\u{1b}[2J",
        "",
    ] {
        let metrics = agent(json!({ "hostname": hostname }).to_string());
        let danube = FakeDanube::start();
        let config = TempDir::new("hostile-cloudflared");
        let mut cmd = danube_hooks(&config.0);
        let url = danube.url();
        cmd.args(["listen", "--port", "0"])
            .args(register_args(&url, &[]))
            .args(["--ngrok-api", &format!("http://{}", closed_port())])
            .args(["--cloudflared-metrics", &metrics.to_string()]);
        let output = run_command(&mut cmd, b"");
        assert_exit(&output, 2);
        assert!(danube.seen().is_empty(), "registered {hostname:?}");
        assert_terminal_safe(&stderr(&output), hostname);
    }
}

#[test]
fn hostile_webhook_fields_and_errors_reach_the_terminal_escaped() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-api-text");
    let (id, secret) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["workflow.completed"],
    );
    danube.edit_webhook(
        &id,
        &json!({
            "description": "\u{1b}]52;c;cHduZWQ=\u{7}\u{202e}gnp.exe",
            "url": "https://abc.ngrok.app/\u{1b}[2J",
            "events": ["workflow.completed\r\u{1b}[1A"],
            "secret": secret,
        }),
    );
    let mut cmd = danube_hooks(&config.0);
    cmd.args(["webhooks", "list", "--api-url", &danube.url()]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 0);
    assert_terminal_safe(&stdout(&output), "webhooks list");
    assert!(!stdout(&output).contains(&secret), "{}", stdout(&output));
    // --json: serde escapes controls; a secret the API should not list is
    // not passed on.
    let mut cmd = danube_hooks(&config.0);
    cmd.args(["webhooks", "list", "--json", "--api-url", &danube.url()]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 0);
    assert_terminal_safe(&stdout(&output), "webhooks list --json");
    assert!(!stdout(&output).contains(&secret), "{}", stdout(&output));

    // An error body written to hurt, on every status.
    for status in [401, 404, 422, 429, 500, 418] {
        danube.fail_next(
            "GET",
            "/v1/webhooks",
            Fault::Status {
                status,
                body: json!({"error": {"code": "x\u{1b}[31m", "message": format!("{}\u{1b}]0;t\u{7}", "m".repeat(100_000)), "details": {"upgrade_url": "\u{1b}[2J"}}}).to_string(),
                retry_after: Some(1),
            },
        );
        let mut cmd = danube_hooks(&config.0);
        cmd.args(["webhooks", "list", "--api-url", &danube.url()]);
        let output = run_command(&mut cmd, b"");
        assert_ne!(output.status.code(), Some(0), "{status}");
        let err = stderr(&output);
        assert_terminal_safe(&err, &format!("the {status} answer"));
        assert!(
            err.len() < 4 * 1024,
            "{status}: {} bytes of error",
            err.len()
        );
        assert!(
            !err.contains(KEY),
            "{status}: the key was printed whole: {err}"
        );
    }
}

#[test]
fn danube_log_text_reaches_the_terminal_escaped() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-log");
    let (id, _) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["workflow.completed"],
    );
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{202e}";
    let records: Vec<Value> = (0..100)
        .map(|n| {
            json!({
                "id": format!("del_{n}{evil}"),
                "webhook_id": id,
                "event_type": format!("workflow.completed{evil}"),
                "payload": {"event": format!("workflow.completed{evil}"), "timestamp": format!("2026-11-30T16:00:00.{n:06}Z{evil}"), "data": {"x": "y".repeat(50_000)}},
                "status": format!("failed{evil}"),
                "response_status": 502,
                "response_body": format!("{evil}{}", "b".repeat(1990)),
                "attempts": 3,
                "delivered_at": format!("2026-11-30T16:00:01Z{evil}"),
                "created_at": format!("2026-11-30T16:00:00Z{evil}"),
            })
        })
        .collect();
    danube.set_deliveries(&id, records);
    let store = config.join("empty.jsonl");
    std::fs::write(&store, b"").unwrap();
    for json_flag in [false, true] {
        let mut cmd = danube_hooks(&config.0);
        cmd.args([
            "deliveries",
            &id,
            "--limit",
            "100",
            "--api-url",
            &danube.url(),
        ])
        .args(["--store", store.to_str().unwrap()]);
        if json_flag {
            cmd.arg("--json");
        }
        let output = run_command(&mut cmd, b"");
        assert_exit(&output, 0);
        assert_terminal_safe(&stdout(&output), "deliveries");
        assert_terminal_safe(&stderr(&output), "deliveries' stderr");
    }
}

/// Two `listen --register` runs at once (two tunnels, one config): the
/// second re-points the saved webhook to its tunnel; the first, on its
/// way out, must not pause (or delete) the webhook the second now uses.
#[test]
fn the_first_of_two_runs_does_not_pause_the_webhook_the_second_took_over() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-two-runs");
    let start = |public: &str, extra: &[&str]| {
        let url = danube.url();
        let mut args = vec!["--public-url", public];
        args.extend_from_slice(extra);
        Listener::start_with(danube_hooks(&config.0), &register_args(&url, &args))
    };
    let mut first = start("https://first.ngrok.app", &[]);
    let id = danube.webhooks()[0]["id"].as_str().unwrap().to_owned();
    let mut second = start("https://second.ngrok.app", &[]);
    assert_eq!(danube.webhooks().len(), 1);
    assert_eq!(
        danube.webhooks()[0]["url"],
        "https://second.ngrok.app/webhooks/danube"
    );

    assert_eq!(first.signal_and_wait("TERM"), Some(0));
    let said = first.stderr_so_far();
    let webhook = &danube.webhooks()[0];
    assert_eq!(
        (webhook["is_active"].clone(), webhook["url"].clone()),
        (
            json!(true),
            json!("https://second.ngrok.app/webhooks/danube")
        ),
        "the first run paused the webhook the second one posts to; it said:\n{said}"
    );
    assert_terminal_safe(&said, "the first run's exit");

    // The second still pauses it on its own way out.
    assert_eq!(second.signal_and_wait("INT"), Some(0));
    assert_eq!(danube.webhooks()[0]["is_active"], false);
    assert_eq!(danube.webhooks()[0]["id"], id.as_str());

    // And --unregister by a run that lost the webhook does not delete it.
    let mut third = start("https://third.ngrok.app", &["--unregister"]);
    let mut fourth = start("https://fourth.ngrok.app", &[]);
    assert_eq!(third.signal_and_wait("TERM"), Some(0));
    assert_eq!(
        danube.webhooks().len(),
        1,
        "the third run deleted the webhook the fourth uses"
    );
    assert_eq!(danube.webhooks()[0]["is_active"], true);
    assert_eq!(fourth.signal_and_wait("TERM"), Some(0));
}

/// A careless user starts `--register` against an API that does not
/// answer, and presses Ctrl-C: nothing has been asked of Danube yet but a
/// list, so the run stops at once, and creates nothing afterwards.
#[test]
fn ctrl_c_while_danube_stalls_the_list_stops_at_once_and_creates_nothing() {
    let danube = FakeDanube::start();
    danube.fail_next("GET", "/v1/webhooks", Fault::Stall(Duration::from_secs(20)));
    let config = TempDir::new("hostile-stalled-list");
    let url = danube.url();
    let mut child = danube_hooks(&config.0)
        .args(["listen", "--port", "0"])
        .args(register_args(
            &url,
            &["--public-url", "https://abc.ngrok.app"],
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while danube.seen_of("GET", "/v1/webhooks").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "Danube was never asked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Ctrl-C was ignored while Danube stalled the list");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        danube.seen_of("POST", "/v1/webhooks").is_empty(),
        "a webhook was created after Ctrl-C: {err}"
    );
    assert!(danube.webhooks().is_empty());
    assert!(err.contains("nothing was registered"), "{err}");
}

/// An agent that drips its answer (or streams one far too large) is given
/// up on within discovery's time limit: `--register` fails, it never hangs.
#[test]
fn a_dripping_or_endless_agent_is_given_up_on() {
    fn server(drip: bool) -> SocketAddr {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in socket.incoming() {
                let Ok(mut stream) = stream else { break };
                std::thread::spawn(move || {
                    let _ = read_request(&mut stream, Duration::from_secs(5));
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{\"tunnels\":[",
                    );
                    let chunk = if drip {
                        vec![b' '; 1]
                    } else {
                        vec![b' '; 64 * 1024]
                    };
                    for _ in 0..100_000 {
                        if stream.write_all(&chunk).is_err() {
                            break;
                        }
                        if drip {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                });
            }
        });
        addr
    }
    for drip in [true, false] {
        let ngrok = server(drip);
        let metrics = server(drip);
        let danube = FakeDanube::start();
        let config = TempDir::new("hostile-drip");
        let mut cmd = danube_hooks(&config.0);
        cmd.args(["listen", "--port", "0", "--json", "--no-store"])
            .args(["--register", "--no-verify-url", "--api-url", &danube.url()])
            .args(["--ngrok-api", &format!("http://{ngrok}")])
            .args(["--cloudflared-metrics", &metrics.to_string()]);
        let started = std::time::Instant::now();
        let output = run_command(&mut cmd, b"");
        assert_exit(&output, 2);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "drip {drip}: discovery took {:?}",
            started.elapsed()
        );
        assert!(danube.seen().is_empty());
        assert!(
            stderr(&output).contains("no public https:// URL"),
            "{}",
            stderr(&output)
        );
    }
}

/// Danube's list is not the whole truth about a saved secret: another
/// `DANUBE_ORG_ID` or key, or a broken answer, lists none of this config's
/// webhooks. The secret of a webhook Danube still has must not be thrown
/// away because one list left it out (Danube never shows it again).
#[test]
fn a_list_that_leaves_out_a_saved_webhook_does_not_forget_its_secret() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-empty-list");
    let url = danube.url();
    let run = |public: &str| {
        let args = [
            "--json",
            "--no-store",
            "--register",
            "--no-verify-url",
            "--api-url",
            &url,
            "--public-url",
            public,
        ];
        let mut listener = Listener::start_with(danube_hooks(&config.0), &args);
        assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    };
    run("https://first.ngrok.app");
    let first = danube.webhooks()[0].clone();
    danube.fail_next(
        "GET",
        "/v1/webhooks",
        Fault::Status {
            status: 200,
            body: "[]".to_owned(),
            retry_after: None,
        },
    );
    run("https://second.ngrok.app");
    let saved = std::fs::read_to_string(config.join("danube-hooks").join("webhooks.json")).unwrap();
    assert!(
        saved.contains(first["secret"].as_str().unwrap()),
        "the secret of {} (still in Danube) was forgotten after one list left it out:\n{saved}",
        first["id"]
    );
}

/// A create answered with a secret that ends in control characters: the
/// fingerprint shown in the banner and by `webhooks create --save` must not
/// carry them to the terminal raw.
#[test]
fn a_secrets_fingerprint_from_the_api_is_escaped() {
    let secret = "whsec_abcdefghijklmnopqrstuv\u{1b}]0;x\u{7}\u{1b}[2J";
    let created = |url: &str| Fault::Status {
        status: 201,
        body: json!({"id": "wh_evil", "url": url, "events": ["workflow.completed"],
                     "is_active": true, "description": null, "secret": secret})
        .to_string(),
        retry_after: None,
    };
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-fingerprint");
    let url = "https://abc.ngrok.app/webhooks/danube";
    danube.fail_next("POST", "/v1/webhooks", created(url));
    let mut cmd = danube_hooks(&config.0);
    cmd.args([
        "webhooks",
        "create",
        "--url",
        url,
        "--save",
        "--api-url",
        &danube.url(),
    ]);
    let output = run_command(&mut cmd, b"");
    assert_exit(&output, 0);
    assert_terminal_safe(&stdout(&output), "webhooks create's stdout");
    assert_terminal_safe(&stderr(&output), "webhooks create's stderr");

    let config = TempDir::new("hostile-fingerprint-listen");
    danube.fail_next(
        "POST",
        "/v1/webhooks",
        created("https://def.ngrok.app/webhooks/danube"),
    );
    let danube_url = danube.url();
    let args = [
        "--json",
        "--no-store",
        "--register",
        "--no-verify-url",
        "--api-url",
        &danube_url,
        "--public-url",
        "https://def.ngrok.app",
    ];
    let mut listener = Listener::start_with(danube_hooks(&config.0), &args);
    let banner = listener.banner.clone();
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    assert_terminal_safe(&banner, "the banner");
}

/// A webhook id from Danube's answer is one path segment of the requests
/// made with it (the pause on exit), never a way to another path, and a
/// huge URL in the answer does not flood the banner.
#[test]
fn an_id_and_url_from_the_api_choose_no_path_and_flood_nothing() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-id");
    let public = "https://ghi.ngrok.app";
    let huge_url = format!("{public}/webhooks/danube{}", "x".repeat(200_000));
    danube.fail_next(
        "POST",
        "/v1/webhooks",
        Fault::Status {
            status: 201,
            body: json!({"id": "../../v1/auth/device/code?x=1#f", "url": huge_url,
                         "events": ["workflow.completed"], "is_active": true,
                         "secret": "whsec_abcdefghijklmnopqrstuvwxyz012345"})
            .to_string(),
            retry_after: None,
        },
    );
    let danube_url = danube.url();
    let args = [
        "--json",
        "--no-store",
        "--register",
        "--no-verify-url",
        "--api-url",
        &danube_url,
        "--public-url",
        public,
    ];
    let mut listener = Listener::start_with(danube_hooks(&config.0), &args);
    assert!(
        listener.banner.len() < 16 * 1024,
        "{} bytes of banner",
        listener.banner.len()
    );
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    let said = listener.stderr_so_far();
    assert!(said.len() < 16 * 1024, "{} bytes on exit", said.len());
    let after: Vec<String> = danube
        .seen()
        .iter()
        .filter(|s| s.method != "GET")
        .skip(1)
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        after,
        ["PATCH /v1/webhooks/..%2F..%2Fv1%2Fauth%2Fdevice%2Fcode%3Fx%3D1%23f"],
        "the requests made with the API's id"
    );
}

/// Another local user's fake ngrok agent on the port `--register` asks
/// names the URL Danube would post to, and can relay the reachability
/// probe back to the listener, so the proof alone would pass it. An agent
/// that runs as another user is not asked at all, proof or no proof.
#[test]
#[ignore = "needs root, to run the squatting agent as another user (nobody) with setpriv; \
            CI runs it with --ignored"]
fn an_agent_run_by_another_user_is_not_asked() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "run as root: this test runs its squatter as another user"
    );
    let listener_port = closed_port().port();
    let agent = TcpListener::bind("127.0.0.1:0").unwrap();
    let agent_port = agent.local_addr().unwrap().port();
    drop(agent);
    // Its URL is on loopback and reaches nothing, so that without the
    // check the run ends (the proof fails) rather than leaving the machine.
    let evil = format!("https://{}", closed_port());
    let tunnels = json!({"tunnels": [{"name": "evil", "public_url": evil,
        "proto": "https", "config": {"addr": format!("http://localhost:{listener_port}")}}]});
    let script = format!(
        "import http.server\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       body = {body:?}.encode()\n\
         \x20       self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n\
         \x20   def log_message(self, *a): pass\n\
         http.server.HTTPServer(('127.0.0.1', {agent_port}), H).serve_forever()\n",
        body = tunnels.to_string()
    );
    let mut squatter = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(&script)
        .spawn()
        .expect("setpriv and /usr/bin/python3 run");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", agent_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the squatter did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-foreign-agent");
    let mut cmd = danube_hooks(&config.0);
    cmd.env("DANUBE_HOOKS_REACH_WINDOW_MS", "1000")
        .args([
            "listen",
            "--port",
            &listener_port.to_string(),
            "--json",
            "--no-store",
        ])
        .args(["--register", "--api-url", &danube.url()])
        .args(["--ngrok-api", &format!("http://127.0.0.1:{agent_port}")])
        .args(["--cloudflared-metrics", &closed_port().to_string()]);
    let output = run_command(&mut cmd, b"");
    let _ = squatter.kill();
    let _ = squatter.wait();
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("runs as another user (uid 65534)"), "{err}");
    assert!(danube.seen().is_empty(), "{:?}", danube.seen());
}

/// Danube's API has a trust of its own: the receivers' `--insecure` and
/// `--cacert` never weaken it. A TLS server with a certificate of its own,
/// standing in for a man in the middle, gets no request (so never the key)
/// whichever of those flags `listen --register` is given; the API-only
/// commands refuse them and say what to use; `--api-cacert` alone trusts a
/// CA for the API.
#[test]
fn the_receivers_tls_flags_never_reach_danubes_api() {
    let mitm = crate::common::tls::TlsReceiver::start(&["localhost"]);
    let api = mitm.localhost_url("");
    let ca = mitm.ca().to_owned();
    let config = TempDir::new("hostile-api-trust");
    for flags in [&["--insecure"][..], &["--cacert", &ca]] {
        let mut cmd = danube_hooks(&config.0);
        cmd.args(["listen", "--port", "0"])
            .args(register_args(
                &api,
                &["--public-url", "https://abc.ngrok.app"],
            ))
            .args(flags);
        let output = run_command(&mut cmd, b"");
        assert_ne!(output.status.code(), Some(0), "{flags:?}");
        let err = stderr(&output);
        assert!(
            err.contains("failed: the certificate is not trusted"),
            "{flags:?}: {err}"
        );
        assert!(!err.contains(KEY), "{flags:?}: the key was printed");
        mitm.assert_nothing_arrived();
    }
    for (flags, hint) in [
        (
            &["--insecure"][..],
            "--insecure does not apply to Danube's API",
        ),
        (&["--cacert", &ca], "--cacert is for receivers"),
    ] {
        for command in [
            &["webhooks", "list"][..],
            &["deliveries", "wh_1"],
            &["login"],
        ] {
            let mut cmd = danube_hooks(&config.0);
            cmd.args(command).args(["--api-url", &api]).args(flags);
            let output = run_command(&mut cmd, b"");
            assert_exit(&output, 2);
            let err = stderr(&output);
            assert!(
                err.contains(hint) && err.contains("--api-cacert"),
                "{command:?}: {err}"
            );
            mitm.assert_nothing_arrived();
        }
    }
    // Named for the API itself, the CA is trusted there.
    let mut cmd = danube_hooks(&config.0);
    cmd.args(["webhooks", "list", "--api-url", &api, "--api-cacert", &ca]);
    let _ = run_command(&mut cmd, b"");
    let request = mitm.next_request();
    assert_eq!(
        (request.method.as_str(), request.target.as_slice()),
        ("GET", &b"/v1/webhooks"[..])
    );
}

/// Closing the terminal (SIGHUP) is a way out that can run code: the
/// webhook `--register` set up is paused, as on SIGINT and SIGTERM.
#[test]
fn closing_the_terminal_pauses_the_webhook() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-sighup");
    let url = danube.url();
    let mut listener = Listener::start_with(
        danube_hooks(&config.0),
        &register_args(&url, &["--public-url", "https://abc.ngrok.app"]),
    );
    assert_eq!(danube.webhooks()[0]["is_active"], true);
    assert_eq!(listener.signal_and_wait("HUP"), Some(0));
    assert!(
        listener.stderr_so_far().contains("paused Danube webhook"),
        "no pause was said"
    );
    assert_eq!(danube.webhooks()[0]["is_active"], false);
}

/// A re-point Danube applied but never answers: the first signal says that
/// the wait goes on (a change cut off could leave the webhook active with
/// nothing to pause it), a second ends the wait at once, and what the
/// re-point may have made active is paused.
#[test]
fn a_slow_re_point_gives_way_to_a_second_signal_and_is_paused() {
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-slow-repoint");
    let url = danube.url();
    let mut first = Listener::start_with(
        danube_hooks(&config.0),
        &register_args(&url, &["--public-url", "https://first.ngrok.app"]),
    );
    assert_eq!(first.signal_and_wait("TERM"), Some(0));
    let id = danube.webhooks()[0]["id"].as_str().unwrap().to_owned();
    let patch = format!("/v1/webhooks/{id}");
    let patches_before = danube.seen_of("PATCH", &patch).len();
    danube.fail_next(
        "PATCH",
        &patch,
        Fault::ApplyThenStall(Duration::from_mins(2)),
    );
    let mut cmd = danube_hooks(&config.0);
    cmd.args(["listen", "--port", "0"])
        .args(register_args(
            &url,
            &["--public-url", "https://second.ngrok.app"],
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let lines = crate::common::lines_of(child.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while danube.seen_of("PATCH", &patch).len() == patches_before {
        assert!(std::time::Instant::now() < deadline, "no re-point was sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    kill("TERM");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal cut the re-point off"
    );
    kill("INT");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a second signal did not end the wait"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let said: String = lines.try_iter().collect::<Vec<_>>().join("\n");
    assert_ne!(status.code(), Some(0), "{said}");
    assert!(said.contains("Ctrl-C again stops waiting"), "{said}");
    assert!(
        said.contains(&format!(
            "stopped waiting for Danube's answer to the re-point; paused Danube webhook {id}"
        )),
        "{said}"
    );
    let webhook = danube.webhooks()[0].clone();
    assert_eq!(webhook["url"], "https://second.ngrok.app/webhooks/danube");
    assert_eq!(webhook["is_active"], false, "left active: {said}");
}

/// A process of the same user holding ngrok's agent port names a URL of
/// its own: it is registered only if a probe sent there arrives at this
/// listener, and this one's never does.
#[test]
fn a_squatting_agents_url_is_registered_only_if_it_reaches_the_listener() {
    let listener_port = closed_port().port();
    let evil = format!("https://{}", closed_port());
    let tunnels = json!({"tunnels": [{"name": "evil", "public_url": evil, "proto": "https",
        "config": {"addr": format!("http://localhost:{listener_port}")}}]});
    let ngrok = agent(tunnels.to_string());
    let danube = FakeDanube::start();
    let config = TempDir::new("hostile-squatter");
    let mut cmd = danube_hooks(&config.0);
    cmd.env("DANUBE_HOOKS_REACH_WINDOW_MS", "1000")
        .args([
            "listen",
            "--port",
            &listener_port.to_string(),
            "--json",
            "--no-store",
        ])
        .args(["--register", "--api-url", &danube.url()])
        .args(["--ngrok-api", &format!("http://{ngrok}")])
        .args(["--cloudflared-metrics", &closed_port().to_string()]);
    let output = run_within(&mut cmd, Duration::from_secs(20));
    // The URL not reaching the listener is the network's failure (SPEC §2).
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(err.contains("does not reach this listener"), "{err}");
    assert!(
        err.contains("(ngrok (tunnel \"evil\" of the agent at"),
        "the error says where the URL came from: {err}"
    );
    assert!(
        danube.seen_of("POST", "/").is_empty() && danube.seen_of("PATCH", "/").is_empty(),
        "{:?}",
        danube.seen()
    );
}
