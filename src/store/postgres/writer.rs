//! `listen --store postgres://…`: the listener's deliveries written to the
//! shared table by group commit (SPEC §14).
//!
//! Each append drafts its record's line (as the file store does, with the
//! listener's name in it) and queues it for the one writer task, then
//! waits for its row to commit. The writer gathers rows into batches and
//! commits each in one statement: ids from the sequence, every row
//! inserted, the batch announced with `pg_notify` in the same implicit
//! transaction (`writer::statement`). A batch goes as soon as the one
//! before it is done, or at the latest [`pipeline::BATCH_WAIT`] after its
//! first row, on a second connection while the first still waits for its
//! commit (`writer::pipeline`). Only once its batch has committed is an
//! append let go `Ok` (so answered 2xx) and its record announced, each
//! batch in id order.
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
//!   reason, and the writer reconnects with backoff, telling the screen
//!   when it is lost and when it is back.
//!
//! A refused row may still commit (a statement cut short on our side can
//! finish on the server's): then the table holds a row answered 503, which
//! the sender sends again. The reverse, a row answered 2xx that is not in
//! the table, cannot happen.

mod pipeline;
mod statement;

pub(crate) use pipeline::MOST_IN_FLIGHT;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{PgError, Target, schema};
use crate::delivery::Delivery;
use crate::store::{Broadcaster, LineDraft, NotStored};

/// Rows the queue holds at most: at 20,000 deliveries a second, a tenth
/// of a second of them.
pub(crate) const QUEUE_ROWS: usize = 4096;
/// Bytes of record lines the queue holds at most (a few 1 MiB bodies fill
/// it before the row bound does).
pub(crate) const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// How long a row may take from its append to its commit before it is
/// answered 503: far under Danube's deadline (`facts::DEADLINE`), so the
/// sender hears 503 and retries rather than timing out.
pub(crate) const COMMIT_WITHIN: Duration = Duration::from_secs(2);
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
    /// The record's line but its id, as drafted (checked as text).
    text: String,
    arrived: Instant,
    reply: Option<oneshot::Sender<Reply>>,
}

/// The record, with its id once it has one; and whether it committed.
type Reply = (Arc<Delivery>, Result<(), Arc<str>>);

impl Row {
    fn bytes(&self) -> usize {
        self.text.len()
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
        let line = LineDraft::of_text(std::mem::take(&mut self.text)).finish(id);
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
        let next_id = statement::next_id(&client)
            .await
            .map_err(|err| PgError::query(target, &err))?;
        let connections = pipeline::connections(target, Some(client)).await?;
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
        let task = tokio::spawn(pipeline::write_batches(Arc::clone(&state), connections, rx));
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
        let Ok(text) = LineDraft::of(&delivery).into_text() else {
            return Err(not_stored(delivery, Arc::from("its record is not UTF-8")));
        };
        let bytes = text.len();
        if state.queued_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUE_BYTES {
            state.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(not_stored(delivery, state.full()));
        }
        let (reply, replied) = oneshot::channel();
        let row = Row {
            delivery: Some(delivery),
            text,
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
            return Some(self.down_reason());
        }
        None
    }

    /// Why the connection is down, as appends are told.
    fn down_reason(&self) -> Arc<str> {
        Arc::clone(&self.down.lock().unwrap_or_else(PoisonError::into_inner))
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

    /// The connection is lost: refuse appends with `reason` until it is
    /// back. Said once, however many of the pipeline's batches failed.
    fn go_down(&self, reason: &str) {
        if self.is_down.load(Ordering::Acquire) {
            return;
        }
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
