//! Black-box: the delivery log under restarts and torn writes.

use crate::common;

use std::time::Duration;

use common::{Listener, TempDir, event_body, exchange, request_bytes};

const WAIT: Duration = Duration::from_secs(10);

fn ids_in(path: &std::path::Path) -> Vec<u64> {
    common::ids_of_lines(&std::fs::read_to_string(path).unwrap())
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
    // Headless output shows what arrives, never the store's earlier
    // records (the dashboard opens with those).
    assert_eq!(
        listener.next_record()["id"],
        4,
        "the first line is the new record"
    );
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
fn a_line_longer_than_any_record_is_skipped_unread_by_listen_and_log() {
    let dir = TempDir::new("huge-line");
    let store = dir.join("deliveries.jsonl");
    let path = store.to_str().unwrap();
    {
        let listener = Listener::start(&["--json", "--store", path]);
        for n in 0..2 {
            exchange(
                listener.addr,
                &request_bytes("/", &[], &event_body("x", n)),
                WAIT,
            );
        }
    }
    // Record 1, a 2 GiB line of zeros (sparse: nothing on disk), record 2.
    let whole = std::fs::read_to_string(&store).unwrap();
    let (first, second) = whole.split_once('\n').unwrap();
    std::fs::write(&store, format!("{first}\n")).unwrap();
    // Just past the longest line a reader takes whole (2 GiB and a MiB):
    // each pass over it below costs seconds of (zero-filled) reads.
    let huge: u64 = (2 << 30) + (2 << 20);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&store)
        .unwrap();
    file.set_len(first.len() as u64 + 1 + huge).unwrap();
    std::io::Write::write_all(&mut file, format!("\n{second}").as_bytes()).unwrap();
    drop(file);

    // Seeding and the next id read back from the end: they stop short of
    // the huge line, so the listener answers at once.
    let listener = Listener::start(&["--json", "--store", path]);
    let answer = exchange(
        listener.addr,
        &request_bytes("/", &[], &event_body("x", 2)),
        Duration::from_secs(3),
    );
    assert_eq!(answer.status(), 200);
    assert_eq!(listener.next_record()["id"], 3);
    drop(listener);

    // `log` reads forwards past it, and `log --last` backwards, each
    // naming it as skipped.
    for last in [&[][..], &["--last", "10"][..]] {
        let out = common::run(
            &[&["log", "--store", path, "--json"][..], last].concat(),
            b"",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            common::ids_of_lines(&stdout),
            [1, 2, 3],
            "{last:?}: {stdout}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{huge} bytes long, longer than any record")),
            "{last:?}: {stderr}"
        );
    }
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

// SIGKILL while deliveries flow, then a restart that keeps every answered
// delivery and cuts a torn tail: tests/reliability.rs.
