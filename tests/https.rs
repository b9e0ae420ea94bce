//! HTTPS out (SPEC §12), black-box: a TLS receiver on loopback whose CA
//! and certificate each test makes with rcgen; the real binary sends to it
//! with `--cacert`, without it (one line naming the host and the problem),
//! and with `--insecure`.

use crate::common;

use std::net::TcpListener;

use common::tls::{TlsReceiver, self_signed_localhost, test_ca};
use common::{Arrived, Listener, SECRET, TempDir, assert_exit, now, run, signed_post, stderr};

/// Valid from a year ago to a year on, whenever the test runs.
fn valid_now() -> ((i32, u8, u8), (i32, u8, u8)) {
    use chrono::Datelike as _;
    let today = chrono::Utc::now().date_naive();
    let day = |year: i32| (year, today.month() as u8, today.day().min(28) as u8);
    (day(today.year() - 1), day(today.year() + 1))
}

fn header<'a>(arrived: &'a Arrived, name: &str) -> &'a str {
    let value = &arrived
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .1;
    std::str::from_utf8(value).unwrap()
}

fn trigger(to: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "trigger",
        "tool.execution.completed",
        "--to",
        to,
        "--secret",
        SECRET,
        "--attempts",
        "1",
    ];
    args.extend_from_slice(extra);
    run(&args, b"")
}

#[test]
fn trigger_over_https_trusting_the_ca_from_cacert_delivers_signed() {
    let receiver = TlsReceiver::start(&["127.0.0.1", "localhost"]);
    let output = trigger(
        &receiver.url("/webhooks/danube"),
        &["--cacert", receiver.ca()],
    );
    assert_exit(&output, 0);
    let arrived = receiver.next_request();
    assert_eq!(arrived.method, "POST");
    assert_eq!(arrived.target, b"/webhooks/danube");
    let signature = header(&arrived, "x-danube-signature");
    let t: i64 = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    let secret = danube_hooks::signature::Secret::new(SECRET);
    assert_eq!(
        signature,
        danube_hooks::signature::sign(&secret, t, &arrived.body),
        "the delivery arrived signed over the bytes that arrived"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "success");
    assert_eq!(report["response_status"], 200);
}

#[test]
fn an_untrusted_certificate_is_one_line_naming_the_host_and_the_problem() {
    let receiver = TlsReceiver::start(&["127.0.0.1", "localhost"]);
    let output = trigger(&receiver.url("/webhooks/danube"), &[]);
    // A delivery that reached no receiver, as a refused connection is.
    let refused = {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        trigger(&format!("http://{addr}/"), &[])
    };
    assert_exit(&refused, 1);
    assert_exit(&output, 1);
    let expected = format!(
        "TLS to {} failed: the certificate is not trusted (UnknownIssuer); pass --cacert PEM \
         to trust its CA, or --insecure",
        receiver.addr
    );
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("TLS")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].ends_with(&expected), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "failed");
    receiver.assert_nothing_arrived();
}

#[test]
fn a_certificate_for_another_host_is_named_as_such() {
    let receiver = TlsReceiver::start(&["localhost"]);
    let output = trigger(
        &receiver.url("/webhooks/danube"),
        &["--cacert", receiver.ca()],
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains(&format!(
            "TLS to {} failed: the certificate is not for this host name (NotValidForName)",
            receiver.addr
        )),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("pass --cacert"),
        "{}",
        stderr(&output)
    );
    receiver.assert_nothing_arrived();
    // The same certificate under the name it was made for is trusted.
    let by_name = format!("https://localhost:{}/x", receiver.addr.port());
    assert_exit(&trigger(&by_name, &["--cacert", receiver.ca()]), 0);
    receiver.next_request();
}

#[test]
fn the_servers_own_self_signed_certificate_given_as_cacert_is_trusted_as_curl_does() {
    let (from, to) = valid_now();
    let receiver = TlsReceiver::self_signed(from, to);
    let url = receiver.localhost_url("/webhooks/danube");
    // Without it: a CA certificate served as the server's own, and the way
    // out is --cacert.
    let output = trigger(&url, &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains(
            "the certificate is rejected (CaUsedAsEndEntity); pass --cacert PEM to trust its CA"
        ),
        "{}",
        stderr(&output)
    );
    receiver.assert_nothing_arrived();

    let output = trigger(&url, &["--cacert", receiver.ca()]);
    assert_exit(&output, 0);
    assert_eq!(receiver.next_request().target, b"/webhooks/danube");
    // The same trust for forwarding.
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--forward-to",
        &url,
        "--cacert",
        receiver.ca(),
    ]);
    let body = common::event_body("workflow.completed", 1);
    assert_eq!(
        signed_post(listener.addr, SECRET, now(), &body).status(),
        200
    );
    assert_eq!(receiver.next_request().body, body);
}

