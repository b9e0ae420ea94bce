//! `login`, `logout` and `webhooks list` black-box, against the fake
//! Danube API (`common::fake_danube`): the device flow
//! (`/v1/auth/device/code`, then `/v1/auth/device/token` answering 428
//! while pending, 410 once expired, 200 with the key once approved) and
//! the credential header on `/v1/webhooks`. The key lands under a
//! temporary `XDG_CONFIG_HOME`.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::fake_danube::{FakeDanube, KEY, KEY_PREFIX};
use common::{
    TempDir, assert_contains, assert_exit, command_with_config, run_command, stderr, stdout,
};

fn pending() -> (u16, String) {
    (428, r#"{"detail":"authorization_pending"}"#.to_owned())
}

fn approved() -> (u16, String) {
    (
        200,
        format!(r#"{{"api_key":"{KEY}","key_prefix":"{KEY_PREFIX}"}}"#),
    )
}

fn expired() -> (u16, String) {
    (410, r#"{"detail":"expired_token"}"#.to_owned())
}

/// The binary with its config under `config` and no credential from the shell.
fn danube_hooks(config: &Path, args: &[&str], stdin: &[u8]) -> Output {
    danube_hooks_env(config, &[], args, stdin)
}

fn danube_hooks_env(config: &Path, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = command_with_config(config);
    cmd.envs(env.iter().copied()).args(args);
    run_command(&mut cmd, stdin)
}

fn credentials_file(config: &TempDir) -> std::path::PathBuf {
    config.join("danube-hooks").join("credentials.json")
}

fn assert_key_not_shown(output: &Output) {
    let all = format!("{}{}", stdout(output), stderr(output));
    assert!(!all.contains(KEY), "the key was printed whole:\n{all}");
}

#[test]
fn login_approved_saves_the_key_0600_and_never_prints_it() {
    let danube = FakeDanube::start();
    danube.device_flow(600, 1, "WDJB-MJHT\u{1b}[2J", vec![pending(), approved()]);
    let config = TempDir::new("login-ok");
    let output = danube_hooks(&config.0, &["login", "--api-url", &danube.url()], b"");
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.contains("https://danubeai.com/device"), "{out}");
    assert!(out.contains("WDJB-MJHT"), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "the user code reached the terminal raw: {out:?}"
    );
    assert!(out.contains(&format!("{KEY_PREFIX}…")), "{out}");
    assert_key_not_shown(&output);

    let file = credentials_file(&config);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(file.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["api_key"], KEY);

    let seen = danube.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/v1/auth/device/code")
    );
    let code: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(code, serde_json::json!({"client_name": "danube-hooks"}));
    let polls: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/v1/auth/device/token")
        .collect();
    assert_eq!(polls.len(), 2, "one pending poll, then the approved one");
    // The device flow is made before there is a key: none is sent.
    assert!(
        seen.iter()
            .all(|s| !s.head.contains("danube-api-key") && !s.head.contains("authorization"))
    );
}

#[test]
fn login_expired_exits_1_with_what_to_do() {
    let danube = FakeDanube::start();
    danube.device_flow(600, 1, "ABCD-EFGH", vec![pending(), expired()]);
    let config = TempDir::new("login-expired");
    let output = danube_hooks(&config.0, &["login", "--api-url", &danube.url()], b"");
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains("expired") && err.contains("danube-hooks login"),
        "{err}"
    );
    assert!(!credentials_file(&config).exists());
}

#[test]
fn login_never_waits_past_the_codes_expiry() {
    // The code expires in 1 s but asks for a poll every 30 s: the wait is
    // cut at the expiry, not taken whole.
    let danube = FakeDanube::start();
    danube.device_flow(1, 30, "ABCD-EFGH", vec![pending()]);
    let config = TempDir::new("login-expiry");
    let started = Instant::now();
    let output = danube_hooks(&config.0, &["login", "--api-url", &danube.url()], b"");
    assert_exit(&output, 1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_contains(&stderr(&output), "expired");
}

#[test]
fn login_tells_danubes_error_in_one_line() {
    // Nothing listening: retried after 1, 2, 4 s, then one line.
    let config = TempDir::new("login-refused");
    let port = common::closed_port().port();
    let output = danube_hooks(
        &config.0,
        &["login", "--api-url", &format!("http://127.0.0.1:{port}")],
        b"",
    );
    // Danube not reached is the network's failure (SPEC §2), not usage.
    assert_exit(&output, 3);
    let err = stderr(&output);
    // An http:// API is on this machine: the emulator, not running.
    assert!(
        err.contains(&format!(
            "cannot reach the local Danube (emulate?) at http://127.0.0.1:{port}: "
        )) && err.contains("(tried 4 times); start it with `danube-hooks emulate --port"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let output = danube_hooks(
        &config.0,
        &["login", "--api-url", "http://danube.example"],
        b"",
    );
    assert_exit(&output, 2);
    assert_contains(&stderr(&output), "use https://");
}

#[test]
fn login_with_key_then_logout() {
    let config = TempDir::new("with-key");
    let output = danube_hooks(
        &config.0,
        &["login", "--with-key"],
        format!("  {KEY}\n").as_bytes(),
    );
    assert_exit(&output, 0);
    assert_key_not_shown(&output);
    let file = credentials_file(&config);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["api_key"], KEY, "trimmed");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    for (stdin, why) in [("", "no key"), (" \n\t", "no key"), ("dk_a dk_b", "space")] {
        let output = danube_hooks(&config.0, &["login", "--with-key"], stdin.as_bytes());
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(why),
            "{stdin:?}: {}",
            stderr(&output)
        );
    }
    let still: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        still["api_key"], KEY,
        "a refused key leaves the saved one alone"
    );

    let output = danube_hooks(&config.0, &["logout"], b"");
    assert_exit(&output, 0);
    assert_contains(&stdout(&output), "Logged out");
    assert!(!file.exists());
    let output = danube_hooks(&config.0, &["logout"], b"");
    assert_exit(&output, 0);
    assert_contains(&stdout(&output), "Not logged in");
}

