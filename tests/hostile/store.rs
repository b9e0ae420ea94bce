//! Filling the disk under the store: a delivery whose
//! record cannot be written is answered 503, never 2xx; what was answered
//! 2xx is exactly what is stored; ids are never given out twice, not even
//! after a restart on a full disk.
//!
//! Runs on a small tmpfs mounted for the test, which needs root: the two
//! tests are `#[ignore]`d, with the reason, so a plain `cargo test` says
//! `ignored` rather than `ok`, and CI (as root) runs them with
//! `--ignored`. Run on purpose where no tmpfs can be mounted, they fail
//! and say why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Listener, TempDir, assert_exit, ids_of_lines, now, run, signed_post, stdout};

const SECRET: &str = "whsec_disk_full_test";

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `Err` with the reason when it cannot be mounted here.
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (root is needed): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount the tmpfs to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// What one round of posts got: id → status, for each answer.
fn post_round(listener: &Listener, first: u64, count: u64) -> BTreeMap<u64, (u16, Vec<u8>)> {
    let mut answers = BTreeMap::new();
    for n in first..first + count {
        // ~12 KiB a body (16 KiB as a base64 line): a 512 KiB disk is full
        // after a few dozen.
        let body = format!(
            r#"{{"event":"workflow.failed","n":{n},"pad":"{}"}}"#,
            "x".repeat(12 * 1024)
        );
        let reply = signed_post(listener.addr, SECRET, now(), body.as_bytes());
        let id: u64 = reply
            .header("x-danube-hooks-delivery")
            .unwrap_or_else(|| panic!("answer {n} names its delivery id"))
            .parse()
            .unwrap();
        let status = reply.status();
        assert!(
            (200..300).contains(&status) || status == 503,
            "answer {n}: {status}"
        );
        if status == 503 {
            let text = String::from_utf8_lossy(reply.body());
            assert!(
                text.contains("store write failed") && text.contains("No space left on device"),
                "the 503 says why: {text}"
            );
        }
        let previous = answers.insert(id, (status, body.into_bytes()));
        assert!(previous.is_none(), "id {id} given twice in one run");
    }
    answers
}

/// The stored records: id → body.
fn stored(path: &Path) -> BTreeMap<u64, Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let record: danube_hooks::delivery::Delivery =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            (record.id, record.body)
        })
        .collect()
}

fn answered_2xx(answers: &BTreeMap<u64, (u16, Vec<u8>)>) -> BTreeMap<u64, Vec<u8>> {
    answers
        .iter()
        .filter(|(_, (status, _))| (200..300).contains(status))
        .map(|(id, (_, body))| (*id, body.clone()))
        .collect()
}

/// Why the full-disk tests are ignored by a plain `cargo test`, as libtest
/// prints it (`ignore` takes only a literal, so each repeats it).
const NEEDS_ROOT: &str = "needs root to mount a tmpfs: run `cargo test --test suite \
     full_disk -- --ignored` as root";

#[test]
#[ignore = "needs root to mount a tmpfs: run `cargo test --test suite full_disk -- --ignored` as root"]
fn a_full_disk_answers_503_stores_every_2xx_and_never_reuses_an_id() {
    fill_the_disk("disk-full", &[]);
}

#[test]
#[ignore = "needs root to mount a tmpfs: run `cargo test --test suite full_disk -- --ignored` as root"]
fn a_full_disk_under_durable_answers_503_stores_every_2xx_and_never_reuses_an_id() {
    fill_the_disk("disk-full-durable", &["--durable"]);
}

#[test]
fn a_plain_cargo_test_reports_the_full_disk_tests_ignored_with_the_reason() {
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .arg("store::a_full_disk_")
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for name in [
        "a_full_disk_answers_503_stores_every_2xx_and_never_reuses_an_id",
        "a_full_disk_under_durable_answers_503_stores_every_2xx_and_never_reuses_an_id",
    ] {
        assert!(
            text.contains(&format!("store::{name} ... ignored, {NEEDS_ROOT}")),
            "{text}"
        );
    }
    assert!(text.contains("0 passed; 0 failed; 2 ignored"), "{text}");
}

