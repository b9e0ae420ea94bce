//! `danube-hooks dashboard` on a shared store: rows committed (and
//! announced with NOTIFY) by psql, as a listener's group commit does, read
//! back from the dashboard's stdout (`--json`, headless) and, in tmux, from
//! its screen.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::postgres::{self, Cluster, NEEDS_POSTGRES};
use crate::common::{self, Capture};
use crate::dashboard::Tmux;

/// How long anything may take to show up before the test gives up.
pub(super) const PATIENCE: Duration = Duration::from_secs(20);

pub(super) fn store(cluster: &Cluster, name: &str) -> (String, String) {
    let db = cluster.store(name);
    let url = cluster.url(&db);
    (db, url)
}

/// A record as the file store writes it, for row `id` of `listener`,
/// forwarded to `forward` when given.
pub(super) fn record(id: u64, listener: &str, forward: Option<&str>) -> String {
    let example = std::fs::read_to_string(common::fixtures().join("store/example.jsonl")).unwrap();
    let mut record: serde_json::Value =
        serde_json::from_str(example.lines().next().unwrap()).unwrap();
    record["id"] = id.into();
    record["listener"] = listener.into();
    if let Some(url) = forward {
        record["forward"] = serde_json::json!({
            "url": url, "status": 200, "headers": [], "error": null,
            "duration_ms": 1, "body_preview": null
        });
    }
    record.to_string()
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// An INSERT of row `id` holding `record` (any text: a hostile row too).
pub(super) fn insert(id: u64, listener: &str, record: &str) -> String {
    format!(
        "INSERT INTO danube_hooks.deliveries VALUES ({id}, now(), {}, 'e', 'valid', 200, 1, {});",
        literal(listener),
        literal(record)
    )
}

/// One committed batch as a listener commits it: its rows, and the NOTIFY
/// of its id range.
pub(super) fn batch(rows: &[(u64, String)], listener: &str) -> String {
    let inserts: String = rows
        .iter()
        .map(|(id, r)| insert(*id, listener, r))
        .collect();
    let low = rows.iter().map(|(id, _)| id).min().unwrap();
    let high = rows.iter().map(|(id, _)| id).max().unwrap();
    format!("BEGIN; {inserts} NOTIFY danube_hooks_deliveries, '{low} {high}'; COMMIT;")
}

/// A psql session fed on its stdin: a statement's return is known by an
/// `\echo` after it, so the time taken is the server's and not psql's start.
pub(super) struct Psql {
    child: Child,
    stdin: ChildStdin,
    out: mpsc::Receiver<String>,
    n: u32,
}

impl Psql {
    pub(super) fn start(cluster: &Cluster, db: &str) -> Psql {
        let mut child = cluster
            .psql(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = common::lines_of(child.stdout.take().unwrap());
        Psql {
            child,
            stdin,
            out,
            n: 0,
        }
    }

    /// Run `sql`; the moment it returned.
    pub(super) fn run(&mut self, sql: &str) -> Instant {
        self.n += 1;
        writeln!(self.stdin, "{sql}\n\\echo done {}", self.n).unwrap();
        self.stdin.flush().unwrap();
        let marker = format!("done {}", self.n);
        loop {
            let line = self.out.recv_timeout(PATIENCE).expect("psql answers");
            if line == marker {
                return Instant::now();
            }
        }
    }
}

impl Drop for Psql {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dashboard's stdout, each line with the moment it was read.
pub(super) fn timed_lines(
    stream: impl std::io::Read + Send + 'static,
) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// The id of a `--json` line.
fn id_of(line: &str) -> u64 {
    let record: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|err| {
        panic!("not a JSON record ({err}): {line:?}");
    });
    record["id"].as_u64().unwrap()
}

/// The next record's id and when it was printed.
pub(super) fn next_id(stdout: &mpsc::Receiver<(Instant, String)>) -> (u64, Instant) {
    let (at, line) = stdout.recv_timeout(PATIENCE).expect("a record on stdout");
    assert!(
        !line.contains('\u{1b}'),
        "an escape reached stdout: {line:?}"
    );
    (id_of(&line), at)
}

/// `dashboard --json` on `url`, once it says it is watching: the child,
/// its stdout lines with the moment each came, its stderr lines, and what
/// stderr has said so far.
pub(super) fn json_dashboard(
    cluster: &Cluster,
    url: &str,
) -> (
    common::KillOnDrop,
    mpsc::Receiver<(Instant, String)>,
    mpsc::Receiver<String>,
    String,
) {
    let mut cmd = cluster.command();
    cmd.args(["dashboard", "--store", url, "--json"]);
    start_watching(cmd, timed_lines)
}

/// `cmd` (a `dashboard`) started, once it says it is watching: the child,
/// its stdout as `read_stdout` reads it (from the start, so a long history
/// never fills the pipe), its stderr lines, and what stderr has said so far.
pub(super) fn start_watching<Out>(
    mut cmd: Command,
    read_stdout: impl FnOnce(ChildStdout) -> Out,
) -> (common::KillOnDrop, Out, mpsc::Receiver<String>, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = common::KillOnDrop::spawn(cmd);
    let stdout = read_stdout(child.stdout.take().unwrap());
    let stderr = common::lines_of(child.stderr.take().unwrap());
    let mut said = String::new();
    wait_stderr(&stderr, &mut said, "watching");
    (child, stdout, stderr, said)
}

/// Wait until stderr says `needle`, adding what it says to `said`.
pub(super) fn wait_stderr(stderr: &mpsc::Receiver<String>, said: &mut String, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !said.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("stderr never said {needle:?}; it said:\n{said}"));
        said.push_str(&line);
        said.push('\n');
    }
}

