//! What the intake remembers of earlier deliveries: how many attempts each
//! group has had ([`Attempts`]), and the first arrival of each signature
//! within the tolerance window, to flag a replay ([`SeenSignatures`]).
//!
//! Both are looked up on every delivery and hold up to 100,000 entries, so
//! they are keyed by a 64-bit hash of the key ([`KeyHasher`]), made once
//! per key with a key of this process's own (`SipHash`, as `std`'s maps
//! use, so a stranger cannot choose keys that collide), and the maps
//! themselves only pass that hash through. Before, each map hashed its
//! key anew on every lookup, insert and eviction (five times per
//! delivery for the signatures), kept a heap string per group, and a
//! full map of 100,000 was three times the memory to walk: together 7%
//! of the listener's CPU at saturation (docs/performance.md).
//! Two keys that share a hash would be taken for one: with a random
//! 64-bit key that is about one chance in 10^14 for a full map, and no
//! sender can aim for it.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use crate::signature::ParsedHeader;

/// Entries each memory keeps at most; past this, the oldest go.
pub(crate) const MAX_REMEMBERED: usize = 100_000;

/// Hashes keys with a random key of this process's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyHasher(RandomState);

impl KeyHasher {
    fn group(&self, group: &str) -> u64 {
        self.0.hash_one(group)
    }

    fn signature(&self, t: i64, digest: &[u8; 32]) -> u64 {
        self.0.hash_one((t, digest))
    }
}

/// A map whose keys are [`KeyHasher`] hashes already: it uses them as
/// they are.
type ByHash<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach this map; any other would still hash.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// Attempts seen per group.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    hasher: KeyHasher,
    counts: ByHash<u32>,
}

impl Attempts {
    /// Room for [`MAX_REMEMBERED`] groups from the start: a map that grows
    /// while deliveries arrive rehashes every key at each doubling, on a
    /// delivery's path (1% of the listener's CPU in a 10 s flood). The
    /// memory is only reserved: pages are touched as groups arrive.
    pub(crate) fn with_room() -> Self {
        Self {
            hasher: KeyHasher::default(),
            counts: ByHash::with_capacity_and_hasher(MAX_REMEMBERED, BuildHasherDefault::default()),
        }
    }

    /// Count one more attempt of `group`; returns its number, from 1.
    pub(crate) fn next(&mut self, group: &str) -> u32 {
        let key = self.hasher.group(group);
        if let Some(count) = self.counts.get_mut(&key) {
            *count = count.saturating_add(1);
            return *count;
        }
        if self.counts.len() >= MAX_REMEMBERED {
            // Forgetting old groups only restarts their count at 1; the
            // store still has every record.
            self.counts.clear();
        }
        self.counts.insert(key, 1);
        1
    }

    /// Continue `group`'s numbering from `attempt` (a restart mid-retry).
    pub(crate) fn seed(&mut self, group: &str, attempt: u32) {
        let count = self.counts.entry(self.hasher.group(group)).or_insert(0);
        *count = (*count).max(attempt);
    }
}

/// `t` and every digest of a header that parsed, as the keys they are
/// looked up and remembered by. Each `(t, digest)` pair is looked up, not
/// only the first: a replay can reorder the digests or put junk in front
/// of the real one (`t=T,sha256=<junk>,sha256=<real>`), and it is still
/// valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayKeys {
    /// The first digest's pair, held apart so that a header with one
    /// digest (Danube's, outside a secret's rotation) needs no allocation.
    first: Option<Key>,
    /// The pairs of the others, in the header's order.
    more: Vec<Key>,
}

/// One digest's pair, hashed once whether it is looked up only or also
/// remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    hash: u64,
    remembered: bool,
}

impl ReplayKeys {
    /// Pairs remembered per delivery. Every pair is looked up, but only
    /// this many are remembered, so one header padded with a thousand
    /// digests cannot push a thousand real signatures out of the memory.
    /// A first arrival comes from the real sender, which sends one digest
    /// per secret (two during rotation).
    pub(crate) const REMEMBERED: usize = 8;

