//! The open connections, and which of them give way at the cap.
//!
//! Behind a tunnel every connection comes from 127.0.0.1, so a limit per
//! address is no defence: a stranger can hold every slot of
//! `--max-connections` with connections that send nothing, or that send a
//! request a byte every few seconds (slowloris). At the cap, the accept
//! loop asks one connection to close so the newcomer gets its slot, in
//! this order:
//!
//! 1. one that has never sent a byte (oldest first);
//! 2. a keep-alive connection silent between requests (idle longest first),
//!    reset if it is still writing an answer its client does not read a
//!    moment later (`server::IDLE_DRAIN`);
//! 3. one whose request head has been arriving for longer than the grace
//!    (`--first-byte-timeout`), longest first. A sender writes its head in
//!    one burst, so a head still incomplete after seconds is not a sender's;
//! 4. one whose body has been arriving for longer than the grace at less
//!    than [`MIN_BODY_RATE`] on average, oldest first. A slow tunnel may
//!    carry a big body slowly, so a body is not cut for its age alone, but
//!    one slower than the floor costs a stranger almost nothing to send
//!    and would hold its slot for the whole `--body-timeout`.
//!
//! A connection whose whole request has arrived (its answer being made,
//! forwarded, delayed or held by the policy) never gives way, nor does a
//! head or body within the grace: the newcomer then waits, as it would in
//! the backlog, until one is past it.
//!
//! Each connection has a [`Slot`] with its state in one atomic. The hot
//! path touches only that slot: a counter add and a load per read, a few
//! stores and a compare-and-swap when a request starts, arrives or ends. The
//! registry's lock is taken when a connection opens or closes, and by the
//! accept loop only while it is at the cap.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Below this average rate (bytes per second), a body older than the grace
/// gives way at the cap. A 1 MiB body at this rate takes over four minutes;
/// holding one slot costs a stranger this much bandwidth.
pub const MIN_BODY_RATE: u64 = 4 * 1024;

/// Open, and not one byte received yet.
const SILENT: u8 = 0;
/// Bytes of a request head have arrived; hyper has not parsed it whole.
const HEAD: u8 = 1;
/// The head is in; the handler is reading the body.
const BODY: u8 = 2;
/// The whole request is in; its answer is being made, held or delayed.
const ANSWERING: u8 = 3;
/// Keep-alive, silent since its last answer.
const IDLE: u8 = 4;
/// Asked to give way while silent: dropped at once.
const EVICTED_SILENT: u8 = 5;
/// Asked to give way while idle: shut down gracefully, which hyper does at
/// once for an idle connection (and, in a race with a new request, after
/// answering it).
const EVICTED_IDLE: u8 = 6;
/// Asked to give way while its head or body trickled in: told 408, closed.
const EVICTED_SLOW: u8 = 7;

/// How a connection was asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// It never sent a byte: drop it.
    Silent,
    /// Keep-alive between requests: shut it down gracefully.
    Idle,
    /// Its request arrived too slowly: answer 408 and close.
    Slow,
}

/// One open connection's state, shared by its task, its I/O and its
/// request handler, and seen by the accept loop.
#[derive(Debug)]
pub struct Slot {
    state: AtomicU8,
    /// Milliseconds since the registry's epoch when the current state
    /// began: the connection opened, its head or body started arriving, or
    /// it became idle. Written before the state it dates, so whoever reads
    /// the state (Acquire) reads its date.
    since_ms: AtomicU64,
    /// Bytes received since the body started arriving: its rate.
    body_bytes: AtomicU64,
    /// The handler is making an answer: a request is in, not yet answered.
    /// Kept apart from `state`, which an eviction overwrites.
    handling: AtomicBool,
    epoch: Instant,
    /// Wakes the connection's task when it is asked to give way.
    evict: Notify,
}

