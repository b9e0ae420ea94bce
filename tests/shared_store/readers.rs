//! The store's readers on the shared store: `log`, `show`, `export` and
//! `replay` read rows as they read a file's lines, byte for byte.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::common::postgres::{self, Cluster, NEEDS_POSTGRES};
use crate::common::{self, Listener, SECRET, TempDir, assert_exit, now, signed_post, stderr};

/// Run `sql` in `db` through psql's stdin: a row of a 1 MiB body is longer
/// than one argument may be.
fn psql_stdin(cluster: &Cluster, db: &str, sql: &str) {
    let mut child = cluster
        .psql(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dollar-quoted SQL literal of `text`.
fn literal(text: &str) -> String {
    let tag = (0..u32::MAX)
        .map(|n| format!("$t{n}$"))
        .find(|tag| !text.contains(tag.as_str()))
        .unwrap();
    format!("{tag}{text}{tag}")
}

/// Each of the store file's lines as a row, exactly as a listener writes
/// it: `record` the line itself, the columns beside it from its fields.
fn load_rows(cluster: &Cluster, db: &str, store_text: &str) {
    let mut sql = String::from("BEGIN;\n");
    for line in store_text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let status = record["response"]["status"]
            .as_u64()
            .map_or_else(|| "NULL".to_owned(), |s| s.to_string());
        let event = record["event"]
            .as_str()
            .map_or_else(|| "NULL".to_owned(), literal);
        let _ = writeln!(
            sql,
            "INSERT INTO danube_hooks.deliveries VALUES ({}, {}, 'ann@laptop', {event}, {}, \
             {status}, {}, {});",
            record["id"],
            literal(record["received_at"].as_str().unwrap()),
            literal(record["signature"]["verdict"].as_str().unwrap()),
            record["attempt"],
            literal(line),
        );
    }
    sql.push_str("COMMIT;\n");
    psql_stdin(cluster, db, &sql);
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    common::run_command(cmd.args(args), b"")
}

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn log_show_and_export_read_the_shared_store_byte_for_byte_as_the_file() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let dir = TempDir::new("pg-readers");
    let file = dir.join("deliveries.jsonl");
    let file_arg = file.to_str().unwrap();

    // Real deliveries, hostile bodies among them, through a real listener.
    let mut listener = Listener::start(&[
        "--store",
        file_arg,
        "--secret",
        SECRET,
        "--json",
        "--max-body",
        "2MiB",
    ]);
    let mut big = br#"{"event":"tool.execution.completed","data":{"blob":""#.to_vec();
    big.resize(1024 * 1024, b'x');
    big.extend_from_slice(b"\"}}");
    let bodies: [&[u8]; 5] = [
        &common::event_body("tool.execution.completed", 1),
        br#"{"event":"tool.execution.failed","data":{"s":"nul \u0000 escaped"}}"#,
        b"a raw NUL \x00 and invalid UTF-8 \xff\xfe\xc3(",
        &big,
        &common::event_body("tool.execution.failed", 5),
    ];
    for body in bodies {
        assert_eq!(
            signed_post(listener.addr, SECRET, now(), body).status(),
            200
        );
        listener.next_record();
    }
    listener.signal_and_wait("TERM");
    let store_text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(store_text.lines().count(), 5);

    let db = cluster.database("readers");
    let url = cluster.url(&db);
    // No schema yet: there is no store there yet, as with a file.
    let missing = run(cluster.command(), &["log", "--store", &url]);
    assert_exit(&missing, 2);
    assert!(stderr(&missing).contains(&url), "{}", stderr(&missing));

    cluster.migrate(&db);
    load_rows(cluster, &db, &store_text);

    let reads: [&[&str]; 9] = [
        &["log"],
        &["log", "--json"],
        &["log", "--last", "2", "--json"],
        &["log", "--query", "event:tool.execution.failed"],
        &["log", "--query", "escaped"],
        &["show", "2"],
        &["show", "3", "--raw"],
        &["export", "3", "--curl"],
        &["export", "--query", "event:*"],
    ];
    for args in reads {
        let on_file = run(common::command(), &[args, &["--store", file_arg]].concat());
        let on_db = run(cluster.command(), &[args, &["--store", &url]].concat());
        assert_exit(&on_file, 0);
        assert_exit(&on_db, 0);
        assert!(!on_file.stdout.is_empty(), "{args:?}");
        assert!(
            on_db.stdout == on_file.stdout,
            "{args:?}: the shared store's output differs from the file's:\n{}\n---\n{}",
            String::from_utf8_lossy(&on_db.stdout),
            String::from_utf8_lossy(&on_file.stdout),
        );
    }
    // Every body byte for byte, the NUL, the invalid UTF-8 and 1 MiB.
    let json = run(cluster.command(), &["log", "--json", "--store", &url]);
    let lines: Vec<&str> = std::str::from_utf8(&json.stdout).unwrap().lines().collect();
    // (`log --json` writes the record anew: compared with the file's
    // output above, not with its lines.)
    assert_eq!(lines.len(), 5);
    for (line, body) in lines.iter().zip(bodies) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            common::record_body(&record) == body,
            "the body of #{} is not the bytes sent",
            record["id"]
        );
    }

    // An id that is not there, named with the URL.
    let absent = run(cluster.command(), &["show", "99", "--store", &url]);
    assert_exit(&absent, 2);
    assert!(
        stderr(&absent).contains(&format!("no delivery with id 99 in {url}")),
        "{}",
        stderr(&absent)
    );
    // Replay without --to: no listener to send back to on a shared store.
    let replay = run(cluster.command(), &["replay", "1", "--store", &url]);
    assert_exit(&replay, 2);
    assert!(stderr(&replay).contains("--to"), "{}", stderr(&replay));

    // The URL from the environment reads the same.
    let from_env = run(
        {
            let mut cmd = cluster.command();
            cmd.env("DANUBE_HOOKS_STORE", &url);
            cmd
        },
        &["log", "--json"],
    );
    assert_exit(&from_env, 0);
    assert_eq!(from_env.stdout, json.stdout);

    rows_past_a_page(cluster, store_text.lines().next().unwrap());
}

