//! The store's unit tests: the handle, batching, recovery and the readers.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use super::lines::{Back, LinesBackward, id_of, id_prefix};
use super::*;
use crate::test_support::sample;

/// The file store at `path`, for the readers.
fn at_file(path: &Path) -> Location {
    Location::File(path.to_path_buf())
}

/// What a reader found, held whole: the tests' view of the streaming
/// readers (the commands stream, and hold no more than they print).
#[derive(Debug, Default)]
struct Scan {
    deliveries: Vec<Delivery>,
    /// In file order.
    skipped: Vec<Unparsable>,
}

impl Scan {
    /// Keep `entry`; true if it was a record.
    fn keep(&mut self, entry: Entry) -> bool {
        match entry {
            Entry::Record(delivery) => {
                self.deliveries.push(delivery);
                true
            }
            Entry::Skipped(skipped) => {
                self.skipped.push(skipped);
                false
            }
        }
    }
}

/// Every record, oldest first.
fn read_all(path: &Path) -> Result<Vec<Delivery>, StoreError> {
    scan_all(path).map(|scan| scan.deliveries)
}

/// The last `n` records, oldest first.
fn read_last(path: &Path, n: usize) -> Result<Vec<Delivery>, StoreError> {
    scan_last(path, n).map(|scan| scan.deliveries)
}

