//! Black-box: the delivery log under restarts, torn writes and SIGKILL.

mod common;

use base64::Engine as _;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Listener, TempDir, event_body, exchange, request_bytes};

const WAIT: Duration = Duration::from_secs(10);

fn ids_in(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn records_are_written_before_the_answer_and_ids_rise_across_restarts() {
    let dir = TempDir::new("restart");
    let store = dir.join("nested/dir/deliveries.jsonl");
    let path = store.to_str().unwrap();
    {
        let listener = Listener::start(&["--json", "--store", path]);
        assert!(listener.banner.contains(path), "{}", listener.banner);
        for n in 0..3 {
            exchange(
                listener.addr,
                &request_bytes("/", &[], &event_body("x", n)),
                WAIT,
            );
            // Written before the answer: the line is there as soon as we have it.
            assert_eq!(ids_in(&store).len() as u64, n + 1);
        }
    }
    let listener = Listener::start(&["--json", "--store", path]);
    exchange(
        listener.addr,
        &request_bytes("/", &[], &event_body("x", 9)),
        WAIT,
    );
    assert_eq!(ids_in(&store), [1, 2, 3, 4]);
}

#[test]
fn a_torn_last_line_is_reported_and_cut() {
    let dir = TempDir::new("torn");
    let store = dir.join("deliveries.jsonl");
    let path = store.to_str().unwrap();
    {
        let listener = Listener::start(&["--json", "--store", path]);
        exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT);
    }
    let whole = std::fs::read(&store).unwrap();
    std::fs::write(
        &store,
        [whole.as_slice(), b"{\"id\":2,\"received_at\":\"20"].concat(),
    )
    .unwrap();
    let listener = Listener::start(&["--json", "--store", path]);
    assert!(listener.banner.contains("torn"), "{}", listener.banner);
    assert!(
        listener.banner.contains("cut 25 bytes"),
        "{}",
        listener.banner
    );
    exchange(listener.addr, &request_bytes("/", &[], b"{}"), WAIT);
    assert_eq!(ids_in(&store), [1, 2]);
}

#[test]
fn an_unwritable_store_is_a_clear_error_at_start() {
    let output = common::run(
        &[
            "listen",
            "--port",
            "0",
            "--store",
            "/proc/danube-hooks/deliveries.jsonl",
        ],
        b"",
    );
    common::assert_exit(&output, 2);
    let message = common::stderr(&output);
    assert!(
        message.contains("/proc/danube-hooks/deliveries.jsonl"),
        "{message}"
    );
}

#[test]
fn sigkill_while_deliveries_flow_loses_no_answered_delivery() {
    let dir = TempDir::new("sigkill");
    let store = dir.join("deliveries.jsonl");
    let path = store.to_str().unwrap().to_string();
    let mut listener = Listener::start(&["--json", "--store", &path]);
    let addr = listener.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|worker| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut answered = BTreeSet::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = event_body("tool.execution.completed", worker * 1_000_000 + n);
                    let reply = exchange(
                        addr,
                        &request_bytes("/", &[], &body),
                        Duration::from_secs(2),
                    );
                    if let common::Reply::Http { status: 200, .. } = reply {
                        answered.insert(String::from_utf8(body).unwrap());
                    }
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    listener.child.kill().unwrap(); // SIGKILL
    listener.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let answered: BTreeSet<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert!(
        answered.len() > 20,
        "only {} deliveries answered before the kill",
        answered.len()
    );

    // Restart on the same file: it opens (cutting a torn tail if any) and
    // every delivery that got a 200 is in it.
    let restarted = Listener::start(&["--json", "--store", &path]);
    drop(restarted);
    let stored: BTreeSet<String> = std::fs::read_to_string(&store)
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value =
                serde_json::from_str(line).expect("every line is whole");
            let body = base64::engine::general_purpose::STANDARD
                .decode(record["body_b64"].as_str().unwrap())
                .unwrap();
            String::from_utf8(body).unwrap()
        })
        .collect();
    let lost: Vec<_> = answered.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} answered deliveries missing from the store, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}
