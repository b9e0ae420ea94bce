//! One connection to the shared store's database, driven on its own task.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Notification};

use super::Target;

/// How long a connection (TCP, TLS and authentication) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("{target}: {reason}")]
    Query { target: String, reason: String },
    #[error(
        "the schema in {target} is version {found}, newer than this danube-hooks knows \
         (version {known}): upgrade danube-hooks, or use another database"
    )]
    NewerSchema {
        target: String,
        found: i32,
        known: i32,
    },
    #[error(
        "there is no delivery store in {target} yet (danube-hooks listen --store with this \
         URL creates it)"
    )]
    NoSchema { target: String },
}

impl PgError {
    pub(crate) fn query(target: &Target, err: &tokio_postgres::Error) -> PgError {
        PgError::Query {
            target: target.shown.clone(),
            reason: describe(err),
        }
    }
}

/// A driver error in one line: the server's own message when it sent one
/// (its text is escaped: it may quote what it was sent).
pub(crate) fn describe(err: &tokio_postgres::Error) -> String {
    let text = match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => crate::errors::chain::chain(err),
    };
    crate::display::escape_line(&text).into_owned()
}

/// Connect to `target`, with the connection driven on a task of its own
/// (which ends when the client is dropped). Notifications (`LISTEN`) go to
/// `notifications` when given; the channel closes when the connection does.
pub(crate) async fn connect(
    target: &Target,
    notifications: Option<mpsc::UnboundedSender<Notification>>,
) -> Result<Client, PgError> {
    let connecting = target.config.connect(tokio_postgres::NoTls);
    let failed = |reason: String| PgError::Connect {
        target: target.shown.clone(),
        reason,
    };
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| failed(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|err| failed(describe(&err)))?;
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let (AsyncMessage::Notification(note), Some(tx)) = (message, &notifications) {
                let _ = tx.send(note);
            }
        }
    });
    Ok(client)
}
