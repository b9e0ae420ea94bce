//! A waker for futures that rarely fire (a shutdown, a timer, an eviction)
//! beside one that fires all the time.
//!
//! `select!` polls every branch at each wake-up of the task, and polling a
//! cancellation or a `Notify` that has not fired still takes its lock. A
//! task that wakes once or more per delivery (a connection, the printer)
//! polls its rare futures with a [`RareWake`] of their own instead, and
//! only when one of them woke it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

use futures_util::task::AtomicWaker;

/// The waker a task's rare futures are polled with: it notes that one of
/// them woke the task, then wakes it.
#[derive(Debug)]
pub(crate) struct RareWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Default for RareWake {
    /// Woken, so that every rare event is polled (and registered) once.
    fn default() -> Self {
        Self {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }
    }
}

impl RareWake {
    /// Whether a rare event woke the task since the last call; `task` is
    /// woken by the next one. (Registered first, so a wake-up between the
    /// two is not lost.)
    pub(crate) fn take(&self, task: &Waker) -> bool {
        self.task.register(task);
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// Poll every rare future at the next wake-up: what fired is done, or
    /// armed again.
    pub(crate) fn again(&self) {
        self.woken.store(true, Ordering::Release);
    }
}

impl Wake for RareWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}
