//! Deliveries in flight: arrived, and not answered yet, because their
//! answer waits (a delay, a `timeout` hold, the developer's receiver).
//!
//! The record of a delivery is written when its answer is ready, so what
//! Danube is waiting on would otherwise be invisible until then. The
//! listener registers each such delivery here as it arrives ([`Arrival`]):
//! the store announces it ([`super::StoreEvent::Arrived`]) and keeps it in a
//! table until the [`InFlight`] guard is dropped, which announces it
//! settled ([`super::StoreEvent::Settled`]). The guard is dropped after the
//! record has been appended (so a receiver sees the record, then the
//! settle), or when the request's task is dropped with no record at all.
//! A receiver that lagged reads the table back ([`super::DeliveryStore::in_flight`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::broadcast::Broadcaster;
use crate::signature::Verdict;

/// What is known of a delivery before its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// Numbers this process's arrivals from 1; the key a settle names. Not
    /// the record's id, which the store gives when the record is written.
    pub(crate) number: u64,
    pub(crate) received_at: DateTime<Utc>,
    /// When the request arrived, for the count of how long it has been held.
    pub(crate) at: Instant,
    pub(crate) remote_addr: String,
    pub(crate) method: String,
    /// The request target, as recorded.
    pub(crate) path: String,
    /// The body's `event`, when it has one (untrusted: escape to show).
    pub(crate) event: Option<String>,
    pub(crate) verdict: Verdict,
    pub(crate) attempt: u32,
    /// The policy step that will answer it, as written in a rule
    /// (`timeout`, `12s+200`, `forward`).
    pub(crate) step: String,
}

impl Arrival {
    /// How long it has been held at `now`.
    pub(crate) fn held(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.at)
    }

    /// `held 3.2s / 10s`: how long it has been held, against Danube's deadline.
    /// Cut to the tenth, never rounded up: 0.96 s held is "0.9s", so the
    /// count never says more than the row's duration will once answered.
    pub(crate) fn held_label(&self, now: Instant) -> String {
        let tenths = self.held(now).as_millis() / 100;
        format!(
            "held {}.{}s / {}s",
            tenths / 10,
            tenths % 10,
            crate::facts::DEADLINE.as_secs()
        )
    }
}

/// The arrivals in flight, by number. A std mutex: held to insert, remove
/// or copy the table, never across an `.await`.
#[derive(Default)]
pub(super) struct Table {
    next: u64,
    arrivals: BTreeMap<u64, Arc<Arrival>>,
}

/// The store's side: the table and where its changes are announced.
pub(super) struct Board {
    table: Mutex<Table>,
}

impl Board {
    pub(super) fn new() -> Self {
        Self {
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number `arrival`, keep it, and announce it (under the table's lock,
    /// so announcements go out in the order of the table's changes).
    pub(super) fn arrive(&self, mut arrival: Arrival, broadcast: &Broadcaster) -> Arc<Arrival> {
        let mut table = self.lock();
        table.next += 1;
        arrival.number = table.next;
        let arrival = Arc::new(arrival);
        table.arrivals.insert(arrival.number, Arc::clone(&arrival));
        broadcast.arrived(Arc::clone(&arrival));
        arrival
    }

    pub(super) fn settle(&self, number: u64, broadcast: &Broadcaster) {
        let mut table = self.lock();
        if table.arrivals.remove(&number).is_some() {
            broadcast.settled(number);
        }
    }

    /// Every arrival in flight, oldest first.
    pub(super) fn snapshot(&self) -> Vec<Arc<Arrival>> {
        self.lock().arrivals.values().cloned().collect()
    }
}

/// A delivery in flight, until this is dropped.
#[must_use = "the delivery is settled when the guard is dropped"]
pub(crate) struct InFlight {
    pub(super) arrival: Arc<Arrival>,
    pub(super) shared: Arc<super::Shared>,
}

impl InFlight {
    #[cfg(test)]
    pub(crate) fn arrival(&self) -> &Arc<Arrival> {
        &self.arrival
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .settle(self.arrival.number, &self.shared.broadcast);
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InFlight").field(&self.arrival).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeliveryStore, StoreConfig, StoreEvent};
    use crate::test_support::arrival;

    #[test]
    fn held_is_counted_against_danubes_deadline() {
        let now = Instant::now();
        let a = arrival(now, Duration::from_millis(3240), "timeout");
        assert_eq!(a.held_label(now), "held 3.2s / 10s");
        // Cut, never rounded up past what was held (the row's duration).
        let b = arrival(now, Duration::from_millis(960), "timeout");
        assert_eq!(b.held_label(now), "held 0.9s / 10s");
        let c = arrival(now, Duration::from_millis(12_999), "timeout");
        assert_eq!(c.held_label(now), "held 12.9s / 10s");
        // A clock that went no further never counts backwards.
        assert_eq!(a.held(a.at), Duration::ZERO);
    }

    #[tokio::test]
    async fn arrivals_are_announced_kept_until_settled_and_numbered() {
        let (store, _) = DeliveryStore::open(StoreConfig::memory()).unwrap();
        let mut events_rx = store.subscribe();
        let now = Instant::now();
        let first = store.arrive(arrival(now, Duration::ZERO, "timeout"));
        let second = store.arrive(arrival(now, Duration::ZERO, "12s+200"));
        assert_eq!((first.arrival().number, second.arrival().number), (1, 2));
        let numbers: Vec<u64> = store.in_flight().iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 2]);
        drop(first);
        assert_eq!(store.in_flight().len(), 1);
        let mut seen = Vec::new();
        while let Ok(event) = events_rx.try_recv() {
            seen.push(match event {
                StoreEvent::Arrived(a) => format!("arrived {} {}", a.number, a.step),
                StoreEvent::Settled(n) => format!("settled {n}"),
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(
            seen,
            ["arrived 1 timeout", "arrived 2 12s+200", "settled 1"]
        );
        drop(second);
        assert!(store.in_flight().is_empty());
        assert!(matches!(events_rx.try_recv(), Ok(StoreEvent::Settled(2))));
    }
}
