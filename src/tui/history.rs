//! The dashboard's history: the newest deliveries in memory, within a count
//! and a byte budget (SPEC §9: every in-memory history has one), indexed by
//! group for the overview's timeline; and the one body read back from the
//! store when the selected delivery's was dropped.
//!
//! Past the byte budget the oldest deliveries keep their summary and drop
//! their body; if the summaries alone pass it, the oldest go. What passes
//! the filter, and what is selected, is the [`App`](super::app::App)'s.
//!
//! It opens with the store's latest deliveries from before this start
//! ([`History::put_before`]), and knows the starts of the listener among
//! them ([`Runs`]).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher as _;
use std::sync::Arc;

use super::runs::Runs;
use crate::delivery::{Delivery, memory};

/// The newest deliveries, their bytes and their groups.
pub(crate) struct History {
    /// In id order.
    deliveries: VecDeque<Arc<Delivery>>,
    /// The most deliveries kept.
    cap: usize,
    /// The most bytes kept, by [`memory::estimate`].
    budget: usize,
    /// How many of the oldest have had their body dropped: always a
    /// prefix, since bodies are dropped oldest first.
    stripped: usize,
    /// [`memory::estimate`] of everything in `deliveries`, within `budget`
    /// once [`History::pop_over_limits`] has had its way.
    held_bytes: usize,
    /// The deliveries by the hash of their group, in id order, kept at
    /// push and eviction: the overview's timeline of the selected delivery
    /// is a lookup, not a walk over the whole history every frame.
    groups: HashMap<u64, Bucket, foldhash::fast::RandomState>,
    /// The hash of each delivery's group, in the same order: an eviction
    /// finds its bucket without reading the oldest record's group (cold
    /// memory by then; reading it doubled the cost of an ingest).
    group_hashes: VecDeque<u64>,
    /// Seeded per process, so group keys cannot be chosen to collide.
    group_hasher: foldhash::fast::RandomState,
    /// The selected delivery whole, read back from the store after its
    /// body was dropped; at most one.
    opened: Option<Arc<Delivery>>,
    /// The id whose body is being read back, so it is asked for once.
    reading_back: Option<u64>,
    /// The id whose body could not be read back: not asked for again
    /// until the selection moves.
    failed_read_back: Option<u64>,
    /// The starts of the listener, for the list's dividers.
    runs: Runs,
    /// The highest id let go past the limits: one at or below it that
    /// comes again is not taken back in.
    let_go_through: u64,
}

/// The deliveries of the history whose group has one hash, in id order.
#[derive(Debug, Default)]
struct Bucket {
    members: VecDeque<Arc<Delivery>>,
    /// Two groups share the hash: members are told apart by their group.
    /// Kept until the bucket empties.
    mixed: bool,
}

impl History {
    /// At most `cap` deliveries and `budget` bytes of them.
    pub(crate) fn new(cap: usize, budget: usize) -> Self {
        Self {
            deliveries: VecDeque::new(),
            cap: cap.max(1),
            budget,
            stripped: 0,
            held_bytes: 0,
            groups: HashMap::default(),
            group_hashes: VecDeque::new(),
            group_hasher: foldhash::fast::RandomState::default(),
            opened: None,
            reading_back: None,
            failed_read_back: None,
            runs: Runs::default(),
            let_go_through: 0,
        }
    }

    /// Deliveries from before the first one here (oldest first), and the
    /// starts of the listener: the history again, with them before what
    /// it holds, within its limits. The deliveries it let go, oldest first.
    pub(crate) fn put_before(
        &mut self,
        earlier: Vec<Arc<Delivery>>,
        runs: Runs,
    ) -> Vec<Arc<Delivery>> {
        self.runs = runs;
        let first = self.deliveries.front().map_or(u64::MAX, |d| d.id);
        let held: Vec<_> = self.deliveries.drain(..).collect();
        self.group_hashes.clear();
        self.groups.clear();
        self.stripped = 0;
        self.held_bytes = 0;
        for delivery in earlier.into_iter().filter(|d| d.id < first).chain(held) {
            self.push(delivery);
        }
        self.strip_bodies(|_| {});
        std::iter::from_fn(|| self.pop_over_limits()).collect()
    }