/// Fill a small disk under a listener started with `extra` arguments,
/// restart it on the full disk, then give it room again.
fn fill_the_disk(name: &str, extra: &[&str]) {
    let dir = TempDir::new(name);
    let disk = Tmpfs::mount(&dir.join("disk"), "512k").unwrap_or_else(|why| {
        panic!("the full-disk test {name} cannot mount its tmpfs: {why} ({NEEDS_ROOT})")
    });
    let store = disk.0.join("deliveries.jsonl");
    let store_arg = store.to_str().unwrap();
    let mut args = vec!["--no-tui", "--secret", SECRET, "--store", store_arg];
    args.extend_from_slice(extra);

    // First run: the disk fills.
    let mut listener = Listener::start(&args);
    let first = post_round(&listener, 0, 60);
    let stderr = listener.stderr_so_far();
    listener.signal_and_wait("TERM");
    let first_2xx = answered_2xx(&first);
    let refused = first.len() - first_2xx.len();
    assert!(
        !first_2xx.is_empty() && refused > 0,
        "the disk filled part way: {} stored, {refused} refused",
        first_2xx.len()
    );
    assert!(
        stderr.contains("could not write") && stderr.contains("503"),
        "the failure is on stderr: {stderr}"
    );
    println!("first run: {} stored, {refused} refused", first_2xx.len());
    assert_eq!(stored(&store), first_2xx, "answered 2xx == stored");

    // Second run on the still-full disk: refused again, with new ids.
    let mut listener = Listener::start(&args);
    let second = post_round(&listener, 100, 5);
    listener.signal_and_wait("TERM");
    assert!(second.values().all(|(status, _)| *status == 503));
    assert!(
        second.keys().min() > first.keys().max(),
        "ids rise across a restart: {:?} after {:?}",
        second.keys(),
        first.keys().max()
    );
    assert_eq!(stored(&store), first_2xx, "nothing new was stored");

    // Third run with room again: stored, with ids above every id given out.
    disk.resize("4m");
    let mut listener = Listener::start(&args);
    let third = post_round(&listener, 200, 10);
    listener.signal_and_wait("TERM");
    let third_2xx = answered_2xx(&third);
    assert_eq!(third_2xx.len(), 10, "all stored once there is room");
    assert!(third.keys().min() > second.keys().max());

    let every_id: BTreeSet<u64> = first
        .keys()
        .chain(second.keys())
        .chain(third.keys())
        .copied()
        .collect();
    assert_eq!(
        every_id.len(),
        first.len() + second.len() + third.len(),
        "no id reused"
    );
    let mut all_2xx = first_2xx;
    all_2xx.extend(third_2xx);
    assert_eq!(
        stored(&store),
        all_2xx,
        "answered 2xx == stored, across restarts"
    );
}

#[test]
fn the_store_is_bounded_by_rotation_and_log_reads_every_kept_file() {
    let dir = TempDir::new("rotation");
    let store = dir.join("deliveries.jsonl");
    let store_arg = store.to_str().unwrap();
    let args = [
        "--no-tui",
        "--secret",
        SECRET,
        "--store",
        store_arg,
        "--store-max",
        "64KiB",
        "--store-keep",
        "2",
    ];
    let mut listener = Listener::start(&args);
    let answers = post_round(&listener, 0, 30);
    listener.signal_and_wait("TERM");
    assert!(answers.values().all(|(status, _)| *status == 200));
    let last = *answers.keys().max().unwrap();

    let rotated = |n| dir.join(&format!("deliveries.{n}.jsonl"));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(
        !rotated(3).exists(),
        "only --store-keep 2 rotated files are kept"
    );
    for file in [store.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len <= 64 * 1024, "{} is {len} bytes", file.display());
    }

    // `log` reads the kept files oldest first: the newest records, in order,
    // ending at the last one answered.
    let output = run(&["log", "--json", "--store", store_arg], b"");
    assert_exit(&output, 0);
    let ids = ids_of_lines(&stdout(&output));
    assert!(
        ids.len() >= 3 && ids[0] > 1,
        "the oldest were deleted: {ids:?}"
    );
    assert_eq!(ids, (ids[0]..=last).collect::<Vec<_>>());
    let first_kept = run(&["show", &ids[0].to_string(), "--store", store_arg], b"");
    assert_exit(&first_kept, 0);

    // A restart goes on from the newest file: the first id it gives is
    // the one after the last. (Read back from the store rather than from
    // this post's answer: a stranger's delivery, another test's retry to a
    // port this listener now holds, may come first.)
    let mut listener = Listener::start(&args);
    let next = *post_round(&listener, 100, 1).keys().next().unwrap();
    listener.signal_and_wait("TERM");
    let output = run(&["log", "--json", "--store", store_arg], b"");
    assert_exit(&output, 0);
    let after_restart: Vec<u64> = ids_of_lines(&stdout(&output))
        .into_iter()
        .filter(|id| *id > last)
        .collect();
    assert_eq!(
        after_restart.first(),
        Some(&(last + 1)),
        "{after_restart:?}"
    );
    assert!(
        after_restart.contains(&next),
        "{after_restart:?} has {next}"
    );
}
