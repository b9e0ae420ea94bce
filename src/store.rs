//! The delivery log (SPEC §9): an append-only file of JSON lines, one
//! [`Delivery`] per line; recovery on open; and the readers that `log`,
//! `show`, `replay`, `export` and the dashboard's resync use.
//!
//! Appends are written by the tasks that receive the deliveries, not by a
//! writer thread: handing each record to a thread and waiting for its
//! answer cost a futex wake each way and a context switch per record
//! (docs/performance.md, second round). Each append stages its line under
//! a lock; the first one to find no write under way writes them all in one
//! `write` and lets them return. In a burst it first yields once, so the
//! appends that arrived with it stage theirs too ([`Arrivals`]). A `write`
//! to the page cache takes microseconds; the fsync, which can take tens of
//! milliseconds, runs on a thread of its own ([`Syncer`]), never on the
//! async runtime.
//!
//! What holds, so no whole record is ever lost or mixed with another:
//! - each batch of lines is handed to one `write_all`, and a failed write
//!   is cut back, so a line is in the file whole or not at all (short of a crash
//!   mid-write, which [`DeliveryStore::open`] repairs by cutting the torn
//!   last line);
//! - ids are given under the lock that stages lines, and one append at a
//!   time writes what is staged, so ids rise through the file and across
//!   restarts, and records are announced in id order;
//! - an advisory lock keeps a second process from writing the same file.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::ops::ControlFlow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::{broadcast, oneshot, watch};

use crate::delivery::Delivery;

/// How long a written record may wait for its fsync (SPEC §9).
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(100);
/// Events a subscriber may fall behind by before it gets `Lagged` and
/// resyncs from the file.
pub const EVENT_CAPACITY: usize = 4096;
/// Appends that start closer together than this are a burst, worth a
/// yield to batch their lines (see [`Arrivals`]).
const BURST_GAP: Duration = Duration::from_micros(250);
/// The first chunk read when reading backwards; it doubles up to
/// [`MAX_CHUNK`] while a line does not fit.
const FIRST_CHUNK: usize = 8 * 1024;
const MAX_CHUNK: usize = 1024 * 1024;

/// Where and how the store keeps records.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The JSON-lines file; `None` keeps records in memory only (`--no-store`).
    pub path: Option<PathBuf>,
    /// fsync each batch before its appends return (`--durable`).
    pub durable: bool,
    /// The longest a written record waits for its fsync when not durable.
    pub fsync_interval: Duration,
}

impl StoreConfig {
    /// A file store with the default fsync interval, not durable.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            durable: false,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
        }
    }

    /// Memory only: ids and the broadcast, no file.
    pub fn memory() -> Self {
        Self {
            path: None,
            durable: false,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
        }
    }
}

/// What the store announces to subscribers.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// A record, once written (or kept in memory only), in id order, with
    /// the JSON line the store made of it when it wrote one, so `--json`
    /// output need not serialize the record a second time.
    Delivery(Arc<Delivery>, Option<Arc<str>>),
    /// Something went wrong that the person should see; listening goes on.
    Warning(String),
}

/// What [`DeliveryStore::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub path: Option<PathBuf>,
    /// The id the first new record gets: the last record's id + 1, or 1.
    pub next_id: u64,
    /// Bytes of a torn last line (a crash mid-write) that were cut.
    pub torn_bytes_cut: Option<u64>,
}

impl OpenReport {
    /// The line to print on stderr when open repaired the file.
    pub fn torn_message(&self) -> Option<String> {
        let (cut, path) = (self.torn_bytes_cut?, self.path.as_ref()?);
        Some(format!(
            "cut a torn last line ({cut} bytes, from a write cut short) from {}; \
             every whole record before it is kept",
            path.display()
        ))
    }
}