#[test]
fn cacert_vouches_for_no_other_certificate_and_never_says_to_pass_it() {
    let (from, to) = valid_now();
    let receiver = TlsReceiver::self_signed(from, to);
    let dir = TempDir::new("https-other-self");
    let failure = |url: &str, cacert: &str| {
        let output = trigger(url, &["--cacert", cacert]);
        assert_exit(&output, 1);
        receiver.assert_nothing_arrived();
        let err = stderr(&output);
        let line = err
            .lines()
            .find(|l| l.contains("TLS to"))
            .unwrap_or_else(|| panic!("{err}"))
            .to_owned();
        assert!(!line.contains("pass --cacert"), "{line}");
        line
    };

    // Another server's self-signed certificate, for the same name.
    let (other, _) = self_signed_localhost(from, to);
    let other_pem = dir.join("other.pem");
    std::fs::write(&other_pem, other.pem()).unwrap();
    let url = receiver.localhost_url("/x");
    let line = failure(&url, other_pem.to_str().unwrap());
    assert!(
        line.ends_with(&format!(
            "the certificate is rejected (CaUsedAsEndEntity); --cacert {} holds neither the CA \
             that issued it nor this certificate itself; put one of them in that file, or pass \
             --insecure",
            other_pem.display()
        )),
        "{line}"
    );
    // Another CA entirely: not trusted.
    let (ca_params, ca_key) = test_ca("another CA");
    let ca_pem = dir.join("another-ca.pem");
    std::fs::write(&ca_pem, ca_params.self_signed(&ca_key).unwrap().pem()).unwrap();
    let line = failure(&url, ca_pem.to_str().unwrap());
    assert!(line.contains("(CaUsedAsEndEntity); --cacert"), "{line}");

    // The right certificate, asked for by a name it is not for.
    let line = failure(&receiver.url("/x"), receiver.ca());
    assert!(
        line.ends_with(
            "the certificate is not for this host name (NotValidForName); connect by a name it \
             was made for (see its subjectAltName), or pass --insecure"
        ),
        "{line}"
    );

    // The right certificate, expired.
    let expired = TlsReceiver::self_signed((2020, 1, 1), (2021, 1, 1));
    let output = trigger(&expired.localhost_url("/x"), &["--cacert", expired.ca()]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains(
            "the certificate has expired (Expired); renew it (or check this machine's clock), or \
             pass --insecure"
        ),
        "{}",
        stderr(&output)
    );
    expired.assert_nothing_arrived();
    // Not valid yet.
    let future = TlsReceiver::self_signed((2090, 1, 1), (2091, 1, 1));
    let output = trigger(&future.localhost_url("/x"), &["--cacert", future.ca()]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("the certificate is not valid yet (NotValidYet); renew it"),
        "{}",
        stderr(&output)
    );
    future.assert_nothing_arrived();
}

#[test]
fn a_leaf_whose_ca_is_not_in_cacert_says_what_the_file_lacks() {
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    let dir = TempDir::new("https-wrong-ca");
    let (ca_params, ca_key) = test_ca("not the issuer");
    let wrong = dir.join("wrong-ca.pem");
    std::fs::write(&wrong, ca_params.self_signed(&ca_key).unwrap().pem()).unwrap();
    let output = trigger(&receiver.url("/x"), &["--cacert", wrong.to_str().unwrap()]);
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "TLS to {} failed: the certificate is not trusted (UnknownIssuer); --cacert {} holds \
             neither the CA that issued it nor this certificate itself",
            receiver.addr,
            wrong.display()
        )),
        "{err}"
    );
    assert!(!err.contains("pass --cacert"), "{err}");
    receiver.assert_nothing_arrived();
}

#[test]
fn insecure_sends_without_checking_and_says_so_once() {
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    let output = trigger(&receiver.url("/hooks"), &["--insecure"]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert_eq!(
        err.matches("--insecure: https:// certificates are not checked")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(receiver.next_request().target, b"/hooks");
}

#[test]
fn a_cacert_that_cannot_be_used_is_a_usage_error() {
    let dir = TempDir::new("https-bad-ca");
    let not_pem = dir.join("ca.der");
    std::fs::write(&not_pem, [0x30, 0x82, 0x01, 0x0a]).unwrap();
    let key_only = dir.join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    let cases = [
        (missing.to_str().unwrap(), "cannot read --cacert"),
        (not_pem.to_str().unwrap(), "is not a PEM file"),
        (key_only.to_str().unwrap(), "holds no CERTIFICATE section"),
    ];
    for (path, expected) in cases {
        for command in [
            vec![
                "trigger",
                "workflow.completed",
                "--to",
                "https://127.0.0.1:9/",
            ],
            vec!["check", "https://127.0.0.1:9/", "--secret", SECRET],
        ] {
            let mut args = command.clone();
            args.extend(["--cacert", path]);
            let output = run(&args, b"");
            assert_exit(&output, 2);
            assert!(stderr(&output).contains(expected), "{}", stderr(&output));
            assert!(stderr(&output).contains(path), "{}", stderr(&output));
        }
    }
}

#[test]
fn listen_forwards_to_an_https_receiver_it_trusts_through_cacert() {
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    let target = receiver.url("/hooks");
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--secret",
        SECRET,
        "--forward-to",
        &target,
        "--cacert",
        receiver.ca(),
    ]);
    let body = common::event_body("workflow.completed", 1);
    let reply = signed_post(listener.addr, SECRET, now(), &body);
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body(), b"ok");
    let arrived = receiver.next_request();
    assert_eq!(arrived.target, b"/hooks");
    assert_eq!(arrived.body, body);
    let record = listener.next_record();
    assert_eq!(record["forward"]["status"], 200);
    assert_eq!(record["forward"]["url"], target);
}

