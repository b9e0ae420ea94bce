//! `listen --store postgres://…`: the listener's rows, written by group
//! commit, against the real binary and a real PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::postgres::{self, Cluster};
use crate::common::{
    Listener, Reply, SECRET, assert_exit, event_body, exchange, now, record_body, request_bytes,
    run_command, signed_post, stderr,
};

const EVENT: &str = "tool.completed";

/// The bodies of the table's records.
fn stored_bodies(cluster: &Cluster, db: &str) -> BTreeSet<Vec<u8>> {
    cluster
        .sql(db, "SELECT record FROM danube_hooks.deliveries")
        .lines()
        .map(|line| record_body(&serde_json::from_str(line).unwrap()))
        .collect()
}

/// What the posting threads saw: each 2xx's body, and each other answer's
/// status and rule header.
#[derive(Default)]
struct Seen {
    answered: Vec<(Instant, Vec<u8>)>,
    refused: Vec<(Instant, u16, String)>,
}

/// `threads` clients posting distinct deliveries to `addr` as fast as they
/// can (each on a fresh connection) until stopped, or until the listener is
/// gone; `pause` between posts.
struct Posting {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Posting {
    fn start(addr: SocketAddr, threads: u64, pause: Duration) -> Posting {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|thread| {
                let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
                std::thread::spawn(move || post_until_stopped(addr, thread, pause, &seen, &stop))
            })
            .collect();
        Posting {
            seen,
            stop,
            threads,
        }
    }

    /// Whether a delivery was answered 2xx after `at`, waiting up to 20 s.
    fn answered_after(&self, at: Instant) -> bool {
        eventually(Duration::from_secs(20), || {
            self.seen
                .lock()
                .unwrap()
                .answered
                .iter()
                .any(|(answered, _)| *answered > at)
        })
    }

    /// Stop the clients; what they saw.
    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Delivery `n` of `event`, unsigned, posted to `addr`; the answer.
fn post_event(addr: SocketAddr, event: &str, n: u64) -> Reply {
    let body = event_body(event, n);
    let request = request_bytes("/hooks", &[("Content-Type", "application/json")], &body);
    exchange(addr, &request, Duration::from_secs(10))
}

fn post_until_stopped(
    addr: SocketAddr,
    thread: u64,
    pause: Duration,
    seen: &Mutex<Seen>,
    stop: &AtomicBool,
) {
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let n = thread * 1_000_000 + n;
        let reply = post_event(addr, EVENT, n);
        let body = event_body(EVENT, n);
        let at = Instant::now();
        match &reply {
            Reply::Http { status, .. } if (200..300).contains(status) => {
                seen.lock().unwrap().answered.push((at, body));
            }
            Reply::Http { status, .. } => {
                let rule = reply.header("x-danube-hooks-rule").unwrap_or("").to_owned();
                seen.lock().unwrap().refused.push((at, *status, rule));
            }
            // The listener is gone.
            _ => return,
        }
        std::thread::sleep(pause);
    }
}

impl Seen {
    /// The refusals between `from` and `to`, asserted to be some, each a
    /// 503 that names the store's failure.
    fn refused_between(&self, from: Instant, to: Instant, what: &str) -> Vec<Instant> {
        let refused: Vec<_> = self
            .refused
            .iter()
            .filter(|(at, ..)| *at > from && *at < to)
            .collect();
        assert!(!refused.is_empty(), "no 503 while {what}");
        for (_, status, rule) in &refused {
            assert_eq!(*status, 503, "{rule}");
            assert!(
                rule.contains("store write failed: "),
                "503 with its reason: {rule}"
            );
        }
        refused.iter().map(|(at, ..)| *at).collect()
    }
}

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

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_listener_killed_under_load_answered_2xx_only_for_rows_in_the_table() {
    let cluster = postgres::shared();
    let db = cluster.database("kill9");
    let mut listener = cluster.listener(&db);
    let posting = Posting::start(listener.addr, 4, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(1500));
    // SIGKILL: no shutdown, no last batch, whatever was under way.
    listener.child.kill().unwrap();
    listener.child.wait().unwrap();
    let seen = posting.finish();
    assert!(
        seen.answered.len() >= 20,
        "too little load: {} answered",
        seen.answered.len()
    );
    let stored = stored_bodies(cluster, &db);
    let missing = seen
        .answered
        .iter()
        .filter(|(_, body)| !stored.contains(body))
        .count();
    assert_eq!(
        missing,
        0,
        "of {} deliveries answered 2xx, {missing} are not in the table ({} rows)",
        seen.answered.len(),
        stored.len()
    );
}

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn postgres_stopped_and_started_gets_503s_meanwhile_and_the_listener_recovers_alone() {
    let mut cluster = Cluster::start().unwrap_or_else(|err| panic!("{err}"));
    let db = cluster.database("restart");
    let listener = cluster.listener(&db);
    let posting = Posting::start(listener.addr, 2, Duration::from_millis(10));
    std::thread::sleep(Duration::from_millis(500));
    cluster.stop_server();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    cluster.start_server().unwrap();
    let started = Instant::now();
    let recovered = posting.answered_after(started);
    let seen = posting.finish();
    assert!(
        recovered,
        "no 2xx after PostgreSQL came back: the listener did not recover"
    );
    seen.refused_between(stopped, started, "PostgreSQL was down");
    assert!(
        !seen
            .answered
            .iter()
            .any(|(at, _)| *at > stopped + Duration::from_millis(200) && *at < started),
        "a 2xx while PostgreSQL was down"
    );
    let stored = stored_bodies(&cluster, &db);
    assert!(
        seen.answered.iter().all(|(_, body)| stored.contains(body)),
        "a delivery answered 2xx is missing from the table"
    );
    let told = listener.stderr_so_far();
    assert!(
        told.contains("is down") && told.contains("reconnected to"),
        "{told}"
    );
}

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_schema_newer_than_the_binary_is_refused_naming_both_versions() {
    let cluster = postgres::shared();
    let db = cluster.database("newer");
    cluster.sql(
        &db,
        "CREATE SCHEMA danube_hooks;
         CREATE TABLE danube_hooks.schema_version (version integer NOT NULL);
         INSERT INTO danube_hooks.schema_version VALUES (99)",
    );
    let url = cluster.url(&db);
    let out = run_command(
        cluster
            .command()
            .args(["listen", "--port", "0", "--no-tui", "--store", &url]),
        b"",
    );
    assert_exit(&out, 2);
    let told = stderr(&out);
    assert!(
        told.contains("version 99") && told.contains("(version 2)"),
        "{told}"
    );
}

