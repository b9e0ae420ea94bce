//! Catch-up from Danube's log, black-box: `deliveries --redeliver` and
//! `listen --register --catch-up` against the fake Danube API
//! (`common::fake_danube`) and a real listener. What Danube made that
//! never arrived (or lost attempts) reaches the listener signed valid with
//! the saved secret and is recorded with `redelivery_of`; a second run
//! sends nothing; `deliveries` shows it as redelivered; a stranger's
//! header hides nothing; without a secret nothing is sent.

use crate::common;
use crate::danube_deliveries::{
    danube_with_webhook, deliveries, envelope, json_rows, kinds, record, row_of, send,
    storing_listener,
};

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use common::fake_danube::{self, FakeDanube};
use common::{
    Arrived, Capture, Listener, TempDir, assert_contains, assert_exit, exchange, request_bytes,
    stderr, stdout,
};
use serde_json::{Value, json};

const HEADER: &str = "X-Danube-Hooks-Redelivery-Of";
const PUBLIC: &str = "https://abc.ngrok.app";

/// `webhooks.json` under `config` as `listen --register` writes it, with
/// `webhook`'s secret for the API at `api_url`.
fn save_secret(config: &Path, api_url: &str, webhook: &str, secret: &str) {
    let folder = config.join("danube-hooks");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let saved = json!([{
        "id": webhook, "api_url": api_url, "url": "https://abc.ngrok.app/webhooks/danube",
        "events": ["workflow.completed"], "secret": secret, "origin": "register",
        "saved_at": "2026-11-30T16:00:00Z",
    }]);
    let file = folder.join("webhooks.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn now_micros() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `record`'s body, parsed.
fn body_json(record: &Value) -> Value {
    serde_json::from_slice(&common::record_body(record)).unwrap()
}

/// `payload` sent to `listener` naming `danube_id` in the header, under a
/// signature that is not valid: its record.
fn forge(listener: &Listener, payload: &Value, danube_id: &str) -> Value {
    let forged = request_bytes(
        "/webhooks/danube",
        &[
            ("Content-Type", "application/json"),
            ("X-Danube-Signature", "t=1,sha256=00"),
            (HEADER, danube_id),
        ],
        &serde_json::to_vec(payload).unwrap(),
    );
    assert_eq!(
        exchange(listener.addr, &forged, Duration::from_secs(10)).status(),
        200
    );
    listener.next_record()
}

/// `deliveries` shows the redelivered ones as such, missing nothing.
fn assert_shown_redelivered(danube: &FakeDanube, config: &Path, webhook: &str, store: &str) {
    let output = deliveries(danube, config, &[webhook, "--json", "--store", store]);
    assert_exit(&output, 0);
    let rows = json_rows(&output);
    for id in ["dlv_hidden", "dlv_never", "dlv_lost", "dlv_ok"] {
        assert!(kinds(row_of(&rows, id)).is_empty(), "{id}: {rows:#?}");
    }
    assert_eq!(
        row_of(&rows, "dlv_lost")["local"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        row_of(&rows, "dlv_never")["redelivered"]["verdict"],
        "valid",
        "{rows:#?}"
    );
    assert!(row_of(&rows, "dlv_ok").get("redelivered").is_none());
    let output = deliveries(danube, config, &[webhook, "--store", store]);
    assert_contains(&stdout(&output), "  + redelivered from Danube's log: #");
}

#[test]
fn what_never_arrived_is_redelivered_once_signed_and_recorded() {
    let (danube, webhook, secret) = danube_with_webhook();
    let config = TempDir::new("redeliver-config");
    save_secret(&config.0, &danube.url(), &webhook, &secret);
    let dir = TempDir::new("redeliver");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let listener = storing_listener(Path::new(store), &secret, &[]);

    let arrived = envelope("workflow.completed", 1);
    let lost = envelope("workflow.completed", 2);
    let never = envelope("workflow.failed", 3);
    let hidden = envelope("workflow.failed", 4);
    send(&listener, &secret, &serde_json::to_vec(&arrived).unwrap());
    send(&listener, &secret, &serde_json::to_vec(&lost).unwrap());
    // A stranger replays a delivery's payload naming it in the header,
    // without the secret: an attempt, never its redelivery.
    let forged = forge(&listener, &hidden, "dlv_hidden");
    assert!(forged.get("redelivery_of").is_none(), "{forged}");

    let made = now_micros();
    danube.set_deliveries(
        &webhook,
        vec![
            record(
                "dlv_hidden",
                &webhook,
                &hidden,
                "failed",
                3,
                Some(502),
                &made,
            ),
            record("dlv_never", &webhook, &never, "failed", 3, Some(502), &made),
            record("dlv_lost", &webhook, &lost, "success", 2, Some(200), &made),
            record("dlv_ok", &webhook, &arrived, "success", 1, Some(200), &made),
        ],
    );

    // No --to: the listener that writes the store, where its newest arrived.
    let output = deliveries(
        &danube,
        &config.0,
        &[&webhook, "--redeliver", "--store", store],
    );
    assert_exit(&output, 0);
    let out = stdout(&output);
    let to = format!("http://{}/webhooks/danube", listener.addr);
    for line in [
        "redelivered dlv_lost (workflow.completed, missing_attempts): 200 in ".to_owned(),
        "redelivered dlv_never (workflow.failed, never_arrived): 200 in ".to_owned(),
        "redelivered dlv_hidden (workflow.failed, missing_attempts): 200 in ".to_owned(),
        format!("3 of 3 redelivered to {to}."),
    ] {
        assert_contains(&out, &line);
    }
    // Oldest first, as Danube made them; each signed valid, named, whole.
    for (id, payload) in [
        ("dlv_lost", &lost),
        ("dlv_never", &never),
        ("dlv_hidden", &hidden),
    ] {
        let record = listener.next_record();
        assert_eq!(record["redelivery_of"], id, "{record}");
        assert_eq!(record["signature"]["verdict"], "valid", "{record}");
        assert_eq!(&body_json(&record), payload);
        assert_eq!(record["path"], "/webhooks/danube");
        let shown = common::run(&["show", &record["id"].to_string(), "--store", store], b"");
        assert_contains(
            &stdout(&shown),
            &format!("redelivery of Danube's delivery {id} (from its log)"),
        );
    }

    // A second run sends nothing.
    let output = deliveries(
        &danube,
        &config.0,
        &[&webhook, "--redeliver", "--store", store],
    );
    assert_exit(&output, 0);
    assert_contains(
        &stdout(&output),
        "Nothing to redeliver; 3 redelivered before, not sent again.",
    );
    let next = send(&listener, &secret, b"after the second run");
    assert_eq!(
        next["event"],
        Value::Null,
        "nothing came in between: {next}"
    );

    assert_shown_redelivered(&danube, &config.0, &webhook, store);
}

#[test]
fn without_a_secret_nothing_is_sent_and_the_message_says_how_to_give_one() {
    let (danube, webhook, secret) = danube_with_webhook();
    let config = TempDir::new("redeliver-no-secret");
    let store = config.join("deliveries.jsonl");
    std::fs::write(&store, b"").unwrap();
    let store = store.to_str().unwrap();
    let never = envelope("workflow.failed", 1);
    danube.set_deliveries(
        &webhook,
        vec![record(
            "dlv_1",
            &webhook,
            &never,
            "failed",
            3,
            None,
            &now_micros(),
        )],
    );
    let receiver = Capture::start();
    let to = receiver.url("/hooks");

    let output = deliveries(
        &danube,
        &config.0,
        &[&webhook, "--redeliver", "--to", &to, "--store", store],
    );
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("signing secret of webhook {webhook} is not saved"))
            && err.contains("--secret whsec_…")
            && err.contains("nothing was sent"),
        "{err}"
    );
    receiver.assert_untouched("a redelivery without a secret");
    assert!(danube.seen_of("GET", "/v1/webhooks/").is_empty());

    for (bad, said) in [
        (&["--since", "2"][..], "--since"),
        (&["--since", "31d"][..], "--since"),
        (&["--to", "ftp://x"][..], "--to"),
        (&["--json"][..], "--json"),
    ] {
        let mut args = vec![webhook.as_str(), "--redeliver", "--secret", &secret];
        args.extend_from_slice(bad);
        let output = deliveries(&danube, &config.0, &args);
        assert_exit(&output, 2);
        assert_contains(&stderr(&output), said);
    }
    for without in [&["--since", "1h"][..], &["--secret", &secret][..]] {
        let mut args = vec![webhook.as_str()];
        args.extend_from_slice(without);
        let output = deliveries(&danube, &config.0, &args);
        assert_exit(&output, 2);
        assert_contains(&stderr(&output), "--redeliver");
        assert!(!stderr(&output).contains(&secret));
    }

    // Given: sent, signed with it, to the receiver named.
    let output = deliveries(
        &danube,
        &config.0,
        &[
            &webhook,
            "--redeliver",
            "--secret",
            &secret,
            "--to",
            &to,
            "--store",
            store,
            "--since",
            "1h",
        ],
    );
    assert_exit(&output, 0);
    let arrived = Arrived::parse(&receiver.next_request(Duration::from_secs(5)).unwrap());
    assert_eq!(arrived.target, b"/hooks");
    let header = |name: &str| {
        arrived
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .unwrap()
    };
    assert_eq!(header("x-danube-hooks-redelivery-of"), "dlv_1");
    let verify = common::run(
        &[
            "verify",
            "--secret",
            &secret,
            "--header",
            &header("x-danube-signature"),
            "-",
        ],
        &arrived.body,
    );
    assert_exit(&verify, 0);
    assert_eq!(
        serde_json::from_slice::<Value>(&arrived.body).unwrap(),
        never
    );
}

/// Without `--to`: the path is the webhook's as Danube has it, never the
/// one a stranger's request chose; a stopped listener's port, someone
/// else's now, gets nothing; a 2xx from a listener that records no
/// redelivery (here one verifying with another secret) is a failure.
#[test]
fn without_to_only_the_live_listener_gets_it_on_the_webhooks_path_and_records_it() {
    let (danube, webhook, secret) = danube_with_webhook();
    let config = TempDir::new("redeliver-live-config");
    save_secret(&config.0, &danube.url(), &webhook, &secret);
    let dir = TempDir::new("redeliver-live");
    let store = dir.join("deliveries.jsonl");
    let store = store.to_str().unwrap();
    let mut listener = storing_listener(Path::new(store), &secret, &[]);
    let stranger = request_bytes(
        "/elsewhere?x=1",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    exchange(listener.addr, &stranger, Duration::from_secs(10));
    assert_eq!(listener.next_record()["path"], "/elsewhere?x=1");
    let made = now_micros();
    let first = envelope("workflow.failed", 1);
    danube.set_deliveries(
        &webhook,
        vec![record(
            "dlv_1",
            &webhook,
            &first,
            "failed",
            3,
            Some(502),
            &made,
        )],
    );
    let redeliver = || {
        deliveries(
            &danube,
            &config.0,
            &[&webhook, "--redeliver", "--store", store],
        )
    };
    let output = redeliver();
    assert_exit(&output, 0);
    assert_contains(
        &stdout(&output),
        &format!(
            "1 of 1 redelivered to http://{}/webhooks/danube.",
            listener.addr
        ),
    );
    let redelivered = listener.next_record();
    assert_eq!(redelivered["redelivery_of"], "dlv_1", "{redelivered}");
    assert_eq!(redelivered["path"], "/webhooks/danube", "{redelivered}");

    // Stopped, and someone else holds its port now.
    let addr = listener.addr;
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    let impostor = std::net::TcpListener::bind(addr).unwrap();
    impostor.set_nonblocking(true).unwrap();
    let second = envelope("workflow.failed", 2);
    danube.set_deliveries(
        &webhook,
        vec![
            record("dlv_2", &webhook, &second, "failed", 3, Some(502), &made),
            record("dlv_1", &webhook, &first, "failed", 3, Some(502), &made),
        ],
    );
    let output = redeliver();
    assert_exit(&output, 2);
    let err = stderr(&output);
    for said in [
        "no listener is running",
        "listen --store",
        "--to URL",
        "nothing was sent",
    ] {
        assert_contains(&err, said);
    }
    assert!(
        matches!(impostor.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the impostor on the stopped listener's port was connected to"
    );
    drop(impostor);

    // A listener on the store that cannot tell the redelivery from a
    // stranger's (another secret): it answers 200 and records no
    // `redelivery_of`, so nothing was redelivered.
    let other = "whsec_not_this_webhooks_secret_0000";
    let wrong = storing_listener(Path::new(store), other, &[]);
    send(&wrong, other, b"since it started");
    let output = redeliver();
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert_contains(
        &out,
        "redelivered dlv_2 (workflow.failed, never_arrived): 200 in ",
    );
    assert_contains(
        &out,
        &format!(
            "0 of 1 redelivered to http://{}/webhooks/danube; 1 redelivered before, not sent \
             again; dlv_2 answered but not recorded here: is the listener on http://{}/webhooks/danube \
             the one writing this store",
            wrong.addr, wrong.addr
        ),
    );
    let unmarked = wrong.next_record();
    assert!(unmarked.get("redelivery_of").is_none(), "{unmarked}");
}

#[test]
fn listen_catch_up_redelivers_what_danube_made_since_the_last_stop() {
    let danube = FakeDanube::start();
    let config = TempDir::new("catch-up-config");
    let dir = TempDir::new("catch-up");
    let store = dir.join("deliveries.jsonl");
    let api = danube.url();
    let args = |catch_up: bool| {
        let mut args = vec![
            "--json",
            "--store",
            store.to_str().unwrap(),
            "--register",
            "--api-url",
            &api,
            "--no-verify-url",
            "--public-url",
            PUBLIC,
        ];
        if catch_up {
            args.push("--catch-up");
        }
        args
    };
    let before_last_stop = now_micros();
    let an_hour_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut first = Listener::start_with(fake_danube::danube_hooks(&config.0), &args(false));
    let webhook = danube.webhooks()[0].clone();
    let (id, secret) = (
        webhook["id"].as_str().unwrap().to_owned(),
        webhook["secret"].as_str().unwrap().to_owned(),
    );
    let arrived = envelope("workflow.completed", 1);
    send(&first, &secret, &serde_json::to_vec(&arrived).unwrap());
    assert_eq!(first.signal_and_wait("TERM"), Some(0));

    let older = envelope("workflow.failed", 2);
    let while_down = envelope("workflow.failed", 3);
    danube.set_deliveries(
        &id,
        vec![
            record(
                "dlv_down",
                &id,
                &while_down,
                "failed",
                3,
                Some(502),
                &now_micros(),
            ),
            record(
                "dlv_ok",
                &id,
                &arrived,
                "success",
                1,
                Some(200),
                &before_last_stop,
            ),
            // Made an hour before the last stop: not this catch-up's to send.
            record(
                "dlv_older",
                &id,
                &older,
                "failed",
                3,
                Some(502),
                &an_hour_ago,
            ),
        ],
    );
    let second = Listener::start_with(fake_danube::danube_hooks(&config.0), &args(true));
    // Oldest first: had dlv_older been sent, it would come first.
    let record = second.next_record();
    assert_eq!(record["redelivery_of"], "dlv_down", "{record}");
    assert_eq!(record["signature"]["verdict"], "valid", "{record}");
    assert_eq!(record["path"], "/webhooks/danube");
    assert_eq!(body_json(&record), while_down);
    // It runs beside the listener, which goes on receiving.
    let next = send(&second, &secret, b"while catching up");
    assert_eq!(next["event"], Value::Null, "{next}");

    let output = deliveries(
        &danube,
        &config.0,
        &[&id, "--json", "--store", store.to_str().unwrap()],
    );
    assert_exit(&output, 0);
    let rows = json_rows(&output);
    assert!(kinds(row_of(&rows, "dlv_down")).is_empty(), "{rows:#?}");
    assert_eq!(kinds(row_of(&rows, "dlv_older")), ["never_arrived"]);

    let refused = common::run(&["listen", "--catch-up", "--no-store"], b"");
    assert_exit(&refused, 2);
}
