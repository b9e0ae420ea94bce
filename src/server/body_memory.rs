//! The memory that request bodies still arriving may hold, shared by every
//! connection.
//!
//! Each body is capped by `--max-body`, and connections by
//! `--max-connections`, but both at once allowed 1,024 stalled bodies of
//! 1 MiB: a stranger who sent a little under a megabyte on each of 300
//! connections and then went quiet held the listener at 690 MB for the
//! body timeout. So the bytes a body holds past its first
//! [`BodyMemory::UNCOUNTED`] come from one shared pool, and a body that
//! finds the pool empty is refused (503, so a real sender retries).
//!
//! The first [`BodyMemory::UNCOUNTED`] bytes of every body are free of the
//! pool on purpose: Danube's deliveries are a few KiB, so a stranger who
//! drains the pool with big bodies still cannot keep them out. The whole
//! bound is `max_connections × UNCOUNTED + pool`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The shared pool: one per listener.
#[derive(Debug)]
pub(crate) struct BodyMemory {
    limit: usize,
    /// Bytes reserved by bodies in flight. Only ever changed by
    /// [`Reservation`], which gives back what it took when dropped.
    used: AtomicUsize,
}

impl BodyMemory {
    /// Bytes of each body that do not count against the pool.
    pub(crate) const UNCOUNTED: usize = 64 * 1024;

    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// An empty reservation, for one body.
    pub(crate) fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            pool: Arc::clone(self),
            counted: 0,
        }
    }

    /// Bytes reserved from the pool now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What one body holds of the pool; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: Arc<BodyMemory>,
    counted: usize,
}

impl Reservation {
    /// Make room for a body buffer of `capacity` bytes: `false`, with
    /// nothing taken, when the pool cannot hold its counted part.
    pub(crate) fn cover(&mut self, capacity: usize) -> bool {
        let counted = capacity.saturating_sub(BodyMemory::UNCOUNTED);
        if counted <= self.counted {
            return true;
        }
        let more = counted - self.counted;
        if !self.pool.take(more) {
            return false;
        }
        self.counted = counted;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.counted > 0 {
            self.pool.give_back(self.counted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    #[test]
    fn the_first_bytes_of_a_body_are_free_and_the_rest_come_from_the_pool() {
        let pool = BodyMemory::new(100 * KIB);
        let mut body = pool.reservation();
        assert!(body.cover(BodyMemory::UNCOUNTED));
        assert_eq!(pool.used(), 0, "a body within the free part takes nothing");
        assert!(body.cover(BodyMemory::UNCOUNTED + 60 * KIB));
        assert_eq!(pool.used(), 60 * KIB);
        assert!(
            body.cover(BodyMemory::UNCOUNTED + 10 * KIB),
            "shrinking is a no-op"
        );
        assert_eq!(pool.used(), 60 * KIB);
        drop(body);
        assert_eq!(pool.used(), 0, "given back when the body is done");
    }

    #[test]
    fn a_body_the_pool_cannot_hold_takes_nothing_and_small_ones_still_fit() {
        let pool = BodyMemory::new(100 * KIB);
        let mut big = pool.reservation();
        assert!(big.cover(BodyMemory::UNCOUNTED + 80 * KIB));
        let mut second = pool.reservation();
        assert!(!second.cover(BodyMemory::UNCOUNTED + 30 * KIB));
        assert_eq!(pool.used(), 80 * KIB, "a refused reservation takes nothing");
        assert!(
            second.cover(BodyMemory::UNCOUNTED + 20 * KIB),
            "what is left fits"
        );
        assert_eq!(pool.used(), 100 * KIB);
        let mut small = pool.reservation();
        assert!(
            small.cover(2 * KIB),
            "a delivery of a few KiB gets through an empty pool"
        );
        drop((big, second, small));
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn reservations_from_many_threads_never_pass_the_limit() {
        let pool = BodyMemory::new(1024 * KIB);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for n in 0..500 {
                        let mut body = pool.reservation();
                        if body.cover(BodyMemory::UNCOUNTED + (n % 7) * 100 * KIB) {
                            peak.fetch_max(pool.used(), Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 1024 * KIB);
        assert_eq!(pool.used(), 0);
    }
}
