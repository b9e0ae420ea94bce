//! The writer task: rows gathered into batches, and the batches sent on a
//! small pool of connections.
//!
//! A batch goes as soon as the one before it is done, or at the latest
//! [`BATCH_WAIT`] after its first row arrived, on another connection,
//! while the one before still waits for its commit. A commit is mostly
//! the wait for the server's WAL flush, and PostgreSQL flushes the commits
//! that are waiting together: with [`CONNECTIONS`] batches in flight, the
//! rows gathered while one flushes go without waiting for it.
//!
//! Batches in flight together commit in either order, and each takes its
//! ids from the sequence as it runs, so their ids can interleave: each
//! batch's records are announced in id order, but a later batch's may be
//! announced before an earlier one's (as another listener's rows are on a
//! shared store; readers put them in their place).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::statement::{Connection, commit, prepare};
use super::{Control, Message, Row, State};
use crate::store::postgres::{PgError, Target, connect};

/// Connections the writer keeps, so as many batches in flight at once.
pub(super) const CONNECTIONS: usize = 2;
/// The longest a batch waits for the one before it once its first row has
/// arrived; then it goes on a free connection.
pub(crate) const BATCH_WAIT: Duration = Duration::from_millis(5);
/// Rows in one batch at most.
const BATCH_ROWS: usize = 1024;
/// Rows a listener can have in flight at once: ids up to this far below
/// the last one announced can still be announced after it (farther, when
/// other listeners' rows took ids between them).
pub(crate) const MOST_IN_FLIGHT: u64 = (CONNECTIONS * BATCH_ROWS) as u64;
/// Bytes of record lines in one batch at most (a larger row goes alone).
const BATCH_BYTES: usize = 8 * 1024 * 1024;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(5);
/// How often an idle writer checks that its connections are still there,
/// so the screen hears of a lost server before the next delivery does.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The writer's connections, each with the batch statement prepared:
/// `first` (already open, as `Writer::open` migrated on it) and the rest
/// made here. A server that takes the first but refuses another (its
/// `max_connections` reached) gets a writer on one: batches then go one at
/// a time.
pub(super) async fn connections(
    target: &Arc<Target>,
    first: Option<Client>,
) -> Result<Vec<Connection>, PgError> {
    let first = match first {
        Some(client) => client,
        None => connect(target, None).await?,
    };
    let mut made = vec![
        prepare(first)
            .await
            .map_err(|err| PgError::query(target, &err))?,
    ];
    while made.len() < CONNECTIONS {
        let Ok(client) = connect(target, None).await else {
            break;
        };
        let Ok(connection) = prepare(client).await else {
            break;
        };
        made.push(connection);
    }
    Ok(made)
}

/// A batch's commit under way: its connection back, unless lost.
type Committing = Pin<Box<dyn Future<Output = Option<Connection>> + Send>>;

/// The connections: idle ones, and the batches in flight on the others.
struct Pool {
    /// Taken in turn, so that each is used (and found closed) as often.
    idle: VecDeque<Connection>,
    in_flight: FuturesUnordered<Committing>,
    /// A batch lost its connection: the others are let go as they finish,
    /// and all are made again.
    lost: bool,
}

impl Pool {
    fn new(connections: Vec<Connection>) -> Pool {
        Pool {
            idle: connections.into(),
            in_flight: FuturesUnordered::new(),
            lost: false,
        }
    }

    /// A batch finished, with its connection back or lost.
    fn finished(&mut self, connection: Option<Connection>) {
        match connection {
            Some(connection) if !self.lost => self.idle.push_back(connection),
            Some(_) => {}
            None => {
                self.lost = true;
                self.idle.clear();
            }
        }
    }

    /// Wait for the next batch in flight to finish.
    async fn next_finished(&mut self) {
        if let Some(connection) = self.in_flight.next().await {
            self.finished(connection);
        }
    }

    /// Wait for every batch in flight.
    async fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            self.next_finished().await;
        }
    }

    /// Send `batch` on an idle connection that is still open. One found
    /// closed (the server, or something between, ended it while it was
    /// idle) is let go; with none left, the connection is lost.
    fn send(&mut self, state: &Arc<State>, batch: Vec<Row>) {
        let open =
            std::iter::from_fn(|| self.idle.pop_front()).find(|idle| !idle.client.is_closed());
        let Some(connection) = open else {
            self.lose(state);
            let reason = state.down_reason();
            for row in batch {
                row.fail(&reason);
            }
            return;
        };
        let state = Arc::clone(state);
        self.in_flight.push(Box::pin(
            async move { commit(&state, connection, batch).await },
        ));
    }

    /// The server closed a connection: said once, and all are made again.
    fn lose(&mut self, state: &State) {
        if !self.lost {
            state.go_down("the server closed the connection");
            self.lost = true;
        }
    }

    /// A sync or a close, answered once the batches before it are done,
    /// whether or not the connections lasted; true when it is a close.
    async fn settle(&mut self, control: Control) -> bool {
        self.drain().await;
        control.answer()
    }

    /// An idle connection found closed (the server went away while idle).
    fn any_idle_closed(&self) -> bool {
        self.idle.iter().any(|live| live.client.is_closed())
    }
}