/// A listener on `db` as a new role made with the README's statements (a
/// login that may connect, and its own schema) and `options`; the whole URL,
/// password and all, only in the listener's environment. Also the role and
/// its password.
fn listener_as_role(
    cluster: &Cluster,
    db: &str,
    name: &str,
    options: &str,
    args: &[&str],
) -> (Listener, String, String) {
    let role = format!("hooks_{name}_{}", std::process::id());
    let password = format!("pw-{name}-{}", std::process::id());
    cluster.sql(
        db,
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' {options};
             REVOKE ALL ON DATABASE {db} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {db} TO {role};
             CREATE SCHEMA danube_hooks AUTHORIZATION {role};"
        ),
    );
    let url = format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{db}",
        cluster.port
    );
    let mut cmd = crate::common::command();
    cmd.env("DANUBE_HOOKS_STORE", &url)
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE");
    (Listener::start_with(cmd, args), role, password)
}

/// The statements README "A shared history for a team" gives for a role
/// that can run a listener and nothing more.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_least_privilege_role_runs_a_listener_and_its_password_is_never_shown() {
    let cluster = postgres::shared();
    let db = cluster.database("least");
    let (mut listener, role, password) =
        listener_as_role(cluster, &db, "least", "", &["--json", "--name", "least"]);
    let reply = signed_post(listener.addr, SECRET, now(), &event_body(EVENT, 1));
    assert_eq!(reply.status(), 200);
    let line = listener.next_line(Duration::from_secs(10));
    assert_not_in_any_command_line(&password);
    assert_eq!(
        cluster.sql(&db, "SELECT listener FROM danube_hooks.deliveries"),
        "least"
    );
    assert_eq!(
        cluster.sql(
            &db,
            &format!(
                "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR has_database_privilege('{role}', '{db}', 'CREATE') FROM pg_roles WHERE rolname = '{role}'"
            )
        ),
        "f",
        "the role has no more than it was given"
    );
    assert_eq!(listener.signal_and_wait("TERM"), Some(0));
    let told = format!("{}{}{line}", listener.banner, listener.stderr_so_far());
    assert!(
        told.contains(&format!("postgres://{role}@127.0.0.1")),
        "{told}"
    );
    assert!(!told.contains(&password), "the password was shown: {told}");
}

#[test]
fn a_file_stores_flags_are_refused_with_a_database_and_the_other_way_round() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--store", "postgres://ann@127.0.0.1:1/hooks", "--durable"],
            "--durable",
        ),
        (
            &[
                "--store",
                "postgres://ann@127.0.0.1:1/hooks",
                "--store-keep",
                "5",
            ],
            "--store-keep",
        ),
        (
            &["--store", "/tmp/danube-hooks-never.jsonl", "--name", "ann"],
            "--name",
        ),
        (&["--no-store", "--store-max-age", "7d"], "--store-max-age"),
    ];
    for (args, flag) in cases {
        let out = run_command(
            crate::common::command()
                .args(["listen", "--port", "0", "--no-tui"])
                .args(args),
            b"",
        );
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
}

