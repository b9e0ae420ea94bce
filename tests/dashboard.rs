//! The dashboard end to end: the real binary in a real terminal (tmux, on a
//! server of its own), a signed delivery over a real socket, the screen
//! read back with `capture-pane`, then `q` (or SIGTERM) and what is left:
//! the exit status, the terminal given back, the store.
//!
//! tmux is required: without it these tests fail and say so, rather than
//! pass having tested nothing (`.ci/run` installs it).

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{SECRET, TempDir};

/// How long anything may take to show up before the test gives up.
const PATIENCE: Duration = Duration::from_secs(20);
/// What the pane's shell prints, with the exit status, once the program ends.
const EXITED: &str = "program exited with status";

/// A tmux server of this test's own (`-L`), so no user's sessions are
/// touched; killed on drop.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    /// A server whose panes stay after their process exits, so the exit
    /// status and the last screen can be read.
    pub(crate) fn start() -> Self {
        match Command::new("tmux").arg("-V").output() {
            Ok(output) if output.status.success() => {}
            _ => panic!(
                "tmux is not installed, and the dashboard's end-to-end tests need it: \
                 install it (apt-get install tmux); .ci/run does so before testing"
            ),
        }
        let socket = format!(
            "danube-hooks-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        Self { socket }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"])
            .env_remove("TMUX")
            .env_remove("DANUBE_WEBHOOK_SECRET")
            .env_remove("DANUBE_HOOKS_PORT")
            .env_remove("NO_COLOR");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self.command().args(args).output().expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Run `program` (and its arguments) in a 120×40 window of a new session `dash`, under a
    /// shell that prints its exit status when it ends (tmux's own
    /// `pane_dead_status` is not always filled in).
    pub(crate) fn open(&self, program: &[&str]) {
        let mut args = vec![
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "new-session",
            "-d",
            "-s",
            "dash",
            "-x",
            "120",
            "-y",
            "40",
            "--",
            "sh",
            "-c",
            r#""$0" "$@"; echo "program exited with status $?""#,
        ];
        args.extend_from_slice(program);
        self.run(&args);
    }

    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "dash"]).stdout)
            .into_owned()
    }

    /// The screen and what scrolled off it, wrapped lines joined: a message
    /// printed as the pane opens can end up above the visible screen.
    fn scrollback(&self) -> String {
        let args = ["capture-pane", "-p", "-J", "-S", "-200", "-t", "dash"];
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    pub(crate) fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "dash", keys]);
    }

    fn pane(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["display-message", "-p", "-t", "dash", format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Poll the screen until `done` holds; fail with the last screen.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {PATIENCE:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for the process in the pane to exit; its exit status.
    pub(crate) fn wait_for_exit(&self) -> String {
        let screen = self.wait_for("the dashboard to exit", |s| s.contains(EXITED));
        let rest = &screen[screen.find(EXITED).unwrap() + EXITED.len()..];
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The pid of the program the pane's shell runs.
    fn program_pid(&self) -> String {
        let shell = self.pane("#{pane_pid}");
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children
            .split_whitespace()
            .next()
            .expect("the shell runs the program")
            .to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self
            .command()
            .args(["display-message", "-p", "#{socket_path}"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|path| !path.is_empty());
        let _ = self.command().arg("kill-server").output();
        // tmux leaves its socket file behind.
        if let Some(socket) = socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// The port the header shows after `http://127.0.0.1:`.
fn port_on(screen: &str) -> Option<u16> {
    let rest = &screen[screen.find("http://127.0.0.1:")? + "http://127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|port| *port != 0)
}

fn open_dashboard(tmux: &Tmux, store: &Path) -> u16 {
    open_dashboard_with(tmux, store, &[])
}

/// As [`open_dashboard`], with `extra` listen options after the others.
fn open_dashboard_with(tmux: &Tmux, store: &Path, extra: &[&str]) -> u16 {
    let screen = open_dashboard_env(tmux, store, &[], extra);
    port_on(&screen).unwrap()
}

/// As [`open_dashboard_with`], run under `env` with the `NAME=value`
/// settings in `env` when there are any; the first screen that shows the
/// header.
fn open_dashboard_env(tmux: &Tmux, store: &Path, env: &[&str], extra: &[&str]) -> String {
    let mut command = Vec::new();
    if !env.is_empty() {
        command.push("env");
        command.extend_from_slice(env);
    }
    command.extend_from_slice(&[
        common::BIN,
        "listen",
        "--port",
        "0",
        "--store",
        store.to_str().unwrap(),
        "--secret",
        SECRET,
    ]);
    command.extend_from_slice(extra);
    tmux.open(&command);
    tmux.wait_for("the dashboard's header", |s| {
        port_on(s).is_some() && s.contains("● LIVE")
    })
}

#[test]
fn a_signed_delivery_shows_live_and_q_quits_with_the_store_written() {
    let dir = TempDir::new("dashboard-q");
    let store = dir.join("deliveries.jsonl");
    let tmux = Tmux::start();
    let port = open_dashboard(&tmux, &store);

    let body = common::event_body("tool.execution.completed", 1);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let reply = common::signed_post(addr, SECRET, common::now(), &body);
    assert_eq!(reply.status(), 200);

    let screen = tmux.wait_for("the delivery in the list", |s| {
        s.contains("#1 ") && s.contains("tool.execution.completed") && s.contains("VALID")
    });
    assert!(screen.contains("1 total  1 valid  0 invalid"), "{screen}");

    // r and R resend the selected delivery back to this listener (there is
    // no --forward-to): re-signed, then byte for byte.
    tmux.keys("r");
    tmux.wait_for("the re-signed replay's answer", |s| {
        s.contains("replay of #1 (re-signed)") && s.contains("answered 200") && s.contains("#2 ")
    });
    tmux.keys("G");
    tmux.keys("k");
    tmux.keys("R");
    tmux.wait_for("the as-is replay in the list", |s| {
        s.contains("#3 ") && s.contains("3 total")
    });

    // `/` takes the query language, and the status line counts what
    // matches as it is typed: the two replays are attempts 2 and 3.
    tmux.keys("/");
    tmux.keys("attempt:>1 status:2xx");
    tmux.wait_for("the query's count", |s| {
        s.contains("2 of 3 match") && s.contains("2 shown of 3")
    });
    tmux.keys(" stauts:1");
    tmux.wait_for("the bad term named", |s| {
        s.contains("at column 23, expected a key (event:")
    });
    tmux.keys("Escape");
    tmux.wait_for("the filter cleared", |s| {
        s.contains("3 shown") && !s.contains("shown of")
    });

    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    // The alternate screen is gone: what is left is the normal screen with
    // the banner and the last words.
    let after = tmux.screen();
    assert!(
        after.contains("ngrok http") && after.contains("stopped; the store is synced."),
        "the terminal was not given back:\n{after}"
    );
    let records = common::store_records(&store);
    assert_eq!(records.len(), 3, "the delivery and its two replays");
    let record = &records[0];
    assert_eq!(record["id"], 1);
    assert_eq!(record["event"], "tool.execution.completed");
    assert_eq!(record["signature"]["verdict"], "valid");
    for replayed in &records[1..] {
        assert_eq!(replayed["body_b64"], record["body_b64"]);
        assert_eq!(replayed["signature"]["verdict"], "valid");
    }
    assert_eq!(
        common::signature_header(&records[2]),
        common::signature_header(&records[0]),
        "R sends the original signature"
    );
}

#[test]
fn sigterm_quits_the_dashboard_cleanly() {
    let dir = TempDir::new("dashboard-term");
    let store = dir.join("deliveries.jsonl");
    let tmux = Tmux::start();
    open_dashboard(&tmux, &store);
    let pid = tmux.program_pid();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert_eq!(tmux.wait_for_exit(), "0", "exit status after SIGTERM");
    let after = tmux.screen();
    assert!(
        after.contains("stopped; the store is synced."),
        "the terminal was not given back:\n{after}"
    );
}

/// `e`: the body in the user's editor (here a script that shows the file's
/// mode and path, waits for the test to say how to edit it, and edits it
/// with sed), with the terminal the editor's meanwhile and the listener
/// still answering; an edit that is not JSON is refused and nothing sent;
/// a changed one arrives re-signed as a copy of #1; the terminal comes
/// back each time, and `q` still quits.
#[test]
fn e_edits_the_body_in_the_users_editor_and_sends_the_copy() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("dashboard-e");
    let store = dir.join("deliveries.jsonl");
    let go = dir.join("go");
    let editor = dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\n\
         echo \"EDITING $(stat -c %a \"$1\") $1\"\n\
         while [ ! -e \"$GO\" ]; do sleep 0.05; done\n\
         sed -i \"$(cat \"$GO\")\" \"$1\"\n\
         rm \"$GO\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmux = Tmux::start();
    let editor_env = format!("EDITOR={}", editor.display());
    let go_env = format!("GO={}", go.display());
    let env = ["VISUAL=", editor_env.as_str(), go_env.as_str()];
    let screen = open_dashboard_env(&tmux, &store, &env, &[]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port_on(&screen).unwrap())
        .parse()
        .unwrap();
    let post = |n| {
        let body = common::event_body("tool.execution.completed", n);
        common::signed_post(addr, SECRET, common::now(), &body).status()
    };
    assert_eq!(post(1), 200);
    tmux.wait_for("the delivery in the list", |s| s.contains("#1 "));

    // Opens the editor; it waits for `go` to say how to edit.
    let edit = || {
        tmux.keys("e");
        let screen = tmux.wait_for("the editor", |s| s.contains("EDITING "));
        assert!(
            !screen.contains("● LIVE"),
            "the dashboard is still drawn:\n{screen}"
        );
        let line = screen.lines().find(|l| l.contains("EDITING ")).unwrap();
        let mut words = line.split_whitespace().skip(1);
        assert_eq!(words.next(), Some("600"), "{line}");
        std::path::PathBuf::from(words.next().unwrap())
    };

    let file = edit();
    // A Ctrl-C typed in the editor reaches the dashboard too (here sent
    // to it alone: the pane's wrapper shell would take a typed one as its
    // own), and is the editor's: the dashboard goes on.
    let interrupted = Command::new("kill")
        .args(["-INT", &tmux.program_pid()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    // The listener answers while the editor has the terminal.
    assert_eq!(post(2), 200);
    std::fs::write(&go, r#"s/"n": 1/"n": oops/"#).unwrap();
    tmux.wait_for("the refusal", |s| {
        s.contains("● LIVE") && s.contains("the edit of #1 is not JSON: line 5, column")
    });
    assert!(!file.exists(), "the file to edit was left behind");
    tmux.wait_for("the delivery made meanwhile", |s| s.contains("#2 "));

    tmux.keys("g");
    edit();
    std::fs::write(&go, r#"s/"n": 1/"n": 41/"#).unwrap();
    tmux.wait_for("the copy's answer", |s| {
        s.contains("replay of #1 (re-signed): edited ~ data.n: 1 → 41") && s.contains("#3 ")
    });
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    let after = tmux.screen();
    assert!(
        after.contains("stopped; the store is synced."),
        "the terminal was not given back:\n{after}"
    );
    let records = common::store_records(&store);
    assert_eq!(records.len(), 3, "the refused edit sent nothing");
    let copy = &records[2];
    assert_eq!(
        (&copy["resent_from"], &copy["edited"]),
        (&1.into(), &true.into())
    );
    assert_eq!(copy["signature"]["verdict"], "valid");
    let body: serde_json::Value = serde_json::from_slice(&common::record_body(copy)).unwrap();
    assert_eq!(body["data"]["n"], 41);
}

#[test]
fn a_port_in_use_on_a_terminal_is_a_plain_message_not_a_broken_screen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmux = Tmux::start();
    tmux.open(&[common::BIN, "listen", "--no-store", "--port", &port]);
    assert_eq!(tmux.wait_for_exit(), "2", "exit status");
    let screen = tmux.scrollback();
    assert!(
        screen.contains(&format!("port {port} is already in use")),
        "no clear message:\n{screen}"
    );
    assert!(
        !screen.contains("● LIVE"),
        "the dashboard opened:\n{screen}"
    );
    drop(taken);
}

/// `r` and `R` on a delivery whose request target a stranger
/// chose (`@host:port`, refused with 400 and recorded) connect nowhere, and
/// on one whose path names another host (`//host/x`) go to the forward
/// target with that path. The stranger's server sees nothing. (Here rather
/// than in tests/hostile: it drives the dashboard with this file's tmux.)
#[test]
fn r_on_a_strangers_target_goes_only_to_the_forward_target() {
    let dir = TempDir::new("dashboard-hostile-r");
    let store = dir.join("deliveries.jsonl");
    let evil = common::Capture::start();
    let receiver = common::Capture::start();
    let tmux = Tmux::start();
    let forward_to = receiver.url("");
    let listen_port = open_dashboard_with(&tmux, &store, &["--forward-to", &forward_to]);
    let addr = format!("127.0.0.1:{listen_port}").parse().unwrap();
    let body = common::event_body("tool.execution.completed", 1);
    let post = |target: &str| {
        common::exchange(
            addr,
            &common::request_bytes(target, &[], &body),
            Duration::from_secs(10),
        )
    };

    assert_eq!(post(&format!("@{}", evil.addr)).status(), 400);
    tmux.wait_for("the refused delivery in the list", |s| s.contains("#1 "));
    tmux.keys("r");
    tmux.wait_for("the re-signed replay refused", |s| {
        s.contains("replay of #1 (re-signed) failed")
    });
    tmux.keys("R");
    tmux.wait_for("the as-is replay refused", |s| {
        s.contains("replay of #1 (as-is) failed")
    });

    assert_eq!(post(&format!("//{}/x", evil.addr)).status(), 200);
    tmux.wait_for("the forwarded delivery in the list", |s| s.contains("#2 "));
    let forwarded = receiver.next_request(PATIENCE).expect("forwarded");
    tmux.keys("G");
    tmux.keys("r");
    tmux.wait_for("the replay's answer", |s| {
        s.contains("replay of #2 (re-signed)") && s.contains("answered 200")
    });
    let replayed = receiver.next_request(PATIENCE).expect("replayed");
    let target = format!("POST //{}/x HTTP/1.1", evil.addr);
    for request in [forwarded, replayed] {
        assert!(
            request.starts_with(target.as_bytes()),
            "{}",
            String::from_utf8_lossy(&request)
        );
    }
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    evil.assert_untouched("the dashboard's r and R");
}

/// A mirror that answers 200 after a second: later than the delivery's
/// record is written.
fn slow_mirror() -> std::net::SocketAddr {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                use std::io::Write as _;
                let _ = common::read_request(&mut stream, PATIENCE);
                std::thread::sleep(Duration::from_secs(1));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    addr
}

/// Routes and a mirror in the dashboard: the header names the routes, the
/// row of a routed delivery is marked mirrored, and its detail shows the
/// forward and the mirror waiting, then the mirror's answer when it comes
/// after the record was written.
#[test]
fn a_mirrors_late_answer_shows_in_the_detail() {
    let dir = TempDir::new("dashboard-mirror");
    let store = dir.join("deliveries.jsonl");
    let receiver = common::Capture::answering_status(201);
    let mirror = slow_mirror();
    let tmux = Tmux::start();
    let route = format!("tool.*={}", receiver.url("/tools"));
    let mirror_to = format!("http://{mirror}/copy");
    let listen_port = open_dashboard_with(
        &tmux,
        &store,
        &["--forward-to", &route, "--mirror-to", &mirror_to],
    );
    let addr = format!("127.0.0.1:{listen_port}").parse().unwrap();
    let body = common::event_body("tool.execution.completed", 1);
    let reply = common::exchange(addr, &common::request_bytes("/", &[], &body), PATIENCE);
    assert_eq!(reply.status(), 201);
    let waiting = tmux.wait_for("the routed delivery, its mirror waiting", |s| {
        s.contains("#1 ") && s.contains("mirror    waiting")
    });
    assert!(waiting.contains("forward to tool.*=http://"), "{waiting}");
    assert!(
        waiting.contains("+m"),
        "the row is marked mirrored: {waiting}"
    );
    assert!(waiting.contains("/tools"), "{waiting}");
    tmux.wait_for("the mirror's late answer", |s| s.contains("mirror    200 "));
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
}

/// `listen --register` in the dashboard: a header row names the webhook,
/// its fingerprint, its URL and the pause to come; `q` pauses it in Danube
/// (the fake API) before the program ends, and says so.
#[test]
fn the_header_names_the_registered_webhook_and_q_pauses_it() {
    let dir = TempDir::new("dashboard-register");
    let store = dir.join("deliveries.jsonl");
    let danube = common::fake_danube::FakeDanube::start();
    let tmux = Tmux::start();
    let config = format!("XDG_CONFIG_HOME={}", dir.0.display());
    let key = format!("DANUBE_API_KEY={}", common::fake_danube::KEY);
    let api = danube.url();
    tmux.open(&[
        "env",
        &config,
        &key,
        common::BIN,
        "listen",
        "--port",
        "0",
        "--store",
        store.to_str().unwrap(),
        "--register",
        "--no-verify-url",
        "--api-url",
        &api,
        "--public-url",
        "https://abc.ngrok.app",
    ]);
    let screen = tmux.wait_for("the danube webhook row", |s| s.contains("danube webhook "));
    let webhooks = danube.webhooks();
    assert_eq!(webhooks.len(), 1);
    let id = webhooks[0]["id"].as_str().unwrap();
    let secret = webhooks[0]["secret"].as_str().unwrap();
    let fingerprint = format!("whsec_…{}", &secret[secret.len() - 4..]);
    assert!(
        screen.contains(&format!(
            "danube webhook {id} ({fingerprint}) → https://abc.ngrok.app/webhooks/danube · paused on exit"
        )),
        "{screen}"
    );
    assert_eq!(webhooks[0]["is_active"], true);
    // The webhook's secret is the API's, and this API is on this machine:
    // the empty list suggests having it deliver, not `trigger --secret`.
    assert!(
        screen.contains(&format!(
            "danube-hooks trigger workflow.completed --emulator {api}"
        )),
        "{screen}"
    );
    assert!(!screen.contains("--secret"), "{screen}");

    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    let after = tmux.scrollback();
    assert!(
        after.contains(&format!("paused Danube webhook {id}")),
        "{after}"
    );
    assert_eq!(danube.webhooks()[0]["is_active"], false);
}

/// The `3.2` of the first `held 3.2s / 10s` on `screen`.
fn held_on(screen: &str) -> Option<f64> {
    let rest = &screen[screen.find("held ")? + "held ".len()..];
    rest[..rest.find("s / 10s")?].parse().ok()
}

/// A delivery held by `timeout` shows at once, pinned
/// under the list with a count of how long it has been held that goes on
/// while nothing else happens, and the header counts it; once the sender
/// gives up, its row says how long the connection was held.
#[test]
fn a_held_delivery_shows_in_flight_with_a_live_count_until_the_sender_gives_up() {
    let dir = TempDir::new("dashboard-in-flight");
    let store = dir.join("deliveries.jsonl");
    let tmux = Tmux::start();
    let port = open_dashboard_with(&tmux, &store, &["--respond", "timeout"]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut held = std::net::TcpStream::connect(addr).unwrap();
    let body = common::event_body("workflow.failed", 1);
    std::io::Write::write_all(&mut held, &common::request_bytes("/", &[], &body)).unwrap();

    let first = tmux.wait_for("the delivery in flight", |s| {
        s.contains("1 in flight") && s.contains("workflow.failed") && held_on(s).is_some()
    });
    assert!(first.contains("· timeout"), "{first}");
    let counted = held_on(&first).unwrap();
    // Nothing else happens, and the count goes on.
    let later = tmux.wait_for("the count to go on", |s| {
        held_on(s).is_some_and(|now| now >= counted + 1.0)
    });
    assert!(later.contains("1 in flight"), "{later}");
    let held_for = held_on(&later).unwrap();

    drop(held);
    let answered = tmux.wait_for("the held delivery answered", |s| {
        s.contains("#1 ") && s.contains("TIMEOUT") && !s.contains("in flight")
    });
    assert!(held_on(&answered).is_none(), "{answered}");
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    let record: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&store)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["response"]["action"], "timeout");
    let duration_s = record["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        duration_s >= held_for,
        "held {held_for} s on screen, recorded {duration_s} s"
    );
}

/// A fake Danube with one webhook, and the dashboard watching its side
/// (`--webhook`), open.
struct Watching {
    danube: common::fake_danube::FakeDanube,
    webhook: String,
    tmux: Tmux,
    /// The first screen.
    screen: String,
    /// Where the listener takes deliveries.
    addr: std::net::SocketAddr,
    _dir: TempDir,
}

fn watch_webhook(name: &str) -> Watching {
    use common::fake_danube::{FakeDanube, KEY};
    let danube = FakeDanube::start();
    let (webhook, _) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["tool.execution.completed"],
    );
    let dir = TempDir::new(name);
    let store = dir.join("deliveries.jsonl");
    let key = format!("DANUBE_API_KEY={KEY}");
    let config = format!("XDG_CONFIG_HOME={}", dir.0.display());
    let url = danube.url();
    let tmux = Tmux::start();
    let screen = open_dashboard_env(
        &tmux,
        &store,
        &[&key, &config],
        &["--webhook", &webhook, "--api-url", &url],
    );
    let addr = format!("127.0.0.1:{}", port_on(&screen).unwrap())
        .parse()
        .unwrap();
    Watching {
        danube,
        webhook,
        tmux,
        screen,
        addr,
        _dir: dir,
    }
}

/// A signed `tool.execution.completed` (the `n`th) to the listener at
/// `addr`, and Danube's log of `webhook` saying it delivered it.
fn deliver_and_log(
    danube: &common::fake_danube::FakeDanube,
    webhook: &str,
    addr: std::net::SocketAddr,
    n: u64,
) {
    let body = common::event_body("tool.execution.completed", n);
    assert_eq!(
        common::signed_post(addr, SECRET, common::now(), &body).status(),
        200
    );
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    danube.set_deliveries(
        webhook,
        vec![serde_json::json!({
            "id": "dlv_1", "webhook_id": webhook, "event_type": "tool.execution.completed",
            "payload": payload, "status": "success", "response_status": 200,
            "response_body": "{}", "attempts": 1, "delivered_at": now, "created_at": now,
        })],
    );
}

/// With `--webhook ID`, the dashboard polls the fake
/// Danube's delivery log (at once on `D`), marks the delivery with what
/// Danube recorded, and shows an API error on the status line while
/// polling goes on.
#[test]
fn with_a_webhook_the_dashboard_shows_danubes_side() {
    use common::fake_danube::{Fault, KEY};
    let Watching {
        danube,
        webhook,
        tmux,
        screen,
        addr,
        _dir,
    } = watch_webhook("dashboard-danube");
    // The footer's hints come once the store's earlier deliveries are read
    // (its progress holds the status line until then).
    let _ = screen;
    tmux.wait_for("the footer's Danube key", |s| s.contains("D Danube"));
    deliver_and_log(&danube, &webhook, addr, 1);
    tmux.keys("D");
    let screen = tmux.wait_for("Danube's mark on the delivery", |s| s.contains("ok 1/3"));
    assert!(screen.contains("DANUBE"), "{screen}");

    danube.fail_next(
        "GET",
        "/v1/webhooks/",
        Fault::status(401, "Invalid API key"),
    );
    tmux.keys("D");
    tmux.wait_for("the API error on the status line", |s| {
        s.contains("Danube (still polling; D polls now): Danube refused the credentials")
    });
    tmux.keys("D");
    tmux.wait_for("the next poll's answer", |s| {
        s.contains("Danube: 1 delivery of webhook") && s.contains("ok 1/3")
    });
    let asked = danube.seen_of("GET", &format!("/v1/webhooks/{webhook}/deliveries"));
    assert!(asked.len() >= 3, "{} polls", asked.len());
    let header = format!("danube-api-key: {}", KEY.to_lowercase());
    assert!(asked.iter().all(|seen| seen.head.contains(&header)));
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
}

/// `listen --tunnel cloudflared` in a real terminal, from one command: the
/// wait counted on screen, the URL, the webhook registered, a delivery
/// through the tunnel arriving valid, the header naming tunnel and webhook,
/// then `q`: the tunnel program gone, the webhook paused.
#[test]
fn one_command_opens_the_tunnel_shows_it_and_q_ends_it() {
    let dir = TempDir::new("dashboard-tunnel");
    let store = dir.join("deliveries.jsonl");
    let danube = common::fake_danube::FakeDanube::start();
    let tunnels = common::tunnel::FakeTunnels::new("dashboard");
    // Slow enough to see the wait counted.
    tunnels.knob("url-after", Some("2.5"));
    let tmux = Tmux::start();
    let path = {
        let mut cmd = Command::new("true");
        tunnels.put_on_path(&mut cmd);
        cmd.get_envs()
            .find(|(name, _)| *name == "PATH")
            .and_then(|(_, value)| value)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let env = [
        format!("PATH={path}"),
        format!("FAKE_TUNNEL_DIR={}", tunnels.path().display()),
        format!("XDG_CONFIG_HOME={}", dir.0.display()),
        format!("DANUBE_API_KEY={}", common::fake_danube::KEY),
    ];
    let ca = tunnels.ca();
    let api = danube.url();
    let mut program: Vec<&str> = vec!["env"];
    program.extend(env.iter().map(String::as_str));
    program.extend([
        common::BIN,
        "listen",
        "--port",
        "0",
        "--store",
        store.to_str().unwrap(),
        "--tunnel",
        "cloudflared",
        "--cacert",
        &ca,
        "--api-url",
        &api,
    ]);
    tmux.open(&program);
    let waiting = tmux.wait_for("the wait counted", |s| {
        s.contains("waiting for its public URL… 1 s")
            || s.contains("waiting for its public URL… 2 s")
    });
    assert!(
        waiting.contains("danube-hooks: cloudflared (pid "),
        "{waiting}"
    );
    let screen = tmux.wait_for("the tunnel row", |s| {
        s.contains("tunnel ") && s.contains("danube webhook ")
    });
    let webhooks = danube.webhooks();
    assert_eq!(webhooks.len(), 1, "{screen}");
    let url = webhooks[0]["url"].as_str().unwrap().to_owned();
    let public = url.trim_end_matches("/webhooks/danube");
    assert!(
        screen.contains(&format!("tunnel         cloudflared {public} (pid ")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("→ {url} · paused on exit")),
        "{screen}"
    );

    let secret = webhooks[0]["secret"].as_str().unwrap();
    let mut trigger = common::command();
    trigger.args([
        "trigger",
        "workflow.failed",
        "--to",
        &url,
        "--secret",
        secret,
        "--attempts",
        "1",
        "--cacert",
        &ca,
    ]);
    common::assert_exit(&common::run_command(&mut trigger, b""), 0);
    let screen = tmux.wait_for("the delivery", |s| s.contains("workflow.failed"));
    assert!(screen.contains("VALID"), "{screen}");

    let pid = tunnels.pids("cloudflared")[0];
    assert!(common::tunnel::alive(pid));
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    assert!(
        common::tunnel::ends_within(pid, Duration::from_secs(5)),
        "cloudflared outlived q"
    );
    let after = tmux.scrollback();
    assert!(after.contains("paused Danube webhook"), "{after}");
    assert_eq!(danube.webhooks()[0]["is_active"], false);
}

/// A request that reached the listener before the webhook existed is none
/// of its deliveries: the DANUBE column marks it `—`, not `unknown`.
#[test]
fn a_delivery_from_before_the_webhook_existed_is_not_unknown() {
    let Watching {
        danube,
        webhook,
        tmux,
        addr,
        _dir,
        ..
    } = watch_webhook("dashboard-danube-before");
    // Sent by hand, then the webhook is (as Danube tells it) created.
    let by_hand = common::event_body("workflow.completed", 1);
    assert_eq!(
        common::signed_post(addr, SECRET, common::now(), &by_hand).status(),
        200
    );
    tmux.wait_for("the delivery sent by hand", |s| {
        s.contains("workflow.completed")
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    danube.edit_webhook(&webhook, &serde_json::json!({ "created_at": created }));
    deliver_and_log(&danube, &webhook, addr, 2);
    tmux.keys("D");
    let screen = tmux.wait_for("Danube's mark on the delivery", |s| s.contains("ok 1/3"));
    assert!(screen.contains("workflow.completed"), "{screen}");
    assert!(!screen.contains("unknown"), "{screen}");
    assert!(screen.contains("0 findings"), "{screen}");
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
}

/// A restart opens with the store's deliveries: the earlier ones under a
/// divider for the start they came in, this start's under its own; a
/// retry after the restart is attempt 2 of its group; `r` resends a
/// delivery read from the store; `--fresh` opens empty.
#[test]
fn a_restart_opens_with_the_stores_deliveries_under_a_divider() {
    let dir = TempDir::new("dashboard-history");
    let store = dir.join("deliveries.jsonl");
    let first = common::event_body("tool.execution.completed", 1);
    let second = common::event_body("workflow.failed", 2);
    {
        let tmux = Tmux::start();
        let port = open_dashboard(&tmux, &store);
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        for body in [&first, &second] {
            let reply = common::signed_post(addr, SECRET, common::now(), body);
            assert_eq!(reply.status(), 200);
        }
        tmux.wait_for("both deliveries", |s| s.contains("#2 "));
        tmux.keys("q");
        assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    }

    let tmux = Tmux::start();
    let port = open_dashboard(&tmux, &store);
    let screen = tmux.wait_for("the earlier deliveries", |s| {
        s.contains("#1 ") && s.contains("#2 ") && s.contains("│ 2 earlier")
    });
    assert!(screen.contains("0 total"), "this start's counts:\n{screen}");
    assert_eq!(
        screen.matches("── listener started ").count(),
        1,
        "the earlier start is marked:\n{screen}"
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let reply = common::signed_post(addr, SECRET, common::now(), &first);
    assert_eq!(reply.status(), 200);
    let screen = tmux.wait_for("the retry", |s| s.contains("#3 "));
    assert_eq!(
        screen.matches("── listener started ").count(),
        2,
        "this start is marked too:\n{screen}"
    );
    tmux.keys("g");
    tmux.keys("r");
    tmux.wait_for("the replay of a delivery read from the store", |s| {
        s.contains("replay of #1 (re-signed)") && s.contains("answered 200") && s.contains("#4 ")
    });
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
    let records = common::store_records(&store);
    assert_eq!(records.len(), 4);
    assert_eq!(records[2]["attempt"], 2, "the retry continues the count");
    assert_eq!(records[2]["group"], records[0]["group"]);
    drop(tmux);

    let tmux = Tmux::start();
    let screen = open_dashboard_env(&tmux, &store, &[], &["--fresh"]);
    assert!(
        screen.contains("Waiting for deliveries") && !screen.contains("#1 "),
        "--fresh opens empty:\n{screen}"
    );
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0", "exit status");
}