/// Everything that can go wrong opening or reading the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the delivery store {} (pass --store PATH to use another file, \
         or --no-store to keep deliveries in memory only)",
        path.display()
    )]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "the delivery store {} is in use by another danube-hooks listen \
         (stop it, pass --store PATH to use another file, or --no-store)",
        path.display()
    )]
    InUse { path: PathBuf },
    #[error(
        "there is no delivery store at {} yet (danube-hooks listen creates it; \
         pass --store PATH to read another)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot read the delivery store {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the delivery store {}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the delivery store is closed")]
    Closed,
    #[error(
        "no delivery with id {id} in {} (`danube-hooks log` lists the ids there)",
        path.display()
    )]
    NotFound { id: u64, path: PathBuf },
    #[error(
        "delivery {id} in {} is damaged: the line at byte {offset} does not parse ({reason})",
        path.display()
    )]
    Corrupt {
        id: u64,
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub struct DeliveryStore {
    shared: Arc<Shared>,
}

/// What every handle shares.
struct Shared {
    /// Ids and the lines waiting to be written. A std mutex: held to stage a
    /// line or take the staged ones, never across a write or an `.await`.
    log: Mutex<Log>,
    /// The file, written by one append at a time (see [`Log::writing`]),
    /// then released by close. `None` in memory-only mode.
    file: Mutex<Option<StoreFile>>,
    /// The highest id whose line has been written (or whose write failed
    /// and was reported): what appends wait for.
    written: watch::Sender<u64>,
    events_tx: broadcast::Sender<StoreEvent>,
    path: Option<PathBuf>,
    /// Each append waits for an fsync that covers it (`--durable`).
    durable: bool,
    arrivals: Arrivals,
}

/// Tells a burst of appends from a lone one by the time since the last one
/// started. The first append of a burst yields once before writing, so the
/// others of the burst stage their lines and share its `write`: under load
/// that is 20 to 50% more deliveries a second. A lone append (webhooks a few
/// at a time, or even 1,000 a second spread over 16 connections) writes at
/// once, as a yield would cost it a trip through the scheduler with nothing
/// to batch: at 1,000 req/s that trip was 0.04 ms of the median answer and
/// up to 0.4 ms of the p99 (docs/performance.md, fourth round).
struct Arrivals {
    epoch: Instant,
    /// When the last append started, in nanoseconds from `epoch`.
    last_ns: AtomicU64,
    /// [`BURST_GAP`] in nanoseconds; an atomic so a test can widen it.
    gap_ns: AtomicU64,
}

impl Arrivals {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ns: AtomicU64::new(u64::MAX),
            gap_ns: AtomicU64::new(u64::try_from(BURST_GAP.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Note an append starting now; true if it is part of a burst.
    fn arrive(&self) -> bool {
        self.arrive_at(self.epoch.elapsed())
    }

    fn arrive_at(&self, since_epoch: Duration) -> bool {
        let now = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_ns.swap(now, Ordering::Relaxed);
        // `abs_diff`: two appends on two threads may swap in either order.
        // The first append ever (`last` is u64::MAX) is never a burst.
        last != u64::MAX && now.abs_diff(last) < self.gap_ns.load(Ordering::Relaxed)
    }
}

struct Log {
    next_id: u64,
    /// Lines given ids and not yet written, in id order.
    staged: Staged,
    /// An append is writing the staged lines; the others leave theirs for
    /// it. So the lines of appends that arrive together reach the file in
    /// one `write`, with no thread to hand them to.
    writing: bool,
    /// `None` in memory-only mode, and once closed.
    syncer: Option<Syncer>,
    closed: bool,
}

#[derive(Default)]
struct Staged {
    /// Whole lines, each with its newline.
    lines: Vec<u8>,
    /// Each staged record, with where its line is in `lines` (without the
    /// newline).
    records: Vec<(Arc<Delivery>, Range<usize>)>,
}

/// What [`Shared::stage`] left for the appending task to do.
enum Next {
    /// Nothing: the record is not going to the file (memory only, or closed).
    Done,
    /// Write the staged lines, then wait for this record's.
    Write,
    /// Another append is writing: wait for this record's line.
    Wait,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn warn(&self, message: String) {
        // No subscribers is fine: nobody is watching.
        let _ = self.events_tx.send(StoreEvent::Warning(message));
    }

    fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "memory".to_string(), |p| p.display().to_string())
    }

    /// Give `delivery` the next id and stage its line (finished from
    /// `draft`), or, when it is not going to the file, announce it now.
    fn stage(&self, mut delivery: Delivery, draft: Option<LineDraft>) -> (Arc<Delivery>, Next) {
        let mut log = self.lock();
        delivery.id = log.next_id;
        log.next_id = log.next_id.saturating_add(1);
        let draft = match draft {
            Some(draft) if !log.closed => draft,
            _ => {
                if log.closed {
                    self.warn(format!(
                        "delivery {} arrived after the store ({}) closed and was not written",
                        delivery.id,
                        self.path_text()
                    ));
                }
                let delivery = Arc::new(delivery);
                // Under the lock, so subscribers see records in id order.
                let _ = self
                    .events_tx
                    .send(StoreEvent::Delivery(Arc::clone(&delivery), None));
                return (delivery, Next::Done);
            }
        };
        let delivery = Arc::new(delivery);
        let staged = &mut log.staged;
        let start = staged.lines.len();
        draft.finish_into(delivery.id, &mut staged.lines);
        let end = staged.lines.len() - 1;
        staged.records.push((Arc::clone(&delivery), start..end));
        let next = if log.writing {
            Next::Wait
        } else {
            log.writing = true;
            Next::Write
        };
        (delivery, next)
    }

    /// Write what is staged, batch after batch, until nothing is; then
    /// announce each record, in id order, and let its append return.
    /// Only the append that set [`Log::writing`] calls this.
    fn write_staged(&self) {
        let mut batch = Staged::default();
        let mut wrote = false;
        loop {
            {
                let mut log = self.lock();
                if wrote && let Some(syncer) = &log.syncer {
                    syncer.soon();
                }
                if log.staged.records.is_empty() {
                    log.writing = false;
                    return;
                }
                std::mem::swap(&mut batch, &mut log.staged);
            }
            wrote = self.write_batch(&batch.lines, &batch.records);
            let mut last = None;
            for (delivery, range) in batch.records.drain(..) {
                last = Some(delivery.id);
                let line = wrote
                    .then(|| std::str::from_utf8(&batch.lines[range]).ok().map(Arc::from))
                    .flatten();
                let _ = self.events_tx.send(StoreEvent::Delivery(delivery, line));
            }
            batch.lines.clear();
            if let Some(last) = last {
                self.written.send_replace(last);
            }
        }
    }

    /// One `write` of a batch of lines; a failure is broadcast as a warning.
    fn write_batch(&self, lines: &[u8], records: &[(Arc<Delivery>, Range<usize>)]) -> bool {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(store) = file.as_mut() else {
            return false;
        };
        match store.write(lines) {
            Ok(()) => true,
            Err(err) => {
                self.warn(format!(
                    "could not write {} to {}: {err}; kept in memory only, listening goes on",
                    describe_ids(records),
                    store.path.display()
                ));
                false
            }
        }
    }

    /// Ask for an fsync now; `None` when there is no file (any more).
    fn fsync_now(&self) -> Option<oneshot::Receiver<Result<(), StoreError>>> {
        self.lock().syncer.as_ref().map(Syncer::now)
    }
}

/// The staged lines are written when this is dropped: after the append
/// that holds it has yielded once, or if it is cancelled meanwhile.
struct WriteTurn<'a>(&'a Shared);

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.0.write_staged();
    }
}