    /// The keys of `parsed`, remembering those of its digests that
    /// `remember` says verified.
    pub(crate) fn of(
        hasher: &KeyHasher,
        parsed: &ParsedHeader,
        remember: impl Fn(&[u8; 32]) -> bool,
    ) -> Self {
        let mut keys = parsed.digests.iter().map(|digest| Key {
            hash: hasher.signature(parsed.t, digest),
            remembered: remember(digest),
        });
        Self {
            first: keys.next(),
            more: keys.collect(),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.first.iter().chain(&self.more)
    }

    /// Every pair of the header.
    fn looked_up(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys().map(|key| key.hash)
    }

    /// The pairs a first arrival is remembered by: those that verified,
    /// at most [`Self::REMEMBERED`].
    fn remembered(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys()
            .filter(|key| key.remembered)
            .map(|key| key.hash)
            .take(Self::REMEMBERED)
    }
}

/// Signatures seen within the tolerance window: the newest
/// [`MAX_REMEMBERED`].
#[derive(Debug, Default)]
pub(crate) struct SeenSignatures {
    /// The id of the first delivery that carried each pair, and when.
    first: ByHash<(u64, Instant)>,
    /// The keys of `first` in the order they arrived, with when, so the
    /// oldest are forgotten first, one at a time, without a lookup.
    arrival_order: VecDeque<(u64, Instant)>,
}

impl SeenSignatures {
    /// Room for [`MAX_REMEMBERED`] pairs from the start, as
    /// [`Attempts::with_room`].
    pub(crate) fn with_room() -> Self {
        Self {
            first: ByHash::with_capacity_and_hasher(MAX_REMEMBERED, BuildHasherDefault::default()),
            arrival_order: VecDeque::with_capacity(MAX_REMEMBERED),
        }
    }

    /// The earliest delivery within the window that carried any of
    /// `keys`' pairs.
    pub(crate) fn first_arrival_of_any(&self, keys: &ReplayKeys, tolerance_s: u64) -> Option<u64> {
        let window = Duration::from_secs(tolerance_s);
        let now = Instant::now();
        keys.looked_up()
            .filter_map(|key| self.first.get(&key))
            .filter(|(_, at)| now.saturating_duration_since(*at) <= window)
            .map(|(id, _)| *id)
            .min()
    }

    /// Remember delivery `id` as the first arrival of `keys`' remembered
    /// pairs; a pair seen before keeps its first arrival's id and place.
    pub(crate) fn remember_all(&mut self, keys: &ReplayKeys, id: u64, tolerance_s: u64) {
        let window = Duration::from_secs(tolerance_s);
        let now = Instant::now();
        for key in keys.remembered() {
            self.remember(key, id, now, window);
        }
    }

