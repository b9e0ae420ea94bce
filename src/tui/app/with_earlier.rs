//! The [`App`]'s side of the history it opens with (`tui::earlier`): the
//! store's deliveries from before this start, taken in before the ones it
//! holds, and the divider rows that mark each start of the listener in the
//! list. A divider takes a row of its own, so the rows from `top` to the
//! selection are counted with theirs.

use super::App;
use crate::store::Start;
use crate::tui::earlier::Earlier;
use crate::tui::runs::Runs;

impl App {
    /// This start's first record gets `first_id`: anything below it is
    /// earlier, read from the store (a resync after a lag reads only this
    /// start's records).
    pub(crate) fn start_at(&mut self, first_id: u64) {
        self.last_id = self.last_id.max(first_id.saturating_sub(1));
    }

    /// The store's deliveries from before this start: the history and the
    /// list again, with them first. The selection stays on its delivery
    /// when paused, and is on the newest otherwise.
    pub fn take_earlier(&mut self, earlier: Earlier) {
        if let Some(side) = &mut self.danube {
            for delivery in &earlier.deliveries {
                side.arrived(delivery);
            }
        }
        let gone = self.history.put_before(earlier.deliveries, earlier.runs);
        if let Some(side) = &mut self.danube {
            for delivery in &gone {
                side.left(delivery.id);
            }
        }
        self.refilter();
    }

    pub(crate) fn runs(&self) -> &Runs {
        self.history.runs()
    }

    /// The start to mark with a divider row above row `index` of the list.
    pub(crate) fn divider_above(&self, index: usize) -> Option<&Start> {
        let delivery = self.list.get(index)?;
        let above = index.checked_sub(1).and_then(|i| self.list.get(i));
        self.history
            .runs()
            .divider(delivery, above.map(AsRef::as_ref))
    }

    /// Move `top` down until the rows from it to the selection, with the
    /// dividers above them, fit on screen.
    pub(super) fn fit_dividers(&mut self) {
        let Some(selected) = self.selected.filter(|_| self.runs().loaded() > 0) else {
            return;
        };
        let rows = self.list_rows.max(1);
        let mut dividers = (self.top..=selected)
            .filter(|&i| self.divider_above(i).is_some())
            .count();
        while self.top < selected && selected - self.top + 1 + dividers > rows {
            if self.divider_above(self.top).is_some() {
                dividers -= 1;
            }
            self.top += 1;
        }
    }
}