/// `delivery 5` or `deliveries 5–9`, for a warning.
fn describe_ids(records: &[(Arc<Delivery>, Range<usize>)]) -> String {
    match (records.first(), records.last()) {
        (Some((first, _)), Some((last, _))) if first.id != last.id => {
            format!("deliveries {}–{}", first.id, last.id)
        }
        (Some((only, _)), _) => format!("delivery {}", only.id),
        _ => "nothing".to_string(),
    }
}

/// A record's JSON line, made before its id is known (outside the lock)
/// with `"id":0` in front, which [`LineDraft::finish_into`] replaces. `id`
/// is the first field of [`Delivery`], so the placeholder is always the
/// start.
struct LineDraft(Vec<u8>);

impl LineDraft {
    const PLACEHOLDER: &'static [u8] = b"{\"id\":0";

    fn of(delivery: &mut Delivery) -> Self {
        delivery.id = 0;
        let mut line = Vec::with_capacity(delivery.body.len() * 4 / 3 + 1024);
        crate::display::write_json_line(&mut line, delivery);
        debug_assert!(line.starts_with(Self::PLACEHOLDER));
        Self(line)
    }

    /// Append the line with `id` in place, and its newline, to `out`.
    fn finish_into(self, id: u64, out: &mut Vec<u8>) {
        let rest = self
            .0
            .strip_prefix(Self::PLACEHOLDER)
            .expect("a record's line starts with its id");
        out.extend_from_slice(b"{\"id\":");
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(rest);
        out.push(b'\n');
    }
}

impl fmt::Debug for DeliveryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl DeliveryStore {
    /// Open (or create) the store, repair a torn tail, find the next id, and
    /// start the fsync thread. Reads only the end of the file, so it is fast
    /// on a large store.
    pub fn open(config: StoreConfig) -> Result<(DeliveryStore, OpenReport), StoreError> {
        let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let (file, syncer, report) = match &config.path {
            None => (
                None,
                None,
                OpenReport {
                    path: None,
                    next_id: 1,
                    torn_bytes_cut: None,
                },
            ),
            Some(path) => {
                let (file, report) = open_file(path)?;
                let syncer = Syncer::start(&file, config.fsync_interval, events_tx.clone())
                    .map_err(|source| StoreError::Open {
                        path: path.clone(),
                        source,
                    })?;
                (Some(file), Some(syncer), report)
            }
        };
        let shared = Arc::new(Shared {
            log: Mutex::new(Log {
                next_id: report.next_id,
                staged: Staged::default(),
                writing: false,
                syncer,
                closed: false,
            }),
            file: Mutex::new(file),
            written: watch::Sender::new(report.next_id - 1),
            events_tx,
            path: config.path,
            durable: config.durable,
            arrivals: Arrivals::new(),
        });
        Ok((DeliveryStore { shared }, report))
    }

