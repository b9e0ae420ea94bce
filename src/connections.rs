//! The open connections, and which of them give way at the cap.
//!
//! Behind a tunnel every connection comes from 127.0.0.1, so a limit per
//! address is no defence: a stranger can hold every slot of
//! `--max-connections` with connections that send nothing, or that send a
//! request a byte every few seconds (slowloris), and re-open each one as
//! soon as it is closed. At the cap, the accept loop asks one connection to
//! close so the newcomer gets its slot: the one that has held its place
//! longest without progress. Progress is, for each state:
//!
//! - a connection that has sent nothing: none since it opened;
//! - a keep-alive connection silent between requests: none since its last
//!   answer (reset if it is still writing an answer its client does not
//!   read a moment later: `server::IDLE_DRAIN`);
//! - a request head arriving: none since it began. A sender writes its
//!   head in one burst, so bytes that trickle in are no progress;
//! - a body arriving: none since it fell behind the pace of
//!   [`MIN_BODY_RATE`]. A slow tunnel may carry a big body slowly, so a
//!   body at or above that pace never gives way; one behind it costs a
//!   stranger almost nothing to send and would hold its slot for the whole
//!   `--body-timeout`. It gives way once it has been arriving for longer
//!   than the grace (`--first-byte-timeout`); within the grace, only when
//!   no other connection may (a stranger trickling bodies on every slot).
//!
//! A connection just accepted, whose task has not read from it yet, never
//! gives way: its request may be waiting in the socket, and under churn
//! it would otherwise be the one asked to close before it is read. Once
//! read, it is one of the above, and the newest of them: the last to go.
//! A connection whose whole request has arrived (its answer being made,
//! forwarded, delayed or held by the policy) never gives way: when only
//! those and bodies at the floor's pace are left, the newcomer waits, as
//! it would in the backlog.
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
pub(crate) const MIN_BODY_RATE: u64 = 4 * 1024;

/// Just accepted: its task has not read from it yet.
const UNREAD: u8 = 0;
/// Open, read, and not one byte received yet.
const SILENT: u8 = 1;
/// Bytes of a request head have arrived; hyper has not parsed it whole.
const HEAD: u8 = 2;
/// The head is in; the handler is reading the body.
const BODY: u8 = 3;
/// The whole request is in; its answer is being made, held or delayed.
const ANSWERING: u8 = 4;
/// Keep-alive, silent since its last answer.
const IDLE: u8 = 5;
/// Asked to give way while silent: dropped at once.
const EVICTED_SILENT: u8 = 6;
/// Asked to give way while idle: shut down gracefully, which hyper does at
/// once for an idle connection (and, in a race with a new request, after
/// answering it).
const EVICTED_IDLE: u8 = 7;
/// Asked to give way while its head or body trickled in: told 408, closed.
const EVICTED_SLOW: u8 = 8;

