//! Memory that does not grow with the store: `log` on a
//! store of 200 MB, with filters that read every record and with `--last`,
//! and `listen` starting on it, stay far below the store's size.
//!
//! A test binary of its own, with one test: `log` runs in this process, so
//! the process's peak (`VmHWM`) is this test's alone.

// The suite's support module (tests/suite.rs), of which this binary uses a
// few helpers; the suite uses them all, so an unused one is reported there.
#[allow(dead_code)]
mod common;

use std::io::{BufWriter, Write as _};
use std::path::Path;

use common::{Listener, TempDir, now, signed_post};

const SECRET: &str = "whsec_memory_test";
/// The store built: far more than the bound.
const STORE_BYTES: u64 = 200 * 1024 * 1024;
/// What `log` and `listen` may peak at.
const BOUND_KIB: u64 = 64 * 1024;

/// The peak resident size (`VmHWM`) of process `pid` ("self" for this one), in KiB.
fn peak_kib(pid: &str) -> u64 {
    common::proc_status_kib(pid, "VmHWM")
}

/// One real record of about 1 MB (a 700 KiB body), as the listener wrote it.
fn one_big_line(dir: &TempDir) -> String {
    let store = dir.join("one.jsonl");
    let mut listener = Listener::start(&[
        "--no-tui",
        "--secret",
        SECRET,
        "--store",
        store.to_str().unwrap(),
    ]);
    let body = format!(
        r#"{{"event":"workflow.failed","pad":"{}"}}"#,
        "y".repeat(700 * 1024)
    );
    assert_eq!(
        signed_post(listener.addr, SECRET, now(), body.as_bytes()).status(),
        200
    );
    listener.signal_and_wait("TERM");
    let line = std::fs::read_to_string(&store).unwrap();
    line.trim_end().to_string()
}

/// Copies of `line` with ids 1, 2, … until the file holds `bytes`.
fn build_store(path: &Path, line: &str, bytes: u64) -> u64 {
    let rest = line
        .strip_prefix("{\"id\":1,")
        .expect("the record's id comes first");
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut written, mut id) = (0, 0);
    while written < bytes {
        id += 1;
        let head = format!("{{\"id\":{id},");
        out.write_all(head.as_bytes()).unwrap();
        out.write_all(rest.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
        written += (head.len() + rest.len() + 1) as u64;
    }
    out.flush().unwrap();
    id
}

#[test]
fn log_and_listen_on_a_200_mb_store_take_memory_that_does_not_grow_with_it() {
    let dir = TempDir::new("memory");
    let store = dir.join("deliveries.jsonl");
    let line = one_big_line(&dir);
    let last_id = build_store(&store, &line, STORE_BYTES);
    let store_arg = store.to_str().unwrap();
    assert!(std::fs::metadata(&store).unwrap().len() >= STORE_BYTES);

    // In this process: a filter that matches nothing reads every record,
    // forwards, and with --last, backwards from the end (nothing printed);
    // a query on a body field parses every body on the way.
    for args in [
        &["log", "--store", store_arg, "--verdict", "stale"][..],
        &[
            "log",
            "--store",
            store_arg,
            "--verdict",
            "stale",
            "--last",
            "3",
        ][..],
        // A query that parses every body and matches none.
        &["log", "--store", store_arg, "--query", "data.absent=1"][..],
    ] {
        let cli = <danube_hooks::cli::Cli as clap::Parser>::parse_from(
            std::iter::once("danube-hooks").chain(args.iter().copied()),
        );
        danube_hooks::run(cli).unwrap();
    }
    let log_peak = peak_kib("self");
    println!("log peaked at {log_peak} KiB");
    assert!(
        log_peak < BOUND_KIB,
        "log peaked at {log_peak} KiB on a {} KiB store",
        STORE_BYTES / 1024
    );

    // A listener opening the store (recovery, the next id, attempts seeded
    // from the last records) and taking one more delivery.
    let listener = Listener::start(&["--no-tui", "--secret", SECRET, "--store", store_arg]);
    let reply = signed_post(listener.addr, SECRET, now(), b"{\"event\":\"x\"}");
    assert_eq!(
        reply.header("x-danube-hooks-delivery"),
        Some(&*(last_id + 1).to_string())
    );
    let listen_peak = peak_kib(&listener.child.id().to_string());
    println!("listen peaked at {listen_peak} KiB");
    assert!(
        listen_peak < BOUND_KIB,
        "listen peaked at {listen_peak} KiB on a {} KiB store",
        STORE_BYTES / 1024
    );
}
