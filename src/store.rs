//! The delivery log (SPEC §9): an append-only file of JSON lines, one
//! [`Delivery`] per line; recovery on open; and the readers that `log`,
//! `show`, `replay`, `export` and the dashboard's resync use.
//!
//! Appends are written by the tasks that receive the deliveries, not by a
//! writer thread: handing each record to a thread and waiting for its
//! answer cost a futex wake each way and a context switch per record
//! (docs/performance.md). Each append stages its line under
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
//! - an append returns `Ok` only once its line is written (and fsynced,
//!   when durable); a record that could not be written is an `Err`
//!   ([`NotStored`]), which the listener answers 503 so the sender retries;
//! - ids are given under the lock that stages lines, and one append at a
//!   time writes what is staged, so ids rise through the file, and records
//!   are announced in id order; the highest id of a failed write is kept in
//!   the id file (`store::file`), so ids rise across restarts even then;
//! - the store rotates at [`StoreConfig::max_bytes`], and every reader reads
//!   the kept rotated files, oldest first, before the current one;
//! - an advisory lock keeps a second process from writing the same store.

mod amend;
mod batch;
mod broadcast;
mod file;
mod in_flight;
mod lines;
mod location;
pub(crate) mod postgres;
mod readers;
mod starts;
mod syncer;
mod tail;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

pub(crate) use self::broadcast::Broadcaster;

use crate::delivery::{Delivery, MirrorRecord};
pub(crate) use amend::{Amendable, LateMirror};
pub(crate) use batch::LineDraft;
pub(crate) use batch::RecordLine;
use batch::{Arrivals, Log, Next, Staged, WriteTurn};
pub(crate) use file::held_by_listener;
use file::{Rotation, StoreFile, open_file};
use in_flight::Board;
pub(crate) use in_flight::{Arrival, InFlight};
pub(crate) use location::{BadStore, Location};
pub(crate) use readers::{
    Entry, Unparsable, each_backward, each_backward_where, each_backward_within, each_forward,
    each_forward_where, find,
};
pub(crate) use starts::{Start, read as read_starts};
use syncer::Syncer;
pub(crate) use tail::{TailLimits, read_tail};

/// How long a written record may wait for its fsync (SPEC §9).
pub(crate) const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(100);
/// Events a subscriber may fall behind by before it gets `Lagged` and
/// resyncs from the file.
pub(crate) const EVENT_CAPACITY: usize = 4096;
/// Appends that start closer together than this are a burst, worth a
/// yield to batch their lines (see [`Arrivals`]).
pub(super) const BURST_GAP: Duration = Duration::from_micros(250);
/// The first chunk read when reading backwards; it doubles up to
/// [`MAX_CHUNK`] while a line does not fit.
pub(super) const FIRST_CHUNK: usize = 8 * 1024;
pub(super) const MAX_CHUNK: usize = 1024 * 1024;
/// The longest line a reader takes whole. A record is at most its body in
/// base64 (4/3 of the largest `--max-body`) and a head far under a MiB;
/// twice the body leaves room. A longer line is not one the listener
/// wrote: it is skipped unread, so garbage cannot make a reader hold or
/// rescan it.
#[expect(clippy::cast_possible_truncation, reason = "64-bit targets only")]
pub(crate) const MAX_LINE: usize = 2 * crate::delivery::LARGEST_BODY as usize + 1024 * 1024;
/// The size at which the store rotates by default (`--store-max`).
#[cfg(test)]
pub(crate) const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Rotated files kept by default (`--store-keep`).
pub(crate) const DEFAULT_KEEP: usize = 3;

/// Where and how the store keeps records.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    /// The JSON-lines file; `None` keeps records in memory only (`--no-store`).
    pub(crate) path: Option<PathBuf>,
    /// fsync each batch before its appends return (`--durable`).
    pub(crate) durable: bool,
    /// The longest a written record waits for its fsync when not durable.
    pub(crate) fsync_interval: Duration,
    /// Rotate before a write would take the file past this many bytes.
    pub(crate) max_bytes: u64,
    /// Rotated files kept (`deliveries.1.jsonl` … `deliveries.<keep>.jsonl`);
    /// a rotation deletes the oldest beyond that.
    pub(crate) keep: usize,
    /// The address of the listener that writes it, noted with its start
    /// (`store::starts`): a command that sends back to the listener
    /// running on the store finds it there (`commands::running`).
    pub(crate) listener: Option<std::net::SocketAddr>,
}

impl StoreConfig {
    /// A file store with the default fsync interval, not durable.
    #[cfg(test)]
    pub(crate) fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            durable: false,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
            listener: None,
        }
    }

    /// Memory only: ids and the broadcast, no file.
    #[cfg(test)]
    pub(crate) fn memory() -> Self {
        Self {
            path: None,
            durable: false,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
            listener: None,
        }
    }
}

