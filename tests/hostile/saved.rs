//! What is kept on disk about Danube (`credentials.json`, `webhooks.json`),
//! attacked by the ways it gets used: commands saving at once, another
//! organization's `listen --register`, and files another user can read.
//! A saved secret is the only copy there is (Danube shows it once), so
//! none may be lost, and a key or secret open to others must be said.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::fake_danube::{FakeDanube, KEY, KEY_B, danube_hooks, register_args};
use crate::common::{Listener, TempDir, assert_exit, run_command, stderr};

fn folder(config: &TempDir) -> PathBuf {
    config.join("danube-hooks")
}

/// `webhooks.json` as written, by id.
fn saved(config: &TempDir) -> Vec<Value> {
    let path = folder(config).join("webhooks.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn saved_secret(config: &TempDir, id: &str) -> Option<String> {
    saved(config)
        .into_iter()
        .find(|w| w["id"] == id)
        .map(|w| w["secret"].as_str().unwrap().to_owned())
}

fn create_saved(config: &Path, api_url: &str, url: &str) -> Output {
    let mut cmd = danube_hooks(config);
    cmd.args(["webhooks", "create", "--save", "--url", url])
        .args(["--event", "workflow.completed", "--api-url", api_url]);
    run_command(&mut cmd, b"")
}

#[test]
fn commands_saving_at_once_keep_every_secret() {
    let danube = FakeDanube::start();
    let config = TempDir::new("saving-at-once");
    let api_url = danube.url();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (config, api_url) = (&config.0, &api_url);
            scope.spawn(move || {
                for n in 0..6 {
                    let url = format!("https://w{worker}-{n}.example/hook");
                    let output = create_saved(config, api_url, &url);
                    assert_exit(&output, 0);
                }
            });
        }
    });
    let made = danube.webhooks();
    assert_eq!(made.len(), 24);
    let kept = saved(&config);
    let lost: Vec<&str> = made
        .iter()
        .filter(|w| {
            saved_secret(&config, w["id"].as_str().unwrap()).as_deref() != w["secret"].as_str()
        })
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of 24 secrets were said to be saved but lost: {lost:?} ({} kept)",
        lost.len(),
        kept.len()
    );
    // Nothing half-written or left behind beside it.
    let names: Vec<String> = std::fs::read_dir(folder(&config))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["webhooks.json"], "{names:?}");
}

#[test]
fn logins_at_once_leave_one_whole_key() {
    let config = TempDir::new("login-at-once");
    let keys: Vec<String> = (0..6)
        .map(|n| format!("dk_live_{n}{}", "k".repeat(20)))
        .collect();
    std::thread::scope(|scope| {
        for key in &keys {
            let config = &config.0;
            scope.spawn(move || {
                let mut cmd = danube_hooks(config);
                cmd.env_remove("DANUBE_API_KEY")
                    .args(["login", "--with-key"]);
                assert_exit(&run_command(&mut cmd, key.as_bytes()), 0);
            });
        }
    });
    let path = folder(&config).join("credentials.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        keys.iter().any(|k| saved["api_key"] == k.as_str()),
        "{saved}"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_dir(folder(&config)).unwrap().count(), 1);
}

/// `listen --register` for `public`, in organization `org` (none: the
/// key's own; `key_b`: none, with the other key, whose own is another),
/// until it is registered; then SIGTERM (it pauses).
fn register_in(config: &TempDir, danube: &FakeDanube, org: Option<&str>, public: &str) -> String {
    let url = danube.url();
    let mut cmd = danube_hooks(&config.0);
    match org {
        Some("key_b") => {
            cmd.env("DANUBE_API_KEY", KEY_B);
        }
        Some(org) => {
            cmd.env("DANUBE_ORG_ID", org);
        }
        None => {}
    }
    let mut listener = Listener::start_with(cmd, &register_args(&url, &["--public-url", public]));
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    format!("{}{}", listener.banner, listener.stderr_so_far())
}

