//! The shared store attacked as another user of the same database would:
//! notifications anyone may send, rows anyone may write, a table someone
//! altered, and a password that must stay out of every message.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::dashboard::{Psql, batch, insert, json_dashboard, next_id, record, store, wait_stderr};
use crate::common::postgres::{self, NEEDS_POSTGRES};
use crate::common::{self};

/// A run of the binary; its output.
fn run(mut cmd: Command, args: &[&str]) -> Output {
    common::run_command(cmd.args(args), b"")
}

/// Neither a panic nor a raw escape byte in what a run printed.
fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains("panicked"), "{what} panicked: {text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{what} printed a raw control byte: {:?}",
        text.chars().take(2000).collect::<String>()
    );
}

/// A flood of notifications (wide, negative, reversed, garbage, 8000
/// bytes), hostile rows, and a retyped column: the dashboard shows each
/// committed record once and nothing else, stays live, never panics, and
/// puts no raw control byte out; `log` and `show` read the same rows, and a
/// version table with two rows of another type, as cleanly.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn hostile_notifications_rows_and_an_altered_table_neither_crash_nor_fool_a_reader() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let (db, url) = store(cluster, "attacks");
    let mut psql = Psql::start(cluster, &db);
    // Whoever may write the table may drop its indexes too: the index on
    // (listener, id) would refuse the 10 MB listener name below.
    psql.run("DROP INDEX danube_hooks.deliveries_listener_id;");
    let history: Vec<(u64, String)> = (1..=3)
        .map(|id| (id, record(id, "ann@laptop", None)))
        .collect();
    psql.run(&batch(&history, "ann@laptop"));

    let (mut child, stdout, stderr, mut said) = json_dashboard(cluster, &url);
    let shown: Vec<u64> = (0..3).map(|_| next_id(&stdout).0).collect();
    assert_eq!(shown, [1, 2, 3]);

    // In one transaction: hostile payloads, then thousands of distinct
    // 8000-byte ones (far more than the dashboard queues), then the one
    // announcing a real row, last, which may well be dropped.
    psql.run(&format!(
        "BEGIN;
         SELECT count(pg_notify('danube_hooks_deliveries', p)) FROM (VALUES
           ('1 9223372036854775807'), ('-5 3'), ('9 1'), ('0 0'), ('1 99999999999999999999'),
           (repeat('7', 7999)), ('1 2 3'), (E'\\x1b[2J1 2'), ('-9223372036854775808 -1')) v(p);
         SELECT count(pg_notify('danube_hooks_deliveries',
           g || ' ' || repeat(' ', 7900) || (g + 99999))) FROM generate_series(1, 5000) g;
         {}
         NOTIFY danube_hooks_deliveries, '10 10';
         COMMIT;",
        insert(10, "bob@ci", &record(10, "bob@ci", None))
    ));
    assert_eq!(next_id(&stdout).0, 10, "the real row, and nothing again");

    // Rows anyone may write: escapes in every text field, a record that is
    // not JSON, one naming another id, a listener name of 10 MB.
    let mut hostile: serde_json::Value = serde_json::from_str(&record(
        11,
        "\u{1b}]0;pwned\u{7}",
        Some("http://x/\u{1b}[2J"),
    ))
    .unwrap();
    hostile["event"] = "\u{1b}]52;c;aGk=\u{7}".into();
    hostile["path"] = "/\u{1b}[31mred\u{202e}\r\n".into();
    hostile["headers"] = serde_json::json!([["X-\u{1b}[2J", "\u{1b}]0;t\u{7}\u{0}"]]);
    let mut unnamed: serde_json::Value = serde_json::from_str(&record(14, "", None)).unwrap();
    unnamed.as_object_mut().unwrap().remove("listener");
    let huge_name = format!("\u{1b}[2J{}", "n".repeat(10 << 20));
    psql.run(&batch(
        &[
            (11, hostile.to_string()),
            (12, "\u{1b}[2J{\"id\":12,".into()),
            (13, record(99, "eve", None)),
        ],
        "eve",
    ));
    psql.run(&batch(&[(14, unnamed.to_string())], &huge_name));
    psql.run(&batch(&[(15, record(15, "bob@ci", None))], "bob@ci"));
    let shown: Vec<u64> = (0..3).map(|_| next_id(&stdout).0).collect();
    assert_eq!(shown, [11, 14, 15], "records only, each once");
    wait_stderr(&stderr, &mut said, "#12, #13");

    // Someone retypes columns under the attached dashboard: it goes on.
    psql.run(
        "ALTER TABLE danube_hooks.deliveries ALTER COLUMN id TYPE integer, \
         ALTER COLUMN listener TYPE varchar;",
    );
    psql.run(&batch(&[(16, record(16, "bob@ci", None))], "bob@ci"));
    assert_eq!(next_id(&stdout).0, 16, "live after a retyped column");

    common::signal_and_wait(&mut child, "the dashboard", "TERM");
    said.extend(stderr.try_iter().map(|line| line + "\n"));
    assert_clean("dashboard", &said);
    assert!(!said.contains("pwned"), "a row's text on stderr: {said}");

    // The readers, on the same rows, and on a version table with two rows
    // of another type.
    psql.run(
        "ALTER TABLE danube_hooks.schema_version ALTER COLUMN version TYPE bigint; \
         INSERT INTO danube_hooks.schema_version VALUES (1);",
    );
    for args in [
        &["log", "--store", &url][..],
        &["log", "--json", "--store", &url],
        &["show", "11", "--store", &url],
        &["show", "14", "--store", &url],
    ] {
        let output = run(cluster.command(), args);
        let all = common::stdout(&output) + &common::stderr(&output);
        assert_clean(&format!("{args:?}"), &all);
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{args:?}: {:?} {}",
            output.status,
            common::stderr(&output)
        );
    }
    // Row 13's record says it is delivery 99: no reader takes it for one.
    let ids = common::ids_of_lines(&common::stdout(&run(
        cluster.command(),
        &["log", "--json", "--store", &url],
    )));
    assert_eq!(
        ids,
        [1, 2, 3, 10, 11, 14, 15, 16],
        "each row once, as its own id"
    );
    let output = run(cluster.command(), &["show", "13", "--store", &url]);
    assert_ne!(output.status.code(), Some(0));
    common::assert_contains(&common::stderr(&output), "another id");
}

