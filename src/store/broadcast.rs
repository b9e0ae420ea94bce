//! The store's broadcast to the dashboard and the headless printer, within
//! a byte budget.
//!
//! The channel holds [`EVENT_CAPACITY`] events; a receiver that lags keeps
//! up to that many alive. With 1 MiB bodies (and their JSON lines) that
//! was up to 9 GiB. So the store counts the bytes of the events a receiver
//! has not seen yet, and a record that would take them past
//! [`BROADCAST_BUDGET`] is announced as [`StoreEvent::BodyElided`]: the
//! record without its body and without its line. What receivers must do
//! with it: read the record back from the store (`store::find(path, id)`)
//! when they need the body or the JSON line; the rest of the record (id,
//! event, verdict, answer, headers, `body_size`) is there as it was
//! written. In memory-only mode (`--no-store`) there is nothing to read
//! back: the body is gone, as a record missed on lag is.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use super::{Arrival, EVENT_CAPACITY, RecordLine, StoreEvent};
use crate::delivery::{Delivery, MirrorRecord};

/// Bytes of records the broadcast may hold for receivers that have not
/// seen them yet, before bodies are left out.
pub(crate) const BROADCAST_BUDGET: u64 = 64 * 1024 * 1024;
/// What an event costs besides its body, line and headers, near enough.
const EVENT_OVERHEAD: u64 = 512;

/// The sending end, with the byte count. Every send goes through here, so
/// the counts stay in step with the channel's queue.
pub(crate) struct Broadcaster {
    events_tx: broadcast::Sender<StoreEvent>,
    budget: u64,
    /// The sizes of the last events sent, oldest first. A std mutex: held
    /// for one send.
    queued: Mutex<Queued>,
}

#[derive(Default)]
struct Queued {
    sizes: VecDeque<u64>,
    bytes: u64,
}

impl Queued {
    /// Forget all but the last `keep` events.
    fn forget_oldest(&mut self, keep: usize) {
        while self.sizes.len() > keep {
            let size = self.sizes.pop_front().unwrap_or(0);
            self.bytes -= size;
        }
    }
}

/// Events the channel can hold at most: tokio rounds its capacity up to a
/// power of two, the length of its ring.
const RING: usize = EVENT_CAPACITY.next_power_of_two();

impl Broadcaster {
    pub(super) fn new() -> Self {
        Self::with_budget(BROADCAST_BUDGET)
    }

    pub(super) fn with_budget(budget: u64) -> Self {
        let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            events_tx,
            budget,
            queued: Mutex::new(Queued::default()),
        }
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events_tx.subscribe()
    }

    pub(crate) fn warn(&self, message: String) {
        let size = message.len() as u64 + EVENT_OVERHEAD;
        self.send(StoreEvent::Warning(message), size);
    }

    /// Announce how work beside the listener is going.
    pub(super) fn notice(&self, message: String) {
        let size = message.len() as u64 + EVENT_OVERHEAD;
        self.send(StoreEvent::Notice(message), size);
    }

    /// Announce a delivery in flight.
    pub(super) fn arrived(&self, arrival: Arc<Arrival>) {
        let size = (arrival.path.len() + arrival.event.as_ref().map_or(0, String::len)) as u64
            + EVENT_OVERHEAD;
        self.send(StoreEvent::Arrived(arrival), size);
    }

    /// Announce what a mirror answered after its delivery's record was written.
    pub(super) fn mirrored(&self, id: u64, index: usize, mirror: MirrorRecord) {
        let size = (mirror.url.len() + mirror.error.as_ref().map_or(0, String::len)) as u64
            + EVENT_OVERHEAD;
        self.send(StoreEvent::Mirrored { id, index, mirror }, size);
    }

    /// Announce that a delivery is no longer in flight.
    pub(super) fn settled(&self, number: u64) {
        self.send(StoreEvent::Settled(number), EVENT_OVERHEAD);
    }

    /// Announce a written record (with its line), or, past the budget, the
    /// record without its body. The line is copied out of the batch only
    /// when it goes out: an elided record (a receiver far behind, under a
    /// flood of large bodies) costs no copy of a line nobody will get.
    pub(crate) fn delivery(&self, delivery: Arc<Delivery>, line: Option<RecordLine>) {
        let mut queued = self.lock_queued();
        let size = full_size(&delivery, line.as_ref());
        // The count may still hold events every receiver has seen. Asking
        // the channel which it still holds locks its tail and a dozen of
        // its slots, so on every delivery that was a cost of its own; it is
        // asked only when the count as it stands does not fit. A record
        // that fits as counted fits as held: the decision is the same.
        if queued.bytes.saturating_add(size) > self.budget && !delivery.body.is_empty() {
            self.forget_seen(&mut queued);
        }
        let event = if queued.bytes.saturating_add(size) <= self.budget || delivery.body.is_empty()
        {
            StoreEvent::Delivery(delivery, line)
        } else {
            StoreEvent::BodyElided(Arc::new(Delivery::without_body(&delivery)))
        };
        let size = match &event {
            StoreEvent::BodyElided(elided) => full_size(elided, None),
            _ => size,
        };
        self.send_locked(&mut queued, event, size);
    }

    /// The count, with the events the channel's ring has certainly
    /// overwritten forgotten (which takes no lock of the channel's): an
    /// upper bound of the bytes it holds.
    fn lock_queued(&self) -> std::sync::MutexGuard<'_, Queued> {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        queued.forget_oldest(RING);
        queued
    }

    /// Make the count exact. The channel keeps the last `len()` events
    /// sent: those some receiver has not seen (nor lost to a lag). The
    /// older ones are freed, so they no longer count.
    fn forget_seen(&self, queued: &mut Queued) {
        queued.forget_oldest(self.events_tx.len());
    }

    fn send(&self, event: StoreEvent, size: u64) {
        let mut queued = self.lock_queued();
        self.send_locked(&mut queued, event, size);
    }

    fn send_locked(&self, queued: &mut Queued, event: StoreEvent, size: u64) {
        // No receivers is fine: nobody is watching, and nothing is queued.
        if self.events_tx.send(event).is_ok() {
            queued.sizes.push_back(size);
            queued.bytes += size;
        }
    }

    /// Bytes the channel holds for receivers now, as counted.
    #[cfg(test)]
    pub(super) fn queued_bytes(&self) -> u64 {
        let mut queued = self.lock_queued();
        self.forget_seen(&mut queued);
        queued.bytes
    }
}