#[test]
fn another_organizations_register_never_forgets_a_secret() {
    let danube = FakeDanube::start();
    let config = TempDir::new("two-orgs");
    register_in(&config, &danube, None, "https://own.ngrok.app");
    let own = danube.webhooks()[0].clone();
    let own_id = own["id"].as_str().unwrap();
    assert_eq!(
        saved_secret(&config, own_id).as_deref(),
        own["secret"].as_str()
    );

    // Organization B cannot see A's webhook: its list leaves it out and
    // its delivery log answers 404. The webhook still exists.
    let said = register_in(&config, &danube, Some("org_b"), "https://b.ngrok.app");
    assert_eq!(danube.webhooks().len(), 2, "{said}");
    assert_eq!(
        saved_secret(&config, own_id).as_deref(),
        own["secret"].as_str(),
        "B's run forgot A's secret:\n{said}"
    );
    let b = danube.webhooks()[1].clone();
    assert_eq!(
        saved_secret(&config, b["id"].as_str().unwrap()).as_deref(),
        b["secret"].as_str()
    );

    // Another key, of another organization, with no DANUBE_ORG_ID to
    // say so: the same scope on this machine, yet its 404 says nothing of
    // the first key's webhook either.
    let said = register_in(&config, &danube, Some("key_b"), "https://kb.ngrok.app");
    assert_eq!(danube.webhooks().len(), 3, "{said}");
    assert_eq!(
        saved_secret(&config, own_id).as_deref(),
        own["secret"].as_str(),
        "the other key's run forgot the first key's secret:\n{said}"
    );

    // Each organization's next run reuses its own webhook: no fourth.
    register_in(&config, &danube, None, "https://own2.ngrok.app");
    register_in(&config, &danube, Some("org_b"), "https://b2.ngrok.app");
    let now = danube.webhooks();
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now[0]["url"], "https://own2.ngrok.app/webhooks/danube");
    assert_eq!(now[1]["url"], "https://b2.ngrok.app/webhooks/danube");
    assert_eq!(saved(&config).len(), 3);
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Both files 0644 in a 0755 folder, as a copy or an old umask leaves them.
fn loosen(config: &TempDir) {
    let dir = folder(config);
    set_mode(&dir, 0o755);
    set_mode(&dir.join("credentials.json"), 0o644);
    set_mode(&dir.join("webhooks.json"), 0o644);
}

/// The folder and both files said, each with its fix.
fn assert_warned(said: &str, config: &TempDir, files: &[&str], what: &str) {
    let dir = folder(config);
    assert!(
        said.contains(&format!("folder {}", dir.display())) && said.contains("chmod 700"),
        "{what}: the open folder was not said:\n{said}"
    );
    for file in files {
        let path = dir.join(file);
        assert!(
            said.lines().any(|line| line.contains("warning")
                && line.contains(&format!("{} can be read", path.display()))
                && line.contains("mode 0644")
                && line.contains("chmod 600")),
            "{what}: {file} open to others was not said:\n{said}"
        );
    }
}

#[test]
fn a_key_or_secret_open_to_others_is_said_by_every_command_that_reads_it() {
    let danube = FakeDanube::start();
    let config = TempDir::new("loose-modes");
    let api_url = danube.url();
    let run = |args: &[&str]| -> Output {
        let mut cmd: Command = danube_hooks(&config.0);
        cmd.env_remove("DANUBE_API_KEY")
            .args(args)
            .args(["--api-url", &api_url]);
        run_command(&mut cmd, b"")
    };
    let mut login = danube_hooks(&config.0);
    login
        .env_remove("DANUBE_API_KEY")
        .args(["login", "--with-key"]);
    assert_exit(&run_command(&mut login, KEY.as_bytes()), 0);
    let created = run(&[
        "webhooks",
        "create",
        "--save",
        "--url",
        "https://abc.example/h",
    ]);
    assert_exit(&created, 0);
    // Written by danube-hooks itself: nothing to say.
    assert!(
        !stderr(&created).contains("warning"),
        "{}",
        stderr(&created)
    );
    let id = saved(&config)[0]["id"].as_str().unwrap().to_owned();

    let both = ["credentials.json", "webhooks.json"];
    for (args, files) in [
        (vec!["webhooks", "list"], &both[..1]),
        (vec!["deliveries"], &both[..]),
        (
            vec!["webhooks", "update", &id, "--description", "x"],
            &both[..],
        ),
        (
            vec![
                "webhooks",
                "create",
                "--save",
                "--url",
                "https://b.example/h",
            ],
            &both[..],
        ),
    ] {
        loosen(&config);
        let output = run(&args);
        assert_exit(&output, 0);
        assert_warned(&stderr(&output), &config, files, &args.join(" "));
    }

    loosen(&config);
    let mut cmd = danube_hooks(&config.0);
    cmd.env_remove("DANUBE_API_KEY");
    let url = danube.url();
    let mut listener = Listener::start_with(
        cmd,
        &register_args(&url, &["--public-url", "https://abc.ngrok.app"]),
    );
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    let said = format!("{}{}", listener.banner, listener.stderr_so_far());
    assert_warned(&said, &config, &both, "listen --register");

    // Once written again by danube-hooks, the modes are its own: 0600 in 0700.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&folder(&config)), 0o700);
    assert_eq!(mode(&folder(&config).join("webhooks.json")), 0o600);
}