/// A wrong password, an unreachable server, and URLs mistyped around a
/// password, given on the command line and in the environment: no message
/// shows the password.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn no_error_shows_the_password() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let (_db, url) = store(cluster, "attacks_password");
    let secret = "Hunter2Secret";
    let mut wrong = cluster.command();
    wrong.env("PGPASSWORD", secret);
    let closed = common::closed_port();
    let mut runs = vec![(
        wrong,
        vec!["log".to_owned(), "--store".to_owned(), url.clone()],
    )];
    for typo in [
        format!("postgres://danube:{secret}@127.0.0.1:1:2/db"),
        format!("postgres://danube:a/{secret}@127.0.0.1:x/db"),
        format!("postgresql://danube:{secret}@[::1"),
        format!("postgres://danube@127.0.0.1:x/db?password={secret}"),
        format!("postgres://danube:{secret}@{closed}/db"),
        format!(
            "postgres://danube:{secret}@127.0.0.1:{}/db?sslmode=require",
            cluster.port
        ),
        format!(
            "host=127.0.0.1 port={} password={secret} dbname=db",
            cluster.port
        ),
        format!("postgres:/danube:{secret}@127.0.0.1/db"),
    ] {
        for name in ["log", "dashboard"] {
            let mut args = vec![name.to_owned()];
            if name == "dashboard" {
                args.push("--json".to_owned());
            }
            let mut env = cluster.command();
            env.env("DANUBE_HOOKS_STORE", &typo);
            runs.push((env, args.clone()));
            args.extend(["--store".to_owned(), typo.clone()]);
            runs.push((cluster.command(), args));
        }
    }
    for (cmd, args) in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(cmd, &args);
        let all = common::stdout(&output) + &common::stderr(&output);
        assert_ne!(output.status.code(), Some(0), "{args:?}: {all}");
        assert!(
            !all.contains("Secret"),
            "{args:?} showed the password: {all}"
        );
        assert_clean(&format!("{args:?}"), &all);
    }
}

