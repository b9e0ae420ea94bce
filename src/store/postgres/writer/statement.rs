//! One batch's statement: prepared once a connection, run once a batch,
//! and what its outcome means for each row of the batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

use super::super::{connect::describe, schema};
use super::{COMMIT_WITHIN, Row, State};

/// The least time a batch's statement is given: a row with less left
/// than this is refused before it is sent, rather than sent to be cut off
/// (which costs the connection).
const LEAST_FOR_STATEMENT: Duration = Duration::from_millis(250);

/// A connection, with the batch statement prepared on it.
pub(super) struct Connection {
    pub(super) client: Client,
    insert: Statement,
}

/// The id the sequence gives next, as it stands now.
pub(super) async fn next_id(client: &Client) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END \
             FROM danube_hooks.delivery_id",
            &[],
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(1))
}

/// The one statement a batch is: ids from the sequence, in the rows' order
/// (the CTE is materialized, so `nextval` runs once a row); each row's
/// record is its line, `{"id":N` then the rest the listener drafted; the
/// batch announced on the channel; the ids returned in the rows' order.
/// One statement is one implicit transaction: the NOTIFY goes out with the
/// commit of the rows it names, and not without it.
fn insert_sql() -> String {
    format!(
        "WITH batch AS MATERIALIZED (
             SELECT nextval('{sequence}') AS id, r.*
             FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::int4[], $5::int4[],
                         $6::text[])
                  WITH ORDINALITY AS r(received_at, event, verdict, status, attempt, rest, n)
         ), inserted AS (
             INSERT INTO {table} (id, received_at, listener, event, verdict, status, attempt,
                                  record)
             SELECT id, received_at, $7, event, verdict, status, attempt,
                    {record_start} || id || rest
             FROM batch
         )
         SELECT array_agg(id ORDER BY n), pg_notify('{channel}', min(id) || ' ' || max(id))
         FROM batch",
        sequence = schema::ID_SEQUENCE,
        table = schema::DELIVERIES,
        record_start = RECORD_START,
        channel = schema::CHANNEL,
    )
}

/// How a record's line starts, as an SQL literal: what `delivery::line`
/// writes before the id.
const RECORD_START: &str = "'{\"id\":'";

pub(super) async fn prepare(client: Client) -> Result<Connection, tokio_postgres::Error> {
    let insert = client
        .prepare_typed(
            &insert_sql(),
            &[
                Type::TIMESTAMPTZ_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::INT4_ARRAY,
                Type::INT4_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT,
            ],
        )
        .await?;
    Ok(Connection { client, insert })
}

/// Commit `batch` on `live`: each row's append let go (`Ok` and announced
/// in id order, or refused with the reason). The connection, unless it
/// was lost or left in doubt.
pub(super) async fn commit(state: &State, live: Connection, batch: Vec<Row>) -> Option<Connection> {
    let now = Instant::now();
    let (late, batch): (Vec<Row>, Vec<Row>) = batch
        .into_iter()
        .partition(|row| now.duration_since(row.arrived) + LEAST_FOR_STATEMENT >= COMMIT_WITHIN);
    if !late.is_empty() {
        let reason = late_reason(state);
        state.warn_now_and_then(format!(
            "{} deliveries waited {} s for {} and were answered 503 so their senders retry",
            late.len(),
            COMMIT_WITHIN.as_secs(),
            state.target
        ));
        for row in late {
            row.fail(&reason);
        }
    }
    let Some(oldest) = batch.iter().map(|row| row.arrived).min() else {
        return Some(live);
    };
    let left = COMMIT_WITHIN.saturating_sub(oldest.elapsed());
    let ids = match tokio::time::timeout(left, insert(&live, &batch)).await {
        Ok(Ok(ids)) if ids.len() == batch.len() => ids,
        Ok(Ok(_)) => {
            let reason: Arc<str> = Arc::from("the database returned the wrong number of ids");
            for row in batch {
                row.fail(&reason);
            }
            return Some(live);
        }
        Ok(Err(err)) => {
            let reason = describe(&state.target, &err);
            let lost = err.as_db_error().is_none() || live.client.is_closed();
            fail_batch(state, batch, &reason);
            if lost {
                state.go_down(&reason);
                return None;
            }
            return Some(live);
        }
        Err(_) => {
            let reason = late_reason(state);
            fail_batch(state, batch, &reason);
            // The statement may still be running there: a new connection
            // is the only one known to be idle.
            state.go_down(&reason);
            return None;
        }
    };
    let mut committed: Vec<(u64, Row)> = ids
        .into_iter()
        .map(|id| u64::try_from(id).unwrap_or_default())
        .zip(batch)
        .collect();
    committed.sort_unstable_by_key(|(id, _)| *id);
    for (id, row) in committed {
        row.committed(id, &state.broadcast);
    }
    Some(live)
}

fn late_reason(state: &State) -> Arc<str> {
    format!(
        "not committed to {} within {} s",
        state.target,
        COMMIT_WITHIN.as_secs()
    )
    .into()
}

fn fail_batch(state: &State, batch: Vec<Row>, reason: &str) {
    state.warn_now_and_then(format!(
        "could not store {} deliveries in {}: {reason}; answered 503 so their senders retry",
        batch.len(),
        state.target
    ));
    let reason: Arc<str> = Arc::from(reason);
    for row in batch {
        row.fail(&reason);
    }
}

/// The batch's one statement; the ids in the rows' order.
async fn insert(live: &Connection, batch: &[Row]) -> Result<Vec<i64>, tokio_postgres::Error> {
    let mut received: Vec<DateTime<Utc>> = Vec::with_capacity(batch.len());
    let mut events: Vec<Option<&str>> = Vec::with_capacity(batch.len());
    let mut verdicts: Vec<&str> = Vec::with_capacity(batch.len());
    let mut statuses: Vec<Option<i32>> = Vec::with_capacity(batch.len());
    let mut attempts: Vec<i32> = Vec::with_capacity(batch.len());
    let mut rests: Vec<&str> = Vec::with_capacity(batch.len());
    let mut listener = "";
    for row in batch {
        let Some(delivery) = &row.delivery else {
            continue;
        };
        received.push(delivery.received_at);
        events.push(delivery.event.as_deref());
        verdicts.push(delivery.signature.verdict.as_str());
        statuses.push(delivery.response.status.map(i32::from));
        attempts.push(i32::try_from(delivery.attempt).unwrap_or(i32::MAX));
        rests.push(&row.text);
        listener = delivery.listener.as_deref().unwrap_or_default();
    }
    let row = live
        .client
        .query_one(
            &live.insert,
            &[
                &received, &events, &verdicts, &statuses, &attempts, &rests, &listener,
            ],
        )
        .await?;
    row.try_get::<_, Vec<i64>>(0)
}