    fn remember(&mut self, key: u64, id: u64, now: Instant, window: Duration) {
        if self.first.contains_key(&key) {
            return;
        }
        // Forget what has left the window, and the oldest while full. (Once,
        // a full map was cleared whole: a flood of 100,000 deliveries made
        // replay detection forget every signature.)
        while let Some(&(oldest, at)) = self.arrival_order.front() {
            let expired = now.saturating_duration_since(at) > window;
            if !expired && self.first.len() < MAX_REMEMBERED {
                break;
            }
            self.arrival_order.pop_front();
            self.first.remove(&oldest);
        }
        self.first.insert(key, (id, now));
        self.arrival_order.push_back((key, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u64) -> [u8; 32] {
        let mut digest = [0; 32];
        digest[..8].copy_from_slice(&n.to_le_bytes());
        digest
    }

    fn keys(hasher: &KeyHasher, t: i64, digests: &[u64]) -> ReplayKeys {
        let digests: Vec<[u8; 32]> = digests.iter().map(|&n| digest(n)).collect();
        let parsed = ParsedHeader {
            t,
            t_text: t.to_string(),
            digests,
            quirks: Vec::new(),
        };
        ReplayKeys::of(hasher, &parsed, |_| true)
    }

    #[test]
    fn a_full_replay_memory_forgets_only_its_oldest() {
        let hasher = KeyHasher::default();
        let mut seen = SeenSignatures::default();
        let max = MAX_REMEMBERED as u64;
        for n in 0..=max {
            seen.remember_all(&keys(&hasher, 1, &[n]), n + 1, 300);
        }
        assert_eq!(seen.first.len(), MAX_REMEMBERED);
        assert_eq!(seen.arrival_order.len(), MAX_REMEMBERED);
        let first = |n| seen.first_arrival_of_any(&keys(&hasher, 1, &[n]), 300);
        assert_eq!(first(0), None, "the oldest goes");
        assert_eq!(first(1), Some(2));
        assert_eq!(first(max), Some(max + 1));
        // A second arrival keeps the first one's id and place.
        seen.remember_all(&keys(&hasher, 1, &[1]), 999, 300);
        assert_eq!(
            seen.first_arrival_of_any(&keys(&hasher, 1, &[1]), 300),
            Some(2)
        );
        assert_eq!(seen.arrival_order.len(), MAX_REMEMBERED);
    }

    #[test]
    fn a_replay_is_found_through_any_of_its_digests() {
        let hasher = KeyHasher::default();
        let keys = |t, digests: &[u64]| keys(&hasher, t, digests);
        let mut seen = SeenSignatures::default();
        seen.remember_all(&keys(1, &[7]), 1, 300);
        for (replay, why) in [
            (keys(1, &[7]), "the same header"),
            (keys(1, &[99, 7]), "junk in front"),
            (keys(1, &[7, 99]), "junk behind"),
            (keys(1, &[98, 99, 7, 97]), "padded both sides"),
        ] {
            assert_eq!(seen.first_arrival_of_any(&replay, 300), Some(1), "{why}");
        }
        assert_eq!(
            seen.first_arrival_of_any(&keys(2, &[7]), 300),
            None,
            "another t"
        );
        assert_eq!(
            seen.first_arrival_of_any(&keys(1, &[99]), 300),
            None,
            "junk only"
        );

        // Padded first arrival, plain replay: the real digest was remembered.
        seen.remember_all(&keys(5, &[50, 51]), 2, 300);
        assert_eq!(seen.first_arrival_of_any(&keys(5, &[51]), 300), Some(2));
        // The earliest delivery is named when several match.
        seen.remember_all(&keys(5, &[52]), 3, 300);
        assert_eq!(seen.first_arrival_of_any(&keys(5, &[52, 50]), 300), Some(2));
    }

    #[test]
    fn a_header_padded_with_digests_remembers_only_a_few() {
        let hasher = KeyHasher::default();
        let mut seen = SeenSignatures::default();
        let padded: Vec<u64> = (0..1000).collect();
        seen.remember_all(&keys(&hasher, 1, &padded), 1, 300);
        assert_eq!(seen.first.len(), ReplayKeys::REMEMBERED);
    }

    #[test]
    fn signatures_out_of_the_window_are_forgotten() {
        let hasher = KeyHasher::default();
        let mut seen = SeenSignatures::default();
        seen.remember_all(&keys(&hasher, 1, &[1]), 1, 0);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            seen.first_arrival_of_any(&keys(&hasher, 1, &[1]), 0),
            None,
            "out of the window, though still held"
        );
        seen.remember_all(&keys(&hasher, 1, &[2]), 2, 0);
        assert_eq!(seen.first.len(), 1);
        assert_eq!(seen.arrival_order.len(), 1);
        assert_eq!(
            seen.first_arrival_of_any(&keys(&hasher, 1, &[2]), 300),
            Some(2)
        );
    }

    #[test]
    fn attempts_count_per_group_and_continue_from_a_seed() {
        let mut attempts = Attempts::default();
        assert_eq!(attempts.next("sha256:aa"), 1);
        assert_eq!(attempts.next("sha256:aa"), 2);
        assert_eq!(attempts.next("sha256:bb"), 1);
        attempts.seed("sha256:cc", 4);
        attempts.seed("sha256:cc", 2);
        assert_eq!(attempts.next("sha256:cc"), 5, "the highest seed counts");
        attempts.seed("sha256:aa", 1);
        assert_eq!(
            attempts.next("sha256:aa"),
            3,
            "a lower seed changes nothing"
        );
    }

    #[test]
    fn a_full_attempt_memory_starts_over() {
        let mut attempts = Attempts::default();
        for n in 0..MAX_REMEMBERED {
            assert_eq!(attempts.next(&format!("g{n}")), 1);
        }
        assert_eq!(attempts.next("g0"), 2);
        assert_eq!(attempts.next("new"), 1);
        assert_eq!(attempts.next("g0"), 1, "forgotten when the memory filled");
    }

    #[test]
    fn the_same_key_hashes_alike_and_different_keys_apart() {
        let hasher = KeyHasher::default();
        assert_eq!(hasher.group("a"), hasher.group("a"));
        assert_ne!(hasher.group("a"), hasher.group("b"));
        assert_ne!(
            hasher.signature(1, &digest(1)),
            hasher.signature(2, &digest(1))
        );
        assert_ne!(
            hasher.signature(1, &digest(1)),
            hasher.signature(1, &digest(2))
        );
        assert_ne!(
            KeyHasher::default().group("a"),
            KeyHasher::default().group("a"),
            "each process (each hasher) has a key of its own"
        );
    }
}