/// What `delivery` and its line hold while the channel keeps them.
fn full_size(delivery: &Delivery, line: Option<&RecordLine>) -> u64 {
    (crate::delivery::memory::estimate(delivery) + line.map_or(0, RecordLine::size)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    fn record(id: u64, body_len: usize) -> Arc<Delivery> {
        Arc::new(sample(id, &vec![b'x'; body_len]))
    }

    #[test]
    fn past_the_budget_bodies_are_left_out_until_receivers_catch_up() {
        let broadcast = Broadcaster::with_budget(10 * 1024);
        let mut events_rx = broadcast.subscribe();
        for id in 1..=10 {
            broadcast.delivery(record(id, 4096), None);
        }
        let overhead = full_size(&record(0, 0), None);
        assert!(
            broadcast.queued_bytes() <= 10 * 1024 + 10 * overhead,
            "{} bytes queued",
            broadcast.queued_bytes()
        );
        let mut whole = Vec::new();
        for id in 1..=10 {
            match events_rx.try_recv().unwrap() {
                StoreEvent::Delivery(d, _) => {
                    assert_eq!((d.id, d.body.len()), (id, 4096));
                    whole.push(id);
                }
                StoreEvent::BodyElided(d) => {
                    assert_eq!(d.id, id);
                    assert!(d.body.is_empty());
                    assert_eq!(d.body_size, 4096, "the rest of the record is as written");
                    let mut expected = (*record(id, 4096)).clone();
                    expected.body.clear();
                    assert_eq!(*d, expected);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(whole, [1, 2], "two fit in 10 KiB, the rest are elided");
        // Every event seen: nothing is held for receivers, so a body fits again.
        assert_eq!(broadcast.queued_bytes(), 0);
        broadcast.delivery(record(11, 4096), None);
        assert!(
            matches!(events_rx.try_recv().unwrap(), StoreEvent::Delivery(d, _) if d.body.len() == 4096)
        );
    }

    #[test]
    fn events_seen_are_forgotten_when_a_body_would_not_fit_as_counted() {
        let broadcast = Broadcaster::with_budget(10 * 1024);
        let mut events_rx = broadcast.subscribe();
        for id in 1..=2 {
            broadcast.delivery(record(id, 4096), None);
            assert!(matches!(
                events_rx.try_recv().unwrap(),
                StoreEvent::Delivery(..)
            ));
        }
        // Both seen, but still counted until a record does not fit as
        // counted: then the channel is asked, and this one goes out whole.
        broadcast.delivery(record(3, 4096), None);
        assert!(
            matches!(events_rx.try_recv().unwrap(), StoreEvent::Delivery(d, _) if d.body.len() == 4096)
        );
    }

    #[test]
    fn empty_bodies_are_never_elided_and_nothing_counts_without_receivers() {
        let broadcast = Broadcaster::with_budget(100);
        broadcast.delivery(record(1, 4096), None);
        assert_eq!(
            broadcast.queued_bytes(),
            0,
            "no receiver: nothing is queued"
        );
        let mut events_rx = broadcast.subscribe();
        broadcast.delivery(record(2, 0), None);
        broadcast.delivery(record(3, 0), None);
        for id in [2, 3] {
            assert!(
                matches!(events_rx.try_recv().unwrap(), StoreEvent::Delivery(d, _) if d.id == id)
            );
        }
    }

    #[test]
    fn a_lagging_receiver_holds_at_most_the_budget_of_bodies() {
        // The case of the issue: 1 MiB bodies and a receiver that reads
        // nothing: without the budget the channel held 4096 of them.
        let broadcast = Broadcaster::new();
        let _events_rx = broadcast.subscribe();
        let body = record(1, 1024 * 1024);
        for _ in 0..EVENT_CAPACITY + 10 {
            broadcast.delivery(
                Arc::clone(&body),
                Some(RecordLine::new(1, "x".repeat(1024).as_bytes())),
            );
        }
        assert!(broadcast.queued_bytes() <= BROADCAST_BUDGET + EVENT_CAPACITY as u64 * 2048);
    }
}
