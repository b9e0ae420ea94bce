//! The fsync thread: written records are fsynced within the interval, or
//! at once when an append or `sync` asks.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::StoreError;
use super::broadcast::Broadcaster;
use super::file::{StoreFile, SyncRequest};

/// The fsyncs, on a thread of their own: under load an fsync of the last
/// 100 ms of records can take tens of milliseconds, and no request may wait
/// behind it unless `--durable` (or [`DeliveryStore::sync`]) asks to.
pub(super) struct Syncer {
    requests: mpsc::Sender<SyncRequest>,
    /// Set from a timed request until the fsync that serves it begins, so
    /// a flood of writes sends one request per fsync, not one each.
    soon_asked: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// What one round of the thread does: the rotations to finish, in order,
/// then one fsync of the current file, and who waits on it.
#[derive(Default)]
struct Round {
    switches: Vec<(File, File)>,
    waiters: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

impl Syncer {
    pub(super) fn start(
        store: &StoreFile,
        interval: Duration,
        broadcast: Arc<Broadcaster>,
    ) -> io::Result<Self> {
        let mut file = store.file.try_clone()?;
        let path = store.path.clone();
        let soon_asked = Arc::new(AtomicBool::new(false));
        let (requests, requests_rx) = mpsc::channel();
        let thread = {
            let soon_asked = Arc::clone(&soon_asked);
            std::thread::Builder::new()
                .name("danube-hooks-fsync".into())
                .spawn(move || {
                    let warn = |err: &io::Error| {
                        broadcast.warn(format!(
                            "could not fsync {}: {err}; the records are written \
                             but may not survive a crash",
                            path.display()
                        ));
                    };
                    while let Some(Round { switches, waiters }) = next_round(&requests_rx, interval)
                    {
                        // Cleared before the fsync begins: a write after this
                        // point asks again, a write before it is covered.
                        soon_asked.store(false, Ordering::SeqCst);
                        let mut rotated = Ok(());
                        for (old, new) in switches {
                            if let Err(err) = old.sync_data() {
                                warn(&err);
                                rotated = Err(err);
                            }
                            file = new;
                        }
                        let result = file.sync_data().and(rotated);
                        if let Err(err) = &result {
                            warn(err);
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

    /// Where a rotation sends [`SyncRequest::Switch`].
    pub(super) fn sender(&self) -> mpsc::Sender<SyncRequest> {
        self.requests.clone()
    }

    /// A write was made (call after it): fsync within the interval.
    pub(super) fn soon(&self) {
        if !self.soon_asked.swap(true, Ordering::SeqCst) {
            let _ = self.requests.send(SyncRequest::Soon);
        }
    }

    /// fsync now (covering every write made before this call); the receiver
    /// gets the result. If the thread is gone the receiver gets an error.
    pub(super) fn now(&self) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done_tx, done_rx) = oneshot::channel();
        let _ = self.requests.send(SyncRequest::Now(done_tx));
        done_rx
    }

    /// Stop after any fsync under way, so the file is closed when this
    /// returns.
    pub(super) fn stop(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

/// Wait for the next fsync to do: a `Now` or a `Switch` at once, a `Soon`
/// once the interval has passed (or sooner, if a `Now` comes). Returns who
/// waits on it, or `None` once every sender is gone and nothing is left to
/// do.
fn next_round(requests: &mpsc::Receiver<SyncRequest>, interval: Duration) -> Option<Round> {
    let mut round = Round::default();
    match requests.recv().ok()? {
        SyncRequest::Now(waiter) => round.waiters.push(waiter),
        SyncRequest::Switch(old, new) => round.switches.push((old, new)),
        SyncRequest::Soon => {
            let deadline = Instant::now() + interval;
            loop {
                match requests.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(SyncRequest::Soon) => {}
                    Ok(SyncRequest::Now(waiter)) => {
                        round.waiters.push(waiter);
                        break;
                    }
                    Ok(SyncRequest::Switch(old, new)) => {
                        round.switches.push((old, new));
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
        match request {
            SyncRequest::Now(waiter) => round.waiters.push(waiter),
            SyncRequest::Switch(old, new) => round.switches.push((old, new)),
            SyncRequest::Soon => {}
        }
    }
    Some(round)
}
