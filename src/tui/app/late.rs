//! A delivery announced after a newer one: on a shared store ids come
//! from one sequence, but each listener commits its own batches, so row 41
//! can commit after row 42 was shown. It goes in its place by id, in the
//! history and (when it passes the filter) in the list, and the selection
//! stays on the delivery it was on.

use std::sync::Arc;

use super::App;
use crate::delivery::Delivery;

impl App {
    /// `delivery`, older than the newest here, in its place; nothing when
    /// it is held already (a resync reads again what was shown) or was
    /// let go past the history's limits.
    pub(super) fn ingest_late(&mut self, delivery: Arc<Delivery>) {
        if !self.history.insert(Arc::clone(&delivery)) {
            return;
        }
        self.counters.count(&delivery);
        if let Some(side) = &mut self.danube {
            side.arrived(&delivery);
        }
        if self.filter.matches(&delivery) {
            let at = self.list.partition_point(|d| d.id < delivery.id);
            self.list.insert(at, delivery);
            if at < self.top {
                self.top += 1;
            }
            match self.selected {
                Some(selected) if selected >= at => self.selected = Some(selected + 1),
                Some(_) => {}
                None => self.select(at),
            }
        }
        self.keep_within_limits();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    fn app() -> App {
        let policy = crate::policy::PolicyHandle::new(crate::policy::Policy::default_for(false));
        App::new(crate::test_support::app_config(), policy)
    }

    fn ids(app: &App) -> Vec<u64> {
        app.visible().map(|(_, d)| d.id).collect()
    }

    #[test]
    fn a_late_commit_goes_in_its_place_once() {
        let mut app = app();
        app.set_geometry(20, 10, 0);
        for id in [2, 5, 6] {
            app.ingest(Arc::new(sample(id, b"{}")));
        }
        app.paused = true;
        app.select(1);
        assert_eq!(app.selected().map(|d| d.id), Some(5));
        app.ingest(Arc::new(sample(3, b"{}")));
        app.ingest(Arc::new(sample(1, b"{}")));
        app.ingest(Arc::new(sample(3, b"{}")));
        assert_eq!(ids(&app), [1, 2, 3, 5, 6]);
        assert_eq!(app.history_len(), 5);
        assert_eq!(app.counters.total, 5, "each counted once");
        assert_eq!(
            app.selected().map(|d| d.id),
            Some(5),
            "the selection stays on its delivery"
        );
        app.ingest(Arc::new(sample(7, b"{}")));
        assert_eq!(ids(&app), [1, 2, 3, 5, 6, 7]);
    }
}