impl Slot {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Move from one of `from` to `to`, dated now; an eviction already
    /// decided stands. Only the connection's own task calls this, so the
    /// state changes under it only by an eviction.
    fn enter(&self, from: &[u8], to: u8) {
        let state = self.state.load(Ordering::Acquire);
        if from.contains(&state) {
            self.since_ms.store(self.now_ms(), Ordering::Relaxed);
            // Lost only to an eviction, which then stands.
            let _ = self
                .state
                .compare_exchange(state, to, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// `n` bytes arrived: the first of a head, or more of a head or body.
    fn heard_from(&self, n: usize) {
        self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.enter(&[SILENT, IDLE], HEAD);
    }

    /// The handler got a request, head parsed (also one pipelined behind
    /// the last, whose bytes arrived before the last answer went out): its
    /// body, if any, arrives from now on.
    pub fn request_started(&self) {
        self.handling.store(true, Ordering::Relaxed);
        self.body_bytes.store(0, Ordering::Relaxed);
        self.enter(&[SILENT, HEAD, IDLE], BODY);
    }

    /// The whole request has arrived (or its reading ended at a limit):
    /// from now on the connection is being answered and never gives way.
    pub fn request_received(&self) {
        self.enter(&[BODY], ANSWERING);
    }

    /// The handler's answer is going out; the connection is idle until
    /// the next request's bytes arrive.
    pub fn request_finished(&self) {
        self.handling.store(false, Ordering::Relaxed);
        self.enter(&[BODY, ANSWERING], IDLE);
    }

    /// Whether a request is in and its answer is still being made (even
    /// on a connection asked to give way, which answers it first).
    pub fn handling(&self) -> bool {
        self.handling.load(Ordering::Relaxed)
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
                EVICTED_SLOW => return Eviction::Slow,
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

/// Which connections may give way, in order; see the module's doc.
const CANDIDATES: [(u8, u8); 4] = [
    (SILENT, EVICTED_SILENT),
    (IDLE, EVICTED_IDLE),
    (HEAD, EVICTED_SLOW),
    (BODY, EVICTED_SLOW),
];

/// The open connections.
#[derive(Debug)]
pub struct Registry {
    /// A std mutex is enough: held to insert, remove or scan, never across
    /// `.await`, and never on a request's path.
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    epoch: Instant,
    /// How long a head or a slow body arrives before it may give way.
    grace_ms: u64,
}

impl Registry {
    /// A registry whose heads and slow bodies give way once they have been
    /// arriving longer than `grace`.
    pub fn new(grace: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Register a new connection; it leaves the registry when the
    /// returned guard drops.
    pub fn open(self: &Arc<Self>) -> Registered {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(SILENT),
            since_ms: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            handling: AtomicBool::new(false),
            epoch: self.epoch,
            evict: Notify::new(),
        });
        slot.since_ms.store(slot.now_ms(), Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::clone(&slot));
        Registered {
            registry: Arc::clone(self),
            id,
            slot,
        }
    }

    /// Ask one connection to close, the first in the module doc's order.
    /// False when none may: every one is being answered, or within the
    /// grace.
    pub fn evict_one(&self) -> bool {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.evict_one_at(now_ms)
    }

    fn evict_one_at(&self, now_ms: u64) -> bool {
        let slots = self.lock();
        for (from, to) in CANDIDATES {
            // One pass for the oldest, no sorting: this runs for every
            // newcomer while a flood holds the cap. Its state may change
            // before the swap (bytes arrived); then look again.
            while let Some(slot) = slots
                .iter()
                .filter(|(_, slot)| {
                    slot.state.load(Ordering::Acquire) == from
                        && self.may_give_way(slot, from, now_ms)
                })
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

    /// Whether `slot`, seen in `state`, may give way now.
    fn may_give_way(&self, slot: &Slot, state: u8, now_ms: u64) -> bool {
        let age_ms = now_ms.saturating_sub(slot.since_ms.load(Ordering::Relaxed));
        match state {
            SILENT | IDLE => true,
            HEAD => age_ms > self.grace_ms,
            BODY => {
                let bytes = slot.body_bytes.load(Ordering::Relaxed);
                // bytes / age < floor, without dividing.
                age_ms > self.grace_ms
                    && u128::from(bytes) * 1000 < u128::from(MIN_BODY_RATE) * u128::from(age_ms)
            }
            _ => false,
        }
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
        let arrived = buf.filled().len() - before;
        if arrived > 0 {
            this.slot.heard_from(arrived);
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

    const GRACE: Duration = Duration::from_secs(3);

    fn registry() -> Arc<Registry> {
        Arc::new(Registry::new(GRACE))
    }

    fn state(slot: &Slot) -> u8 {
        slot.state.load(Ordering::Acquire)
    }

    /// Date the slot's current state `ms` milliseconds after the epoch.
    fn dated(slot: &Slot, ms: u64) {
        slot.since_ms.store(ms, Ordering::Relaxed);
    }

    /// A connection whose head arrived and whose body is on its way.
    fn receiving_body(registry: &Arc<Registry>) -> Registered {
        let conn = registry.open();
        conn.slot.heard_from(100);
        conn.slot.request_started();
        conn
    }

    #[test]
    fn silent_connections_give_way_first_then_the_longest_idle() {
        let registry = registry();
        let answering = receiving_body(&registry);
        answering.slot.request_received();
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
        assert!(
            !registry.evict_one(),
            "a connection being answered never gives way"
        );
        assert_eq!(state(&answering.slot), ANSWERING);

        drop(silent_old);
        assert_eq!(registry.len(), 4, "a closed connection leaves the registry");
    }

    #[test]
    fn a_head_arriving_past_the_grace_gives_way_after_the_idle_longest_first() {
        let registry = registry();
        let grace = GRACE.as_millis() as u64;
        let late_head = registry.open();
        late_head.slot.heard_from(1);
        dated(&late_head.slot, 1000);
        let older_head = registry.open();
        older_head.slot.heard_from(1);
        dated(&older_head.slot, 500);
        let fresh_head = registry.open();
        fresh_head.slot.heard_from(1);
        dated(&fresh_head.slot, 1000 + grace);
        let idle = registry.open();
        idle.slot.request_started();
        idle.slot.request_finished();
        dated(&idle.slot, 1000 + grace);
        // Trickled bytes do not make a head younger.
        older_head.slot.heard_from(1);
        assert_eq!(older_head.slot.since_ms.load(Ordering::Relaxed), 500);

        let now = 1000 + grace + 1;
        assert!(registry.evict_one_at(now));
        assert_eq!(state(&idle.slot), EVICTED_IDLE, "idle before a head");
        assert!(registry.evict_one_at(now));
        assert_eq!(state(&older_head.slot), EVICTED_SLOW, "longest first");
        assert!(registry.evict_one_at(now));
        assert_eq!(state(&late_head.slot), EVICTED_SLOW);
        assert!(!registry.evict_one_at(now), "a head within the grace stays");
        assert_eq!(state(&fresh_head.slot), HEAD);
        assert!(registry.evict_one_at(now + grace));
        assert_eq!(state(&fresh_head.slot), EVICTED_SLOW);
    }

    #[test]
    fn a_body_gives_way_only_past_the_grace_and_below_the_rate_floor() {
        let registry = registry();
        let grace = GRACE.as_millis() as u64;
        let age = grace + 1000;
        let floor_bytes = MIN_BODY_RATE * age / 1000;
        let steady = receiving_body(&registry);
        steady
            .slot
            .heard_from(usize::try_from(floor_bytes).unwrap());
        dated(&steady.slot, 0);
        let trickle = receiving_body(&registry);
        trickle
            .slot
            .heard_from(usize::try_from(floor_bytes - 1).unwrap());
        dated(&trickle.slot, 0);
        let stalled_young = receiving_body(&registry);
        dated(&stalled_young.slot, age - grace);
        let head = registry.open();
        head.slot.heard_from(10);
        dated(&head.slot, 100);

        assert!(registry.evict_one_at(age));
        assert_eq!(state(&head.slot), EVICTED_SLOW, "a slow head before a body");
        assert!(registry.evict_one_at(age));
        assert_eq!(state(&trickle.slot), EVICTED_SLOW, "below the floor");
        assert!(!registry.evict_one_at(age));
        assert_eq!(state(&steady.slot), BODY, "at the floor it stays");
        assert_eq!(
            state(&stalled_young.slot),
            BODY,
            "within the grace it stays"
        );
    }

    #[test]
    fn a_request_received_whole_never_gives_way_however_old() {
        let registry = registry();
        let answering = receiving_body(&registry);
        answering.slot.request_received();
        dated(&answering.slot, 0);
        // Bytes pipelined behind it change nothing.
        answering.slot.heard_from(1);
        assert!(!registry.evict_one_at(u64::MAX / 2));
        assert_eq!(state(&answering.slot), ANSWERING);
        answering.slot.request_finished();
        assert_eq!(state(&answering.slot), IDLE);
        // The next request's head resets the date and the byte count.
        answering.slot.heard_from(5);
        assert_eq!(state(&answering.slot), HEAD);
        answering.slot.request_started();
        assert_eq!(answering.slot.body_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_eviction_stands_against_late_bytes_and_late_answers() {
        let registry = registry();
        let conn = registry.open();
        assert!(registry.evict_one());
        conn.slot.heard_from(1);
        conn.slot.request_started();
        conn.slot.request_received();
        conn.slot.request_finished();
        assert_eq!(state(&conn.slot), EVICTED_SILENT);
        assert!(!conn.slot.expire_if_silent(), "already closing");
    }

    #[test]
    fn the_first_byte_timeout_spares_a_connection_that_spoke() {
        let registry = registry();
        let spoke = registry.open();
        spoke.slot.heard_from(1);
        assert!(!spoke.slot.expire_if_silent());
        let silent = registry.open();
        assert!(silent.slot.expire_if_silent());
    }

    #[tokio::test]
    async fn an_evicted_connection_is_woken_and_told_how() {
        let registry = registry();
        let conn = registry.open();
        conn.slot.request_started();
        conn.slot.request_finished();
        let slot = Arc::clone(&conn.slot);
        let waiter = tokio::spawn(async move { slot.evicted().await });
        tokio::task::yield_now().await;
        assert!(registry.evict_one());
        assert_eq!(waiter.await.unwrap(), Eviction::Idle);

        let trickling = registry.open();
        trickling.slot.heard_from(1);
        dated(&trickling.slot, 0);
        assert!(registry.evict_one_at(GRACE.as_millis() as u64 + 1));
        assert_eq!(trickling.slot.evicted().await, Eviction::Slow);
    }
}