    /// Give `delivery` its id (the caller passes 0), write it, announce it.
    /// Written (and fsynced, when durable) before this returns. Never fails:
    /// a record that could not be written still gets its id, and the store
    /// broadcasts a warning.
    pub async fn append(&self, mut delivery: Delivery) -> Arc<Delivery> {
        let in_burst = self.shared.arrivals.arrive();
        // Serialized before any lock is taken.
        let draft = self
            .shared
            .path
            .is_some()
            .then(|| LineDraft::of(&mut delivery));
        let (delivery, next) = self.shared.stage(delivery, draft);
        match next {
            Next::Done => return delivery,
            Next::Write => {
                let turn = WriteTurn(&self.shared);
                if in_burst {
                    // Let the appends that arrived with this one stage their
                    // lines, so they share its `write`: small appends cost
                    // the page cache far more per byte than one larger one.
                    tokio::task::yield_now().await;
                }
                drop(turn);
            }
            Next::Wait => {}
        }
        let mut written = self.shared.written.subscribe();
        // The sender lives in `self.shared`, so this ends only when the
        // line has been written (or its failure reported).
        let _ = written.wait_for(|&id| id >= delivery.id).await;
        if self.shared.durable
            && let Some(fsynced) = self.shared.fsync_now()
        {
            // A failed fsync has been broadcast as a warning by the syncer.
            let _ = fsynced.await;
        }
        delivery
    }

    /// Records (in id order) and warnings from now on. A receiver that falls
    /// more than [`EVENT_CAPACITY`] behind gets `Lagged` and should resync
    /// with [`read_after`]; appends never wait for it.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.shared.events_tx.subscribe()
    }

    /// fsync what has been written, now.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let fsynced = {
            let log = self.shared.lock();
            if log.closed {
                return Err(StoreError::Closed);
            }
            match &log.syncer {
                Some(syncer) => syncer.now(),
                None => return Ok(()),
            }
        };
        fsynced.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Write what was appended before this call, fsync, release the file
    /// and stop the fsync thread; returns once the file is closed.
    /// Idempotent: a second close returns at once. Later appends still
    /// return (with an id, not written) and warn.
    pub async fn close(&self) {
        let (syncer, last_id) = {
            let mut log = self.shared.lock();
            if log.closed {
                return;
            }
            log.closed = true;
            (log.syncer.take(), log.next_id - 1)
        };
        if self.shared.path.is_some() {
            let mut written = self.shared.written.subscribe();
            let _ = written.wait_for(|&id| id >= last_id).await;
        }
        let file = self
            .shared
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let shared = Arc::clone(&self.shared);
        // Off the runtime: the last fsync can take a while.
        let closing = tokio::task::spawn_blocking(move || {
            if let Some(syncer) = syncer {
                syncer.stop();
            }
            // `store` is dropped at the end of this `if`, which closes the
            // file and releases its lock.
            if let Some(store) = file
                && let Err(err) = store.file.sync_data()
            {
                shared.warn(format!(
                    "could not fsync {} on close: {err}",
                    store.path.display()
                ));
            }
        });
        let _ = closing.await;
    }

    /// The file, or `None` in memory-only mode.
    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }
}

/// Open, lock and repair the file; find the next id.
fn open_file(path: &Path) -> Result<(StoreFile, OpenReport), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(open_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StoreError::InUse {
                path: path.to_path_buf(),
            });
        }
        // Some file systems have no locks; the store works without one, as
        // long as the person runs one listener on it.
        Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Unsupported => {}
        Err(TryLockError::Error(err)) => return Err(open_error(err)),
    }
    let read_error = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(read_error)?.len();
    let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
    let torn = lines.torn_bytes();
    let mut last_id = 0;
    while let Some((_, line)) = lines.next_line().map_err(read_error)? {
        // The last line that carries an id, even if the rest of it is
        // damaged: that id was given out, so it must not be given again.
        if let Some(id) = id_of(line) {
            last_id = id;
            break;
        }
    }
    let end = len - torn;
    if torn > 0 {
        file.set_len(end).map_err(open_error)?;
        file.sync_data().map_err(open_error)?;
    }
    let report = OpenReport {
        path: Some(path.to_path_buf()),
        next_id: last_id.saturating_add(1),
        torn_bytes_cut: (torn > 0).then_some(torn),
    };
    let store_file = StoreFile {
        file,
        path: path.to_path_buf(),
        len: end,
        fragment: false,
    };
    Ok((store_file, report))
}

/// The open, locked file and what the store knows about its end.
struct StoreFile {
    file: File,
    path: PathBuf,
    /// Bytes of whole lines in the file: where the next line starts.
    len: u64,
    /// A failed write left bytes that could not be cut; the next write ends
    /// them with a newline first, so they cost a line of garbage, never a
    /// whole record.
    fragment: bool,
}

