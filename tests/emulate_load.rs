//! The load: 1,000 events fanned out by `danube-hooks
//! emulate` to 3 webhooks (one answering 200, one 500, one refusing
//! connections) end as 3,000 delivery records with the right attempts and
//! statuses, in a bounded time; a second thousand leaves the emulator's
//! memory where the first left it, its log being full (`--keep`).

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::emulator::{Emulator, KEY};
use common::{Capture, TempDir, proc_status_kib};
use serde_json::Value;

const EVENTS: usize = 1000;

/// A loopback port nothing listens on (bound, then let go).
fn refused_url() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://{addr}/webhooks/danube")
}

/// What each webhook's deliveries must end as: status, attempts, the last
/// answer's status.
struct Expected {
    status: &'static str,
    attempts: u64,
    response_status: Value,
}

#[test]
fn a_thousand_events_to_three_webhooks_end_as_three_thousand_right_records() {
    let dir = TempDir::new("emulate-load");
    let emulator = Emulator::start(
        &dir.join("state.json"),
        &[
            "--allow-http",
            "--json",
            "--backoff",
            "10ms",
            "--timeout",
            "2s",
            "--keep",
            "1000",
        ],
    );
    let ok = Capture::start();
    let failing = Capture::answering_status(500);
    let event = ["workflow.completed"];
    let mut expected = HashMap::new();
    for (url, want) in [
        (
            ok.url("/webhooks/danube"),
            Expected {
                status: "success",
                attempts: 1,
                response_status: Value::from(200),
            },
        ),
        (
            failing.url("/webhooks/danube"),
            Expected {
                status: "failed",
                attempts: 3,
                response_status: Value::from(500),
            },
        ),
        (
            refused_url(),
            Expected {
                status: "failed",
                attempts: 3,
                response_status: Value::Null,
            },
        ),
    ] {
        let created = emulator.create(&url, &event);
        expected.insert(created["id"].as_str().unwrap().to_string(), want);
    }

    // The log keeps 1,000 records per webhook: full after the first
    // round, so the second one leaves it no bigger, and the emulator's
    // memory must not grow with its 3,000 finished deliveries.
    round(&emulator, &expected);
    assert_eq!(ok.connections(), EVENTS, "the 200 receiver got each once");
    assert_eq!(failing.connections(), 3 * EVENTS, "the 500 receiver thrice");
    let pid = emulator.child.id().to_string();
    let after_one = proc_status_kib(&pid, "VmRSS");
    round(&emulator, &expected);
    assert_eq!(ok.connections(), 2 * EVENTS);
    assert_eq!(failing.connections(), 6 * EVENTS);
    let after_two = proc_status_kib(&pid, "VmRSS");
    assert!(
        after_two < after_one + 16 * 1024 && after_two < 200 * 1024,
        "emulate grew from {after_one} KiB to {after_two} KiB over 3,000 finished deliveries"
    );
}

/// `EVENTS` events, each delivered to every webhook of `expected`, all
/// followed to their end and checked, on stdout and in the API's log.
fn round(emulator: &Emulator, expected: &HashMap<String, Expected>) {
    let started = Instant::now();
    let deliveries = send_events(emulator);
    let (attempts_seen, finals) = follow_attempts(emulator, &deliveries, started);
    for (id, last) in &finals {
        let want = &expected[&deliveries[id]];
        assert_eq!(last["status"], want.status, "{last}");
        assert_eq!(last["attempt"], want.attempts, "{last}");
        assert_eq!(last["response_status"], want.response_status, "{last}");
        assert_eq!(attempts_seen[id], want.attempts, "{last}");
    }

    // Danube's delivery log agrees (its newest 100, as the API pages).
    for (webhook, want) in expected {
        let path = format!("/v1/webhooks/{webhook}/deliveries?limit=100");
        let (status, records) = emulator.call("GET", &path, Some(KEY), None);
        assert_eq!(status, 200, "{records}");
        let records = records.as_array().unwrap();
        assert_eq!(records.len(), 100);
        for record in records {
            assert_eq!(record["webhook_id"], webhook.as_str(), "{record}");
            assert_eq!(record["status"], want.status, "{record}");
            assert_eq!(record["attempts"], want.attempts, "{record}");
            assert_eq!(record["response_status"], want.response_status, "{record}");
            assert!(record["delivered_at"].is_string(), "{record}");
            assert_eq!(
                finals[record["id"].as_str().unwrap()]["status"],
                want.status
            );
        }
    }
}

/// The events, one by one; delivery id → webhook id, from the answers.
fn send_events(emulator: &Emulator) -> HashMap<String, String> {
    let mut deliveries = HashMap::new();
    for n in 0..EVENTS {
        let body = format!(r#"{{"event":"workflow.completed","data":{{"n":{n}}}}}"#);
        let (status, answer) = emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(&body));
        assert_eq!(status, 202, "event {n}: {answer}");
        let made = answer["deliveries"].as_array().unwrap();
        assert_eq!(
            made.len(),
            3,
            "event {n}: one delivery per webhook: {answer}"
        );
        for delivery in made {
            let previous = deliveries.insert(
                delivery["id"].as_str().unwrap().to_string(),
                delivery["webhook_id"].as_str().unwrap().to_string(),
            );
            assert!(previous.is_none(), "delivery ids are unique: {delivery}");
        }
    }
    assert_eq!(deliveries.len(), 3 * EVENTS);

    deliveries
}

/// Every attempt is one JSON line on stdout: follow them until each
/// delivery has its final one; how many attempts each had, and its final
/// line. Generous: the work is about 7,000 loopback attempts, 64 at a
/// time, with 10 ms between retries.
fn follow_attempts(
    emulator: &Emulator,
    deliveries: &HashMap<String, String>,
    started: Instant,
) -> (HashMap<String, u64>, HashMap<String, Value>) {
    let deadline = started + Duration::from_mins(4);
    let mut attempts_seen: HashMap<String, u64> = HashMap::new();
    let mut finals: HashMap<String, Value> = HashMap::new();
    while finals.len() < deliveries.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = emulator.next_line(left).unwrap_or_else(|| {
            panic!(
                "{} of {} deliveries unfinished after {:?}",
                deliveries.len() - finals.len(),
                deliveries.len(),
                started.elapsed()
            )
        });
        let attempt: Value = serde_json::from_str(&line).unwrap_or_else(|err| {
            panic!("--json prints one object per line ({err}): {line}");
        });
        let id = attempt["delivery_id"].as_str().unwrap().to_string();
        assert_eq!(
            attempt["webhook_id"].as_str(),
            deliveries.get(&id).map(String::as_str),
            "an attempt of a delivery the emulator announced: {line}"
        );
        let seen = attempts_seen.entry(id.clone()).or_default();
        *seen += 1;
        assert_eq!(attempt["attempt"], *seen, "attempts in order: {line}");
        if attempt["status"] != "pending" {
            assert!(finals.insert(id, attempt).is_none(), "one final line each");
        }
    }
    (attempts_seen, finals)
}
