//! What `listen` reads back from its store before it serves: the group
//! and attempt of the latest records, so that attempt numbers go on from
//! where the last run left them instead of starting again at 1.

use crate::store;

/// Records read back at start to continue attempt numbering.
const SEED_RECORDS: usize = 1000;
/// At most this much of the store is read back to seed attempt numbers.
const SEED_BYTES: u64 = 32 * 1024 * 1024;

/// The group and attempt of the last [`SEED_RECORDS`] records (or of the
/// last [`SEED_BYTES`] of them, if less), read without keeping their
/// bodies, so starting on a store of any size (and bodies of any size)
/// takes little memory and time. A store that cannot be read seeds
/// nothing: attempts then count from 1, as for a group not seeded.
pub(crate) fn attempts(at: &store::Location) -> Vec<(String, u32)> {
    #[derive(serde::Deserialize)]
    struct Attempt {
        group: String,
        attempt: u32,
    }
    // A mirror's late answer changes neither.
    impl store::Amendable for Attempt {}
    let mut earlier = Vec::new();
    let _ = store::each_backward_within(at, SEED_BYTES, |entry: store::Entry<Attempt>| {
        if let store::Entry::Record(record) = entry {
            earlier.push((record.group, record.attempt));
        }
        if earlier.len() >= SEED_RECORDS {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    });
    earlier
}