/// How a connection was asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eviction {
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
pub(crate) struct Slot {
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
        self.enter(&[UNREAD, SILENT, IDLE], HEAD);
    }

    /// A read found nothing: a connection just accepted has been looked at,
    /// and is silent (still dated from when it opened).
    fn read_nothing(&self) {
        if self.state.load(Ordering::Relaxed) == UNREAD {
            // Lost only to bytes arriving or an eviction, which then stand.
            let _ =
                self.state
                    .compare_exchange(UNREAD, SILENT, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// The handler got a request, head parsed (also one pipelined behind
    /// the last, whose bytes arrived before the last answer went out): its
    /// body, if any, arrives from now on.
    pub(crate) fn request_started(&self) {
        self.handling.store(true, Ordering::Relaxed);
        self.body_bytes.store(0, Ordering::Relaxed);
        self.enter(&[UNREAD, SILENT, HEAD, IDLE], BODY);
    }

    /// The whole request has arrived (or its reading ended at a limit):
    /// from now on the connection is being answered and never gives way.
    pub(crate) fn request_received(&self) {
        // Undated: an answering connection never gives way, so when it
        // began answering is never read, and the clock is not either.
        if self.state.load(Ordering::Acquire) == BODY {
            // Lost only to an eviction, which then stands.
            let _ =
                self.state
                    .compare_exchange(BODY, ANSWERING, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// The handler's answer is going out; the connection is idle until
    /// the next request's bytes arrive.
    pub(crate) fn request_finished(&self) {
        self.handling.store(false, Ordering::Relaxed);
        self.enter(&[BODY, ANSWERING], IDLE);
    }

    /// Whether a request is in and its answer is still being made (even
    /// on a connection asked to give way, which answers it first).
    pub(crate) fn handling(&self) -> bool {
        self.handling.load(Ordering::Relaxed)
    }

    /// Close it if it has still sent nothing (the first-byte timeout).
    pub(crate) fn expire_if_silent(&self) -> bool {
        [SILENT, UNREAD].into_iter().any(|silent| {
            self.state
                .compare_exchange(silent, EVICTED_SILENT, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// Waits until the accept loop asks this connection to give way.
    pub(crate) async fn evicted(&self) -> Eviction {
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

/// What a connection that gives way in `state` becomes.
fn evicted(state: u8) -> u8 {
    match state {
        SILENT => EVICTED_SILENT,
        IDLE => EVICTED_IDLE,
        _ => EVICTED_SLOW,
    }
}

/// The open connections.
#[derive(Debug)]
pub(crate) struct Registry {
    /// A std mutex is enough: held to insert, remove or scan, never across
    /// `.await`, and never on a request's path.
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    epoch: Instant,
    /// How long a body behind the rate floor arrives before it may give
    /// way while other connections may too.
    grace_ms: u64,
}

impl Registry {
    /// A registry whose slow bodies give way once they have been arriving
    /// longer than `grace` (before, only when nothing else may).
    pub(crate) fn new(grace: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Register a new connection; it leaves the registry when the
    /// returned guard drops.
    pub(crate) fn open(self: &Arc<Self>) -> Registered {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(UNREAD),
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

    /// Ask one connection to close: of those that may, the one that has
    /// held its place longest without progress (see the module's doc).
    /// False when none may: every one is unread, being answered, or a body
    /// at the floor's pace.
    pub(crate) fn evict_one(&self) -> bool {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.evict_one_at(now_ms)
    }

    fn evict_one_at(&self, now_ms: u64) -> bool {
        let slots = self.lock();
        // One pass for the oldest stall, no sorting: this runs for every
        // newcomer while a flood holds the cap. Its state may change before
        // the swap (bytes arrived); then look again.
        while let Some((slot, state)) = slots
            .iter()
            .filter_map(|(&id, slot)| {
                let state = slot.state.load(Ordering::Acquire);
                let (tier, stalled_since) = self.stall(slot, state, now_ms)?;
                // Ids break ties of the same millisecond in order of arrival.
                Some(((tier, stalled_since, id), slot, state))
            })
            .min_by_key(|&(order, _, _)| order)
            .map(|(_, slot, state)| (slot, state))
        {
            if slot.try_evict(state, evicted(state)) {
                return true;
            }
        }
        false
    }

    /// Whether `slot`, seen in `state`, may give way now: its tier (0,
    /// or 1 for a body within the grace, which goes only when no other
    /// may) and since when it has made no progress (ms since the epoch).
    fn stall(&self, slot: &Slot, state: u8, now_ms: u64) -> Option<(u8, u64)> {
        let since = slot.since_ms.load(Ordering::Relaxed);
        match state {
            SILENT | IDLE | HEAD => Some((0, since)),
            BODY => {
                let age_ms = now_ms.saturating_sub(since);
                let bytes = slot.body_bytes.load(Ordering::Relaxed);
                // bytes / age < floor, without dividing: behind the pace
                // of the floor, since the moment its bytes would have
                // taken at that pace.
                let behind =
                    u128::from(bytes) * 1000 < u128::from(MIN_BODY_RATE) * u128::from(age_ms);
                let fell_behind = since.saturating_add(bytes.saturating_mul(1000) / MIN_BODY_RATE);
                behind.then_some((u8::from(age_ms <= self.grace_ms), fell_behind))
            }
            _ => None,
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
pub(crate) struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) slot: Arc<Slot>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// A connection's I/O that marks its slot busy when bytes arrive, so a
/// connection whose request head is on its way is not taken for idle.
#[derive(Debug)]
pub(crate) struct Tracked<S> {
    inner: S,
    slot: Arc<Slot>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, slot: Arc<Slot>) -> Self {
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
        } else {
            this.slot.read_nothing();
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

/// How often the accept loop, at the cap, looks again for a connection to
/// close: one that was busy may have gone idle, one just accepted may have
/// been read.
const MAKE_ROOM_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// The next connection and its slot under the cap; `None` once `shutdown`
/// comes, or when no slot can be made. Accepted before a slot is free, so
/// that at the cap there is a newcomer to make room for (one at most: the
/// next accept waits for this one's slot).
pub(crate) async fn accept_within_cap(
    listener: &tokio::net::TcpListener,
    permits: &Arc<tokio::sync::Semaphore>,
    registry: &Registry,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Option<(
    tokio::net::TcpStream,
    std::net::SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, remote)) = accepted else {
            // Out of file descriptors, or a connection reset before
            // accept: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let permit = match Arc::clone(permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => make_room(permits, registry, shutdown).await?,
        };
        let _ = stream.set_nodelay(true);
        return Some((stream, remote, permit));
    }
}

/// At the cap: ask the connection stalled longest to give way until a slot
/// is free. `None` on shutdown.
async fn make_room(
    permits: &std::sync::Arc<tokio::sync::Semaphore>,
    registry: &Registry,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    loop {
        // The one asked closes at its next poll and frees its slot; when
        // none may go, the newcomer waits as it would in the backlog.
        registry.evict_one();
        tokio::select! {
            () = shutdown.cancelled() => return None,
            permit = std::sync::Arc::clone(permits).acquire_owned() => {
                return Some(permit.expect("the semaphore is never closed"));
            }
            () = tokio::time::sleep(MAKE_ROOM_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(3);
    const GRACE_MS: u64 = 3000;

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

    /// A connection its task has read from, and found nothing.
    fn silent(registry: &Arc<Registry>, ms: u64) -> Registered {
        let conn = registry.open();
        conn.slot.read_nothing();
        dated(&conn.slot, ms);
        conn
    }

    /// A connection whose head arrived and whose body is on its way.
    fn receiving_body(registry: &Arc<Registry>) -> Registered {
        let conn = registry.open();
        conn.slot.heard_from(100);
        conn.slot.request_started();
        conn
    }

    /// A keep-alive connection idle since `ms`.
    fn idle(registry: &Arc<Registry>, ms: u64) -> Registered {
        let conn = registry.open();
        conn.slot.request_started();
        conn.slot.request_finished();
        dated(&conn.slot, ms);
        conn
    }

    /// A connection whose head began arriving at `ms` and is incomplete.
    fn head(registry: &Arc<Registry>, ms: u64) -> Registered {
        let conn = registry.open();
        conn.slot.heard_from(10);
        dated(&conn.slot, ms);
        conn
    }

    #[test]
    fn the_longest_stall_gives_way_first_whatever_its_state() {
        let registry = registry();
        let answering = receiving_body(&registry);
        answering.slot.request_received();
        dated(&answering.slot, 0);
        let newcomer = silent(&registry, 5000);
        let idle = idle(&registry, 300);
        let quiet = silent(&registry, 200);
        let head = head(&registry, 100);
        let slow_body = receiving_body(&registry);
        dated(&slow_body.slot, 50);
        assert_eq!(registry.len(), 6);

        let now = 5000;
        for (conn, evicted) in [
            (&slow_body, EVICTED_SLOW),
            (&head, EVICTED_SLOW),
            (&quiet, EVICTED_SILENT),
            (&idle, EVICTED_IDLE),
            (&newcomer, EVICTED_SILENT),
        ] {
            assert!(registry.evict_one_at(now));
            assert_eq!(state(&conn.slot), evicted, "oldest stall first");
        }
        assert!(
            !registry.evict_one_at(now),
            "a connection being answered never gives way"
        );
        assert_eq!(state(&answering.slot), ANSWERING);

        drop(quiet);
        assert_eq!(registry.len(), 5, "a closed connection leaves the registry");
    }

    #[test]
    fn each_newcomer_takes_the_place_of_the_oldest_stall_in_turn() {
        let registry = registry();
        let conns: Vec<Registered> = [400, 100, 300, 200]
            .into_iter()
            .map(|ms| head(&registry, ms))
            .collect();
        let mut gone = Vec::new();
        for _ in 0..4 {
            assert!(registry.evict_one_at(500));
            let next = (0..4)
                .find(|&i| !gone.contains(&i) && state(&conns[i].slot) == EVICTED_SLOW)
                .unwrap();
            gone.push(next);
        }
        assert_eq!(gone, [1, 3, 2, 0], "oldest head first");
    }

    #[test]
    fn a_connection_not_read_yet_never_gives_way() {
        let registry = registry();
        let unread = registry.open();
        dated(&unread.slot, 0);
        assert!(
            !registry.evict_one_at(u64::MAX / 2),
            "its request may be waiting"
        );
        assert_eq!(state(&unread.slot), UNREAD);
        // Read, and nothing there: silent since it opened.
        unread.slot.read_nothing();
        assert_eq!(state(&unread.slot), SILENT);
        assert_eq!(unread.slot.since_ms.load(Ordering::Relaxed), 0);
        assert!(registry.evict_one_at(1));
        assert_eq!(state(&unread.slot), EVICTED_SILENT);
        // Read, with its request there: a head, or straight to its body.
        let read = registry.open();
        read.slot.heard_from(300);
        assert_eq!(state(&read.slot), HEAD);
        let whole = registry.open();
        whole.slot.heard_from(300);
        whole.slot.request_started();
        assert_eq!(state(&whole.slot), BODY);
        // Reading nothing later changes nothing.
        read.slot.read_nothing();
        assert_eq!(state(&read.slot), HEAD);
    }

    #[test]
    fn a_head_gives_way_at_any_age_and_trickled_bytes_do_not_make_it_younger() {
        let registry = registry();
        let older = head(&registry, 500);
        let fresh = head(&registry, 900);
        older.slot.heard_from(1);
        assert_eq!(older.slot.since_ms.load(Ordering::Relaxed), 500);
        assert!(registry.evict_one_at(901));
        assert_eq!(state(&older.slot), EVICTED_SLOW);
        assert!(registry.evict_one_at(901), "well within the grace");
        assert_eq!(state(&fresh.slot), EVICTED_SLOW);
    }

    #[test]
    fn a_body_below_the_rate_floor_gives_way_past_the_grace_before_one_within_it() {
        let registry = registry();
        let age = GRACE_MS + 1000;
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
        dated(&stalled_young.slot, age - GRACE_MS);

        assert!(registry.evict_one_at(age));
        assert_eq!(state(&trickle.slot), EVICTED_SLOW, "below the floor");
        assert_eq!(
            state(&stalled_young.slot),
            BODY,
            "within the grace it stays while another may go"
        );
        assert!(registry.evict_one_at(age));
        assert_eq!(state(&stalled_young.slot), EVICTED_SLOW);
        assert!(!registry.evict_one_at(age));
        assert_eq!(state(&steady.slot), BODY, "at the floor it stays");
    }

    #[test]
    fn a_slow_body_within_the_grace_goes_only_when_nothing_else_may() {
        let registry = registry();
        let now = 1000;
        // Behind the floor's pace since 0 (no body byte yet), and since 500.
        let stalled = receiving_body(&registry);
        dated(&stalled.slot, 0);
        let trickle = receiving_body(&registry);
        dated(&trickle.slot, 0);
        trickle
            .slot
            .heard_from(usize::try_from(MIN_BODY_RATE / 2).unwrap());
        // At the pace: never.
        let steady = receiving_body(&registry);
        dated(&steady.slot, 0);
        steady
            .slot
            .heard_from(usize::try_from(MIN_BODY_RATE).unwrap());
        let young_head = head(&registry, 999);

        assert!(registry.evict_one_at(now));
        assert_eq!(state(&young_head.slot), EVICTED_SLOW, "anything else first");
        assert!(registry.evict_one_at(now));
        assert_eq!(state(&stalled.slot), EVICTED_SLOW, "furthest behind first");
        assert!(registry.evict_one_at(now));
        assert_eq!(state(&trickle.slot), EVICTED_SLOW);
        assert!(!registry.evict_one_at(now));
        assert_eq!(state(&steady.slot), BODY);
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
        let conn = silent(&registry, 0);
        assert!(registry.evict_one_at(1));
        conn.slot.heard_from(1);
        conn.slot.read_nothing();
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
        let silent = silent(&registry, 0);
        assert!(silent.slot.expire_if_silent());
        let unread = registry.open();
        assert!(unread.slot.expire_if_silent());
    }

    #[tokio::test]
    async fn an_evicted_connection_is_woken_and_told_how() {
        let registry = registry();
        let conn = idle(&registry, 0);
        let slot = Arc::clone(&conn.slot);
        let waiter = tokio::spawn(async move { slot.evicted().await });
        tokio::task::yield_now().await;
        assert!(registry.evict_one());
        assert_eq!(waiter.await.unwrap(), Eviction::Idle);

        let trickling = head(&registry, 0);
        assert!(registry.evict_one_at(1));
        assert_eq!(trickling.slot.evicted().await, Eviction::Slow);
    }
}
