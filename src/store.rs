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

mod batch;
mod file;
mod lines;
mod readers;
mod syncer;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::delivery::Delivery;
use batch::{Arrivals, LineDraft, Log, Next, Staged, WriteTurn};
use file::{StoreFile, open_file};
pub use readers::{
    Scan, Unparsable, find, read_after, read_all, read_last, scan_after, scan_all, scan_last,
};
use syncer::Syncer;

/// How long a written record may wait for its fsync (SPEC §9).
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(100);
/// Events a subscriber may fall behind by before it gets `Lagged` and
/// resyncs from the file.
pub const EVENT_CAPACITY: usize = 4096;
/// Appends that start closer together than this are a burst, worth a
/// yield to batch their lines (see [`Arrivals`]).
pub(super) const BURST_GAP: Duration = Duration::from_micros(250);
/// The first chunk read when reading backwards; it doubles up to
/// [`MAX_CHUNK`] while a line does not fit.
pub(super) const FIRST_CHUNK: usize = 8 * 1024;
pub(super) const MAX_CHUNK: usize = 1024 * 1024;

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
