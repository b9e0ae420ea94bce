//! One connection to the shared store's database, driven on its own task,
//! over TLS (rustls, the web's roots and `--cacert`, as every other client
//! here) when the target's `sslmode` asks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Connection, Notification};

use super::Target;
use super::target::SslMode;
use crate::http::{CaError, Trust};

/// How long a connection (TCP, TLS and authentication) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a connection's notifications go. Anyone who may `NOTIFY` on the
/// database can send them as fast as the network carries them, so the
/// queue is bounded: one that finds it full is dropped, and `dropped` says
/// so, for the reader to make good what it may have missed.
pub(crate) struct Notes {
    pub(crate) queue: mpsc::Sender<Notification>,
    pub(crate) dropped: Arc<AtomicBool>,
}

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
    /// The `--cacert` file for `sslmode=verify-full` cannot be used.
    #[error(transparent)]
    Cacert(#[from] CaError),
}

impl PgError {
    pub(crate) fn query(target: &Target, err: &tokio_postgres::Error) -> PgError {
        PgError::Query {
            target: target.shown.clone(),
            reason: describe(target, err),
        }
    }
}

/// A driver error in one line: the server's own message when it sent one
/// (escaped, and without the password: a server may quote what it was
/// sent, and one that asked for the password in clear text has it).
pub(crate) fn describe(target: &Target, err: &tokio_postgres::Error) -> String {
    let text = match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => crate::errors::chain::chain(err),
    };
    crate::display::escape_line(&target.without_password(text)).into_owned()
}

/// Connect to `target`, with the connection driven on a task of its own
/// (which ends when the client is dropped). Notifications (`LISTEN`) go to
/// `notifications` when given; the channel closes when the connection does.
pub(crate) async fn connect(
    target: &Target,
    notifications: Option<Notes>,
) -> Result<Client, PgError> {
    let trust = match target.ssl {
        SslMode::Disable => {
            let connecting = target.config.connect(tokio_postgres::NoTls);
            return drive(target, connecting, notifications).await;
        }
        // libpq's `require`: encrypted, whoever's certificate it is.
        SslMode::Require => Trust::load(None, true)?,
        SslMode::VerifyFull => Trust::load(target.cacert.as_deref(), false)?,
    };
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(trust.rustls_config().clone());
    drive(target, target.config.connect(tls), notifications).await
}

/// Wait for `connecting` (within [`CONNECT_TIMEOUT`]), then drive the
/// connection on a task of its own.
async fn drive<S, T>(
    target: &Target,
    connecting: impl Future<Output = Result<(Client, Connection<S, T>), tokio_postgres::Error>>,
    notifications: Option<Notes>,
) -> Result<Client, PgError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |reason: String| PgError::Connect {
        target: target.shown.clone(),
        reason,
    };
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| failed(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|err| failed(connect_problem(target, &err)))?;
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let (AsyncMessage::Notification(note), Some(notes)) = (message, &notifications) {
                // Never waited for: the reader's queries need this task.
                if notes.queue.try_send(note).is_err() {
                    notes.dropped.store(true, Ordering::Relaxed);
                }
            }
        }
    });
    Ok(client)
}

/// Why a connection failed, in one line: a TLS problem as the other
/// clients tell it (with what to do about it, here where `--insecure` is
/// `sslmode=require`), else the driver's words.
fn connect_problem(target: &Target, err: &tokio_postgres::Error) -> String {
    match crate::http::tls_problem(err) {
        Some(tls) => crate::display::escape_line(
            &tls.replace("--insecure", "sslmode=require (encrypted, unchecked)"),
        )
        .into_owned(),
        None => describe(target, err),
    }
}