#[test]
fn listen_without_the_ca_answers_502_and_records_the_tls_problem() {
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    let listener = Listener::start(&[
        "--json",
        "--no-store",
        "--forward-to",
        &receiver.url("/hooks"),
    ]);
    let body = common::event_body("workflow.completed", 2);
    let reply = signed_post(listener.addr, SECRET, now(), &body);
    assert_eq!(reply.status(), 502);
    let record = listener.next_record();
    let error = record["forward"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "TLS to {} failed: the certificate is not trusted",
            receiver.addr
        )),
        "{error}"
    );
    receiver.assert_nothing_arrived();
}

#[test]
fn listen_with_insecure_warns_in_its_banner() {
    let listener = Listener::start(&["--no-store", "--insecure"]);
    assert_eq!(
        listener
            .banner
            .matches("--insecure: https:// certificates are not checked")
            .count(),
        1,
        "{}",
        listener.banner
    );
}

#[test]
fn check_runs_over_https_with_cacert() {
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    let output = run(
        &[
            "check",
            &receiver.url("/webhooks/danube"),
            "--secret",
            SECRET,
            "--json",
            "--cacert",
            receiver.ca(),
        ],
        b"",
    );
    // The receiver answers 200 to everything, forged deliveries included:
    // the report says so (exit 1), which it can only know from answers.
    assert_exit(&output, 1);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cases = report["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut answers = 0;
    for case in cases {
        for got in case["got"].as_str().unwrap().split(", ") {
            assert_eq!(got, "200", "{case}");
            answers += 1;
        }
    }
    for _ in 0..answers {
        receiver.next_request();
    }
}

#[test]
fn check_against_an_untrusted_receiver_is_one_line_not_one_per_case() {
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    for json in [false, true] {
        let mut args = vec!["check", "--secret", SECRET];
        let url = receiver.url("/webhooks/danube");
        args.push(&url);
        if json {
            args.push("--json");
        }
        let output = run(&args, b"");
        // As a receiver that refuses: the check failed.
        assert_exit(&output, 1);
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "TLS to {} failed: the certificate is not trusted (UnknownIssuer)",
                receiver.addr
            )),
            "{err}"
        );
        assert!(output.stdout.is_empty(), "{}", common::stdout(&output));
    }
    receiver.assert_nothing_arrived();
}

#[test]
fn replay_to_an_https_receiver_with_cacert_and_without() {
    let dir = TempDir::new("https-replay");
    let store = dir.join("deliveries.jsonl").to_str().unwrap().to_string();
    let listener = Listener::start(&["--json", "--store", &store, "--secret", SECRET]);
    let body = common::event_body("workflow.completed", 3);
    assert_eq!(
        signed_post(listener.addr, SECRET, now(), &body).status(),
        200
    );
    listener.next_record();
    let receiver = TlsReceiver::start(&["127.0.0.1"]);
    let target = receiver.url("/replayed");
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay", "1", "--store", &store, "--to", &target, "--secret", SECRET,
        ];
        args.extend_from_slice(extra);
        run(&args, b"")
    };
    let trusted = replay(&["--cacert", receiver.ca()]);
    assert_exit(&trusted, 0);
    assert!(
        common::stdout(&trusted).starts_with("200"),
        "{}",
        common::stdout(&trusted)
    );
    let arrived = receiver.next_request();
    assert_eq!(arrived.target, b"/replayed");
    assert_eq!(arrived.body, body);

    let untrusted = replay(&[]);
    assert_exit(&untrusted, 1);
    assert!(
        common::stdout(&untrusted).contains(&format!(
            "TLS to {} failed: the certificate is not trusted (UnknownIssuer)",
            receiver.addr
        )),
        "{}",
        common::stdout(&untrusted)
    );
    receiver.assert_nothing_arrived();
}

#[test]
fn a_server_that_never_answers_the_handshake_is_a_timeout() {
    // Bound and listening, never accepted: the kernel completes TCP, and
    // the client's hello waits for an answer that never comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", silent.local_addr().unwrap());
    let output = trigger(&url, &["--timeout", "500ms", "--insecure"]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains(&format!("no answer from {url} within 500 ms")),
        "{}",
        stderr(&output)
    );
}