#[test]
fn webhooks_list_with_the_saved_key_or_the_environment() {
    let danube = FakeDanube::start();
    let (id, _) = danube.add_webhook(
        "https://abc.ngrok.app/webhooks/danube",
        &["workflow.completed"],
    );
    danube.edit_webhook(
        &id,
        &serde_json::json!({"is_active": false, "description": "tunnel \u{1b}[2J"}),
    );
    let config = TempDir::new("webhooks-list");
    let url = danube.url();

    let output = danube_hooks(&config.0, &["webhooks", "list", "--api-url", &url], b"");
    assert_exit(&output, 2);
    assert_contains(&stderr(&output), "no Danube credentials");

    assert_exit(
        &danube_hooks(&config.0, &["login", "--with-key"], KEY.as_bytes()),
        0,
    );
    let output = danube_hooks(&config.0, &["webhooks", "list", "--api-url", &url], b"");
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.lines().next().unwrap().starts_with("ID"), "{out}");
    assert!(out.contains(&id) && out.contains("paused"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let request = danube.seen().pop().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/webhooks")
    );
    assert!(
        request
            .head
            .contains(&format!("danube-api-key: {}", KEY.to_ascii_lowercase()))
    );

    // DANUBE_API_URL and --json: Danube's array.
    let output = danube_hooks_env(
        &config.0,
        &[("DANUBE_API_URL", &url)],
        &["webhooks", "list", "--json"],
        b"",
    );
    assert_exit(&output, 0);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(
        listed[0].get("secret").is_none(),
        "a list never has the secret"
    );
    assert_eq!(listed[0]["is_active"], false);

    // DANUBE_API_KEY wins over the saved key; Danube refuses it: 401, one
    // line that says to log in again, the key shown by its start only.
    let wrong = "dk_live_WRONGWRONGWRONG123";
    let output = danube_hooks_env(
        &config.0,
        &[("DANUBE_API_KEY", wrong), ("DANUBE_ORG_ID", "org_7")],
        &["webhooks", "list", "--api-url", &url],
        b"",
    );
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("401: Invalid API key")
            && err.contains("log in again with `danube-hooks login`"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(KEY), "{err}");
    let request = danube.seen().pop().unwrap();
    assert!(
        request
            .head
            .contains("danube-api-key: dk_live_wrongwrongwrong123"),
        "{}",
        request.head
    );
    assert!(
        request.head.contains("danube-org-id: org_7"),
        "{}",
        request.head
    );
}

/// SPEC §2's exit codes, black-box, a class at a time: 1 a negative
/// result, 2 usage or configuration (Danube's 4xx but 429 included), 3
/// Danube or the network failing, 4 a local file failing while working,
/// and 0, quietly, when whoever reads stdout has gone.
mod exit_codes {
    use std::process::{Command, Stdio};

    use super::common::fake_danube::Fault;
    use super::common::{self, Capture, SECRET, TempDir, assert_exit, command, run, stderr};
    use super::*;

    fn store_example() -> String {
        common::fixtures()
            .join("store/example.jsonl")
            .display()
            .to_string()
    }

    /// `webhooks list` against `danube`, with its key, quick retries.
    fn webhooks_list(config: &Path, danube: &FakeDanube) -> Output {
        danube_hooks_env(
            config,
            &[
                ("DANUBE_API_KEY", KEY),
                ("DANUBE_HOOKS_API_RETRY_WAIT_MS", "1"),
            ],
            &["webhooks", "list", "--api-url", &danube.url()],
            b"",
        )
    }

    /// `cmd` run with its stdout a pipe whose reader is already gone, as
    /// `| head` leaves it once it has read its lines.
    fn with_stdout_closed(cmd: &mut Command) -> Output {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = cmd
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(output.stdout.is_empty());
        output
    }