/// The writer task: batch after batch until closed, reconnecting when a
/// connection is lost.
pub(super) async fn write_batches(
    state: Arc<State>,
    connections: Vec<Connection>,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut pool = Pool::new(connections);
    loop {
        if pool.lost || (pool.idle.is_empty() && pool.in_flight.is_empty()) {
            pool.drain().await;
            match reconnect(&state, &mut rx).await {
                Some(connections) => pool = Pool::new(connections),
                None => return,
            }
        }
        let first = match next_message(&mut pool, &mut rx).await {
            Next::Message(Message::Row(row)) => *row,
            Next::Message(Message::Control(control)) => {
                if pool.settle(control).await {
                    return;
                }
                continue;
            }
            Next::Finished => continue,
            Next::Lost => {
                pool.lose(&state);
                continue;
            }
            Next::Stopped => {
                pool.drain().await;
                return;
            }
        };
        let (batch, after) = gather(&state, &mut pool, first, &mut rx).await;
        pool.send(&state, batch);
        // A sync or a close that ended the batch, after it.
        if let Some(control) = after
            && pool.settle(control).await
        {
            return;
        }
    }
}

enum Next {
    Message(Message),
    /// A batch in flight finished.
    Finished,
    /// An idle connection closed while the writer waited.
    Lost,
    /// Every sender is gone.
    Stopped,
}

/// The next message, or a batch in flight finished; every [`IDLE_CHECK`]
/// the idle connections are looked at.
async fn next_message(pool: &mut Pool, rx: &mut mpsc::Receiver<Message>) -> Next {
    loop {
        tokio::select! {
            () = pool.next_finished(), if !pool.in_flight.is_empty() => return Next::Finished,
            message = tokio::time::timeout(IDLE_CHECK, rx.recv()) => match message {
                Ok(Some(message)) => return Next::Message(message),
                Ok(None) => return Next::Stopped,
                Err(_) if pool.any_idle_closed() => return Next::Lost,
                Err(_) => {}
            },
        }
    }
}

/// `first` and the rows queued behind it when the batch may go, within
/// the batch's bounds: at once when no batch is in flight, else when one
/// finishes or [`BATCH_WAIT`] after `first` arrived, whichever is sooner
/// (and a connection is free). The rows are taken only then, so that each
/// one queued meanwhile does not wake the writer. Also the message that
/// ended the batch when it was not a row (a sync or a close, handled after
/// the batch it follows).
async fn gather(
    state: &State,
    pool: &mut Pool,
    first: Row,
    rx: &mut mpsc::Receiver<Message>,
) -> (Vec<Row>, Option<Control>) {
    let deadline = tokio::time::Instant::from_std(first.arrived + BATCH_WAIT);
    if !pool.lost && !pool.in_flight.is_empty() {
        let may_go_early = !pool.idle.is_empty();
        tokio::select! {
            () = pool.next_finished() => {}
            () = tokio::time::sleep_until(deadline), if may_go_early => {}
        }
    }
    let mut batch = Batch::of(first);
    let after = batch.take_queued(rx);
    state.queued_bytes.fetch_sub(batch.bytes, Ordering::Relaxed);
    (batch.rows, after)
}

/// A batch being gathered.
struct Batch {
    rows: Vec<Row>,
    bytes: usize,
}

impl Batch {
    fn of(first: Row) -> Batch {
        Batch {
            bytes: first.bytes(),
            rows: vec![first],
        }
    }

    fn is_full(&self) -> bool {
        self.rows.len() >= BATCH_ROWS || self.bytes >= BATCH_BYTES
    }

    /// Take `message` in: a row joins the batch; a control is handed back.
    fn take(&mut self, message: Message) -> Option<Control> {
        match message {
            Message::Row(row) => {
                self.bytes += row.bytes();
                self.rows.push(*row);
                None
            }
            Message::Control(control) => Some(control),
        }
    }

    /// The rows already queued, while the batch has room; a control met
    /// on the way is handed back.
    fn take_queued(&mut self, rx: &mut mpsc::Receiver<Message>) -> Option<Control> {
        while !self.is_full() {
            let Ok(message) = rx.try_recv() else {
                return None;
            };
            if let Some(control) = self.take(message) {
                return Some(control);
            }
        }
        None
    }
}

/// Connect again, backing off, refusing what arrives meanwhile; `None`
/// once closed.
async fn reconnect(state: &State, rx: &mut mpsc::Receiver<Message>) -> Option<Vec<Connection>> {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                message = rx.recv() => match message {
                    Some(Message::Row(row)) => {
                        state.queued_bytes.fetch_sub(row.bytes(), Ordering::Relaxed);
                        (*row).fail(&state.down_reason());
                    }
                    Some(Message::Control(control)) => {
                        if control.answer() {
                            return None;
                        }
                    }
                    None => return None,
                },
            }
        }
        // Bounded as a whole: preparing the statement waits for any lock
        // held on the table (another session's migration, a `LOCK TABLE`).
        let attempt = connections(&state.target, None);
        match tokio::time::timeout(connect::CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(made)) => {
                state.come_back();
                return Some(made);
            }
            Ok(Err(_)) | Err(_) => backoff = (backoff * 2).min(BACKOFF_LAST),
        }
    }
}
