//! Black-box: `sign` and `verify` through the real binary.

use crate::common;

use common::{SECRET, assert_exit, command, fixtures, run, run_command, stderr, stdout};

const BODY: &[u8] =
    br#"{"event":"workflow.completed","timestamp":"2026-11-23T09:14:07.123456Z","data":{}}"#;

fn sign_at(t: i64, body: &[u8]) -> String {
    let output = run(
        &[
            "sign",
            "--secret",
            SECRET,
            "--timestamp",
            &t.to_string(),
            "-",
        ],
        body,
    );
    assert_exit(&output, 0);
    stdout(&output).trim().to_string()
}

#[test]
fn sign_matches_an_openssl_vector() {
    // From fixtures/signatures/vectors.tsv (made with openssl dgst -hmac).
    let vectors = std::fs::read_to_string(fixtures().join("signatures/vectors.tsv")).unwrap();
    let line = vectors
        .lines()
        .find(|l| l.starts_with(SECRET) && l.contains("\t1700000000\tunicode.json\t"))
        .unwrap();
    let digest = line.rsplit('\t').next().unwrap();
    let body_file = fixtures().join("signatures/bodies/unicode.json");
    let output = run(
        &[
            "sign",
            "-s",
            SECRET,
            "-t",
            "1700000000",
            body_file.to_str().unwrap(),
        ],
        b"",
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), format!("t=1700000000,sha256={digest}\n"));
}

#[test]
fn verify_valid_prints_the_verdict_first_and_exits_0() {
    let header = sign_at(1_800_000_000, BODY);
    let output = run(
        &[
            "verify",
            "-s",
            SECRET,
            "--header",
            &header,
            "--now",
            "1800000004",
            "-",
        ],
        BODY,
    );
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("VALID\n"), "{text}");
    assert!(text.contains("4 s old"), "{text}");
    assert!(text.contains("skew: 4 s"), "{text}");
    assert!(!text.contains(SECRET));
}

#[test]
fn verify_mismatch_explains_and_exits_1() {
    let header = sign_at(1_800_000_000, BODY);
    let received = [BODY, b"\n"].concat();
    let output = run(
        &[
            "verify",
            "-s",
            SECRET,
            "--header",
            &header,
            "--now",
            "1800000000",
        ],
        &received,
    );
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.starts_with("MISMATCH\n"), "{text}");
    assert!(
        text.contains("hint: the digest matches if the body had no trailing newline"),
        "{text}"
    );
}

/// `verify`'s hints for `received`, under a header signed over `signed`.
fn mismatch_hints(signed: &[u8], received: &[u8]) -> String {
    let header = sign_at(1_800_000_000, signed);
    let output = run(
        &["verify", "-s", SECRET, "-H", &header, "--now", "1800000000"],
        received,
    );
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.starts_with("MISMATCH\n"), "{text}");
    text
}

#[test]
fn verify_names_both_alterations_of_a_body_altered_twice() {
    const PYTHON: &str = r#"JSON with ", " and ": " separators (Python's json.dumps)"#;
    // What `print(json.dumps(json.load(body)))` writes, as a Python proxy
    // or receiver would pass the body on.
    let dumped = b"{\"event\": \"workflow.completed\", \"timestamp\": \"2026-11-23T09:14:07.123456Z\", \"data\": {}}\n";
    let text = mismatch_hints(BODY, dumped);
    assert!(
        text.contains(&format!(
            "hint: the digest matches if the body, signed as compact JSON (JSON.stringify), was \
             re-serialized as {PYTHON} and given a trailing newline after signing: a proxy or \
             body parser changed the bytes"
        )),
        "{text}"
    );

    // A fixture signed as the file is, its trailing newline included: the
    // re-serialization dropped that newline, and print added one.
    let fixture = std::fs::read(fixtures().join("events/tool.execution.completed.json")).unwrap();
    assert!(fixture.ends_with(b"\n"));
    let dumped = br#"{"event": "tool.execution.completed", "timestamp": "2026-11-23T09:14:07.123456Z", "data": {"tool_id": "abc-123", "tool_name": "Gmail - Send Email", "status": "success", "execution_time": 1.234, "error": null}}
"#;
    let text = mismatch_hints(&fixture, dumped);
    assert!(
        text.contains(&format!(
            "hint: the digest matches if the body, signed as compact JSON (JSON.stringify) \
             ending in a newline, was re-serialized as {PYTHON} and given a trailing newline \
             after signing"
        )),
        "{text}"
    );
    assert!(!text.contains("no common alteration"), "{text}");
}