impl StoreFile {
    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.fragment {
            self.file.write_all(b"\n")?;
            self.fragment = false;
            self.len = self.file.metadata()?.len();
        }
        match self.file.write_all(lines) {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(err) => {
                // A short write (a full disk) leaves half a line: cut it, so
                // the next record starts on a line of its own.
                if self.file.set_len(self.len).is_err() {
                    self.fragment = true;
                }
                Err(err)
            }
        }
    }
}

/// The fsyncs, on a thread of their own: under load an fsync of the last
/// 100 ms of records can take tens of milliseconds, and no request may wait
/// behind it unless `--durable` (or [`DeliveryStore::sync`]) asks to.
struct Syncer {
    requests: mpsc::Sender<SyncRequest>,
    /// Set from a timed request until the fsync that serves it begins, so
    /// a flood of writes sends one request per fsync, not one each.
    soon_asked: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

enum SyncRequest {
    /// A write was made: fsync within the interval.
    Soon,
    /// fsync now, and say when it is done.
    Now(oneshot::Sender<Result<(), StoreError>>),
}

impl Syncer {
    fn start(
        store: &StoreFile,
        interval: Duration,
        events_tx: broadcast::Sender<StoreEvent>,
    ) -> io::Result<Self> {
        let file = store.file.try_clone()?;
        let path = store.path.clone();
        let soon_asked = Arc::new(AtomicBool::new(false));
        let (requests, requests_rx) = mpsc::channel();
        let thread = {
            let soon_asked = Arc::clone(&soon_asked);
            std::thread::Builder::new()
                .name("danube-hooks-fsync".into())
                .spawn(move || {
                    while let Some(waiters) = next_round(&requests_rx, interval) {
                        // Cleared before the fsync begins: a write after this
                        // point asks again, a write before it is covered.
                        soon_asked.store(false, Ordering::SeqCst);
                        let result = file.sync_data();
                        if let Err(err) = &result {
                            let _ = events_tx.send(StoreEvent::Warning(format!(
                                "could not fsync {}: {err}; the records are written \
                                 but may not survive a crash",
                                path.display()
                            )));
                        }
                        for waiter in waiters {
                            // io::Error is not Clone: each waiter gets its own.
                            let _ = waiter.send(result.as_ref().map(|&()| ()).map_err(|err| {
                                StoreError::Write {
                                    path: path.clone(),
                                    source: io::Error::new(err.kind(), err.to_string()),
                                }
                            }));
                        }
                    }
                })?
        };
        Ok(Self {
            requests,
            soon_asked,
            thread,
        })
    }

    /// A write was made (call after it): fsync within the interval.
    fn soon(&self) {
        if !self.soon_asked.swap(true, Ordering::SeqCst) {
            let _ = self.requests.send(SyncRequest::Soon);
        }
    }

    /// fsync now (covering every write made before this call); the receiver
    /// gets the result. If the thread is gone the receiver gets an error.
    fn now(&self) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done_tx, done_rx) = oneshot::channel();
        let _ = self.requests.send(SyncRequest::Now(done_tx));
        done_rx
    }

    /// Stop after any fsync under way, so the file is closed when this
    /// returns.
    fn stop(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

/// Wait for the next fsync to do: a `Now` at once, a `Soon` once the
/// interval has passed (or sooner, if a `Now` comes). Returns who waits on
/// it, or `None` once every sender is gone and nothing is left to do.
fn next_round(
    requests: &mpsc::Receiver<SyncRequest>,
    interval: Duration,
) -> Option<Vec<oneshot::Sender<Result<(), StoreError>>>> {
    let mut waiters = Vec::new();
    match requests.recv().ok()? {
        SyncRequest::Now(waiter) => waiters.push(waiter),
        SyncRequest::Soon => {
            let deadline = Instant::now() + interval;
            loop {
                match requests.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(SyncRequest::Soon) => {}
                    Ok(SyncRequest::Now(waiter)) => {
                        waiters.push(waiter);
                        break;
                    }
                    // On disconnect, still fsync what was written.
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
    }
    // What else is queued is covered by the fsync about to begin.
    while let Ok(request) = requests.try_recv() {
        if let SyncRequest::Now(waiter) = request {
            waiters.push(waiter);
        }
    }
    Some(waiters)
}

/// `$XDG_DATA_HOME/danube-hooks/deliveries.jsonl`, else
/// `~/.local/share/danube-hooks/deliveries.jsonl`.
pub fn default_path() -> Option<PathBuf> {
    default_path_from(std::env::var_os("XDG_DATA_HOME"), std::env::home_dir())
}

fn default_path_from(
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    // The XDG spec says to ignore an empty or relative XDG_DATA_HOME.
    let data_home = xdg_data_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".local").join("share")))?;
    Some(data_home.join("danube-hooks").join("deliveries.jsonl"))
}

// ---------------------------------------------------------------------------
// Readers: plain sync functions over the file; no writer needed, safe to run
// while a listener appends (they stop at the last whole line).

