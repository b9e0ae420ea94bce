//! `listen --store postgres://… --store-max-age 7d`: rows older than the
//! age are deleted in the background, never on a delivery's path.
//!
//! A task of its own, on a connection of its own, sweeps once as the
//! listener starts and then every [`EVERY`]: it deletes in chunks of
//! [`CHUNK`] rows, each its own statement (so each a short transaction
//! that holds few locks and little WAL at a time), up to [`MOST_A_SWEEP`]
//! rows a sweep, so a first sweep over a large backlog cannot crowd out
//! the writer. Several listeners on one database each sweep; a row deleted
//! twice is deleted once.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

use super::{Target, connect::describe, schema};
use crate::store::Broadcaster;

/// How often a sweep runs.
pub(crate) const EVERY: Duration = Duration::from_mins(1);
/// Rows deleted by one statement at most.
const CHUNK: i64 = 5_000;
/// Rows one sweep deletes at most; the rest waits for the next.
const MOST_A_SWEEP: u64 = 200_000;

/// Start sweeping rows older than `age` from `target`'s table.
pub(crate) fn start(
    target: Arc<Target>,
    age: TimeDelta,
    broadcast: Arc<Broadcaster>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = None;
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            match sweep(&target, &mut client, age).await {
                Ok(_) => failing = false,
                Err(reason) => {
                    // Said once until a sweep works again: a down server
                    // is told by the writer already.
                    if !failing {
                        broadcast.warn(format!(
                            "--store-max-age: could not delete old rows from {target}: {reason}; \
                             trying again in {} s",
                            EVERY.as_secs()
                        ));
                    }
                    failing = true;
                    client = None;
                }
            }
        }
    })
}

/// One sweep: the rows deleted.
async fn sweep(
    target: &Target,
    client: &mut Option<tokio_postgres::Client>,
    age: TimeDelta,
) -> Result<u64, String> {
    if client
        .as_ref()
        .is_none_or(tokio_postgres::Client::is_closed)
    {
        *client = Some(
            super::connect(target, None)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let Some(client) = client.as_ref() else {
        return Ok(0);
    };
    let statement = format!(
        "DELETE FROM {table} WHERE id IN (
             SELECT id FROM {table} WHERE received_at < now() - $1::bigint * interval '1 second'
             ORDER BY received_at LIMIT $2)",
        table = schema::DELIVERIES
    );
    let seconds = age.num_seconds();
    let mut deleted = 0;
    while deleted < MOST_A_SWEEP {
        let chunk = client
            .execute(&statement, &[&seconds, &CHUNK])
            .await
            .map_err(|err| describe(target, &err))?;
        deleted += chunk;
        if chunk < CHUNK.unsigned_abs() {
            break;
        }
    }
    Ok(deleted)
}
