//! The starts of the listener among the deliveries the dashboard shows,
//! for the list's divider rows: which start each delivery was received
//! in. Kept by the history (`tui::history`), read by the list.

use crate::delivery::Delivery;
use crate::store::Start;

/// The starts of the listener, for the list's dividers.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    /// Oldest first, ids rising; the last is this start.
    starts: Vec<Start>,
    /// The id of this start's first record.
    current: u64,
    /// Deliveries read from before this start.
    loaded: usize,
}

impl Runs {
    /// The starts among `loaded` deliveries read from before this start,
    /// whose first record is `current`.
    pub(crate) fn new(starts: Vec<Start>, current: u64, loaded: usize) -> Self {
        Self {
            starts,
            current,
            loaded,
        }
    }

    /// The start `id` was received in: the last one at or before it.
    fn run_of(&self, id: u64) -> Option<usize> {
        self.starts
            .partition_point(|start| start.first_id <= id)
            .checked_sub(1)
    }

    /// The start to mark above `delivery` in the list, whose row above is
    /// `above`: where the list passes into another start, and above the
    /// first row when that one is from an earlier start. A store from
    /// before starts were kept marks only this start.
    pub(crate) fn divider(&self, delivery: &Delivery, above: Option<&Delivery>) -> Option<&Start> {
        let run = self.run_of(delivery.id)?;
        let marked = match above {
            Some(above) => self.run_of(above.id) != Some(run),
            None => self.starts[run].first_id < self.current,
        };
        marked.then(|| &self.starts[run])
    }

    /// Deliveries read from before this start.
    pub(crate) fn loaded(&self) -> usize {
        self.loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sample, start};

    #[test]
    fn a_divider_marks_where_the_list_passes_into_another_start() {
        let runs = Runs {
            starts: vec![start(3), start(6), start(6), start(9)],
            current: 9,
            loaded: 5,
        };
        let d = |id| sample(id, b"{}");
        let first_of = |id: u64, above: Option<u64>| {
            runs.divider(&d(id), above.map(d).as_ref())
                .map(|s| s.first_id)
        };
        assert_eq!(first_of(1, None), None, "before any known start");
        assert_eq!(
            first_of(4, None),
            Some(3),
            "the first row, from an earlier start"
        );
        assert_eq!(first_of(5, Some(4)), None, "the same start");
        assert_eq!(
            first_of(7, Some(5)),
            Some(6),
            "the later of two starts with one first id"
        );
        assert_eq!(
            first_of(9, Some(8)),
            Some(9),
            "this start, below earlier ones"
        );
        assert_eq!(first_of(10, None), None, "this start alone is not marked");
        assert_eq!(first_of(12, Some(10)), None);
        let none = Runs::default();
        assert_eq!(none.divider(&d(1), None), None, "--no-store: no starts");
    }
}