/// What the store announces to subscribers.
#[derive(Debug, Clone)]
pub(crate) enum StoreEvent {
    /// A record, once written (or kept in memory only), in id order, with
    /// the JSON line the store made of it when it wrote one, so `--json`
    /// output need not serialize the record a second time.
    Delivery(Arc<Delivery>, Option<RecordLine>),
    /// A record written to the store, announced without its body (and
    /// without its line) because the broadcast was past its byte budget
    /// ([`BROADCAST_BUDGET`]): a receiver that needs the body or the line
    /// reads the record back with [`find`] (in memory-only mode the body is
    /// gone). Every other field is as written.
    BodyElided(Arc<Delivery>),
    /// Something went wrong that the person should see; listening goes on.
    Warning(String),
    /// How long work beside the listener is going (a catch-up's progress):
    /// no fault. The dashboard shows it on its status line; headless output
    /// leaves it out, as that work tells stderr itself.
    Notice(String),
    /// A delivery has arrived whose answer waits (a delay, a hold, a
    /// forward): in flight until the [`StoreEvent::Settled`] that names its
    /// number, which follows its record's [`StoreEvent::Delivery`] (or
    /// comes alone, when no record was made). See [`in_flight`].
    Arrived(Arc<Arrival>),
    /// The arrival of this number is no longer in flight.
    Settled(u64),
    /// Mirror `index` of record `id` answered (or failed) after the record
    /// was written: the record in the store keeps it as still waiting.
    Mirrored {
        id: u64,
        index: usize,
        mirror: MirrorRecord,
    },
}

/// What [`DeliveryStore::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenReport {
    pub(crate) path: Option<PathBuf>,
    /// The id the first new record gets: the last record's id + 1, or 1.
    pub(crate) next_id: u64,
    /// Bytes of a torn last line (a crash mid-write) that were cut.
    pub(crate) torn_bytes_cut: Option<u64>,
}

impl OpenReport {
    /// The line to print on stderr when open repaired the file.
    pub(crate) fn torn_message(&self) -> Option<String> {
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
pub(crate) enum StoreError {
    #[error(
        "cannot open the delivery store {}: {source} (pass --store PATH to use another \
         file, or --no-store to keep deliveries in memory only)",
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
        "there is no delivery store at {store} yet (danube-hooks listen creates it; \
         pass --store PATH to read another)"
    )]
    Missing { store: Location },
    #[error("cannot read the delivery store {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the delivery store {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the delivery store is closed")]
    Closed,
    #[error("no delivery with id {id} in {store} (`danube-hooks log` lists the ids there)")]
    NotFound { id: u64, store: Location },
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
    #[error("delivery {id} in {store} is damaged: its record does not parse ({reason})")]
    DamagedRow {
        id: u64,
        store: Location,
        reason: String,
    },
    /// Reading the shared store (PostgreSQL) failed.
    #[error(transparent)]
    Shared(crate::store::postgres::PgError),
}