/// Past one page of rows, both ways, with copies of `line`; and a row
/// that does not parse is skipped and told, as a line is.
fn rows_past_a_page(cluster: &Cluster, line: &str) {
    let paged = cluster.store("paged");
    let first = literal(line);
    cluster.sql(
        &paged,
        &format!(
            "INSERT INTO danube_hooks.deliveries \
             SELECT g, now(), 'ann@laptop', NULL, 'valid', 200, 1, \
             replace({first}, '{{\"id\":1,', '{{\"id\":' || g || ',') \
             FROM generate_series(1, 1203) g;
             UPDATE danube_hooks.deliveries SET record = 'not json' WHERE id = 600;"
        ),
    );
    let url = cluster.url(&paged);
    let ids = |args: &[&str]| -> Vec<u64> {
        let out = run(
            cluster.command(),
            &[args, &["--json", "--store", &url]].concat(),
        );
        assert_exit(&out, 0);
        assert!(
            stderr(&out).contains("skipped the row with id 600"),
            "{}",
            stderr(&out)
        );
        common::ids_of_lines(&common::stdout(&out))
    };
    let every: Vec<u64> = (1..=1203).filter(|id| *id != 600).collect();
    assert_eq!(ids(&["log"]), every);
    assert_eq!(ids(&["log", "--last", "1000"]), every[every.len() - 1000..]);
}

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_newer_schema_and_a_password_on_the_command_line_are_refused() {
    let cluster = postgres::shared();
    let db = cluster.store("newer");
    cluster.sql(&db, "UPDATE danube_hooks.schema_version SET version = 99");
    let url = cluster.url(&db);
    let newer = run(cluster.command(), &["log", "--store", &url]);
    assert_exit(&newer, 2);
    let text = stderr(&newer);
    assert!(
        text.contains("version 99") && text.contains("this danube-hooks knows (version "),
        "{text}"
    );

    let password = &cluster.password;
    let with_password = url.replace("danube@", &format!("danube:{password}@"));
    let refused = run(cluster.command(), &["show", "1", "--store", &with_password]);
    assert_exit(&refused, 2);
    let text = format!("{}{}", stderr(&refused), common::stdout(&refused));
    assert!(text.contains("PGPASSWORD"), "{text}");
    assert!(
        !text.contains(password.as_str()),
        "the password was echoed: {text}"
    );
}

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn tls_as_sslmode_asks_and_the_password_from_the_password_file() {
    use rcgen::{CertificateParams, Issuer, KeyPair};
    let dir = TempDir::new("pg-tls");
    let (ca_params, ca_key) = common::tls::test_ca("danube-hooks test PostgreSQL CA");
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca_params.self_signed(&ca_key).unwrap().pem()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::new(ca_params, ca_key))
        .unwrap();
    let mut cluster = Cluster::start().unwrap_or_else(|err| panic!("{err}"));
    cluster.use_tls(&leaf.pem(), &leaf_key.serialize_pem());
    let db = cluster.store("tls");
    let url = |mode: &str| format!("{}?sslmode={mode}", cluster.url(&db));
    let ca = ca_pem.to_str().unwrap();
    // An empty store, read: the connection is what is proved.
    let read = |args: &[&str]| run(cluster.command(), &[&["log"], args].concat());
    let checked = read(&["--store", &url("verify-full"), "--cacert", ca]);
    assert_exit(&checked, 0);
    assert!(
        stderr(&checked).contains("no deliveries in"),
        "{}",
        stderr(&checked)
    );
    // The same CA from libpq's variable.
    let mut cmd = cluster.command();
    cmd.env("PGSSLROOTCERT", ca);
    assert_exit(&run(cmd, &["log", "--store", &url("verify-full")]), 0);
    // Unknown to the web's roots: refused, in one line that says why.
    let unchecked = read(&["--store", &url("verify-full")]);
    assert_exit(&unchecked, 3);
    let text = stderr(&unchecked);
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(
        text.contains("certificate") && text.contains("--cacert"),
        "{text}"
    );
    // require: encrypted, the certificate not checked.
    assert_exit(&read(&["--store", &url("require")]), 0);

    // The password from a 0600 password file, PGPASSWORD unset; ignored,
    // with libpq's warning, when others may read it.
    let pgpass = dir.join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# other servers first\nother:*:*:*:wrong\n127.0.0.1:{}:{db}:{}:{}\n",
            cluster.port,
            postgres::USER,
            cluster.password.replace('\\', "\\\\").replace(':', "\\:")
        ),
    )
    .unwrap();
    let with_file = |mode: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = cluster.command();
        cmd.env_remove("PGPASSWORD").env("PGPASSFILE", &pgpass);
        run(cmd, &["log", "--store", &cluster.url(&db)])
    };
    assert_exit(&with_file(0o600), 0);
    let open = with_file(0o644);
    assert_exit(&open, 3);
    assert!(
        stderr(&open).contains("group or world access"),
        "{}",
        stderr(&open)
    );
}