#[test]
fn a_file_store_is_refused_with_exit_2() {
    let output = common::run(
        &["dashboard", "--store", "/tmp/never-opened.jsonl", "--json"],
        b"",
    );
    common::assert_exit(&output, 2);
    common::assert_contains(&common::stderr(&output), "for a shared store");
}

/// History first, each row once; then each committed batch within 100 ms
/// of its commit (most of them: a loaded machine may stall one); rows
/// committed out of id order, ranges announced twice and hostile rows; and
/// a lost connection made good with what was committed meanwhile.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn json_shows_history_then_each_commit_once_within_100ms_and_survives_a_lost_connection() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let (db, url) = store(cluster, "dashboard_json");
    let mut psql = Psql::start(cluster, &db);
    // History: 1, 2, 3 and 5 are records; 4 is not one, and 6 holds
    // escape sequences in its fields (JSON-escaped on the way out).
    let mut hostile: serde_json::Value =
        serde_json::from_str(&record(6, "ann@laptop", None)).unwrap();
    hostile["event"] = "\u{1b}]0;pwned\u{7}\u{1b}[2J".into();
    hostile["path"] = "/\u{1b}[31mred\u{202e}".into();
    let history: Vec<(u64, String)> = vec![
        (1, record(1, "ann@laptop", None)),
        (2, record(2, "bob@ci", None)),
        (3, record(3, "ann@laptop", None)),
        (4, "\u{1b}[2J{not a record".into()),
        (5, record(5, "bob@ci", None)),
        (6, hostile.to_string()),
    ];
    psql.run(&batch(&history, "ann@laptop"));

    let (mut child, stdout, stderr, mut said) = json_dashboard(cluster, &url);
    let mut printed = Vec::new();
    for _ in 0..5 {
        printed.push(next_id(&stdout).0);
    }
    assert_eq!(
        printed,
        [1, 2, 3, 5, 6],
        "the history, oldest first, without #4"
    );

    // Live, one batch a row: the time from each commit's return to its line.
    let mut late = Vec::new();
    for id in 10..=21 {
        let committed = psql.run(&batch(&[(id, record(id, "bob@ci", None))], "bob@ci"));
        let (shown, at) = next_id(&stdout);
        assert_eq!(shown, id);
        late.push(at.saturating_duration_since(committed));
    }
    late.sort();
    let under = late
        .iter()
        .filter(|d| **d < Duration::from_millis(100))
        .count();
    assert!(
        late[late.len() / 2] < Duration::from_millis(100) && under * 4 >= late.len() * 3,
        "from commit to stdout: {late:?}"
    );

    // 23 commits before 22 (another listener's batch); a range announced
    // again, and a NOTIFY anyone could send, show nothing twice; a hostile
    // live row is counted on stderr, never printed.
    psql.run(&batch(
        &[(23, record(23, "ann@laptop", None))],
        "ann@laptop",
    ));
    assert_eq!(next_id(&stdout).0, 23);
    psql.run(&batch(&[(22, record(22, "bob@ci", None))], "bob@ci"));
    assert_eq!(next_id(&stdout).0, 22, "a row below the newest shown");
    psql.run("NOTIFY danube_hooks_deliveries, '1 23'; NOTIFY danube_hooks_deliveries, 'junk';");
    psql.run(&batch(&[(24, "\u{1b}]52;c;aGk=\u{7}".into())], "eve"));
    psql.run(&batch(
        &[(25, record(25, "ann@laptop", None))],
        "ann@laptop",
    ));
    assert_eq!(next_id(&stdout).0, 25, "nothing again, nothing hostile");
    wait_stderr(&stderr, &mut said, "#24");

    // The connection is cut; meanwhile rows commit, one below the newest
    // shown (a listener's batch that was slow to commit).
    psql.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid();",
    );
    psql.run(&format!(
        "{} {}",
        insert(9, "bob@ci", &record(9, "bob@ci", None)),
        insert(26, "ann@laptop", &record(26, "ann@laptop", None))
    ));
    wait_stderr(&stderr, &mut said, "lost the connection");
    wait_stderr(&stderr, &mut said, "committed meanwhile shown");
    let caught: Vec<u64> = (0..2).map(|_| next_id(&stdout).0).collect();
    assert_eq!(caught, [9, 26], "what was committed meanwhile, once");
    psql.run(&batch(&[(27, record(27, "bob@ci", None))], "bob@ci"));
    assert_eq!(next_id(&stdout).0, 27, "and live again");

    common::signal_and_wait(&mut child, "the dashboard", "TERM");
    let rest: Vec<String> = stdout.try_iter().map(|(_, line)| line).collect();
    assert!(rest.is_empty(), "printed again: {rest:?}");
    assert!(
        !said.contains("pwned"),
        "a hostile row's text on stderr: {said}"
    );
}