/// A line a reader could not parse and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsable {
    /// Where the line starts in the file.
    pub offset: u64,
    pub reason: String,
}

impl fmt::Display for Unparsable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the line at byte {}: {}", self.offset, self.reason)
    }
}

/// What a reader found: the records, and the lines it skipped so the command
/// can say so on stderr.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub deliveries: Vec<Delivery>,
    /// In file order.
    pub skipped: Vec<Unparsable>,
}

impl Scan {
    fn take(&mut self, offset: u64, line: &[u8]) -> Option<u64> {
        match serde_json::from_slice::<Delivery>(line) {
            Ok(delivery) => {
                let id = delivery.id;
                self.deliveries.push(delivery);
                Some(id)
            }
            Err(err) => {
                self.skipped.push(Unparsable {
                    offset,
                    reason: err.to_string(),
                });
                None
            }
        }
    }
}

/// Every record, oldest first.
pub fn read_all(path: &Path) -> Result<Vec<Delivery>, StoreError> {
    scan_all(path).map(|scan| scan.deliveries)
}

/// The last `n` records, oldest first.
pub fn read_last(path: &Path, n: usize) -> Result<Vec<Delivery>, StoreError> {
    scan_last(path, n).map(|scan| scan.deliveries)
}

/// Up to `limit` records with ids above `after_id`, oldest first.
pub fn read_after(path: &Path, after_id: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    scan_after(path, after_id, limit).map(|scan| scan.deliveries)
}

/// [`read_all`], with the lines it skipped.
pub fn scan_all(path: &Path) -> Result<Scan, StoreError> {
    let file = open_for_read(path)?;
    let mut scan = Scan::default();
    for_each_line(path, file, 0, |offset, line| {
        scan.take(offset, line);
        ControlFlow::Continue(())
    })?;
    Ok(scan)
}

/// [`read_last`], with the lines it skipped. Reads backwards from the end,
/// so it costs the same on any size of store.
pub fn scan_last(path: &Path, n: usize) -> Result<Scan, StoreError> {
    let file = open_for_read(path)?;
    let read_error = read_error(path);
    let len = file.metadata().map_err(read_error)?.len();
    let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
    let mut scan = Scan::default();
    while scan.deliveries.len() < n {
        let Some((offset, line)) = lines.next_line().map_err(read_error)? else {
            break;
        };
        scan.take(offset, line);
    }
    scan.deliveries.reverse();
    scan.skipped.reverse();
    Ok(scan)
}