/// One delivery posted to `addr`: its status, rule header, and how long the
/// answer took.
fn post(addr: std::net::SocketAddr, n: u64) -> (u16, String, Vec<u8>, Duration) {
    let body = common::event_body("tool.completed", n);
    let request = common::request_bytes("/hooks", &[("Content-Type", "application/json")], &body);
    let started = Instant::now();
    let reply = common::exchange(addr, &request, Duration::from_secs(30));
    let took = started.elapsed();
    let rule = reply.header("x-danube-hooks-rule").unwrap_or("").to_owned();
    match reply {
        common::Reply::Http { status, .. } => (status, rule, body, took),
        other => panic!("delivery {n}: no HTTP answer: {other:?}"),
    }
}

/// The table locked by another session, a trigger that raises (with
/// escapes in its message), and the next id taken by someone else's row:
/// each delivery is answered 503 with its reason well within Danube's
/// deadline, never 2xx for a row not committed, and the listener goes on
/// by itself once the table is usable again.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_locked_table_a_raising_trigger_and_a_taken_id_get_503s_in_time_and_no_false_2xx() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let db = cluster.database("attacks_writer");
    let listener = cluster.listener(&db);
    let mut answered = Vec::new();
    let mut n = 0;
    let next = |n: &mut u64| {
        *n += 1;
        post(listener.addr, *n)
    };
    let (status, _, body, _) = next(&mut n);
    assert_eq!(status / 100, 2);
    answered.push(body);

    let mut psql = Psql::start(cluster, &db);
    psql.run("BEGIN; LOCK TABLE danube_hooks.deliveries;");
    for _ in 0..3 {
        let (status, rule, _, took) = next(&mut n);
        assert_eq!(status, 503, "while the table is locked: {rule}");
        assert!(took < Duration::from_secs(8), "answered after {took:?}");
        assert!(rule.contains("store write failed"), "{rule}");
    }
    psql.run("COMMIT;");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, rule, body, _) = next(&mut n);
        if status / 100 == 2 {
            answered.push(body);
            break;
        }
        assert!(Instant::now() < deadline, "never stored again: {rule}");
        std::thread::sleep(Duration::from_millis(200));
    }

    cluster.sql(
        &db,
        "CREATE FUNCTION danube_hooks.boom() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION E'\\x1b]0;pwned\\x07 boom'; END$$; \
         CREATE TRIGGER boom BEFORE INSERT ON danube_hooks.deliveries \
         FOR EACH ROW EXECUTE FUNCTION danube_hooks.boom();",
    );
    let (status, rule, _, _) = next(&mut n);
    assert_eq!(status, 503, "{rule}");
    assert!(
        rule.contains("boom") && !rule.contains('\u{1b}'),
        "{rule:?}"
    );
    cluster.sql(&db, "DROP TRIGGER boom ON danube_hooks.deliveries;");

    let taken = cluster.sql(
        &db,
        "INSERT INTO danube_hooks.deliveries \
         SELECT last_value + 1, now(), 'eve', 'e', 'valid', 200, 1, 'taken' \
         FROM danube_hooks.delivery_id RETURNING id",
    );
    let (status, rule, _, _) = next(&mut n);
    assert_eq!(status, 503, "the id was taken: {rule}");
    let (status, rule, body, _) = next(&mut n);
    assert_eq!(status / 100, 2, "the next id is free: {rule}");
    answered.push(body);

    let stored: Vec<Vec<u8>> = cluster
        .sql(
            &db,
            &format!("SELECT record FROM danube_hooks.deliveries WHERE id <> {taken}"),
        )
        .lines()
        .map(|line| common::record_body(&serde_json::from_str(line).unwrap()))
        .collect();
    for body in &answered {
        assert!(stored.contains(body), "a 2xx not in the table");
    }
    assert_clean("listen", &listener.stderr_so_far());
}

/// A server on loopback that asks for the password in clear text, then
/// refuses it quoting it back, with escapes: the password it was sent.
fn echoing_server() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read as _, Write as _};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        stream.read_exact(&mut startup).unwrap();
        // AuthenticationCleartextPassword.
        stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).unwrap();
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).unwrap();
        let mut password =
            vec![0u8; u32::from_be_bytes(head[1..].try_into().unwrap()) as usize - 4];
        stream.read_exact(&mut password).unwrap();
        password.pop();
        let mut fields = b"SFATAL\0C28P01\0M\x1b]0;pwned\x07password ".to_vec();
        fields.extend_from_slice(&password);
        fields.extend_from_slice(b" is wrong; the URL was postgres://danube:");
        fields.extend_from_slice(&password);
        fields.extend_from_slice(b"@db\0\0");
        let mut error = vec![b'E'];
        error.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        error.extend_from_slice(&fields);
        stream.write_all(&error).unwrap();
        password
    });
    (addr, thread)
}