/// Two listeners' rows on one database, live in one `dashboard` with the
/// LISTENER column, read by a role that may only read; `r` sends only to
/// the viewer's `--to`, and `p` sets no policy of anyone's.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_dashboard_in_a_terminal_shows_each_listeners_rows_and_replays_only_to_its_own_target() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let (db, url) = store(cluster, "dashboard_tmux");
    let mine = Capture::start();
    let forwarded = Capture::start();
    cluster.sql(
        &db,
        &batch(
            &[(1, record(1, "ann@laptop", Some(&forwarded.url("/hooks"))))],
            "ann@laptop",
        ),
    );
    // A role that may only read: all a dashboard needs.
    let viewer = format!("{db}_viewer");
    cluster.sql(
        &db,
        &format!(
            "CREATE ROLE {viewer} LOGIN PASSWORD 'viewer-pw'; \
             GRANT USAGE ON SCHEMA danube_hooks TO {viewer}; \
             GRANT SELECT ON danube_hooks.deliveries, danube_hooks.schema_version TO {viewer};"
        ),
    );
    let url = url.replacen(postgres::USER, &viewer, 1);
    let tmux = Tmux::start();
    let to = mine.url("/mine");
    tmux.open(&[
        "env",
        "PGPASSWORD=viewer-pw",
        common::BIN,
        "dashboard",
        "--store",
        &url,
        "--to",
        &to,
        "--secret",
        common::SECRET,
    ]);
    tmux.wait_for("the history with its listener", |s| {
        s.contains("LISTENER") && s.contains("ann@laptop")
    });
    cluster.sql(&db, &batch(&[(2, record(2, "bob@ci", None))], "bob@ci"));
    cluster.sql(
        &db,
        &batch(&[(3, record(3, "\u{1b}[2Jcarol\u{7}", None))], "carol"),
    );
    let screen = tmux.wait_for("the others' rows, live", |s| {
        s.contains("bob@ci") && s.contains("\\x1b[2Jcar")
    });
    assert!(
        screen.contains(&format!("127.0.0.1:{}/{db}", cluster.port)),
        "{screen}"
    );
    assert!(!screen.contains("viewer-pw"), "{screen}");
    // #1 (forwarded) selected, r: to --to, never where it was forwarded.
    tmux.keys("g");
    tmux.keys("r");
    let request = mine
        .next_request(PATIENCE)
        .expect("the replay reached --to");
    let request = String::from_utf8_lossy(&request).to_ascii_lowercase();
    assert!(
        request.starts_with("post /mine ") && request.contains("x-danube-signature: t="),
        "{request}"
    );
    tmux.wait_for("the replay's answer", |s| s.contains("answered 200"));
    forwarded.assert_untouched("a dashboard with --to replayed to the forward target");
    tmux.keys("p");
    tmux.wait_for("no policy to set", |s| s.contains("no listener here"));
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0");
}

