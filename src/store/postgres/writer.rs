//! `listen --store postgres://…`: the listener's deliveries written to the
//! shared table by group commit (SPEC §14).
//!
//! Each append drafts its record's line (as the file store does, with the
//! listener's name in it) and queues it for the one writer task, then
//! waits for its row to commit. The writer takes the first row queued and
//! whatever else is queued by then (up to [`BATCH_ROWS`] rows or
//! [`BATCH_BYTES`]), and commits them in one statement: ids from the
//! sequence, every row inserted, the batch announced with `pg_notify` in
//! the same implicit transaction. So a batch goes as soon as the one
//! before it is done, and waits for nothing else: while one commits, the
//! next gathers in the queue. Only once it has committed is each append
//! let go `Ok` (so answered 2xx) and its record announced, in id order.
//!
//! What bounds the wait, so a slow or absent server costs 503s and never
//! memory or a hung answer:
//! - the queue holds [`QUEUE_ROWS`] rows and [`QUEUE_BYTES`]; an append
//!   that finds it full is refused at once;
//! - a row not committed within [`COMMIT_WITHIN`] of its arrival is
//!   refused: one that waited that long in the queue before its batch, or
//!   whose batch's statement ran out the time left (the connection is then
//!   dropped and made again: the statement may still be running there);
//! - while the connection is down, appends are refused at once with the
//!   reason, and the writer reconnects with backoff ([`BACKOFF_FIRST`]
//!   doubling to [`BACKOFF_LAST`]), telling the screen when it is lost and
//!   when it is back.
//!
//! A refused row may still commit (a statement cut short on our side can
//! finish on the server's): then the table holds a row answered 503, which
//! the sender sends again. The reverse, a row answered 2xx that is not in
//! the table, cannot happen.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

use super::{PgError, Target, connect::describe, schema};
use crate::delivery::Delivery;
use crate::store::{Broadcaster, LineDraft, NotStored};

/// Rows the queue holds at most: at 20,000 deliveries a second, a tenth
/// of a second of them.
pub(crate) const QUEUE_ROWS: usize = 4096;
/// Bytes of record lines the queue holds at most (a few 1 MiB bodies fill
/// it before the row bound does).
pub(crate) const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Rows in one batch at most.
const BATCH_ROWS: usize = 1024;
/// Bytes of record lines in one batch at most (a larger row goes alone).
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// How long a row may take from its append to its commit before it is
/// answered 503: far under Danube's deadline (`facts::DEADLINE`), so the
/// sender hears 503 and retries rather than timing out.
pub(crate) const COMMIT_WITHIN: Duration = Duration::from_secs(2);
/// The least time a batch's statement is given: a row with less left
/// than this is refused before it is sent, rather than sent to be cut off
/// (which costs the connection).
const LEAST_FOR_STATEMENT: Duration = Duration::from_millis(250);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(5);
/// How often an idle writer checks that its connection is still there, so
/// the screen hears of a lost server before the next delivery does.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// The least time between two warnings of refused rows (a full queue, a
/// slow commit, a failed batch), which under load come every batch.
const WARNING_GAP: Duration = Duration::from_secs(1);

/// The listener's side of the shared store.
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
    state: Arc<State>,
    /// The listener's name, put in each record (`listen --name`).
    name: String,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    retention: Option<tokio::task::JoinHandle<()>>,
    /// Mirrors' answers that came after their rows committed.
    late: super::late::LateAnswers,
}

/// What the appends and the writer task share.
struct State {
    target: Arc<Target>,
    broadcast: Arc<Broadcaster>,
    /// Bytes of the lines queued, not yet taken into a batch.
    queued_bytes: AtomicUsize,
    /// The connection is down: appends are refused at once with `down`'s reason.
    is_down: AtomicBool,
    down: Mutex<Arc<str>>,
    /// Appends refused while down, told when the connection is back.
    refused_while_down: AtomicU64,
    closed: AtomicBool,
    /// When rows were last refused and it was said (ms since `epoch`).
    last_warning_ms: AtomicU64,
    epoch: Instant,
}

enum Message {
    /// Boxed: a record is hundreds of bytes, a sync a pointer.
    Row(Box<Row>),
    Control(Control),
}

enum Control {
    /// Answered once every row queued before it has committed or failed.
    Sync(oneshot::Sender<()>),
    /// As `Sync`; then the writer stops.
    Close(oneshot::Sender<()>),
}