    pub(crate) fn runs(&self) -> &Runs {
        &self.runs
    }

    pub(crate) fn len(&self) -> usize {
        self.deliveries.len()
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Delivery>> {
        self.deliveries.iter()
    }

    /// The newest delivery, in id order.
    pub(crate) fn push(&mut self, delivery: Arc<Delivery>) {
        let hash = self.hold(&delivery);
        self.group_hashes.push_back(hash);
        self.deliveries.push_back(delivery);
    }

    /// Count `delivery`'s bytes and put it in its group's bucket, in its
    /// place by id (the end, but for a late row); the bucket's hash.
    fn hold(&mut self, delivery: &Arc<Delivery>) -> u64 {
        self.held_bytes += memory::estimate(delivery);
        let hash = self.group_hasher.hash_one(&delivery.group);
        let bucket = self.groups.entry(hash).or_default();
        // The newest member stands for the bucket's group (all the same
        // unless already mixed), and is likely still in the cache.
        bucket.mixed |= bucket
            .members
            .back()
            .is_some_and(|last| last.group != delivery.group);
        let at = bucket.members.partition_point(|d| d.id < delivery.id);
        bucket.members.insert(at, Arc::clone(delivery));
        hash
    }

    /// A delivery older than the newest, in its place by id (a shared
    /// store's listeners commit in their own order, so a row can be
    /// announced after a newer one). False, and nothing changed, when it
    /// is held already or was let go.
    pub(crate) fn insert(&mut self, delivery: Arc<Delivery>) -> bool {
        if delivery.id <= self.let_go_through {
            return false;
        }
        let Err(index) = self.deliveries.binary_search_by_key(&delivery.id, |d| d.id) else {
            return false;
        };
        // Among the bodiless oldest it comes bodiless too.
        let delivery = if index < self.stripped {
            self.stripped += 1;
            Arc::new(delivery.without_body())
        } else {
            delivery
        };
        let hash = self.hold(&delivery);
        self.group_hashes.insert(index, hash);
        self.deliveries.insert(index, delivery);
        true
    }

    /// Past the byte budget, drop the bodies of the oldest deliveries that
    /// still have one (the newest always keeps its own). The summary takes
    /// the record's place here, and `replaced` is told of it so that other
    /// holders of the record can follow; the body is read back from the
    /// store when shown.
    pub(crate) fn strip_bodies(&mut self, mut replaced: impl FnMut(&Arc<Delivery>)) {
        while self.held_bytes > self.budget && self.stripped + 1 < self.deliveries.len() {
            let index = self.stripped;
            self.stripped += 1;
            let whole = &self.deliveries[index];
            if whole.body.is_empty() {
                continue;
            }
            let summary = Arc::new(whole.without_body());
            self.held_bytes -= memory::estimate(whole) - memory::estimate(&summary);
            let id = summary.id;
            if let Some(bucket) = self.groups.get_mut(&self.group_hashes[index])
                && let Ok(at) = bucket.members.binary_search_by_key(&id, |d| d.id)
            {
                bucket.members[at] = Arc::clone(&summary);
            }
            replaced(&summary);
            self.deliveries[index] = summary;
        }
    }

    /// Change the delivery with this id (a mirror's late answer) by a new
    /// record in its place, here, in its group and in the one opened; the
    /// new record, for the other holders to follow. `None` when it is no
    /// longer held.
    pub(crate) fn update(
        &mut self,
        id: u64,
        change: impl Fn(&mut Delivery),
    ) -> Option<Arc<Delivery>> {
        let index = self.deliveries.binary_search_by_key(&id, |d| d.id).ok()?;
        let old = &self.deliveries[index];
        let mut updated = Delivery::clone(old);
        change(&mut updated);
        let updated = Arc::new(updated);
        self.held_bytes = self.held_bytes - memory::estimate(old) + memory::estimate(&updated);
        if let Some(bucket) = self.groups.get_mut(&self.group_hashes[index])
            && let Ok(at) = bucket.members.binary_search_by_key(&id, |d| d.id)
        {
            bucket.members[at] = Arc::clone(&updated);
        }
        if let Some(opened) = self.opened.as_mut().filter(|opened| opened.id == id) {
            change(Arc::make_mut(opened));
        }
        self.deliveries[index] = Arc::clone(&updated);
        Some(updated)
    }

    /// The oldest delivery, taken out while the history is past its cap or
    /// (holding more than one) its byte budget.
    pub(crate) fn pop_over_limits(&mut self) -> Option<Arc<Delivery>> {
        if self.deliveries.len() <= self.cap
            && (self.held_bytes <= self.budget || self.deliveries.len() <= 1)
        {
            return None;
        }
        let oldest = self.deliveries.pop_front()?;
        self.let_go_through = self.let_go_through.max(oldest.id);
        self.held_bytes -= memory::estimate(&oldest);
        // The oldest of the history is the oldest of its bucket.
        if let Some(hash) = self.group_hashes.pop_front()
            && let Some(bucket) = self.groups.get_mut(&hash)
        {
            bucket.members.pop_front();
            if bucket.members.is_empty() {
                self.groups.remove(&hash);
            }
        }
        self.stripped = self.stripped.saturating_sub(1);
        Some(oldest)
    }

    /// The attempts of `delivery`'s group still in memory, in id order.
    pub(crate) fn group_of(&self, delivery: &Delivery) -> Vec<&Arc<Delivery>> {
        let hash = self.group_hasher.hash_one(&delivery.group);
        match self.groups.get(&hash) {
            None => Vec::new(),
            Some(bucket) if bucket.mixed => bucket
                .members
                .iter()
                .filter(|d| d.group == delivery.group)
                .collect(),
            Some(bucket) => bucket.members.iter().collect(),
        }
    }

    // ---- The body read back from the store.

    /// The body read back, whole, of whichever delivery it is.
    pub(crate) fn opened(&self) -> Option<&Arc<Delivery>> {
        self.opened.as_ref()
    }

    /// Why `delivery`'s body is not in memory, when it is not: a sentence
    /// for the body tab and the status line. `store`: whether there is a
    /// store to read it back from.
    pub(crate) fn body_absence(&self, delivery: &Delivery, store: bool) -> Option<String> {
        if !body_left_out(delivery) || self.opened.as_ref().is_some_and(|o| o.id == delivery.id) {
            return None;
        }
        let budget = self.budget / (1024 * 1024);
        Some(if !store {
            format!(
                "the body of #{} is gone from memory (the dashboard keeps the newest {budget} \
                 MiB, and --no-store keeps no log to read it back from)",
                delivery.id
            )
        } else if self.reading_back == Some(delivery.id) {
            format!(
                "the body of #{} is not in memory (the dashboard keeps the newest {budget} \
                 MiB); reading it back from the store…",
                delivery.id
            )
        } else {
            format!(
                "the body of #{} could not be read back from the store; `danube-hooks show {}` \
                 prints it",
                delivery.id, delivery.id
            )
        })
    }

    /// The id of `selected` when its body must be read back from the
    /// store; marks it asked for, so it is read once per selection.
    pub(crate) fn body_to_read_back(&mut self, selected: &Delivery) -> Option<u64> {
        let wanted = body_left_out(selected)
            && self.opened.as_ref().is_none_or(|o| o.id != selected.id)
            && self.reading_back.is_none()
            && self.failed_read_back != Some(selected.id);
        wanted.then(|| {
            self.reading_back = Some(selected.id);
            selected.id
        })
    }

    /// A body read back from the store: kept while `selected` is its
    /// delivery. An error is given back, and the delivery not asked for
    /// again until the selection comes back to it.
    pub(crate) fn read_back(
        &mut self,
        id: u64,
        result: Result<Delivery, String>,
        selected: Option<u64>,
    ) -> Result<(), String> {
        if self.reading_back == Some(id) {
            self.reading_back = None;
        }
        match result {
            Ok(delivery) if selected == Some(id) => self.opened = Some(Arc::new(delivery)),
            Ok(_) => {}
            Err(error) => {
                self.opened = None;
                self.failed_read_back = Some(id);
                return Err(error);
            }
        }
        Ok(())
    }

    /// The selection moved to delivery `id`: one body read back at a time,
    /// the one on screen, and a failed one may be asked for again once the
    /// selection has left it.
    pub(crate) fn selection_moved_to(&mut self, id: u64) {
        if self.opened.as_ref().is_some_and(|o| o.id != id) {
            self.opened = None;
        }
        if self.failed_read_back.is_some_and(|failed| failed != id) {
            self.failed_read_back = None;
        }
    }
}

/// Whether `delivery` came without its body, or had it dropped here: the
/// store leaves bodies out of its broadcast past the broadcast's byte
/// budget, and the history drops them past its own. A record otherwise
/// keeps every byte it counts, unless it was truncated.
fn body_left_out(delivery: &Delivery) -> bool {
    if delivery.body_truncated {
        delivery.body.is_empty() && delivery.body_size > 0
    } else {
        delivery.body.len() as u64 != delivery.body_size
    }
}

#[cfg(test)]
impl History {
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Members of every bucket, hashes kept, and whether a bucket is
    /// empty: what a recount from scratch checks.
    pub(crate) fn group_counts(&self) -> (usize, usize, bool) {
        let members = self.groups.values().map(|b| b.members.len()).sum();
        let empty = self.groups.values().any(|b| b.members.is_empty());
        (members, self.group_hashes.len(), empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    /// Delivery `id` of `group`.
    fn of(id: u64, group: &str) -> Arc<Delivery> {
        let mut d = sample(id, b"{}");
        d.group = group.into();
        Arc::new(d)
    }

    #[test]
    fn groups_sharing_a_hash_are_told_apart_by_their_key() {
        let mut history = History::new(10_000, usize::MAX);
        history.push(of(1, "sha256:a"));
        // A collision, as no real pair of keys can be found: #2 of group b
        // lands in a's bucket.
        let a = history.group_hasher.hash_one("sha256:a");
        let two = of(2, "sha256:b");
        history.push(Arc::clone(&two));
        let b = history.group_hasher.hash_one("sha256:b");
        history.groups.remove(&b);
        history
            .groups
            .get_mut(&a)
            .unwrap()
            .members
            .push_back(Arc::clone(&two));
        *history.group_hashes.back_mut().unwrap() = a;
        assert!(!history.groups[&a].mixed);
        history.push(of(3, "sha256:a"));
        assert!(
            history.groups[&a].mixed,
            "a newcomer of another group marks it"
        );
        let ids = |history: &History, d: &Delivery| -> Vec<u64> {
            history.group_of(d).iter().map(|d| d.id).collect()
        };
        let one = Arc::clone(&history.deliveries[0]);
        assert_eq!(ids(&history, &one), [1, 3]);
        assert_eq!(
            history.group_of(&two).len(),
            0,
            "b's own hash has no bucket"
        );
        // Evicted, they leave the shared bucket in order.
        history.cap = 1;
        history.push(of(4, "sha256:c"));
        while history.pop_over_limits().is_some() {}
        assert!(!history.groups.contains_key(&a));
        assert_eq!(history.groups.len(), 1);
    }

    #[test]
    fn a_late_row_goes_in_its_place_in_the_history_and_in_its_group() {
        let mut history = History::new(10_000, usize::MAX);
        history.push(of(1, "sha256:a"));
        history.push(of(4, "sha256:a"));
        history.push(of(5, "sha256:b"));
        let before = history.held_bytes();
        assert!(history.insert(of(3, "sha256:a")));
        assert!(history.insert(of(2, "sha256:b")));
        assert!(!history.insert(of(3, "sha256:a")), "held already");
        let ids: Vec<u64> = history.iter().map(|d| d.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let group = |history: &History, at: usize| -> Vec<u64> {
            let d = Arc::clone(&history.deliveries[at]);
            history.group_of(&d).iter().map(|d| d.id).collect()
        };
        assert_eq!(group(&history, 0), [1, 3, 4], "a's attempts in id order");
        assert_eq!(group(&history, 1), [2, 5], "b's");
        assert!(history.held_bytes() > before, "the late rows are counted");
        // Let go in order, the late ones among them.
        history.cap = 2;
        while history.pop_over_limits().is_some() {}
        let ids: Vec<u64> = history.iter().map(|d| d.id).collect();
        assert_eq!(ids, [4, 5]);
        assert_eq!(group(&history, 0), [4]);
        assert!(
            !history.insert(of(2, "sha256:b")),
            "older than what was let go"
        );
    }
}
