//! Work bounded by what is shown, not by what a store or an API holds:
//! `deliveries` against a Danube log whose oldest record claims 1970 (a
//! hostile or broken API), which once made its window the whole store.

use std::io::{BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::fake_danube::{FakeDanube, danube_hooks};
use crate::common::{
    Listener, TempDir, assert_exit, exchange, proc_status_kib, request_bytes, run_command, stderr,
    stdout,
};

/// Requests in the store that no Danube delivery accounts for: each one
/// a row of its own if nothing bounded them.
const STRAYS: u64 = 20_000;
/// The rows `deliveries` shows of those, at most (README, `deliveries`).
const UNKNOWN_SHOWN: usize = 100;
/// What `deliveries` may peak at, whatever the store holds. The debug
/// binary alone takes about 26 MiB; holding every request of the window
/// took about 2.6 KiB each more (80 MiB here).
const BOUND_KIB: u64 = 48 * 1024;

/// One record as the listener writes it, to copy.
fn one_record() -> Value {
    let listener = Listener::start(&["--json", "--no-store"]);
    let body = br#"{"event":"workflow.completed","timestamp":"t","data":{}}"#;
    let reply = exchange(
        listener.addr,
        &request_bytes("/webhooks/danube", &[], body),
        std::time::Duration::from_secs(10),
    );
    assert_eq!(reply.status(), 200);
    listener.next_record()
}

/// A store of `n` requests received over the last hour, oldest first,
/// each with an envelope of its own that Danube never sent. Written from
/// a template: fast, whatever the build.
fn write_store(path: &Path, n: u64) {
    let mut record = one_record();
    for field in ["id", "received_at", "body_b64", "body_size", "group"] {
        record[field] = json!(format!("@{field}@"));
    }
    let template = record.to_string();
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let start = Utc::now() - TimeDelta::hours(1);
    for id in 1..=n {
        let at = start + TimeDelta::milliseconds(i64::try_from(id).unwrap() * 50);
        let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let body =
            format!(r#"{{"event":"workflow.completed","timestamp":"{at}","data":{{"n":{id}}}}}"#);
        let line = template
            .replace("\"@id@\"", &id.to_string())
            .replace("@received_at@", &at)
            .replace(
                "@body_b64@",
                &base64::engine::general_purpose::STANDARD.encode(&body),
            )
            .replace("\"@body_size@\"", &body.len().to_string())
            .replace("@group@", &format!("g{id}"));
        out.write_all(line.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
}

/// Danube's log, newest first: deliveries of the last minutes that never
/// reached the store, and the last one claiming 1970.
fn hostile_log(webhook: &str) -> Vec<Value> {
    let now = Utc::now();
    (0..100)
        .map(|n| {
            let at = if n == 99 {
                "1970-01-01T00:00:00Z".to_owned()
            } else {
                (now - TimeDelta::seconds(n)).to_rfc3339_opts(SecondsFormat::Micros, true)
            };
            json!({
                "id": format!("dlv_{n:03}"),
                "webhook_id": webhook,
                "event_type": "workflow.failed",
                "payload": {"event": "workflow.failed", "timestamp": at, "data": {"n": n}},
                "status": "failed",
                "response_status": 502,
                "attempts": 3,
                "delivered_at": at,
                "created_at": at,
            })
        })
        .collect()
}

/// A store of `strays` requests, and a fake Danube whose webhook and log
/// claim 1970: the store, the fake, the webhook's id.
fn hostile_setup(dir: &TempDir, strays: u64) -> (PathBuf, FakeDanube, String) {
    let store = dir.join("deliveries.jsonl");
    write_store(&store, strays);
    let danube = FakeDanube::start();
    let (webhook, _) = danube.add_webhook("https://abc.ngrok.app/webhooks/danube", &[]);
    // The webhook's own time bounds nothing either.
    danube.edit_webhook(&webhook, &json!({"created_at": "1970-01-01T00:00:00Z"}));
    danube.set_deliveries(&webhook, hostile_log(&webhook));
    (store, danube, webhook)
}

fn deliveries(dir: &TempDir, danube: &FakeDanube, webhook: &str, store: &Path) -> Command {
    let mut cmd = danube_hooks(&dir.0);
    cmd.args(["deliveries", webhook, "--limit", "100", "--api-url"])
        .arg(danube.url())
        .arg("--store")
        .arg(store);
    cmd
}

#[test]
fn deliveries_against_a_log_from_1970_stays_bounded_by_the_rows_it_shows() {
    let dir = TempDir::new("bounded-deliveries");
    let (store, danube, webhook) = hostile_setup(&dir, STRAYS);
    let mut child = deliveries(&dir, &danube, &webhook, &store)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The table is printed once the join is done, and is longer than a
    // pipe holds: with its first byte read and the rest not yet, the
    // process is alive and past its peak.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    let peak_kib = proc_status_kib(&child.id().to_string(), "VmHWM");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let out = String::from_utf8([&first[..], &rest].concat()).unwrap();
    assert!(
        out.len() > 70_000,
        "the table fits a pipe, so the peak was not measured at the end"
    );
    assert!(
        peak_kib < BOUND_KIB,
        "deliveries peaked at {peak_kib} KiB on a store of {STRAYS} requests"
    );
    let unknown = out
        .lines()
        .filter(|line| line.starts_with("  ! unknown_to_danube"))
        .count();
    assert_eq!(unknown, UNKNOWN_SHOWN, "{}", &out[out.len() - 2000..]);
    let more = STRAYS - UNKNOWN_SHOWN as u64;
    assert!(
        out.contains(&format!("{more} more requests unknown to Danube")),
        "{}",
        &out[out.len() - 2000..]
    );
}

#[test]
fn deliveries_json_prints_the_newest_unknown_rows_and_says_how_many_more() {
    let dir = TempDir::new("bounded-deliveries-json");
    let strays = UNKNOWN_SHOWN as u64 + 50;
    let (store, danube, webhook) = hostile_setup(&dir, strays);
    let output = run_command(
        deliveries(&dir, &danube, &webhook, &store).arg("--json"),
        b"",
    );
    assert_exit(&output, 0);
    let rows: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let unknown: Vec<&Value> = rows.iter().filter(|row| row["danube"].is_null()).collect();
    assert_eq!(unknown.len(), UNKNOWN_SHOWN);
    // The newest first: the last request written leads.
    assert_eq!(unknown[0]["local"][0]["id"], strays);
    let told = stderr(&output);
    assert!(
        told.contains("50 more requests unknown to Danube are not shown"),
        "{told}"
    );
    // Danube's record from 1970 is listed, and not judged.
    let ancient = rows
        .iter()
        .find(|row| row["danube"]["id"] == "dlv_099")
        .unwrap();
    assert_eq!(ancient["findings"], json!([]), "{ancient}");
    assert!(
        told.contains("1 of Danube's deliveries were made more than 30 days ago"),
        "{told}"
    );
}
