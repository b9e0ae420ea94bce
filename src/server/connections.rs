//! The open connections, and which of them give way at the cap.
//!
//! Behind a tunnel every connection comes from 127.0.0.1, so a limit per
//! address is no defence: a stranger can hold every slot of
//! `--max-connections` with connections that send nothing. At the cap, the
//! accept loop asks an idle connection to close so the newcomer gets its
//! slot: first one that has never sent a byte (oldest first), then a
//! keep-alive connection silent between requests (longest idle first). A
//! connection mid-request (head or body arriving, an answer being made,
//! held or delayed by the policy) never gives way.
//!
//! Each connection has a [`Slot`] with its state in one atomic. The hot
//! path touches only that: a load per read, a compare-and-swap when a
//! request starts or ends. The registry's lock is taken when a connection
//! opens or closes, and by the accept loop only while it is at the cap.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Open, and not one byte received yet.
const SILENT: u8 = 0;
/// A request is in progress: bytes of it have arrived, or its answer is
/// being made, held or delayed.
const BUSY: u8 = 1;
/// Keep-alive, silent since its last answer.
const IDLE: u8 = 2;
/// Asked to give way while silent: dropped at once.
const EVICTED_SILENT: u8 = 3;
/// Asked to give way while idle: shut down gracefully, which hyper does at
/// once for an idle connection (and, in a race with a new request, after
/// answering it).
const EVICTED_IDLE: u8 = 4;

/// How a connection was asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// It never sent a byte: drop it.
    Silent,
    /// Keep-alive between requests: shut it down gracefully.
    Idle,
}

/// One open connection's state, shared by its task, its I/O and its
/// request handler, and seen by the accept loop.
#[derive(Debug)]
pub struct Slot {
    state: AtomicU8,
    /// Milliseconds since the registry's epoch when the connection opened
    /// or last became idle: which one gives way first.
    since_ms: AtomicU64,
    epoch: Instant,
    /// Wakes the connection's task when it is asked to give way.
    evict: Notify,
}