/// A record the store could not write: its sender must be told to send it
/// again (the listener answers 503). The store has broadcast a warning
/// naming it; it is not announced as a delivery.
#[derive(Debug, Clone, thiserror::Error)]
#[error("delivery {} was not stored: {reason}", delivery.id)]
pub(crate) struct NotStored {
    /// The record as it would have been stored, with the id it was given
    /// (never given again, not even after a restart).
    pub(crate) delivery: Arc<Delivery>,
    /// Why, e.g. `No space left on device (os error 28)`.
    pub(crate) reason: Arc<str>,
}

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub(crate) struct DeliveryStore {
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
    broadcast: Arc<Broadcaster>,
    /// Deliveries in flight: arrived, not yet answered.
    in_flight: Board,
    path: Option<PathBuf>,
    /// The store whose records this one only announces ([`DeliveryStore::bus`]):
    /// where its readers read them back.
    announced_from: Option<Location>,
    /// Each append waits for an fsync that covers it (`--durable`).
    durable: bool,
    arrivals: Arrivals,
    /// The shared store's writer (`--store postgres://…`), which then
    /// takes every append: the file's parts above stay idle (no path).
    database: Option<postgres::Writer>,
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
    pub(crate) fn open(config: StoreConfig) -> Result<(DeliveryStore, OpenReport), StoreError> {
        Self::open_announcing(config, None)
    }

    /// A store that writes nothing: the broadcast of records kept
    /// elsewhere (`dashboard`'s shared store), which it is told of with
    /// [`DeliveryStore::announce`]; its readers read from `location`.
    pub(crate) fn bus(location: Location) -> DeliveryStore {
        let memory = StoreConfig {
            path: None,
            durable: false,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
            max_bytes: u64::MAX,
            keep: 0,
            listener: None,
        };
        match Self::open_announcing(memory, Some(location)) {
            Ok((store, _)) => store,
            // Without a path nothing is opened, so nothing can fail.
            Err(err) => unreachable!("a store without a file failed to open: {err}"),
        }
    }

    fn open_announcing(
        config: StoreConfig,
        announced_from: Option<Location>,
    ) -> Result<(DeliveryStore, OpenReport), StoreError> {
        let broadcast = Arc::new(Broadcaster::new());
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
                let rotation = Rotation {
                    max_bytes: config.max_bytes,
                    keep: config.keep,
                };
                let (mut file, report) = open_file(path, rotation, config.listener)?;
                let syncer = Syncer::start(&file, config.fsync_interval, Arc::clone(&broadcast))
                    .map_err(|source| StoreError::Open {
                        path: path.clone(),
                        source,
                    })?;
                file.syncer_tx = Some(syncer.sender());
                (Some(file), Some(syncer), report)
            }
        };
        let shared = Arc::new(Shared {
            log: Mutex::new(Log {
                next_id: report.next_id,
                staged: Staged::default(),
                spare: Vec::new(),
                writing: false,
                syncer,
                closed: false,
            }),
            file: Mutex::new(file),
            written: watch::Sender::new(report.next_id - 1),
            broadcast,
            in_flight: Board::new(),
            path: config.path,
            announced_from,
            durable: config.durable,
            arrivals: Arrivals::new(),
            database: None,
        });
        Ok((DeliveryStore { shared }, report))
    }

    /// Open the shared store in PostgreSQL (`--store postgres://…`):
    /// connect, bring the schema up to date (a newer one is refused), and
    /// start its writer. Everything else (the broadcast, the deliveries in
    /// flight) is as with a file.
    pub(crate) async fn open_database(
        config: &postgres::WriterConfig,
    ) -> Result<(DeliveryStore, OpenReport), crate::store::postgres::PgError> {
        let broadcast = Arc::new(Broadcaster::new());
        let (writer, next_id) = postgres::Writer::open(config, Arc::clone(&broadcast)).await?;
        let shared = Arc::new(Shared {
            log: Mutex::new(Log {
                next_id,
                staged: Staged::default(),
                spare: Vec::new(),
                writing: false,
                syncer: None,
                closed: false,
            }),
            file: Mutex::new(None),
            written: watch::Sender::new(next_id.saturating_sub(1)),
            broadcast,
            in_flight: Board::new(),
            path: None,
            durable: false,
            arrivals: Arrivals::new(),
            announced_from: None,
            database: Some(writer),
        });
        let report = OpenReport {
            path: None,
            next_id,
            torn_bytes_cut: None,
        };
        Ok((DeliveryStore { shared }, report))
    }

    /// Give `delivery` its id (the caller passes 0), write it, announce it.
    /// `Ok` once written (and fsynced, when durable); `Err` when its line
    /// could not be written (or, when durable, fsynced), or the store is
    /// closed: the record then keeps its id, which is never given again, and
    /// the store broadcasts a warning naming it and why.
    pub(crate) async fn append(&self, delivery: Delivery) -> Result<Arc<Delivery>, NotStored> {
        if let Some(database) = &self.shared.database {
            // Boxed, so that this future (which every delivery's request
            // holds) stays the file's size: the database's waits hold the
            // record itself, and an inline state that large cost the file
            // path its copies (callgrind: about 350 instructions a delivery).
            return Box::pin(database.append(delivery)).await;
        }
        let in_burst = self.shared.arrivals.arrive();
        // Serialized before any lock is taken.
        let draft = self.shared.path.is_some().then(|| LineDraft::of(&delivery));
        let (delivery, next) = self.shared.stage(delivery, draft);
        let done_rx = match next {
            Next::Done => return Ok(delivery),
            Next::Refused(reason) => return Err(NotStored { delivery, reason }),
            Next::Write(done_rx) => {
                let turn = WriteTurn(&self.shared);
                if in_burst {
                    // Let the appends that arrived with this one stage their
                    // lines, so they share its `write`: small appends cost
                    // the page cache far more per byte than one larger one.
                    tokio::task::yield_now().await;
                }
                drop(turn);
                done_rx
            }
            Next::Wait(done_rx) => done_rx,
        };
        // The append that writes a batch always sends each record's
        // outcome (even when its own task is dropped: see `WriteTurn`).
        let outcome = done_rx
            .await
            .unwrap_or_else(|_| Err(Arc::from("the store stopped before the write")));
        if let Err(reason) = outcome {
            return Err(NotStored { delivery, reason });
        }
        if self.shared.durable
            && let Some(fsynced) = self.shared.fsync_now()
        {
            // The syncer has broadcast a failed fsync as a warning.
            match fsynced.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    let reason = format!("written but not fsynced (--durable): {err}");
                    return Err(NotStored {
                        delivery,
                        reason: reason.into(),
                    });
                }
                Err(_) => {
                    let reason = "written but not fsynced (--durable): the store closed";
                    return Err(NotStored {
                        delivery,
                        reason: reason.into(),
                    });
                }
            }
        }
        Ok(delivery)
    }

    /// Records (in id order) and warnings from now on. A receiver that falls
    /// more than [`EVENT_CAPACITY`] behind gets `Lagged` and should resync
    /// with [`each_forward`] after the last id it has; appends never wait
    /// for it.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StoreEvent> {
        self.shared.broadcast.subscribe()
    }

    /// Announce a record stored elsewhere (a row of a shared store), with
    /// the id it has there. The caller announces each record once, and
    /// never on a store that also appends.
    pub(crate) fn announce(&self, delivery: Arc<Delivery>) {
        self.shared.broadcast.delivery(delivery, None);
    }

    /// Announce a mirror's late answer kept elsewhere (in a shared store's
    /// row, by the listener that had it): shown, not stored again.
    pub(crate) fn announce_mirrored(&self, id: u64, index: usize, mirror: MirrorRecord) {
        self.shared.broadcast.mirrored(id, index, mirror);
    }

    /// Announce something the person should see ([`StoreEvent::Warning`]).
    pub(crate) fn warning(&self, message: String) {
        self.shared.broadcast.warn(message);
    }

    /// Announce how work beside the listener is going ([`StoreEvent::Notice`]).
    pub(crate) fn notice(&self, message: String) {
        self.shared.broadcast.notice(message);
    }

    /// A delivery whose answer waits has arrived: keep it in flight and
    /// announce it until the guard is dropped (`arrival.number` is given
    /// here). Never waits.
    pub(crate) fn arrive(&self, arrival: Arrival) -> InFlight {
        let arrival = self
            .shared
            .in_flight
            .arrive(arrival, &self.shared.broadcast);
        InFlight {
            arrival,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Keep and announce what a mirror of record `id` answered once the
    /// record was written (see `server::mirror`): a line of its own in the
    /// file, which the readers fold into the record (`amend`). Never waits
    /// for more than the page cache's `write`.
    pub(crate) fn mirrored(&self, id: u64, index: usize, mirror: MirrorRecord) {
        let late = LateMirror {
            mirror_of: id,
            index,
            mirror,
        };
        if let Some(database) = &self.shared.database {
            database.keep_late(late.clone());
        } else if self.shared.path.is_some() {
            self.shared.stage_answer(&late.line());
        }
        self.shared.broadcast.mirrored(id, index, late.mirror);
    }

    /// The deliveries in flight now, oldest first: for a receiver that
    /// lagged behind the announcements.
    pub(crate) fn in_flight(&self) -> Vec<Arc<Arrival>> {
        self.shared.in_flight.snapshot()
    }

    /// fsync what has been written, now.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        if let Some(database) = &self.shared.database {
            // Committed is as far as a database's rows go from here.
            database.sync().await;
            return Ok(());
        }
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
    pub(crate) async fn close(&self) {
        if let Some(database) = &self.shared.database {
            self.shared.lock().closed = true;
            database.close().await;
            return;
        }
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
            // `store` is dropped at the end of this `if`, which closes the
            // files, releases the lock and the file's handle on the fsync
            // thread, which can then stop.
            if let Some(store) = file
                && let Err(err) = store.sync_all()
            {
                shared.warn(format!(
                    "could not fsync {} on close: {err}",
                    store.path.display()
                ));
            }
            if let Some(syncer) = syncer {
                syncer.stop();
            }
        });
        let _ = closing.await;
    }

    /// The file, or `None` in memory-only mode.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// Where the records are kept, for the readers (history, a body read
    /// back, a resync after a lag); `None` in memory-only mode.
    pub(crate) fn location(&self) -> Option<Location> {
        if let Some(database) = &self.shared.database {
            return Some(Location::Postgres(Arc::clone(database.target())));
        }
        (self.shared.path.clone().map(Location::File))
            .or_else(|| self.shared.announced_from.clone())
    }
}

/// `$XDG_DATA_HOME/danube-hooks/deliveries.jsonl`, else
/// `~/.local/share/danube-hooks/deliveries.jsonl`.
pub(crate) fn default_path() -> Option<PathBuf> {
    crate::paths::data_dir().map(|dir| dir.join("deliveries.jsonl"))
}
