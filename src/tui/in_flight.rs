//! The dashboard's deliveries in flight: arrived, answer not yet sent.
//!
//! Kept apart from the history: an arrival has no id yet (the store gives
//! one when the record is written) and is never selected; it is shown
//! pinned under the list with a count of how long it has been held, until
//! its record arrives and it settles. The clock is set by the event loop
//! before each frame, so a render depends on nothing but the state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::store::Arrival;

/// How often the screen is redrawn while a delivery is in flight, for its
/// count (tenths of a second are shown). Well under the frame cap.
pub(crate) const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// The arrivals in flight, by number (oldest first), and the time the
/// counts are shown at.
#[derive(Debug, Clone)]
pub(crate) struct InFlightBoard {
    arrivals: BTreeMap<u64, Arc<Arrival>>,
    now: Instant,
}

impl Default for InFlightBoard {
    fn default() -> Self {
        Self {
            arrivals: BTreeMap::new(),
            now: Instant::now(),
        }
    }
}

impl InFlightBoard {
    pub(crate) fn arrive(&mut self, arrival: Arc<Arrival>) {
        self.arrivals.insert(arrival.number, arrival);
    }

    pub(crate) fn settle(&mut self, number: u64) {
        self.arrivals.remove(&number);
    }

    /// After a lag, the store's table as it is now.
    pub(crate) fn replace(&mut self, arrivals: Vec<Arc<Arrival>>) {
        self.arrivals = arrivals.into_iter().map(|a| (a.number, a)).collect();
    }

    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    pub(crate) fn len(&self) -> usize {
        self.arrivals.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Arrival>> {
        self.arrivals.values()
    }

    /// Rows taken from a list of `rows` to show them: one per arrival, at
    /// most half the list (at least one row when any is in flight), so the
    /// answered deliveries stay in view.
    pub(crate) fn rows_in(&self, rows: usize) -> usize {
        self.len().min((rows / 2).max(1)).min(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support;

    #[test]
    fn arrivals_settle_by_number_and_take_at_most_half_the_list() {
        let now = Instant::now();
        let mut board = InFlightBoard::default();
        assert_eq!(board.rows_in(10), 0);
        for number in 1..=7 {
            let mut arrival = test_support::arrival(now, Duration::ZERO, "timeout");
            arrival.number = number;
            board.arrive(Arc::new(arrival));
        }
        assert_eq!(board.rows_in(10), 5);
        assert_eq!(board.rows_in(1), 1, "one row even in a one-row list");
        assert_eq!(board.rows_in(0), 0);
        board.settle(3);
        board.settle(99);
        let numbers: Vec<u64> = board.iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 2, 4, 5, 6, 7]);
        let newest = Arc::clone(board.iter().next_back().unwrap());
        board.replace(vec![newest]);
        assert_eq!(board.len(), 1);
        assert_eq!(board.rows_in(10), 1);
    }
}