impl Slot {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// From silent or idle to busy; an eviction already decided stands.
    fn wake(&self) {
        let state = self.state.load(Ordering::Acquire);
        if state == SILENT || state == IDLE {
            // Lost only to an eviction, which then stands.
            let _ = self
                .state
                .compare_exchange(state, BUSY, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Bytes arrived.
    fn heard_from(&self) {
        self.wake();
    }

    /// The handler got a request (also one pipelined behind the last,
    /// whose bytes arrived before the last answer went out).
    pub fn request_started(&self) {
        self.wake();
    }

    /// The handler's answer is going out; the connection is idle until
    /// the next request's bytes arrive.
    pub fn request_finished(&self) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        let _ = self
            .state
            .compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Close it if it has still sent nothing (the first-byte timeout).
    pub fn expire_if_silent(&self) -> bool {
        self.state
            .compare_exchange(SILENT, EVICTED_SILENT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Waits until the accept loop asks this connection to give way.
    pub async fn evicted(&self) -> Eviction {
        loop {
            match self.state.load(Ordering::Acquire) {
                EVICTED_SILENT => return Eviction::Silent,
                EVICTED_IDLE => return Eviction::Idle,
                _ => self.evict.notified().await,
            }
        }
    }

    /// Ask it to give way if it is (still) in `from`.
    fn try_evict(&self, from: u8, to: u8) -> bool {
        let evicted = self
            .state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if evicted {
            // notify_one keeps a permit when the task is not waiting yet.
            self.evict.notify_one();
        }
        evicted
    }
}

/// The open connections.
#[derive(Debug)]
pub struct Registry {
    /// A std mutex is enough: held to insert, remove or scan, never across
    /// `.await`, and never on a request's path.
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Registry {
    /// Register a new connection; it leaves the registry when the
    /// returned guard drops.
    pub fn open(self: &Arc<Self>) -> Registered {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(SILENT),
            since_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            epoch: self.epoch,
            evict: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::clone(&slot));
        Registered {
            registry: Arc::clone(self),
            id,
            slot,
        }
    }

    /// Ask one idle connection to close: the oldest silent one, else the
    /// one idle longest. False when every connection is mid-request.
    pub fn evict_one(&self) -> bool {
        let slots = self.lock();
        for (from, to) in [(SILENT, EVICTED_SILENT), (IDLE, EVICTED_IDLE)] {
            // One pass for the oldest, no sorting: this runs for every
            // newcomer while a flood holds the cap. Its state may change
            // before the swap (bytes arrived); then look again.
            while let Some(slot) = slots
                .iter()
                .filter(|(_, slot)| slot.state.load(Ordering::Acquire) == from)
                // Ids break ties of the same millisecond in order of arrival.
                .min_by_key(|&(&id, slot)| (slot.since_ms.load(Ordering::Relaxed), id))
                .map(|(_, slot)| slot)
            {
                if slot.try_evict(from, to) {
                    return true;
                }
            }
        }
        false
    }

    /// Connections open now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's place in the registry, given up on drop.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub slot: Arc<Slot>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// A connection's I/O that marks its slot busy when bytes arrive, so a
/// connection whose request head is on its way is not taken for idle.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    slot: Arc<Slot>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, slot: Arc<Slot>) -> Self {
        Self { inner, slot }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.slot.heard_from();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(slot: &Slot) -> u8 {
        slot.state.load(Ordering::Acquire)
    }

    #[test]
    fn silent_connections_give_way_first_then_the_longest_idle() {
        let registry = Arc::new(Registry::default());
        let busy = registry.open();
        busy.slot.heard_from();
        let idle_early = registry.open();
        idle_early.slot.request_started();
        idle_early.slot.request_finished();
        let silent_old = registry.open();
        let idle_late = registry.open();
        idle_late.slot.request_started();
        std::thread::sleep(std::time::Duration::from_millis(5));
        idle_late.slot.request_finished();
        let silent_new = registry.open();
        assert_eq!(registry.len(), 5);

        assert!(registry.evict_one());
        assert_eq!(
            state(&silent_old.slot),
            EVICTED_SILENT,
            "oldest silent first"
        );
        assert!(registry.evict_one());
        assert_eq!(state(&silent_new.slot), EVICTED_SILENT);
        assert!(registry.evict_one());
        assert_eq!(state(&idle_early.slot), EVICTED_IDLE, "longest idle next");
        assert!(registry.evict_one());
        assert_eq!(state(&idle_late.slot), EVICTED_IDLE);
        assert!(!registry.evict_one(), "a busy connection never gives way");
        assert_eq!(state(&busy.slot), BUSY);

        drop(silent_old);
        assert_eq!(registry.len(), 4, "a closed connection leaves the registry");
    }

    #[test]
    fn an_eviction_stands_against_late_bytes_and_late_answers() {
        let registry = Arc::new(Registry::default());
        let conn = registry.open();
        assert!(registry.evict_one());
        conn.slot.heard_from();
        conn.slot.request_finished();
        assert_eq!(state(&conn.slot), EVICTED_SILENT);
        assert!(!conn.slot.expire_if_silent(), "already closing");
    }

    #[test]
    fn the_first_byte_timeout_spares_a_connection_that_spoke() {
        let registry = Arc::new(Registry::default());
        let spoke = registry.open();
        spoke.slot.heard_from();
        assert!(!spoke.slot.expire_if_silent());
        let silent = registry.open();
        assert!(silent.slot.expire_if_silent());
    }

    #[tokio::test]
    async fn an_evicted_connection_is_woken_and_told_how() {
        let registry = Arc::new(Registry::default());
        let conn = registry.open();
        conn.slot.request_started();
        conn.slot.request_finished();
        let slot = Arc::clone(&conn.slot);
        let waiter = tokio::spawn(async move { slot.evicted().await });
        tokio::task::yield_now().await;
        assert!(registry.evict_one());
        assert_eq!(waiter.await.unwrap(), Eviction::Idle);
    }
}