/// [`read_after`], with the lines it skipped. Finds where `after_id` ends by
/// reading only the `{"id":N,` of lines backwards from the end (ids rise
/// through the file), then parses forwards from there.
pub fn scan_after(path: &Path, after_id: u64, limit: usize) -> Result<Scan, StoreError> {
    let file = open_for_read(path)?;
    let read_error = read_error(path);
    let len = file.metadata().map_err(read_error)?.len();
    let mut start;
    {
        let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
        // Nothing after `after_id` unless a line back from the end says so.
        start = len - lines.torn_bytes();
        while let Some((offset, line)) = lines.next_line().map_err(read_error)? {
            if id_prefix(line).is_some_and(|id| id <= after_id) {
                break;
            }
            start = offset;
        }
    }
    let mut scan = Scan::default();
    if limit == 0 {
        return Ok(scan);
    }
    for_each_line(path, file, start, |offset, line| {
        if id_of(line).is_some_and(|id| id <= after_id) {
            return ControlFlow::Continue(());
        }
        if scan.take(offset, line).is_some() && scan.deliveries.len() >= limit {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(scan)
}

/// The record with `id`. Reads backwards, since the records people ask for
/// are mostly recent, and parses only the line whose `{"id":N,` matches.
pub fn find(path: &Path, id: u64) -> Result<Delivery, StoreError> {
    let file = open_for_read(path)?;
    let read_error = read_error(path);
    let len = file.metadata().map_err(read_error)?.len();
    let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
    while let Some((offset, line)) = lines.next_line().map_err(read_error)? {
        if id_of(line) != Some(id) {
            continue;
        }
        return serde_json::from_slice(line).map_err(|err| StoreError::Corrupt {
            id,
            path: path.to_path_buf(),
            offset,
            reason: err.to_string(),
        });
    }
    Err(StoreError::NotFound {
        id,
        path: path.to_path_buf(),
    })
}

fn open_for_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            StoreError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            StoreError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_error(path: &Path) -> impl Fn(io::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Call `each(offset, line)` for every whole, non-blank line from `start`,
/// without its newline. A last line with no newline is torn (or still being
/// written) and is not a record yet: it is skipped.
fn for_each_line(
    path: &Path,
    mut file: File,
    start: u64,
    mut each: impl FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let read_error = read_error(path);
    file.seek(SeekFrom::Start(start)).map_err(read_error)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut offset = start;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(read_error)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        let text = &line[..n - 1];
        if !is_blank(text) && each(offset, text).is_break() {
            return Ok(());
        }
        offset += n as u64;
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The id of a line as the store writes it: `{"id":N,` first. Cheap: no
/// JSON parse.
fn id_prefix(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"id\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !matches!(rest.get(digits), Some(b',' | b'}')) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The id of a line: its prefix, else (a line some other tool rewrote with
/// `id` elsewhere) a parse of the `id` field alone.
fn id_of(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: u64,
    }
    id_prefix(line).or_else(|| serde_json::from_slice::<IdOnly>(line).ok().map(|r| r.id))
}

/// Whole lines of a file, last first, read in chunks that grow while a line
/// does not fit, so the cost is the lines read, not the file's size.
struct LinesBackward<'f> {
    file: &'f File,
    /// The file offset of `buf[0]`.
    pos: u64,
    /// `buf[..valid]` is what is left to yield: whole lines, ending in `\n`
    /// (or nothing). Bytes after `valid` were yielded already.
    buf: Vec<u8>,
    valid: usize,
    chunk: usize,
    torn: u64,
}

impl<'f> LinesBackward<'f> {
    fn new(file: &'f File, len: u64) -> io::Result<Self> {
        Self::with_chunk(file, len, FIRST_CHUNK)
    }

    /// Start at `len`, skipping a last line that has no newline (torn).
    fn with_chunk(file: &'f File, len: u64, chunk: usize) -> io::Result<Self> {
        let mut lines = Self {
            file,
            pos: len,
            buf: Vec::new(),
            valid: 0,
            chunk: chunk.max(1),
            torn: 0,
        };
        loop {
            if let Some(i) = lines.buf[..lines.valid].iter().rposition(|&b| b == b'\n') {
                lines.valid = i + 1;
                break;
            }
            if lines.pos == 0 {
                lines.valid = 0;
                break;
            }
            lines.grow()?;
        }
        lines.torn = len - (lines.pos + lines.valid as u64);
        Ok(lines)
    }

    /// Bytes after the last newline: a torn last line, not a record.
    fn torn_bytes(&self) -> u64 {
        self.torn
    }

    /// Read the chunk before `pos` into the front of `buf`.
    fn grow(&mut self) -> io::Result<()> {
        let take = (self.chunk as u64).min(self.pos) as usize;
        let mut grown = vec![0; take + self.valid];
        let mut file = self.file;
        file.seek(SeekFrom::Start(self.pos - take as u64))?;
        file.read_exact(&mut grown[..take])?;
        grown[take..].copy_from_slice(&self.buf[..self.valid]);
        self.buf = grown;
        self.pos -= take as u64;
        self.valid += take;
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        Ok(())
    }

    /// The next whole, non-blank line back, with its offset, without its
    /// newline.
    fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if self.valid == 0 {
                return Ok(None);
            }
            let end = self.valid - 1; // the newline
            let start = match self.buf[..end].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if self.pos == 0 => 0,
                None => {
                    self.grow()?;
                    continue;
                }
            };
            self.valid = start;
            if !is_blank(&self.buf[start..end]) {
                return Ok(Some((self.pos + start as u64, &self.buf[start..end])));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::tests::sample;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
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
            store.append(sample(0, &body(n))).await;
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
        let stored = store.append(sample(0, b"{}")).await;
        match events_rx.recv().await.unwrap() {
            StoreEvent::Delivery(d, Some(line)) => {
                assert_eq!(d.id, stored.id);
                assert_eq!(&*line, stored.to_json_line());
                let written = std::fs::read_to_string(dir.store()).unwrap();
                assert_eq!(written, format!("{line}\n"));
            }
            other => panic!("expected a delivery with its line, got {other:?}"),
        }
        store.close().await;
        let (memory, _) = DeliveryStore::open(StoreConfig::memory()).unwrap();
        let mut events_rx = memory.subscribe();
        memory.append(sample(0, b"{}")).await;
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
            LineDraft::of(&mut record).finish_into(id, &mut out);
            record.id = id;
            let expected = format!("earlier line\n{}\n", record.to_json_line());
            assert_eq!(String::from_utf8(out).unwrap(), expected);
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
        assert_eq!(store.append(sample(0, &body(0))).await.id, 1);
        // Polled once, it stages its line and yields before writing it
        // (for the lines of the appends that came with it); then dropped,
        // as hyper drops a handler when its connection goes.
        assert!(store.append(sample(0, &body(1))).now_or_never().is_none());
        let next = tokio::time::timeout(Duration::from_secs(10), store.append(sample(0, &body(2))))
            .await
            .expect("a later append is not left waiting on a write nobody does");
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
            assert_eq!(store.append(sample(0, &body(expected))).await.id, expected);
        }
        store.close().await;

        let (store, report) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
        assert_eq!(report.next_id, 4);
        assert_eq!(store.append(sample(0, b"{}")).await.id, 4);
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
            written.push(store.append(sample(0, &body(n))).await);
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
        assert_eq!(store.append(sample(0, b"{}")).await.id, 4);
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
        assert_eq!(store.append(sample(0, b"{}")).await.id, 4);
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
        let err = find(&path, 3).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { id: 3, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn readers_last_after_and_find() {
        let dir = TempDir::new("readers");
        let path = dir.store();
        let store = open_with(&path, 4).await;
        // A record larger than the first backward chunk, so reads must grow.
        let big = vec![b'x'; 3 * FIRST_CHUNK];
        assert_eq!(store.append(sample(0, &big)).await.id, 5);
        for n in 6..=10 {
            store.append(sample(0, &body(n))).await;
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

        let five = find(&path, 5).unwrap();
        assert_eq!((five.id, five.body.len()), (5, big.len()));
        assert_eq!(find(&path, 1).unwrap().id, 1);
        let err = find(&path, 99).unwrap_err();
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
            find(&path, 1).unwrap_err(),
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
            assert_eq!(store.append(sample(0, b"{}")).await.id, expected);
        }
        store.sync().await.unwrap();
        for expected in 1..=3 {
            match events_rx.recv().await.unwrap() {
                StoreEvent::Delivery(d, _) => assert_eq!(d.id, expected),
                StoreEvent::Warning(w) => panic!("unexpected warning {w}"),
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
                tokio::spawn(async move { store.append(sample(0, &body(n))).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        for expected in 1..=50 {
            match events_rx.recv().await.unwrap() {
                StoreEvent::Delivery(d, _) => assert_eq!(d.id, expected),
                StoreEvent::Warning(w) => panic!("unexpected warning {w}"),
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
        let record = store.append(sample(0, b"{}")).await;
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
        store.append(sample(0, b"{}")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.sync().await.unwrap();
        assert_eq!(store.append(sample(0, b"{}")).await.id, 2);
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
    async fn close_is_idempotent_and_later_appends_get_ids_and_a_warning() {
        let dir = TempDir::new("closed");
        let path = dir.store();
        let store = open_with(&path, 2).await;
        let mut events_rx = store.subscribe();
        store.close().await;
        store.close().await;
        let late = store.append(sample(0, b"{}")).await;
        assert_eq!(late.id, 3);
        match events_rx.recv().await.unwrap() {
            StoreEvent::Warning(w) => {
                assert!(w.contains("delivery 3") && w.contains("closed"), "{w}");
            }
            StoreEvent::Delivery(d, _) => panic!("expected a warning, got delivery {}", d.id),
        }
        assert!(matches!(events_rx.recv().await.unwrap(), StoreEvent::Delivery(d, _) if d.id == 3));
        assert_eq!(ids(&read_all(&path).unwrap()), [1, 2], "not written");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_write_error_warns_and_still_answers_with_an_id() {
        // /dev/full accepts opens and refuses every write with ENOSPC.
        let (store, report) = DeliveryStore::open(StoreConfig::at("/dev/full")).unwrap();
        assert_eq!(report.next_id, 1);
        let mut events_rx = store.subscribe();
        assert_eq!(store.append(sample(0, b"{}")).await.id, 1);
        match events_rx.recv().await.unwrap() {
            StoreEvent::Warning(w) => {
                assert!(w.contains("delivery 1") && w.contains("/dev/full"), "{w}");
            }
            StoreEvent::Delivery(d, _) => panic!("expected a warning, got delivery {}", d.id),
        }
        assert!(matches!(events_rx.recv().await.unwrap(), StoreEvent::Delivery(d, _) if d.id == 1));
        assert_eq!(
            store.append(sample(0, b"{}")).await.id,
            2,
            "listening goes on"
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
                tokio::spawn(async move { store.append(sample(0, &body(n))).await.id })
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
                    LinesBackward::with_chunk(&file, content.len() as u64, chunk).unwrap();
                assert_eq!(lines.torn_bytes(), *torn, "{content:?} chunk {chunk}");
                let mut got = Vec::new();
                while let Some((offset, line)) = lines.next_line().unwrap() {
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

    #[test]
    fn the_default_path_follows_xdg_then_home() {
        let home = Some(PathBuf::from("/home/ada"));
        assert_eq!(
            default_path_from(Some("/data".into()), home.clone()),
            Some(PathBuf::from("/data/danube-hooks/deliveries.jsonl"))
        );
        for ignored in [None, Some("".into()), Some("relative".into())] {
            assert_eq!(
                default_path_from(ignored, home.clone()),
                Some(PathBuf::from(
                    "/home/ada/.local/share/danube-hooks/deliveries.jsonl"
                ))
            );
        }
        assert_eq!(default_path_from(None, None), None);
    }
}