/// A server that was sent the password and quotes it back in its refusal:
/// the message is shown, escaped, without it. (No PostgreSQL needed.)
#[test]
fn a_server_that_echoes_the_password_does_not_get_it_shown() {
    let (addr, server) = echoing_server();
    let mut cmd = common::command();
    cmd.env("PGPASSWORD", "Hunter2Secret")
        .env_remove("PGPASSFILE")
        .env_remove("DANUBE_HOOKS_STORE");
    let output = run(
        cmd,
        &["log", "--store", &format!("postgres://danube@{addr}/db")],
    );
    assert_eq!(
        server.join().unwrap(),
        b"Hunter2Secret",
        "the server was sent it"
    );
    let all = common::stdout(&output) + &common::stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{all}");
    common::assert_contains(&all, "is wrong");
    assert!(!all.contains("Secret"), "the password shown: {all}");
    assert_clean("log", &all);
}

/// `cmd` with `args`, given 20 s: a hang fails the test rather than
/// stalling it.
fn run_within(mut cmd: Command, args: &[&str]) -> Output {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The password file as a symlink (followed, as libpq does), a FIFO, a
/// directory, and a file past the bound with its line at the end: none
/// hangs, none shows the password, each says what is wrong with it.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_password_file_that_is_a_fifo_a_directory_a_symlink_or_huge_neither_hangs_nor_leaks() {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let (db, url) = store(cluster, "attacks_pgpass");
    let dir = common::TempDir::new("attacks-pgpass");
    let line = format!(
        "127.0.0.1:{}:{db}:{}:{}\n",
        cluster.port,
        postgres::USER,
        cluster.password.replace('\\', "\\\\").replace(':', "\\:")
    );
    let real = dir.join("real");
    std::fs::write(&real, &line).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let symlink = dir.join("link");
    std::os::unix::fs::symlink(&real, &symlink).unwrap();
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let directory = dir.join("directory");
    std::fs::create_dir(&directory).unwrap();
    let huge = dir.join("huge");
    let mut text = "# padding\n".repeat(200_000);
    text.push_str(&line);
    std::fs::write(&huge, text).unwrap();
    std::fs::set_permissions(&huge, std::fs::Permissions::from_mode(0o600)).unwrap();

    let with_file = |path: &std::path::Path| {
        let mut cmd = cluster.command();
        cmd.env_remove("PGPASSWORD").env("PGPASSFILE", path);
        let output = run_within(cmd, &["log", "--store", &url]);
        let all = common::stdout(&output) + &common::stderr(&output);
        assert!(!all.contains(&cluster.password), "{all}");
        assert_clean("log", &all);
        (output.status.code(), all)
    };
    assert_eq!(with_file(&symlink).0, Some(0), "a symlink to a 0600 file");
    for special in [&fifo, &directory] {
        let (code, all) = with_file(special);
        assert_eq!(code, Some(3), "{all}");
        common::assert_contains(&all, "is not a plain file");
    }
    let (code, all) = with_file(&huge);
    assert_eq!(code, Some(3), "past the bound, its line unread: {all}");
    common::assert_contains(&all, "only its first 1024 KiB are read");
    // A line that is not UTF-8 keeps no other line from being read.
    let mut bytes = b"\xff\xfe:*:*:*:x\n".to_vec();
    bytes.extend_from_slice(line.as_bytes());
    std::fs::write(&real, bytes).unwrap();
    assert_eq!(with_file(&real).0, Some(0));
}

/// A CA file (`sslrootcert=`) that is a FIFO nobody writes to: refused at
/// once, not waited on for a writer that never comes. (No PostgreSQL
/// needed.)
#[test]
fn a_ca_file_that_is_a_fifo_is_refused_not_waited_on() {
    let dir = common::TempDir::new("attacks-cafifo");
    let fifo = dir.join("ca.pem");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let url = format!(
        "postgres://danube@{}/db?sslmode=verify-full&sslrootcert={}",
        common::closed_port(),
        fifo.display()
    );
    let output = run_within(common::command(), &["log", "--store", &url]);
    assert_ne!(output.status.code(), Some(0));
    common::assert_contains(&common::stderr(&output), "is not a PEM file");
}