/// SPEC §14: the record is kept byte-exact, bodies `jsonb` would refuse
/// included: a `\u0000` escape, a raw NUL, bytes that are not UTF-8, 1 MiB.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn hostile_bodies_are_stored_byte_exact() {
    let cluster = postgres::shared();
    let db = cluster.database("hostile");
    let listener = Listener::start_with(
        cluster.command(),
        &["--json", "--secret", SECRET, "--store", &cluster.url(&db)],
    );
    let mut large = br#"{"event":"tool.completed","data":""#.to_vec();
    large.resize(1024 * 1024 - 3, b'x');
    large.extend_from_slice(br#""}"#);
    let bodies: [Vec<u8>; 4] = [
        br#"{"event":"tool.completed","data":{"s":"nul \u0000 here"}}"#.to_vec(),
        b"{\"event\":\"tool.completed\",\"raw\":\"\0\"}".to_vec(),
        b"{\"event\":\"tool.completed\",\"bytes\":\"\xff\xfe\xc3\x28\"}".to_vec(),
        large,
    ];
    for body in &bodies {
        let reply = signed_post(listener.addr, SECRET, now(), body);
        assert_eq!(reply.status(), 200);
        let line = listener.next_line(Duration::from_secs(10));
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        let stored = cluster.sql(
            &db,
            &format!(
                "SELECT record FROM danube_hooks.deliveries WHERE id = {}",
                record["id"]
            ),
        );
        assert_eq!(stored, line, "the row is the line --json printed");
        let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(&record_body(&stored), body, "the body, byte for byte");
    }
}

/// A database too slow to commit (here: the table locked by another
/// session) costs 503s within the 2 s bound, never a hung answer; and the
/// listener recovers by itself once the lock is gone.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_table_locked_too_long_gets_503s_within_the_bound_and_then_2xx_again() {
    let cluster = postgres::shared();
    let db = cluster.database("locked");
    let listener = cluster.listener(&db);
    let first = post_event(listener.addr, EVENT, 0);
    assert_eq!(first.status(), 200);
    let holder = {
        let db = db.clone();
        std::thread::spawn(move || {
            postgres::shared().sql(
                &db,
                "BEGIN; LOCK TABLE danube_hooks.deliveries; SELECT pg_sleep(5); COMMIT;",
            );
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let locked = Instant::now();
    let posting = Posting::start(listener.addr, 2, Duration::from_millis(50));
    holder.join().unwrap();
    let released = Instant::now();
    let recovered = posting.answered_after(released);
    let seen = posting.finish();
    assert!(recovered, "no 2xx once the lock was gone");
    let refused = seen.refused_between(locked, released, "the table was locked");
    // The first answers come back within the bound (2 s and some), not
    // at Danube's deadline.
    let first_refusal = refused.iter().min().copied().unwrap();
    assert!(
        first_refusal.duration_since(locked) < Duration::from_secs(4),
        "the first 503 came {:?} after the lock",
        first_refusal.duration_since(locked)
    );
    let stored = stored_bodies(cluster, &db);
    assert!(
        seen.answered.iter().all(|(_, body)| stored.contains(body)),
        "a delivery answered 2xx is missing from the table"
    );
}

/// A batch whose commit is slow does not hold up the next one: that one
/// goes on the writer's other connection, at most 5 ms after its first
/// row, and is answered while the slow one still waits.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_batch_goes_beside_one_still_committing() {
    let cluster = postgres::shared();
    let db = cluster.database("pipeline");
    let listener = cluster.listener(&db);
    // The schema is the listener's; the slowness is the test's: a row of
    // this event takes a second to insert.
    cluster.sql(
        &db,
        "CREATE FUNCTION public.slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.event = 'slow.commit' THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$; \
         CREATE TRIGGER slow BEFORE INSERT ON danube_hooks.deliveries \
         FOR EACH ROW EXECUTE FUNCTION public.slow_row();",
    );
    let addr = listener.addr;
    let slow = std::thread::spawn(move || {
        let reply = post_event(addr, "slow.commit", 0);
        (reply.status(), Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    let quick = post_event(addr, EVENT, 1);
    let quick_answered = Instant::now();
    let (slow_status, slow_answered) = slow.join().unwrap();
    assert_eq!(quick.status(), 200);
    assert_eq!(slow_status, 200, "the slow row commits within the bound");
    assert!(
        quick_answered < slow_answered,
        "the second delivery waited for the first's commit"
    );
    assert!(
        quick_answered.duration_since(sent) < Duration::from_millis(700),
        "the second delivery took {:?}",
        quick_answered.duration_since(sent)
    );
    assert_eq!(
        listeners(cluster, &db).len(),
        2,
        "both rows are in the table"
    );
}

/// A server that takes one connection of the listener's but refuses its
/// second (here: a role limited to one) gets a writer on one connection,
/// not a listener that cannot start.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_role_limited_to_one_connection_still_runs_a_listener() {
    let cluster = postgres::shared();
    let db = cluster.database("one_connection");
    let (listener, ..) = listener_as_role(
        cluster,
        &db,
        "one",
        "CONNECTION LIMIT 1",
        &["--no-tui", "--name", "one"],
    );
    for n in 0..3 {
        let reply = signed_post(listener.addr, SECRET, now(), &event_body(EVENT, n));
        assert_eq!(reply.status(), 200, "delivery {n}");
    }
    assert_eq!(
        cluster.sql(&db, "SELECT count(*) FROM danube_hooks.deliveries"),
        "3"
    );
}