    #[test]
    fn negative_results_are_1() {
        let verify = run(
            &[
                "verify",
                "--secret",
                SECRET,
                "--header",
                "t=1,sha256=00",
                "-",
            ],
            b"{}",
        );
        assert_exit(&verify, 1);

        // A receiver that takes everything fails the cases it must refuse.
        let lax = Capture::start();
        let check = run(&["check", &lax.url("/hooks"), "--secret", SECRET], b"");
        assert_exit(&check, 1);

        let failing = Capture::answering_status(500);
        let trigger = run(
            &[
                "trigger",
                "workflow.failed",
                "--to",
                &failing.url("/hooks"),
                "--secret",
                SECRET,
                "--attempts",
                "1",
            ],
            b"",
        );
        assert_exit(&trigger, 1);
    }

    #[test]
    fn usage_and_configuration_are_2() {
        assert_exit(&run(&["log", "--lats", "3"], b""), 2);
        let policy = run(
            &["listen", "--port", "0", "--no-store", "--respond", "50x"],
            b"",
        );
        assert_exit(&policy, 2);
        assert_contains(&stderr(&policy), "--respond");
        // No store there yet, and a folder where the store should be.
        let dir = TempDir::new("exit-usage");
        for store in [dir.join("none.jsonl"), dir.0.clone()] {
            let log = run(&["log", "--store", &store.display().to_string()], b"");
            assert_exit(&log, 2);
        }
        // The emulator's state under a file, which no folder can be made in.
        let file = dir.join("a-file");
        std::fs::write(&file, "").unwrap();
        let state = file.join("state.json").display().to_string();
        let emulate = run(&["emulate", "--port", "0", "--state", &state], b"");
        assert_exit(&emulate, 2);
    }

    #[test]
    fn a_state_folder_without_write_permission_is_2() {
        let dir = TempDir::new("exit-read-only");
        let folder = dir.join("read-only");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anywhere: then there is nothing to test here.
        if std::fs::write(folder.join("probe"), "").is_ok() {
            eprintln!("skipped: this user writes into a read-only folder (root?)");
            return;
        }
        let state = folder.join("state.json").display().to_string();
        let emulate = run(&["emulate", "--port", "0", "--state", &state], b"");
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_exit(&emulate, 2);
    }

    #[test]
    fn danube_s_4xx_is_2_and_its_5xx_429_and_silence_are_3() {
        let config = TempDir::new("exit-danube");
        let danube = FakeDanube::start();
        for (status, code) in [(401, 2), (403, 2), (422, 2), (429, 3), (500, 3), (503, 3)] {
            danube.fail_next("GET", "/v1/webhooks", Fault::status(status, "no"));
            let output = webhooks_list(&config.0, &danube);
            assert_exit(&output, code);
            assert_contains(&stderr(&output), &format!("{status}"));
        }
        assert_exit(&webhooks_list(&config.0, &danube), 0);
        drop(danube);

        let port = common::closed_port().port();
        let nobody = danube_hooks_env(
            &config.0,
            &[
                ("DANUBE_API_KEY", KEY),
                ("DANUBE_HOOKS_API_RETRY_WAIT_MS", "1"),
            ],
            &[
                "webhooks",
                "list",
                "--api-url",
                &format!("http://127.0.0.1:{port}"),
            ],
            b"",
        );
        assert_exit(&nobody, 3);
    }

    #[test]
    fn a_local_file_that_fails_while_working_is_4() {
        // Credentials that are not what `login` wrote.
        let config = TempDir::new("exit-local");
        let danube = FakeDanube::start();
        let credentials = credentials_file(&config);
        std::fs::create_dir_all(credentials.parent().unwrap()).unwrap();
        std::fs::write(&credentials, "{\"api_key\": \"dk_half").unwrap();
        let output = danube_hooks(
            &config.0,
            &["webhooks", "list", "--api-url", &danube.url()],
            b"",
        );
        assert_exit(&output, 4);
        assert!(danube.seen().is_empty());

        // A delivery whose line in the store is damaged.
        let store = config.join("deliveries.jsonl");
        let example = std::fs::read_to_string(store_example()).unwrap();
        let first = example.lines().next().unwrap();
        std::fs::write(&store, format!("{first}\n{{\"id\":2,\"received_at\":\n")).unwrap();
        let store = store.display().to_string();
        assert_exit(&run(&["show", "1", "--store", &store], b""), 0);
        let show = run(&["show", "2", "--store", &store], b"");
        assert_exit(&show, 4);
        assert_contains(&stderr(&show), "damaged");

        // A full disk under stdout.
        let full = std::fs::File::create("/dev/full").unwrap();
        let output = command()
            .args(["completions", "bash"])
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_exit(&output, 4);
    }

    #[test]
    fn a_closed_stdout_ends_quietly_with_0() {
        let store = store_example();
        for args in [
            &["log", "--store", &store][..],
            &["log", "--json", "--store", &store],
            &["show", "1", "--store", &store],
            &["sign", "--secret", SECRET, "-"],
            &["completions", "bash"],
            &["man"],
        ] {
            let output = with_stdout_closed(command().args(args));
            assert_exit(&output, 0);
            assert_eq!(stderr(&output), "", "{args:?}");
        }
    }
}
