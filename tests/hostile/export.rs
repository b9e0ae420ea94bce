//! Exported curl commands are data under any shell: a
//! corpus of hostile deliveries, each sent to the real listener over a raw
//! socket and stored, exported with `export ID --curl`, and the command run
//! under `dash` and `bash`, both to its default URL (the listener, which
//! records what arrives) and to a capturing server (`--to`, the raw bytes).
//! What arrives must be what was recorded, byte for byte, and nothing else
//! may run: every body and header tries to `touch` a canary file, read a
//! local file (`@.env`) or break out of its quoting.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{
    Arrived, Capture, Listener, TempDir, assert_exit, exchange, raw_request, record_body,
    record_header_bytes, run, stdout,
};

const MIB: usize = 1024 * 1024;

/// One hostile delivery: `(path, headers, body)`.
type Hostile = (String, Vec<(&'static str, Vec<u8>)>, Vec<u8>);

/// The hostile deliveries.
fn corpus(canary: &Path) -> Vec<Hostile> {
    let touch = format!("touch {}", canary.display());
    let json = vec![("Content-Type", b"application/json".to_vec())];
    let line = format!("it's $({touch}) `{touch}` '\"\n");
    let mut text_mib = line.repeat(MIB / line.len());
    text_mib.push_str(&"x".repeat(MIB - text_mib.len()));
    let binary_mib: Vec<u8> = (0..MIB).map(|i| (i * 7 % 256) as u8).collect();
    vec![
        (
            "/webhooks/danube".into(),
            json.clone(),
            format!(r#"{{"q":"it's \"x\" $({touch}) `{touch}` ${{HOME}} %s \\"}}"#).into_bytes(),
        ),
        (
            "/newlines".into(),
            vec![],
            format!("one\n'; {touch}; echo '\n\tthree\\n %s %% \"$({touch})\"\n").into_bytes(),
        ),
        ("/at".into(), vec![], b"@/etc/passwd".to_vec()),
        ("/at".into(), vec![], b"@.env".to_vec()),
        ("/at".into(), vec![], b"-K.env".to_vec()),
        (
            "/c1-bidi".into(),
            vec![],
            format!("a\u{85}b\u{202e}c'$({touch})'\u{1b}]52;c;x\u{7}").into_bytes(),
        ),
        (
            "/nul".into(),
            json.clone(),
            [&b"\x00\xff'$("[..], touch.as_bytes(), b")'\x00"].concat(),
        ),
        (
            "/hooks/{a,b}/[1-2]?x={y}&z=[0]".into(),
            json.clone(),
            b"{}".to_vec(),
        ),
        ("/big-text".into(), vec![], text_mib.into_bytes()),
        ("/big-binary".into(), vec![], binary_mib),
        (
            "/headers".into(),
            vec![
                ("X-Empty", vec![]),
                ("X-Latin", b"caf\xe9 \xff".to_vec()),
                ("X-Quote", format!("'$({touch})' `{touch}` \"").into_bytes()),
                // Written through printf (bidi and C1 must not be raw), with
                // everything that could break out of that.
                (
                    "X-Bidi",
                    format!("a\u{202e}b\u{85}c')$({touch})`{touch}` %s \\ \" ${{x}}").into_bytes(),
                ),
                ("X-Latin-Quote", b"\xe9')$(true)'\"".to_vec()),
                ("X-Printf", b"%s %n \\101 %% \\".to_vec()),
                ("X-At", b"@.env".to_vec()),
                ("Accept", vec![]),
                ("User-Agent", b"ua'x".to_vec()),
            ],
            b"{}".to_vec(),
        ),
    ]
}

/// The headers that must arrive as recorded: all but the connection's own
/// and those a client sets for its target and body.
fn end_to_end(headers: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    headers
        .into_iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "host" | "content-length" | "connection" | "expect" | "transfer-encoding"
            )
        })
        .collect()
}

/// Run `command` as a script under `shell`, in `dir`.
fn run_script(shell: &str, dir: &Path, command: &str) {
    let script = dir.join("export.sh");
    std::fs::write(&script, format!("{command}\n")).unwrap();
    let output = Command::new(shell)
        .arg(&script)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{shell} does not run ({e}); .ci/run installs dash"));
    assert!(
        output.status.success() && output.stdout.starts_with(b"HTTP/1.1 200"),
        "{shell}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn exported_commands_are_data_under_dash_and_bash() {
    let dir = TempDir::new("hostile-export");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join(".env"), "SECRET=must-not-leave\n").unwrap();
    let canary = dir.join("CANARY");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = Listener::start(&["--json", "--store", store]);
    let capture = Capture::start();

    for (path, headers, body) in corpus(&canary) {
        let named: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let reply = exchange(
            listener.addr,
            &raw_request(&path, &named, &body),
            Duration::from_secs(10),
        );
        assert_eq!(reply.status(), 200, "{path}");
        let id = reply.header("x-danube-hooks-delivery").unwrap().to_string();
        let original = listener.next_record();
        // The record is what was sent.
        assert_eq!(original["path"], path.as_str());
        assert_eq!(record_body(&original), body, "{path}");
        let sent: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        assert_eq!(end_to_end(record_header_bytes(&original)), sent, "{path}");

        for to in [None, Some(capture.url(&path))] {
            let mut args = vec!["export", &id, "--curl", "--store", store];
            if let Some(to) = &to {
                args.extend(["--to", to]);
            }
            let export = run(&args, b"");
            assert_exit(&export, 0);
            let command = stdout(&export);
            assert!(
                !command
                    .chars()
                    .any(|c| danube_hooks::display::is_dangerous(c) && c != '\n' && c != '\t'),
                "{path}: the printed command is not terminal-safe"
            );
            assert!(!command.contains("$'"), "{path}: bash-only quoting");
            for shell in ["dash", "bash"] {
                run_script(shell, &work, &command);
                let (method, target, headers, body) = if to.is_some() {
                    let arrived = Arrived::parse(
                        &capture
                            .next_request(Duration::from_secs(10))
                            .expect("the capture got the request"),
                    );
                    (
                        arrived.method,
                        arrived.target,
                        arrived.headers,
                        arrived.body,
                    )
                } else {
                    // The default URL: the port and path it arrived on.
                    let again = listener.next_record();
                    assert_eq!(again["local_addr"], original["local_addr"]);
                    (
                        again["method"].as_str().unwrap().to_string(),
                        again["path"].as_str().unwrap().as_bytes().to_vec(),
                        record_header_bytes(&again),
                        record_body(&again),
                    )
                };
                let context = format!("{path} under {shell}, to {to:?}");
                assert_eq!(method, original["method"].as_str().unwrap(), "{context}");
                assert_eq!(target, path.as_bytes(), "{context}");
                assert_eq!(end_to_end(headers), sent, "{context}");
                assert!(
                    body == record_body(&original),
                    "{context}: the body differs"
                );
            }
        }
    }
    assert!(!canary.exists(), "an exported command ran something");
    // Nothing but the requests above reached the capture.
    assert_eq!(capture.connections(), corpus(&canary).len() * 2);
}
