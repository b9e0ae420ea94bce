//! `listen --store postgres://…`: the listener's rows, written by group
//! commit, against the real binary and a real PostgreSQL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::postgres::{self, Cluster};
use crate::common::{Listener, SECRET, event_body, now, signed_post};

const EVENT: &str = "tool.completed";

/// Each row's id and listener column.
fn listeners(cluster: &Cluster, db: &str) -> BTreeMap<u64, String> {
    cluster
        .sql(
            db,
            "SELECT id || ' ' || listener FROM danube_hooks.deliveries ORDER BY id",
        )
        .lines()
        .map(|line| {
            let (id, name) = line.split_once(' ').unwrap();
            (id.parse().unwrap(), name.to_owned())
        })
        .collect()
}

/// Wait up to `within` for `check` to hold.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// No process's command line holds `secret` (`ps` shows exactly these).
fn assert_not_in_any_command_line(secret: &str) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(secret),
                "the password is on the command line of {}",
                entry.path().display()
            );
        }
    }
}

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn two_listeners_share_one_table_with_unique_ids_and_their_names() {
    let cluster = postgres::shared();
    let db = cluster.database("two_listeners");
    let url = cluster.url(&db);
    let ann = Listener::start_with(
        cluster.command(),
        &[
            "--json",
            "--secret",
            SECRET,
            "--store",
            &url,
            "--name",
            "ann@laptop",
        ],
    );
    assert!(
        ann.banner
            .contains(&format!("store:    {url} (shared, as ann@laptop")),
        "{}",
        ann.banner
    );
    // A row older than the age and one younger, before the second listener
    // starts: its first sweep, as it starts, deletes the old one only.
    cluster.sql(
        &db,
        "INSERT INTO danube_hooks.deliveries (id, received_at, listener, verdict, attempt, record)
         VALUES (nextval('danube_hooks.delivery_id'), now() - interval '30 days', 'old', 'valid', 1, '{}'),
                (nextval('danube_hooks.delivery_id'), now() - interval '2 days', 'young', 'valid', 1, '{}')",
    );
    let bob = Listener::start_with(
        cluster.command(),
        &[
            "--json",
            "--secret",
            SECRET,
            "--store",
            &url,
            "--name",
            "bob@desk",
            "--store-max-age",
            "7d",
        ],
    );
    assert!(
        bob.banner.contains("rows older than 1w are deleted"),
        "{}",
        bob.banner
    );
    assert!(
        eventually(Duration::from_secs(10), || cluster.sql(
            &db,
            "SELECT string_agg(listener, ',') FROM danube_hooks.deliveries"
        ) == "young"),
        "--store-max-age 7d deleted the 30-day-old row and kept the 2-day-old one"
    );
    cluster.sql(&db, "DELETE FROM danube_hooks.deliveries");

    let mut printed = BTreeMap::new();
    for n in 0..10 {
        for (listener, name) in [(&ann, "ann@laptop"), (&bob, "bob@desk")] {
            let reply = signed_post(listener.addr, SECRET, now(), &event_body(EVENT, n));
            assert_eq!(reply.status(), 200);
            let line = listener.next_line(Duration::from_secs(10));
            let record: serde_json::Value = serde_json::from_str(&line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(
                reply.header("x-danube-hooks-delivery"),
                Some(id.to_string().as_str())
            );
            assert_eq!(record["listener"], name);
            assert!(
                printed.insert(id, (name, line)).is_none(),
                "id {id} given twice"
            );
        }
    }
    let columns = listeners(cluster, &db);
    let records = cluster.sql(
        &db,
        "SELECT record FROM danube_hooks.deliveries ORDER BY id",
    );
    assert_eq!(columns.len(), 20, "one row per delivery");
    for ((id, (name, line)), ((column_id, column_name), record)) in
        printed.iter().zip(columns.iter().zip(records.lines()))
    {
        assert_eq!((id, *name), (column_id, column_name.as_str()));
        assert_eq!(record, line, "the row's record is the line --json printed");
    }
    assert_not_in_any_command_line(&cluster.password);
    for listener in [&ann, &bob] {
        assert!(!listener.banner.contains(&cluster.password));
    }
}