impl Control {
    /// Answer it; true when the writer is to stop.
    fn answer(self) -> bool {
        match self {
            Control::Sync(done) => {
                let _ = done.send(());
                false
            }
            Control::Close(done) => {
                let _ = done.send(());
                true
            }
        }
    }
}

/// One append's record, waiting for its batch.
struct Row {
    /// `None` once the reply is sent.
    delivery: Option<Delivery>,
    draft: LineDraft,
    arrived: Instant,
    reply: Option<oneshot::Sender<Reply>>,
}

/// The record, with its id once it has one; and whether it committed.
type Reply = (Arc<Delivery>, Result<(), Arc<str>>);

impl Row {
    fn bytes(&self) -> usize {
        self.draft.len()
    }

    /// The record, as the reply hands it back.
    fn take_record(&mut self) -> Option<Arc<Delivery>> {
        self.delivery.take().map(Arc::new)
    }

    /// Refuse the row: its append is answered 503 with `reason`.
    fn fail(mut self, reason: &Arc<str>) {
        self.reply_with(Err(Arc::clone(reason)));
    }

    fn reply_with(&mut self, outcome: Result<(), Arc<str>>) {
        if let (Some(delivery), Some(reply)) = (self.take_record(), self.reply.take()) {
            let _ = reply.send((delivery, outcome));
        }
    }

    /// The row committed with `id`: the record announced with its line,
    /// then its append let go. Announced first, as the file store does,
    /// so the screen shows a record no later than its sender hears 2xx.
    fn committed(mut self, id: u64, broadcast: &Broadcaster) {
        let Some(mut delivery) = self.delivery.take() else {
            return;
        };
        delivery.id = id;
        let delivery = Arc::new(delivery);
        let line = std::mem::take(&mut self.draft).finish(id);
        broadcast.delivery(Arc::clone(&delivery), Some(line));
        if let Some(reply) = self.reply.take() {
            let _ = reply.send((delivery, Ok(())));
        }
    }
}

/// A row dropped unanswered (the writer stopped, the runtime shut down)
/// still lets its append go, refused.
impl Drop for Row {
    fn drop(&mut self) {
        self.reply_with(Err(Arc::from("the delivery store stopped")));
    }
}

/// What `--store postgres://…` asks of the listener's store.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) target: Arc<Target>,
    /// `--name`, already checked.
    pub(crate) name: String,
    /// `--store-max-age`: older rows are deleted in the background.
    pub(crate) max_age: Option<chrono::TimeDelta>,
}

/// A connection, with the batch statement prepared on it.
struct Connection {
    client: Client,
    insert: Statement,
}