/// Up to `limit` records with ids above `after_id`, oldest first.
fn read_after(path: &Path, after_id: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let mut scan = Scan::default();
    if limit > 0 {
        each_forward(&at_file(path), Some(after_id), |entry| {
            if scan.keep(entry) && scan.deliveries.len() >= limit {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok(scan.deliveries)
}

/// [`read_all`], with the lines it skipped.
fn scan_all(path: &Path) -> Result<Scan, StoreError> {
    let mut scan = Scan::default();
    each_forward(&at_file(path), None, |entry| {
        scan.keep(entry);
        ControlFlow::Continue(())
    })?;
    Ok(scan)
}

/// [`read_last`], with the lines it skipped, read backwards from the end.
fn scan_last(path: &Path, n: usize) -> Result<Scan, StoreError> {
    let mut scan = Scan::default();
    if n > 0 {
        each_backward(&at_file(path), |entry| {
            if scan.keep(entry) && scan.deliveries.len() >= n {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
    }
    scan.deliveries.reverse();
    scan.skipped.reverse();
    Ok(scan)
}

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "danube-hooks-store-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn store(&self) -> PathBuf {
        self.0.join("nested").join("deliveries.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn body(n: u64) -> Vec<u8> {
    format!(r#"{{"event":"workflow.failed","n":{n}}}"#).into_bytes()
}

async fn open_with(path: &Path, records: u64) -> DeliveryStore {
    let (store, _) = DeliveryStore::open(StoreConfig::at(path)).unwrap();
    for n in 0..records {
        store.append(sample(0, &body(n))).await.unwrap();
    }
    store
}

fn ids(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.id).collect()
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[tokio::test]
async fn the_broadcast_carries_the_written_line_and_none_in_memory() {
    let dir = TempDir::new("line");
    let (store, _) = DeliveryStore::open(StoreConfig::at(dir.store())).unwrap();
    let mut events_rx = store.subscribe();
    let stored = store.append(sample(0, b"{}")).await.unwrap();
    match events_rx.recv().await.unwrap() {
        StoreEvent::Delivery(d, Some(line)) => {
            assert_eq!(d.id, stored.id);
            assert_eq!(line.to_string(), stored.to_json_line());
            let written = std::fs::read_to_string(dir.store()).unwrap();
            assert_eq!(written, format!("{line}\n"));
        }
        other => panic!("expected a delivery with its line, got {other:?}"),
    }
    store.close().await;
    let (memory, _) = DeliveryStore::open(StoreConfig::memory()).unwrap();
    let mut events_rx = memory.subscribe();
    memory.append(sample(0, b"{}")).await.unwrap();
    assert!(matches!(
        events_rx.recv().await.unwrap(),
        StoreEvent::Delivery(_, None)
    ));
}

#[test]
fn a_line_drafted_before_its_id_is_the_records_line_once_finished() {
    for id in [1, 9, 10, 12_345, u64::MAX] {
        let mut record = sample(0, &body(id));
        let mut out = b"earlier line\n".to_vec();
        let line = LineDraft::of(&record).finish(id);
        line.append_to(&mut out);
        record.id = id;
        let expected = format!("earlier line\n{}", record.to_json_line());
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(line.to_string(), record.to_json_line());
    }
}

#[tokio::test]
async fn an_append_dropped_before_its_write_still_writes_its_line() {
    use futures_util::FutureExt as _;
    let dir = TempDir::new("dropped");
    let path = dir.store();
    let (store, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    // Every append counts as part of a burst, so each yields before it
    // writes. The first one ever never does: it goes first.
    store
        .shared
        .arrivals
        .gap_ns
        .store(u64::MAX - 1, Ordering::Relaxed);
    assert_eq!(store.append(sample(0, &body(0))).await.unwrap().id, 1);
    // Polled once, it stages its line and yields before writing it
    // (for the lines of the appends that came with it); then dropped,
    // as hyper drops a handler when its connection goes.
    assert!(store.append(sample(0, &body(1))).now_or_never().is_none());
    let next = tokio::time::timeout(Duration::from_secs(10), store.append(sample(0, &body(2))))
        .await
        .expect("a later append is not left waiting on a write nobody does")
        .unwrap();
    assert_eq!(next.id, 3);
    store.close().await;
    assert_eq!(ids(&read_all(&path).unwrap()), [1, 2, 3]);
}

#[test]
fn appends_close_together_are_a_burst_and_a_lone_one_is_not() {
    let arrivals = Arrivals::new();
    let at = |us| arrivals.arrive_at(Duration::from_micros(us));
    assert!(!at(1_000), "the first append ever goes first");
    assert!(at(1_100), "100 µs after the last");
    assert!(at(1_349), "249 µs after the last");
    assert!(!at(1_600), "251 µs after the last");
    assert!(!at(5_000), "a lone append");
    // Two threads may note their starts out of order.
    assert!(at(4_900));
}

#[tokio::test]
async fn ids_rise_across_close_and_reopen() {
    let dir = TempDir::new("reopen");
    let path = dir.store();
    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.next_id, 1);
    assert_eq!(report.torn_bytes_cut, None);
    assert_eq!(store.path(), Some(path.as_path()));
    for expected in 1..=3 {
        assert_eq!(
            store.append(sample(0, &body(expected))).await.unwrap().id,
            expected
        );
    }
    store.close().await;

    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.next_id, 4);
    assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, 4);
    store.close().await;
    assert_eq!(ids(&read_all(&path).unwrap()), [1, 2, 3, 4]);
}

#[tokio::test]
async fn each_line_is_one_whole_record_with_its_id_first() {
    let dir = TempDir::new("lines");
    let path = dir.store();
    let store = open_with(&path, 0).await;
    let mut written = Vec::new();
    for n in 0..5 {
        written.push(store.append(sample(0, &body(n))).await.unwrap());
    }
    store.close().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    for (line, record) in lines.iter().zip(&written) {
        assert!(line.starts_with(&format!("{{\"id\":{},", record.id)));
        let back: Delivery = serde_json::from_str(line).unwrap();
        assert_eq!(&back, record.as_ref());
    }
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_reported_and_whole_records_survive() {
    let dir = TempDir::new("torn");
    let path = dir.store();
    open_with(&path, 3).await.close().await;
    let whole = std::fs::read(&path).unwrap();
    let half = &sample(4, b"{}").to_json_line().into_bytes()[..40];
    append_raw(&path, half);

    // Readers skip the torn line without calling it damaged.
    let scan = scan_all(&path).unwrap();
    assert_eq!(ids(&scan.deliveries), [1, 2, 3]);
    assert!(scan.skipped.is_empty());
    assert_eq!(ids(&read_last(&path, 10).unwrap()), [1, 2, 3]);

    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.torn_bytes_cut, Some(40));
    assert_eq!(report.next_id, 4);
    let message = report.torn_message().unwrap();
    assert!(message.contains("40 bytes") && message.contains(&path.display().to_string()));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        whole,
        "cut back to the whole records"
    );
    assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, 4);
    store.close().await;
    assert_eq!(ids(&read_all(&path).unwrap()), [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_file_with_only_a_torn_line_is_cut_to_empty() {
    let dir = TempDir::new("only-torn");
    let path = dir.store();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{\"id\":1,\"rec").unwrap();
    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!((report.next_id, report.torn_bytes_cut), (1, Some(12)));
    store.close().await;
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

#[tokio::test]
async fn a_damaged_last_line_is_skipped_when_finding_the_next_id() {
    let dir = TempDir::new("corrupt");
    let path = dir.store();
    open_with(&path, 3).await.close().await;
    append_raw(&path, b"not a record at all\n\n");

    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.next_id, 4);
    assert_eq!(report.torn_bytes_cut, None);
    assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, 4);
    store.close().await;

    let scan = scan_all(&path).unwrap();
    assert_eq!(ids(&scan.deliveries), [1, 2, 3, 4]);
    assert_eq!(scan.skipped.len(), 1, "the blank line is not reported");
    assert!(scan.skipped[0].to_string().starts_with("the line at byte "));
    let last = scan_last(&path, 2).unwrap();
    assert_eq!((ids(&last.deliveries), last.skipped.len()), (vec![3, 4], 1));
}

#[tokio::test]
async fn a_damaged_line_that_still_shows_its_id_keeps_that_id_taken() {
    let dir = TempDir::new("damaged-id");
    let path = dir.store();
    open_with(&path, 2).await.close().await;
    append_raw(&path, b"{\"id\":3,\"received_at\":\"20\x00\n");
    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.next_id, 4);
    store.close().await;
    let err = find(&at_file(&path), 3).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { id: 3, .. }), "{err:?}");
}

#[tokio::test]
async fn readers_last_after_and_find() {
    let dir = TempDir::new("readers");
    let path = dir.store();
    let store = open_with(&path, 4).await;
    // A record larger than the first backward chunk, so reads must grow.
    let big = vec![b'x'; 3 * FIRST_CHUNK];
    assert_eq!(store.append(sample(0, &big)).await.unwrap().id, 5);
    for n in 6..=10 {
        store.append(sample(0, &body(n))).await.unwrap();
    }
    store.close().await;

    assert_eq!(ids(&read_last(&path, 3).unwrap()), [8, 9, 10]);
    assert_eq!(ids(&read_last(&path, 6).unwrap()), [5, 6, 7, 8, 9, 10]);
    assert_eq!(read_last(&path, 100).unwrap().len(), 10);
    assert!(read_last(&path, 0).unwrap().is_empty());

    assert_eq!(ids(&read_after(&path, 7, 2).unwrap()), [8, 9]);
    assert_eq!(ids(&read_after(&path, 0, 3).unwrap()), [1, 2, 3]);
    assert_eq!(
        ids(&read_after(&path, 4, 100).unwrap()),
        [5, 6, 7, 8, 9, 10]
    );
    assert!(read_after(&path, 10, 5).unwrap().is_empty());
    assert!(read_after(&path, 3, 0).unwrap().is_empty());

    let five = find(&at_file(&path), 5).unwrap();
    assert_eq!((five.id, five.body.len()), (5, big.len()));
    assert_eq!(find(&at_file(&path), 1).unwrap().id, 1);
    let err = find(&at_file(&path), 99).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { id: 99, .. }));
    let message = err.to_string();
    assert!(message.contains("99"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_missing_store_says_so_by_path() {
    let dir = TempDir::new("missing");
    let path = dir.store();
    for err in [
        read_all(&path).unwrap_err(),
        read_last(&path, 1).unwrap_err(),
        read_after(&path, 0, 1).unwrap_err(),
        find(&at_file(&path), 1).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}

#[tokio::test]
async fn memory_only_gives_ids_and_broadcasts_without_a_file() {
    let (store, report) = DeliveryStore::open(StoreConfig::memory()).unwrap();
    assert_eq!(
        report,
        OpenReport {
            path: None,
            next_id: 1,
            torn_bytes_cut: None
        }
    );
    assert_eq!(report.torn_message(), None);
    assert_eq!(store.path(), None);
    let mut events_rx = store.subscribe();
    for expected in 1..=3 {
        assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, expected);
    }
    store.sync().await.unwrap();
    for expected in 1..=3 {
        match events_rx.recv().await.unwrap() {
            StoreEvent::Delivery(d, _) => assert_eq!(d.id, expected),
            other => panic!("unexpected {other:?}"),
        }
    }
    store.close().await;
}

#[tokio::test]
async fn the_broadcast_carries_each_record_in_id_order() {
    let dir = TempDir::new("broadcast");
    let path = dir.store();
    let (store, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    let mut events_rx = store.subscribe();
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append(sample(0, &body(n))).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for expected in 1..=50 {
        match events_rx.recv().await.unwrap() {
            StoreEvent::Delivery(d, _) => assert_eq!(d.id, expected),
            other => panic!("unexpected {other:?}"),
        }
    }
    store.close().await;
}

#[tokio::test]
async fn durable_appends_are_in_the_file_when_they_return() {
    let dir = TempDir::new("durable");
    let path = dir.store();
    let config = StoreConfig {
        durable: true,
        ..StoreConfig::at(&path)
    };
    let (store, _) = DeliveryStore::open(config).unwrap();
    let record = store.append(sample(0, b"{}")).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n", record.to_json_line()));
    store.close().await;
}

#[tokio::test]
async fn sync_and_the_fsync_deadline_leave_the_store_open() {
    let dir = TempDir::new("sync");
    let path = dir.store();
    let config = StoreConfig {
        fsync_interval: Duration::from_millis(1),
        ..StoreConfig::at(&path)
    };
    let (store, _) = DeliveryStore::open(config).unwrap();
    store.append(sample(0, b"{}")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.sync().await.unwrap();
    assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, 2);
    store.close().await;
    assert!(matches!(store.sync().await, Err(StoreError::Closed)));
}

#[tokio::test]
async fn a_second_open_of_the_same_store_is_refused_until_the_first_closes() {
    let dir = TempDir::new("in-use");
    let path = dir.store();
    let store = open_with(&path, 1).await;
    let err = DeliveryStore::open(StoreConfig::at(&path)).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("in use by another danube-hooks listen"),
        "{message}"
    );
    store.close().await;
    let (again, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.next_id, 2);
    again.close().await;
}

#[tokio::test]
async fn whether_a_listener_holds_the_store_is_told_without_disturbing_it() {
    let dir = TempDir::new("held");
    let path = dir.store();
    assert_eq!(super::held_by_listener(&path).unwrap(), Some(false));
    assert!(!path.exists(), "the question creates nothing");
    let store = open_with(&path, 1).await;
    let ids = std::fs::read(super::file::id_file_path(&path)).unwrap();
    assert_eq!(super::held_by_listener(&path).unwrap(), Some(true));
    assert_eq!(super::held_by_listener(&path).unwrap(), Some(true));
    // Still the listener's: its id file as it was, and no second open.
    assert_eq!(
        std::fs::read(super::file::id_file_path(&path)).unwrap(),
        ids
    );
    assert!(matches!(
        DeliveryStore::open(StoreConfig::at(&path)),
        Err(StoreError::InUse { .. })
    ));
    store.close().await;
    assert_eq!(super::held_by_listener(&path).unwrap(), Some(false));
    // Asked, the store is free for the next listener at once.
    let (again, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    again.close().await;
}

#[test]
fn an_unwritable_store_is_an_open_error_naming_the_path() {
    let dir = TempDir::new("unwritable");
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"").unwrap();
    for path in [
        file.join("deliveries.jsonl"),
        PathBuf::from("/proc/danube-hooks-no-such-dir/deliveries.jsonl"),
        dir.0.clone(), // a directory, not a file
    ] {
        let err = DeliveryStore::open(StoreConfig::at(&path)).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("--store PATH") && message.contains("--no-store"));
        assert!(std::error::Error::source(&err).is_some());
    }
}

#[tokio::test]
async fn close_is_idempotent_and_later_appends_are_refused_with_a_warning() {
    let dir = TempDir::new("closed");
    let path = dir.store();
    let store = open_with(&path, 2).await;
    let mut events_rx = store.subscribe();
    store.close().await;
    store.close().await;
    let late = store.append(sample(0, b"{}")).await.unwrap_err();
    assert_eq!(late.delivery.id, 3);
    assert!(late.reason.contains("closed"), "{}", late.reason);
    match events_rx.recv().await.unwrap() {
        StoreEvent::Warning(w) => {
            assert!(w.contains("delivery 3") && w.contains("closed"), "{w}");
        }
        other => panic!("expected a warning, got {other:?}"),
    }
    assert!(
        events_rx.try_recv().is_err(),
        "a record not written is not announced"
    );
    assert_eq!(ids(&read_all(&path).unwrap()), [1, 2], "not written");
}

/// Make every later write of `store` fail (EBADF), as a full disk would,
/// by swapping its file for one opened read-only.
fn break_writes(store: &DeliveryStore, path: &Path) {
    let mut file = store.shared.file.lock().unwrap();
    file.as_mut().unwrap().file = File::open(path).unwrap();
}

#[tokio::test]
async fn a_failed_write_is_an_error_and_its_id_is_never_given_again() {
    let dir = TempDir::new("write-error");
    let path = dir.store();
    let store = open_with(&path, 2).await;
    let mut events_rx = store.subscribe();
    break_writes(&store, &path);
    for expected in [3, 4] {
        let failed = store.append(sample(0, b"{}")).await.unwrap_err();
        assert_eq!(failed.delivery.id, expected);
        assert!(failed.reason.contains("os error"), "{}", failed.reason);
        match events_rx.recv().await.unwrap() {
            StoreEvent::Warning(w) => {
                let named = format!("delivery {expected}");
                assert!(w.contains(&named) && w.contains("503"), "{w}");
                assert!(w.contains(&path.display().to_string()), "{w}");
            }
            other => panic!("expected a warning, got {other:?}"),
        }
    }
    assert!(
        events_rx.try_recv().is_err(),
        "records not written are not announced"
    );
    store.close().await;
    assert_eq!(ids(&read_all(&path).unwrap()), [1, 2], "not written");

    // After a restart, ids go on above the ones given to failed writes.
    let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    assert_eq!(report.next_id, 5);
    assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, 5);
    store.close().await;
    assert_eq!(ids(&read_all(&path).unwrap()), [1, 2, 5]);
}

#[tokio::test]
async fn a_durable_append_waits_for_its_fsync_and_a_failed_write_is_refused() {
    let dir = TempDir::new("durable-error");
    let path = dir.store();
    let config = StoreConfig {
        durable: true,
        ..StoreConfig::at(&path)
    };
    let (store, _) = DeliveryStore::open(config).unwrap();
    assert_eq!(store.append(sample(0, b"{}")).await.unwrap().id, 1);
    break_writes(&store, &path);
    assert_eq!(
        store
            .append(sample(0, b"{}"))
            .await
            .unwrap_err()
            .delivery
            .id,
        2
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_distinct_ids_and_land_in_id_order() {
    let dir = TempDir::new("concurrent");
    let path = dir.store();
    let (store, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append(sample(0, &body(n))).await.unwrap().id })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
    store.close().await;
    let stored = read_all(&path).unwrap();
    assert_eq!(ids(&stored), (1..=200).collect::<Vec<_>>());
    let mut bodies: Vec<Vec<u8>> = stored.into_iter().map(|d| d.body).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 200, "every append's own record, none twice");
}

#[test]
fn lines_backward_matches_lines_forward_at_any_chunk_size() {
    // (file content, its whole non-blank lines, torn bytes at the end)
    type Case = (&'static [u8], &'static [&'static [u8]], u64);
    let dir = TempDir::new("backward");
    let path = dir.0.join("lines");
    let cases: &[Case] = &[
        (b"", &[], 0),
        (b"torn", &[], 4),
        (b"a\n", &[b"a"], 0),
        (b"a\nbb\n\nccc\n", &[b"a", b"bb", b"ccc"], 0),
        (b"a\nbb\ncc", &[b"a", b"bb"], 2),
        (b"\n\n", &[], 0),
        (b"long line here\nx\n", &[b"long line here", b"x"], 0),
    ];
    for (content, expected, torn) in cases {
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).unwrap();
        for chunk in [1, 2, 3, 5, 64] {
            let mut lines =
                LinesBackward::with_chunk(&file, content.len() as u64, chunk, MAX_LINE).unwrap();
            assert_eq!(lines.torn_bytes(), *torn, "{content:?} chunk {chunk}");
            let mut got = Vec::new();
            while let Some(Back::Line(offset, line)) = lines.next_line().unwrap() {
                let at = offset as usize;
                assert_eq!(&content[at..at + line.len()], line, "offset is right");
                got.push(line.to_vec());
            }
            got.reverse();
            assert_eq!(got, *expected, "{content:?} chunk {chunk}");
        }
    }
}

#[test]
fn ids_come_from_the_prefix_or_the_field() {
    let cases: &[(&[u8], Option<u64>)] = &[
        (b"{\"id\":12,\"x\":1}", Some(12)),
        (b"{\"id\":0}", Some(0)),
        (b"{\"id\":12", None),
        (b"{\"id\":,", None),
        (b"{\"id\":99999999999999999999999,", None),
        (b"{\"x\":1,\"id\":7}", Some(7)),
        (b"{ \"id\": 8 }", Some(8)),
        (b"not json", None),
    ];
    for (line, expected) in cases {
        assert_eq!(id_of(line), *expected, "{}", String::from_utf8_lossy(line));
    }
    assert_eq!(id_prefix(b"{\"x\":1,\"id\":7}"), None);
}

#[tokio::test]
async fn the_store_rotates_keeps_a_bounded_number_and_readers_see_every_kept_file() {
    let dir = TempDir::new("rotate");
    let path = dir.store();
    let line_len = {
        let mut one = sample(1, &body(1));
        one.id = 1;
        one.to_json_line().len() as u64 + 1
    };
    // Three records a file; two rotated files kept.
    let config = StoreConfig {
        max_bytes: line_len * 3 + 2,
        keep: 2,
        ..StoreConfig::at(&path)
    };
    let (store, _) = DeliveryStore::open(config.clone()).unwrap();
    for n in 1..=11 {
        assert_eq!(store.append(sample(0, &body(n))).await.unwrap().id, n);
    }
    store.close().await;
    let in_file = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| id_of(l.as_bytes()).unwrap())
            .collect::<Vec<_>>()
    };
    let rotated = |n| dir.0.join("nested").join(format!("deliveries.{n}.jsonl"));
    assert_eq!(in_file(&path), [10, 11]);
    assert_eq!(in_file(&rotated(1)), [7, 8, 9]);
    assert_eq!(in_file(&rotated(2)), [4, 5, 6]);
    assert!(!rotated(3).exists(), "the oldest (1–3) was deleted");

    // Every reader reads the kept files, oldest first.
    assert_eq!(ids(&read_all(&path).unwrap()), (4..=11).collect::<Vec<_>>());
    assert_eq!(ids(&read_last(&path, 4).unwrap()), [8, 9, 10, 11]);
    assert_eq!(ids(&read_after(&path, 5, 3).unwrap()), [6, 7, 8]);
    assert_eq!(ids(&read_after(&path, 8, 100).unwrap()), [9, 10, 11]);
    assert_eq!(find(&at_file(&path), 5).unwrap().id, 5);
    assert!(matches!(
        find(&at_file(&path), 2),
        Err(StoreError::NotFound { id: 2, .. })
    ));

    // Ids go on from the newest kept file, even when the current one is
    // empty (a rotation just happened).
    std::fs::write(&path, b"").unwrap();
    std::fs::rename(rotated(2), rotated(5)).unwrap(); // a gap in the numbers
    let (store, report) = DeliveryStore::open(config).unwrap();
    assert_eq!(report.next_id, 10);
    store.close().await;
    assert_eq!(ids(&read_all(&path).unwrap()), [4, 5, 6, 7, 8, 9]);
}

#[tokio::test]
async fn a_new_store_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("modes");
    let path = dir.0.join("made").join("here").join("deliveries.jsonl");
    let (store, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    store.close().await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&file::id_file_path(&path)), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.0.join("made")), 0o700);
}

