//! Reading the shared store's rows, for the store's readers (`log`, `show`,
//! `export`, `replay`, the dashboard's history and resync).
//!
//! Those readers are plain sync functions, called from sync code and from
//! blocking threads alike, inside a runtime or not. So the queries run on a
//! private current-thread runtime on a scoped thread of their own, and the
//! rows come back over a bounded channel in small batches: memory stays
//! bounded by a few batches whatever the table's size, and a reader that
//! stops early stops the queries (the channel closes under them).
//!
//! Rows are paged by id, [`PAGE`] at a time, each page a new query that
//! starts past the last id seen: no cursor or transaction is held open, and
//! a row committed meanwhile with a higher id is read as the file's reader
//! reads a line appended meanwhile.

use std::ops::ControlFlow;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use super::{PgError, Target, connect, schema};

/// Rows asked for by one query.
const PAGE: i64 = 500;
/// A batch handed to the reader goes once it holds this many bytes of
/// records (or a page ends): few hand-overs, and little held.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches waiting for the reader at most.
const BATCHES_AHEAD: usize = 2;
/// How long the server may take to send the next row.
const ROW_TIMEOUT: Duration = Duration::from_secs(30);

/// Which way a scan goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// Which rows to read, and in which order.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub(crate) order: Order,
    /// Only rows with an id above this one.
    pub(crate) after: Option<u64>,
    /// Only rows with an id below this one.
    pub(crate) below: Option<u64>,
    /// Only this listener's rows (`None`: every listener's).
    pub(crate) listener: Option<String>,
    /// A record longer than this is not fetched: it comes as
    /// `Err(its length)`, as a file's line too long to be a record does.
    pub(crate) max_record: u64,
}

impl Scan {
    pub(crate) fn new(order: Order, max_record: u64) -> Scan {
        Scan {
            order,
            after: None,
            below: None,
            listener: None,
            max_record,
        }
    }
}

/// One row: its id, and its record (the JSON line the file store writes),
/// or its length when longer than the scan's `max_record`.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) id: u64,
    pub(crate) record: Result<String, u64>,
}

/// Call `each` for every row `scan` takes, in its order, until it breaks
/// with a value. The schema must be there, at a version this binary reads
/// ([`schema::check`]).
pub(crate) fn each_row<R>(
    target: &Target,
    scan: &Scan,
    mut each: impl FnMut(Row) -> ControlFlow<R>,
) -> Result<Option<R>, PgError> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<Row>>(BATCHES_AHEAD);
        let fetcher = scope.spawn(move || fetch_on_own_runtime(target, scan, &tx));
        let mut stopped = None;
        'batches: for batch in &rx {
            for row in batch {
                if let ControlFlow::Break(value) = each(row) {
                    stopped = Some(value);
                    break 'batches;
                }
            }
        }
        // The fetcher's next send fails, and it ends.
        drop(rx);
        let outcome = fetcher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match stopped {
            Some(value) => Ok(Some(value)),
            None => outcome.map(|()| None),
        }
    })
}

fn fetch_on_own_runtime(
    target: &Target,
    scan: &Scan,
    tx: &SyncSender<Vec<Row>>,
) -> Result<(), PgError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| PgError::Connect {
            target: target.shown.clone(),
            reason: format!("cannot start the reader's runtime: {err}"),
        })?;
    runtime.block_on(async {
        let client = connect(target, None).await?;
        schema::check(&client, target).await?;
        fetch(&client, target, scan, tx).await
    })
}

/// Page through the rows, sending them in batches; a closed channel (the
/// reader stopped) ends it with `Ok`.
async fn fetch(
    client: &Client,
    target: &Target,
    scan: &Scan,
    tx: &SyncSender<Vec<Row>>,
) -> Result<(), PgError> {
    let fail = |err: tokio_postgres::Error| PgError::query(target, &err);
    let order = match scan.order {
        Order::OldestFirst => "id",
        Order::NewestFirst => "id DESC",
    };
    let sql = format!(
        "SELECT id::bigint, octet_length(record::text)::bigint, \
         CASE WHEN octet_length(record::text) <= $4 THEN record::text END \
         FROM {table} WHERE id > $1 AND id < $2 AND ($3::text IS NULL OR listener = $3) \
         ORDER BY {order} LIMIT $5",
        table = schema::DELIVERIES
    );
    let statement = client
        .prepare_typed(
            &sql,
            &[Type::INT8, Type::INT8, Type::TEXT, Type::INT8, Type::INT8],
        )
        .await
        .map_err(fail)?;
    let as_sql_id = |id: u64| i64::try_from(id).unwrap_or(i64::MAX);
    let mut after = scan.after.map_or(i64::MIN, as_sql_id);
    let mut below = scan.below.map_or(i64::MAX, as_sql_id);
    let max_record = as_sql_id(scan.max_record);
    let mut batch = Vec::new();
    let mut batch_bytes = 0usize;
    loop {
        let params: [&(dyn ToSql + Sync); 5] = [&after, &below, &scan.listener, &max_record, &PAGE];
        let rows = within(target, client.query_raw(&statement, params))
            .await?
            .map_err(fail)?;
        let mut rows = std::pin::pin!(rows);
        let mut in_page = 0;
        while let Some(row) = within(target, rows.next()).await? {
            let row = row.map_err(fail)?;
            let id: i64 = row.try_get(0).map_err(fail)?;
            let len: i64 = row.try_get(1).map_err(fail)?;
            let record: Option<String> = row.try_get(2).map_err(fail)?;
            in_page += 1;
            match scan.order {
                Order::OldestFirst => after = id,
                Order::NewestFirst => below = id,
            }
            batch_bytes += record.as_ref().map_or(0, String::len);
            batch.push(Row {
                id: id.cast_unsigned(),
                record: record.ok_or(len.cast_unsigned()),
            });
            if batch_bytes >= BATCH_BYTES {
                if tx.send(std::mem::take(&mut batch)).is_err() {
                    return Ok(());
                }
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() && tx.send(std::mem::take(&mut batch)).is_err() {
            return Ok(());
        }
        batch_bytes = 0;
        if in_page < PAGE {
            return Ok(());
        }
    }
}

/// `work`, or a query error once the server has not answered in
/// [`ROW_TIMEOUT`].
async fn within<T>(target: &Target, work: impl Future<Output = T>) -> Result<T, PgError> {
    tokio::time::timeout(ROW_TIMEOUT, work)
        .await
        .map_err(|_| PgError::Query {
            target: target.shown.clone(),
            reason: format!("no answer within {} s", ROW_TIMEOUT.as_secs()),
        })
}
