//! A mirror's answer that came after its row was committed
//! (`--mirror-to`, `store::amend`): the row's record is read, the answer
//! folded in, and the row updated, on a connection of its own, so the
//! listener's group commit never waits for it. The update is announced on
//! the deliveries' channel (`mirror <id> <index>`), so an open dashboard
//! shows the answer too.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{PgError, Target, connect, schema};
use crate::delivery::Delivery;
use crate::store::{Amendable as _, Broadcaster, LateMirror};

/// Answers waiting to be written at most; beyond, one is not kept (and
/// that is said): the dashboard has shown it anyway.
const QUEUE: usize = 1024;
/// How long one update may take.
const UPDATE_WITHIN: Duration = Duration::from_secs(5);

/// The handle the store keeps; the task ends when it is dropped.
pub(crate) struct LateAnswers {
    queue: mpsc::Sender<LateMirror>,
}

impl LateAnswers {
    pub(crate) fn start(target: Arc<Target>, broadcast: Arc<Broadcaster>) -> LateAnswers {
        let (queue, answers) = mpsc::channel(QUEUE);
        tokio::spawn(write_each(answers, target, broadcast));
        LateAnswers { queue }
    }

    /// Keep `late` in its row. Never waits.
    pub(crate) fn keep(&self, late: LateMirror, broadcast: &Broadcaster) {
        if let Err(err) = self.queue.try_send(late) {
            let late = match err {
                mpsc::error::TrySendError::Full(late) | mpsc::error::TrySendError::Closed(late) => {
                    late
                }
            };
            broadcast.warn(format!(
                "mirror {} answered delivery {} late, with {QUEUE} such answers still to \
                 write: this one is not kept in the shared store",
                late.index + 1,
                late.mirror_of
            ));
        }
    }
}

async fn write_each(
    mut answers: mpsc::Receiver<LateMirror>,
    target: Arc<Target>,
    broadcast: Arc<Broadcaster>,
) {
    let mut client = None;
    while let Some(late) = answers.recv().await {
        if client
            .as_ref()
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            client = connect(&target, None).await.ok();
        }
        let outcome = match &client {
            Some(client) => tokio::time::timeout(UPDATE_WITHIN, update(client, &target, &late))
                .await
                .unwrap_or_else(|_| {
                    Err(PgError::Query {
                        target: target.shown.clone(),
                        reason: format!("no answer within {} s", UPDATE_WITHIN.as_secs()),
                    })
                }),
            None => Err(PgError::Connect {
                target: target.shown.clone(),
                reason: "no connection".into(),
            }),
        };
        if let Err(err) = outcome {
            client = None;
            broadcast.warn(format!(
                "could not keep mirror {}'s late answer to delivery {} in the shared store: {err}",
                late.index + 1,
                late.mirror_of
            ));
        }
    }
}

/// Fold `late` into its row's record, in one transaction so a second
/// answer to the same row (another mirror) is not lost between the read
/// and the write.
async fn update(
    client: &tokio_postgres::Client,
    target: &Target,
    late: &LateMirror,
) -> Result<(), PgError> {
    let fail = |err: tokio_postgres::Error| PgError::query(target, &err);
    let id = i64::try_from(late.mirror_of).unwrap_or(i64::MAX);
    let select = format!(
        "SELECT record FROM {} WHERE id = $1 FOR UPDATE",
        schema::DELIVERIES
    );
    let write = format!(
        "UPDATE {} SET record = $2 WHERE id = $1",
        schema::DELIVERIES
    );
    client.batch_execute("BEGIN").await.map_err(fail)?;
    let done = async {
        let Some(row) = client.query_opt(&select, &[&id]).await.map_err(fail)? else {
            return Ok(());
        };
        let text: String = row.try_get(0).map_err(fail)?;
        let Ok(mut record) = serde_json::from_str::<Delivery>(&text) else {
            return Ok(());
        };
        if record.take_late_mirror(late) {
            client
                .execute(&write, &[&id, &record.to_json_line()])
                .await
                .map_err(fail)?;
            // Sent with the commit, so open dashboards read the row again.
            let note = schema::mirror_note(late.mirror_of, late.index);
            client
                .execute("SELECT pg_notify($1, $2)", &[&schema::CHANNEL, &note])
                .await
                .map_err(fail)?;
        }
        Ok(())
    }
    .await;
    let end = if done.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await.map_err(fail)?;
    done
}