#[test]
fn an_unopenable_store_says_why() {
    let dir = TempDir::new("why");
    let err = DeliveryStore::open(StoreConfig::at(&dir.0)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("Is a directory"), "{message}");
    assert!(message.contains(&dir.0.display().to_string()), "{message}");
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = DeliveryStore::open(StoreConfig::at(file.join("deliveries.jsonl"))).unwrap_err();
    assert!(err.to_string().contains("File exists"), "{err}");
}

#[test]
fn rotated_names_and_the_listing_of_kept_files() {
    let base = Path::new("/s/deliveries.jsonl");
    assert_eq!(
        file::rotated_path(base, 3),
        Path::new("/s/deliveries.3.jsonl")
    );
    assert_eq!(
        file::rotated_path(Path::new("/s/log"), 1),
        Path::new("/s/log.1")
    );
    let dir = TempDir::new("listing");
    let path = dir.0.join("deliveries.jsonl");
    for name in [
        "deliveries.jsonl",
        "deliveries.1.jsonl",
        "deliveries.10.jsonl",
        "deliveries.2.jsonl",
        "deliveries.01.jsonl",
        "deliveries.x.jsonl",
        "deliveries.jsonl.ids",
        "other.1.jsonl",
    ] {
        std::fs::write(dir.0.join(name), b"").unwrap();
    }
    let names: Vec<_> = file::rotated_files(&path)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "deliveries.10.jsonl",
            "deliveries.2.jsonl",
            "deliveries.1.jsonl"
        ]
    );
}