#[test]
fn verify_stale_exits_1() {
    let header = sign_at(1_800_000_000, BODY);
    let output = run(
        &[
            "verify",
            "-s",
            SECRET,
            "-H",
            &header,
            "--now",
            "1800000500",
            "--tolerance",
            "300",
        ],
        BODY,
    );
    assert_exit(&output, 1);
    assert!(stdout(&output).starts_with("STALE\n"));
    let wider = run(
        &[
            "verify",
            "-s",
            SECRET,
            "-H",
            &header,
            "--now",
            "1800000500",
            "--tolerance",
            "600",
        ],
        BODY,
    );
    assert_exit(&wider, 0);
}

#[test]
fn verify_json_is_the_signature_object() {
    let header = sign_at(1_800_000_000, BODY);
    let output = run(
        &[
            "verify",
            "-s",
            SECRET,
            "-H",
            &header,
            "--now",
            "1800000010",
            "--json",
        ],
        BODY,
    );
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["verdict"], "valid");
    assert_eq!(value["timestamp"], 1_800_000_000);
    assert_eq!(value["skew_s"], 10);
    assert_eq!(value["secret"], "whsec_…LaSw");
    assert!(value["detail"].as_str().unwrap().ends_with('.'));
    assert!(value["hints"].is_array());

    let malformed = run(
        &["verify", "-s", SECRET, "-H", "t=1,v1=abc", "--json"],
        BODY,
    );
    assert_exit(&malformed, 1);
    let value: serde_json::Value = serde_json::from_str(&stdout(&malformed)).unwrap();
    assert_eq!(value["verdict"], "malformed");
    assert!(value["detail"].as_str().unwrap().contains("v1="));
}

#[test]
fn secrets_come_from_the_environment_and_rotate() {
    let header = sign_at(1_800_000_000, BODY);
    let mut cmd = command();
    cmd.env("DANUBE_WEBHOOK_SECRET", SECRET).args([
        "verify",
        "-H",
        &header,
        "--now",
        "1800000000",
        "--json",
    ]);
    let output = run_command(&mut cmd, BODY);
    assert_exit(&output, 0);

    let output = run(
        &[
            "verify",
            "-s",
            "whsec_the_new_secret_000000001",
            "-s",
            SECRET,
            "-H",
            &header,
            "--now",
            "1800000000",
            "--json",
        ],
        BODY,
    );
    assert_exit(&output, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(value["secret"], "whsec_…LaSw");
}

#[test]
fn bad_usage_exits_2_and_names_the_problem() {
    let no_secret = run(&["verify", "-H", "t=1,sha256=00"], BODY);
    assert_exit(&no_secret, 2);
    assert!(
        stderr(&no_secret).contains("--secret"),
        "{}",
        stderr(&no_secret)
    );

    let missing_file = run(
        &[
            "verify",
            "-s",
            SECRET,
            "-H",
            "t=1,sha256=00",
            "/nonexistent/body.json",
        ],
        b"",
    );
    assert_exit(&missing_file, 2);
    assert!(stderr(&missing_file).contains("/nonexistent/body.json"));

    let sign_missing = run(&["sign", "-s", SECRET, "/nonexistent/x"], b"");
    assert_exit(&sign_missing, 2);
    assert!(stderr(&sign_missing).contains("/nonexistent/x"));

    let bad_timestamp = run(&["sign", "-s", SECRET, "-t", "soon"], b"");
    assert_exit(&bad_timestamp, 2);
}

#[test]
fn no_output_ever_holds_the_whole_secret() {
    let header = sign_at(1_800_000_000, BODY);
    let mut help = command();
    help.env("DANUBE_WEBHOOK_SECRET", SECRET)
        .args(["verify", "--help"]);
    let outputs = [
        run_command(&mut help, b""),
        run(&["verify", "-s", SECRET, "-H", &header], b"tampered"),
        run(
            &["verify", "-s", SECRET, "-H", &header, "--json"],
            b"tampered",
        ),
        run(&["verify", "-s", SECRET, "-H", "junk"], BODY),
    ];
    for output in outputs {
        assert!(!stdout(&output).contains(SECRET), "{}", stdout(&output));
        assert!(!stderr(&output).contains(SECRET), "{}", stderr(&output));
    }
}