impl Writer {
    /// Connect, bring the schema up to date (or refuse a newer one), and
    /// start the writer task. Also the id the next row would get, as the
    /// sequence stands (another listener may take it first).
    pub(crate) async fn open(
        config: &Config,
        broadcast: Arc<Broadcaster>,
    ) -> Result<(Writer, u64), PgError> {
        let target = &config.target;
        let mut client = super::connect(target, None).await?;
        schema::migrate(&mut client, target).await?;
        let next_id = next_id(&client)
            .await
            .map_err(|err| PgError::query(target, &err))?;
        let connection = prepare(client)
            .await
            .map_err(|err| PgError::query(target, &err))?;
        let state = Arc::new(State {
            target: Arc::clone(target),
            broadcast,
            queued_bytes: AtomicUsize::new(0),
            is_down: AtomicBool::new(false),
            down: Mutex::new(Arc::from("")),
            refused_while_down: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            last_warning_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let (queue, rx) = mpsc::channel(QUEUE_ROWS);
        let task = tokio::spawn(write_batches(Arc::clone(&state), connection, rx));
        let retention = config.max_age.map(|age| {
            super::retention::start(Arc::clone(target), age, Arc::clone(&state.broadcast))
        });
        let late =
            super::late::LateAnswers::start(Arc::clone(target), Arc::clone(&state.broadcast));
        let writer = Writer {
            queue,
            state,
            name: config.name.clone(),
            task: Mutex::new(Some(task)),
            retention,
            late,
        };
        Ok((writer, next_id))
    }

    /// Queue `delivery` and wait for its row to commit. Refused at once
    /// when the store is closed, the connection down or the queue full.
    pub(crate) async fn append(&self, mut delivery: Delivery) -> Result<Arc<Delivery>, NotStored> {
        let state = &self.state;
        if let Some(reason) = state.refusal() {
            return Err(not_stored(delivery, reason));
        }
        delivery.listener = Some(self.name.clone());
        let draft = LineDraft::of(&delivery);
        if draft.as_str().is_none() {
            return Err(not_stored(delivery, Arc::from("its record is not UTF-8")));
        }
        let bytes = draft.len();
        if state.queued_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUE_BYTES {
            state.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(not_stored(delivery, state.full()));
        }
        let (reply, replied) = oneshot::channel();
        let row = Row {
            delivery: Some(delivery),
            draft,
            arrived: Instant::now(),
            reply: Some(reply),
        };
        if let Err(refused) = self.queue.try_send(Message::Row(Box::new(row))) {
            state.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            let reason = match &refused {
                mpsc::error::TrySendError::Full(_) => state.full(),
                mpsc::error::TrySendError::Closed(_) => state.closed_reason(),
            };
            let Message::Row(mut row) = refused.into_inner() else {
                unreachable!("the message sent was a row")
            };
            row.reply = None;
            let delivery = row
                .take_record()
                .expect("a row holds its record until it replies");
            return Err(NotStored { delivery, reason });
        }
        // Every row replies, even one dropped unwritten (`Row`'s Drop).
        let (delivery, outcome) = replied
            .await
            .expect("a queued row always replies (Row's Drop)");
        match outcome {
            Ok(()) => Ok(delivery),
            Err(reason) => Err(NotStored { delivery, reason }),
        }
    }

    /// Wait until every row queued before this call has committed or failed.
    pub(crate) async fn sync(&self) {
        let (done, finished) = oneshot::channel();
        if self
            .queue
            .send(Message::Control(Control::Sync(done)))
            .await
            .is_ok()
        {
            let _ = finished.await;
        }
    }

    /// Commit what is queued, then stop the writer (and the retention);
    /// later appends are refused. Idempotent.
    pub(crate) async fn close(&self) {
        if self.state.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(retention) = &self.retention {
            retention.abort();
        }
        let (done, finished) = oneshot::channel();
        if self
            .queue
            .send(Message::Control(Control::Close(done)))
            .await
            .is_ok()
        {
            let _ = finished.await;
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Keep a mirror's late answer in its row (`postgres::late`). Never waits.
    pub(crate) fn keep_late(&self, late: crate::store::LateMirror) {
        self.late.keep(late, &self.state.broadcast);
    }

    pub(crate) fn target(&self) -> &Arc<Target> {
        &self.state.target
    }
}

/// A refused record that never reached the writer.
fn not_stored(delivery: Delivery, reason: Arc<str>) -> NotStored {
    NotStored {
        delivery: Arc::new(delivery),
        reason,
    }
}

impl State {
    /// Why an append is refused before it is queued, if it is.
    fn refusal(&self) -> Option<Arc<str>> {
        if self.closed.load(Ordering::Relaxed) {
            return Some(self.closed_reason());
        }
        if self.is_down.load(Ordering::Acquire) {
            self.refused_while_down.fetch_add(1, Ordering::Relaxed);
            return Some(Arc::clone(
                &self.down.lock().unwrap_or_else(PoisonError::into_inner),
            ));
        }
        None
    }

    fn closed_reason(&self) -> Arc<str> {
        format!("the delivery store ({}) is closed", self.target).into()
    }

    /// The reason of a full queue; warned at most once a second.
    fn full(&self) -> Arc<str> {
        let reason = format!(
            "the queue to {} is full ({QUEUE_ROWS} rows or {} MiB waiting): the database \
             is not keeping up",
            self.target,
            QUEUE_BYTES / (1024 * 1024)
        );
        self.warn_now_and_then(format!(
            "{reason}; deliveries are answered 503 so their senders retry"
        ));
        reason.into()
    }

    /// Broadcast `message` unless a warning of refused rows went out less
    /// than [`WARNING_GAP`] ago.
    fn warn_now_and_then(&self, message: String) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let gap = u64::try_from(WARNING_GAP.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= gap)
            && self
                .last_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.broadcast.warn(message);
        }
    }

    /// The connection is lost: refuse appends with `reason` until it is back.
    fn go_down(&self, reason: &str) {
        let reason: Arc<str> =
            format!("the connection to {} is down: {reason}", self.target).into();
        *self.down.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&reason);
        self.refused_while_down.store(0, Ordering::Relaxed);
        self.is_down.store(true, Ordering::Release);
        self.broadcast.warn(format!(
            "{reason}; deliveries are answered 503 (their senders retry) while the listener \
             reconnects"
        ));
    }

    fn come_back(&self) {
        self.is_down.store(false, Ordering::Release);
        let refused = self.refused_while_down.swap(0, Ordering::Relaxed);
        self.broadcast.warn(format!(
            "reconnected to {}: deliveries are stored again ({refused} answered 503 while it \
             was down)",
            self.target
        ));
    }
}

/// The id the sequence gives next, as it stands now.
async fn next_id(client: &Client) -> Result<u64, tokio_postgres::Error> {
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

async fn prepare(client: Client) -> Result<Connection, tokio_postgres::Error> {
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

/// The writer task: batch after batch until closed, reconnecting when the
/// connection is lost.
async fn write_batches(state: Arc<State>, first: Connection, mut rx: mpsc::Receiver<Message>) {
    let mut connection = Some(first);
    loop {
        let live = match connection.take() {
            Some(live) => live,
            None => match reconnect(&state, &mut rx).await {
                Some(live) => live,
                None => return,
            },
        };
        let first = match next_message(&live, &mut rx).await {
            Next::Message(Message::Row(row)) => *row,
            Next::Message(Message::Control(control)) => {
                if control.answer() {
                    return;
                }
                connection = Some(live);
                continue;
            }
            Next::Lost => {
                state.go_down("the server closed the connection");
                continue;
            }
            Next::Stopped => return,
        };
        let (batch, after) = gather(&state, first, &mut rx);
        connection = commit(&state, live, batch).await;
        // A sync or a close that ended the batch, answered once the rows
        // before it are done, whether or not the connection lasted.
        if after.is_some_and(Control::answer) {
            return;
        }
    }
}

enum Next {
    Message(Message),
    /// The connection closed while the writer waited.
    Lost,
    /// Every sender is gone.
    Stopped,
}

/// The next message; every [`IDLE_CHECK`] the connection is looked at.
async fn next_message(live: &Connection, rx: &mut mpsc::Receiver<Message>) -> Next {
    loop {
        match tokio::time::timeout(IDLE_CHECK, rx.recv()).await {
            Ok(Some(message)) => return Next::Message(message),
            Ok(None) => return Next::Stopped,
            Err(_) if live.client.is_closed() => return Next::Lost,
            Err(_) => {}
        }
    }
}

/// `first` and the rows queued behind it, within the batch's bounds; and
/// the message that ended the batch when it was not a row (a sync or a
/// close, handled after the batch it follows).
fn gather(
    state: &State,
    first: Row,
    rx: &mut mpsc::Receiver<Message>,
) -> (Vec<Row>, Option<Control>) {
    let mut bytes = first.bytes();
    let mut batch = vec![first];
    let mut next = None;
    while batch.len() < BATCH_ROWS && bytes < BATCH_BYTES {
        match rx.try_recv() {
            Ok(Message::Row(row)) => {
                bytes += row.bytes();
                batch.push(*row);
            }
            Ok(Message::Control(control)) => {
                next = Some(control);
                break;
            }
            Err(_) => break,
        }
    }
    state.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    (batch, next)
}

/// Commit `batch` on `live`: each row's append let go (`Ok` and announced
/// in id order, or refused with the reason). The connection, unless it
/// was lost or left in doubt.
async fn commit(state: &State, live: Connection, batch: Vec<Row>) -> Option<Connection> {
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
        // Checked as the row was queued: a line is made of strings.
        rests.push(row.draft.as_str().unwrap_or_default());
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

/// Connect again, backing off, refusing what arrives meanwhile; `None`
/// once closed.
async fn reconnect(state: &State, rx: &mut mpsc::Receiver<Message>) -> Option<Connection> {
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
                        let reason = state.down.lock().unwrap_or_else(PoisonError::into_inner).clone();
                        (*row).fail(&reason);
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
        let attempt = async {
            let client = super::connect(&state.target, None).await?;
            prepare(client)
                .await
                .map_err(|err| PgError::query(&state.target, &err))
        };
        // Bounded as a whole: preparing the statement waits for any lock
        // held on the table (another session's migration, a `LOCK TABLE`).
        match tokio::time::timeout(super::connect::CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(live)) => {
                state.come_back();
                return Some(live);
            }
            Ok(Err(_)) | Err(_) => backoff = (backoff * 2).min(BACKOFF_LAST),
        }
    }
}
