//! The history `dashboard` opens with: the shared store's latest records
//! (every listener's), within the dashboard's record cap and byte budget,
//! oldest first, read by the store's own reader.

use std::sync::Arc;

use anyhow::Context as _;

use crate::delivery::Delivery;
use crate::store::{self, Location, TailLimits};
use crate::tui::app::HISTORY_BYTES;

/// What the history holds: the records, oldest first, and how many rows
/// among them were not records (passed over).
#[derive(Debug, Default)]
pub(super) struct History {
    pub(super) records: Vec<Arc<Delivery>>,
    pub(super) unparsable: usize,
}

/// At most `records` of the newest records at `location`, within the
/// history's byte budget.
pub(super) async fn read(location: &Location, records: usize) -> anyhow::Result<History> {
    if records == 0 {
        return Ok(History::default());
    }
    let location = location.clone();
    let limits = TailLimits {
        records,
        bytes: HISTORY_BYTES,
        below_id: u64::MAX,
        listener: None,
    };
    // The reader is sync, on a runtime of its own: off this one.
    let tail = tokio::task::spawn_blocking(move || store::read_tail(&location, limits, |_| {}))
        .await
        .context("the read of the store's history stopped")?
        .map_err(crate::errors::wrap::Whole::new)?;
    Ok(History {
        records: tail.records.into_iter().map(Arc::new).collect(),
        unparsable: tail.unparsable,
    })
}
