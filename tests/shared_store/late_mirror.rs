//! A mirror's answer that comes after its row committed is kept in the
//! row, as the file keeps it in a line of its own (`store::amend`).

use std::io::Write as _;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::common::postgres;
use crate::common::{
    Listener, assert_exit, event_body, exchange, request_bytes, run_command, stdout,
};

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_mirrors_late_answer_is_folded_into_its_row() {
    let cluster = postgres::shared();
    let db = cluster.database("late_mirror");
    let url = cluster.url(&db);
    // A mirror that answers 202 a second after the copy arrives: after
    // the row has committed, within the mirror's timeout.
    let listener = listener_with_mirror(cluster, &url, || {
        std::thread::sleep(Duration::from_secs(1));
    });
    // A teammate's dashboard, open before the delivery: it hears of the
    // row's commit, then of its mirror's late answer.
    let mut cmd = cluster.command();
    cmd.args(["dashboard", "--store", &url]);
    let mut dashboard = HeadlessDashboard::watch(cmd);
    deliver_one(&listener);
    let row = |cluster: &postgres::Cluster| {
        cluster.sql(&db, "SELECT record FROM danube_hooks.deliveries")
    };
    let written = row(cluster);
    let record: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert!(
        record["mirrors"][0]["status"].is_null(),
        "the row committed before the mirror answered: {written}"
    );
    let folded = answer_committed(cluster, &db);
    assert_eq!(folded["id"], record["id"]);
    assert_eq!(
        folded["body_b64"], record["body_b64"],
        "the rest of the record as it was"
    );
    let log = run_command(
        cluster.command().args(["log", "--json", "--store", &url]),
        b"",
    );
    assert_exit(&log, 0);
    let read: serde_json::Value = serde_json::from_str(stdout(&log).trim()).unwrap();
    assert_eq!(read["mirrors"][0]["status"], 202);
    dashboard.shows_the_answer_of(record["id"].as_u64().unwrap());
    drop(listener);
}

/// A `dashboard --no-tui` (the command given), once it says it is
/// watching: its stdout's lines and what its stderr said so far.
struct HeadlessDashboard {
    _child: crate::common::KillOnDrop,
    shown: mpsc::Receiver<String>,
    told: mpsc::Receiver<String>,
    said: String,
}

impl HeadlessDashboard {
    fn watch(mut cmd: Command) -> HeadlessDashboard {
        cmd.arg("--no-tui");
        let (child, shown, told, said) =
            super::dashboard::start_watching(cmd, crate::common::lines_of);
        HeadlessDashboard {
            _child: child,
            shown,
            told,
            said,
        }
    }

    /// Wait until stderr has said `needle`.
    fn waits_for(&mut self, needle: &str) {
        super::dashboard::wait_stderr(&self.told, &mut self.said, needle);
    }

    /// All stderr has said by now.
    fn said_so_far(&mut self) -> &str {
        for line in self.told.try_iter() {
            self.said.push_str(&line);
            self.said.push('\n');
        }
        &self.said
    }

    /// Wait for the line that shows row `id`'s mirror answering 202.
    fn shows_the_answer_of(&mut self, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(line) if line.contains(&format!("#{id}")) && line.contains("mirror http://") => {
                    assert!(line.contains("202"), "{line}");
                    return;
                }
                Ok(line) => lines.push(line),
                Err(err) => panic!(
                    "the dashboard never showed the mirror's late answer ({err}): {lines:?}\n\
                     stderr: {}",
                    self.said_so_far()
                ),
            }
        }
    }
}

/// One delivery to `listener`, answered 200.
fn deliver_one(listener: &Listener) {
    let body = event_body("workflow.completed", 1);
    let reply = exchange(
        listener.addr,
        &request_bytes("/hooks", &[("Content-Type", "application/json")], &body),
        Duration::from_secs(10),
    );
    assert_eq!(reply.status(), 200);
}

/// The one row of `db`'s record, once its mirror's answer (202) is in it.
fn answer_committed(cluster: &postgres::Cluster, db: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now: serde_json::Value =
            serde_json::from_str(&cluster.sql(db, "SELECT record FROM danube_hooks.deliveries"))
                .unwrap();
        if now["mirrors"][0]["status"] == 202 {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the mirror's answer never committed: {now}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A listener on `url` (`--json`) whose one mirror answers 202 to each
/// copy once `answer_when` returns, within its timeout (30 s).
fn listener_with_mirror(
    cluster: &postgres::Cluster,
    url: &str,
    answer_when: impl Fn() + Send + Sync + 'static,
) -> Listener {
    let mirror = TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror_addr = mirror.local_addr().unwrap();
    let answer_when = Arc::new(answer_when);
    std::thread::spawn(move || {
        for stream in mirror.incoming() {
            let Ok(mut stream) = stream else { break };
            let answer_when = Arc::clone(&answer_when);
            std::thread::spawn(move || {
                let _ = crate::common::read_request(&mut stream, Duration::from_secs(5));
                answer_when();
                let _ = stream.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
    Listener::start_with(
        cluster.command(),
        &[
            "--json",
            "--store",
            url,
            "--mirror-to",
            &format!("http://{mirror_addr}/copy"),
            "--forward-timeout",
            "30s",
        ],
    )
}

/// The note of a mirror's late answer can be lost (the dashboard's
/// connection cut, its queue full). Here the answer is written into the
/// row with no note at all, and the dashboard's connection is cut: its
/// catch-up reads the mirrors it showed waiting, and shows the answer.
#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn a_late_answer_whose_note_was_lost_is_shown_after_the_catch_up() {
    let cluster = postgres::shared();
    let db = cluster.database("late_lost");
    let url = cluster.url(&db);
    // A mirror that does not answer while the test runs.
    let listener = listener_with_mirror(cluster, &url, || {
        std::thread::sleep(Duration::from_mins(1));
    });
    let viewer = "lost_note_viewer";
    let mut cmd = cluster.command();
    cmd.args([
        "dashboard",
        "--store",
        &format!("{url}?application_name={viewer}"),
    ]);
    let mut dashboard = HeadlessDashboard::watch(cmd);
    deliver_one(&listener);
    let record = cluster.sql(&db, "SELECT record FROM danube_hooks.deliveries");
    let id = serde_json::from_str::<serde_json::Value>(&record).unwrap()["id"]
        .as_u64()
        .unwrap();
    let row = dashboard
        .shown
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    assert!(row.contains(&format!("#{id}")), "{row}");

    // The answer, as the listener writes it, but with no note.
    let mirrors = record.find("\"mirrors\":[").unwrap();
    let pending = mirrors + record[mirrors..].find("\"status\":null").unwrap();
    let answered = format!(
        "{}\"status\":202{}",
        &record[..pending],
        &record[pending + "\"status\":null".len()..]
    );
    cluster.sql(
        &db,
        &format!(
            "UPDATE danube_hooks.deliveries SET record = '{}' WHERE id = {id}",
            answered.replace('\'', "''")
        ),
    );
    cluster.sql(
        &db,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{viewer}' AND datname = '{db}'"
        ),
    );
    dashboard.waits_for("lost the connection");
    dashboard.waits_for("committed meanwhile shown");
    dashboard.shows_the_answer_of(id);
    drop(dashboard);
    drop(listener);
}