/// Two `listen --store postgres://…` and one `dashboard`, all on one
/// database: each listener's deliveries live in the dashboard with the
/// LISTENER column; a third listener's own dashboard opens with its own
/// deliveries only.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn two_listeners_and_a_dashboard_on_one_database() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let db = cluster.database("dashboard_two");
    let url = cluster.url(&db);
    let listen = |name: &str| {
        common::Listener::start_with(
            cluster.command(),
            &[
                "--store",
                &url,
                "--name",
                name,
                "--secret",
                common::SECRET,
                "--json",
            ],
        )
    };
    let ann = listen("ann@laptop");
    let bob = listen("bob@ci");
    let tmux = Tmux::start();
    let password = format!("PGPASSWORD={}", cluster.password);
    tmux.open(&["env", &password, common::BIN, "dashboard", "--store", &url]);
    tmux.wait_for("the dashboard", |s| s.contains("every listener's"));
    for (n, listener) in [&ann, &bob, &ann].into_iter().enumerate() {
        let body = common::event_body("workflow.failed", n as u64);
        let reply = common::signed_post(listener.addr, common::SECRET, common::now(), &body);
        assert_eq!(reply.status(), 200);
    }
    let screen = tmux.wait_for("both listeners' deliveries, live", |s| {
        s.contains("LISTENER") && s.matches("ann@laptop").count() >= 2 && s.contains("bob@ci")
    });
    assert!(!screen.contains(&cluster.password), "{screen}");
    // A listener's own dashboard shows its own deliveries, not the team's.
    let carol = Tmux::start();
    carol.open(&[
        "env",
        &password,
        common::BIN,
        "listen",
        "--port",
        "0",
        "--store",
        &url,
        "--name",
        "carol",
        "--secret",
        common::SECRET,
    ]);
    let screen = carol.wait_for("carol's dashboard", |s| s.contains("● LIVE"));
    assert!(
        !screen.contains("workflow.failed") && !screen.contains("earlier"),
        "the team's deliveries in carol's own dashboard: {screen}"
    );
    carol.keys("q");
    tmux.keys("q");
    assert_eq!(tmux.wait_for_exit(), "0");
}