#[tokio::test]
async fn reading_back_within_a_byte_budget_stops_after_the_lines_it_covers() {
    let dir = TempDir::new("within");
    let path = dir.store();
    open_with(&path, 10).await.close().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let last_three: u64 = text.lines().rev().take(3).map(|l| l.len() as u64 + 1).sum();
    let mut seen = Vec::new();
    each_backward_within(&at_file(&path), last_three, |entry: Entry| {
        if let Entry::Record(record) = entry {
            seen.push(record.id);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, [10, 9, 8]);
}

/// A mirror that answers after its record was written: the answer is a
/// line of its own, and every reader gives the record with it, in order.
#[tokio::test]
async fn a_late_mirror_answer_is_kept_and_every_reader_folds_it_in() {
    let dir = TempDir::new("late-mirror");
    let (store, report) = DeliveryStore::open(StoreConfig::at(dir.store())).unwrap();
    let mut waiting = sample(0, &body(0));
    waiting.mirrors = vec![MirrorRecord {
        url: "http://127.0.0.1:9/copy".into(),
        status: None,
        error: None,
        duration_ms: 3,
    }];
    let first = store.append(waiting).await.unwrap();
    let second = store.append(sample(0, &body(1))).await.unwrap();
    let answered = MirrorRecord {
        url: "http://127.0.0.1:9/copy".into(),
        status: Some(502),
        error: None,
        duration_ms: 4_000,
    };
    store.mirrored(first.id, 0, answered.clone());
    let third = store.append(sample(0, &body(2))).await.unwrap();
    store.close().await;
    assert_eq!(report.next_id, first.id);

    let written = std::fs::read_to_string(dir.store()).unwrap();
    assert_eq!(written.lines().count(), 4, "three records and one answer");
    let at = at_file(&dir.store());
    assert_eq!(
        find(&at, first.id).unwrap().mirrors,
        std::slice::from_ref(&answered)
    );
    let forward = read_all(&dir.store()).unwrap();
    assert_eq!(ids(&forward), [first.id, second.id, third.id]);
    assert_eq!(forward[0].mirrors, std::slice::from_ref(&answered));
    let backward = read_last(&dir.store(), 10).unwrap();
    assert_eq!(
        backward.iter().find(|d| d.id == first.id).unwrap().mirrors,
        std::slice::from_ref(&answered)
    );
    let after = read_after(&dir.store(), 0, 10).unwrap();
    assert_eq!(after[0].mirrors, std::slice::from_ref(&answered));
    let tail = read_tail(
        &at,
        TailLimits {
            records: 10,
            bytes: usize::MAX,
            below_id: u64::MAX,
            listener: None,
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(ids(&tail.records), [first.id, second.id, third.id]);
    assert_eq!(tail.records[0].mirrors, [answered]);
    assert_eq!(tail.unparsable, 0, "an answer is no damaged line");
    let reopened = DeliveryStore::open(StoreConfig::at(dir.store())).unwrap().1;
    assert_eq!(reopened.next_id, third.id + 1, "an answer line gives no id");
}
