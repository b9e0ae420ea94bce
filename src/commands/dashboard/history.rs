//! The history `dashboard` opens with: the shared store's latest rows,
//! within the dashboard's record cap and byte budget, oldest first.

use std::sync::Arc;

use futures_util::TryStreamExt as _;

use crate::delivery::{Delivery, memory};
use crate::postgres::{self, PgError, live};
use crate::store::{Location, MAX_LINE};
use crate::tui::app::HISTORY_BYTES;

/// The newest rows, newest first; a record longer than a store line is
/// not fetched.
const NEWEST: &str = "SELECT id, listener, \
     CASE WHEN octet_length(record) <= $2::bigint THEN record END \
     FROM danube_hooks.deliveries ORDER BY id DESC LIMIT $1";

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
    let Location::Postgres(target) = location else {
        return Ok(History::default());
    };
    if records == 0 {
        return Ok(History::default());
    }
    let fail = |err: tokio_postgres::Error| PgError::query(target, &err);
    let client = postgres::connect(target, None).await?;
    let limit = i64::try_from(records).unwrap_or(i64::MAX);
    let max_line = i64::try_from(MAX_LINE).unwrap_or(i64::MAX);
    let rows = client
        .query_raw(
            NEWEST,
            [
                &limit as &(dyn tokio_postgres::types::ToSql + Sync),
                &max_line,
            ],
        )
        .await
        .map_err(fail)?;
    let mut rows = std::pin::pin!(rows);
    let mut kept = Vec::new();
    let mut unparsable = 0;
    let mut held = 0usize;
    while let Some(row) = rows.try_next().await.map_err(fail)? {
        let Ok(id) = u64::try_from(row.get::<_, i64>(0)) else {
            continue;
        };
        let Some(record) = live::record_of(id, row.get(1), row.get(2)) else {
            unparsable += 1;
            continue;
        };
        held += memory::estimate(&record);
        if held > HISTORY_BYTES {
            break;
        }
        kept.push(Arc::new(record));
    }
    kept.reverse();
    Ok(History {
        records: kept,
        unparsable,
    })
}
