//! Batching appends: ids given under one lock, lines staged and written
//! by one append at a time in one `write`, a burst told from a lone append.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::syncer::Syncer;
use super::{BURST_GAP, Shared, StoreError};
use crate::delivery::Delivery;

/// Tells a burst of appends from a lone one by the time since the last one
/// started. The first append of a burst yields once before writing, so the
/// others of the burst stage their lines and share its `write`: under load
/// that is 20 to 50% more deliveries a second. A lone append (webhooks a few
/// at a time, or even 1,000 a second spread over 16 connections) writes at
/// once, as a yield would cost it a trip through the scheduler with nothing
/// to batch: at 1,000 req/s that trip was 0.04 ms of the median answer and
/// up to 0.4 ms of the p99 (docs/performance.md).
pub(super) struct Arrivals {
    pub(super) epoch: Instant,
    /// When the last append started, in nanoseconds from `epoch`.
    pub(super) last_ns: AtomicU64,
    /// [`BURST_GAP`] in nanoseconds; an atomic so a test can widen it.
    pub(super) gap_ns: AtomicU64,
}

impl Arrivals {
    pub(super) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ns: AtomicU64::new(u64::MAX),
            gap_ns: AtomicU64::new(u64::try_from(BURST_GAP.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Note an append starting now; true if it is part of a burst.
    pub(super) fn arrive(&self) -> bool {
        self.arrive_at(self.epoch.elapsed())
    }

    pub(super) fn arrive_at(&self, since_epoch: Duration) -> bool {
        let now = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_ns.swap(now, Ordering::Relaxed);
        // `abs_diff`: two appends on two threads may swap in either order.
        // The first append ever (`last` is u64::MAX) is never a burst.
        last != u64::MAX && now.abs_diff(last) < self.gap_ns.load(Ordering::Relaxed)
    }
}

pub(super) struct Log {
    pub(super) next_id: u64,
    /// Lines given ids and not yet written, in id order.
    pub(super) staged: Staged,
    /// The buffer of the last batch written, emptied, for the next batch
    /// to stage its lines in ([`SPARE_KEPT`]).
    pub(super) spare: Vec<u8>,
    /// An append is writing the staged lines; the others leave theirs for
    /// it. So the lines of appends that arrive together reach the file in
    /// one `write`, with no thread to hand them to.
    pub(super) writing: bool,
    /// `None` in memory-only mode, and once closed.
    pub(super) syncer: Option<Syncer>,
    pub(super) closed: bool,
}

#[derive(Default)]
pub(super) struct Staged {
    /// Whole lines, each with its newline.
    lines: Vec<u8>,
    /// Each staged record, with its line.
    records: Vec<Pending>,
}

/// A staged record and how its append learns whether its line was written.
struct Pending {
    delivery: Arc<Delivery>,
    line: RecordLine,
    done_tx: oneshot::Sender<Outcome>,
}

/// Whether a record's line was written; the reason when it was not.
pub(super) type Outcome = Result<(), Arc<str>>;

/// What [`Shared::stage`] left for the appending task to do.
pub(super) enum Next {
    /// Nothing: the record is not going to the file (memory only).
    Done,
    /// The store is closed: the record is not written, for this reason.
    Refused(Arc<str>),
    /// Write the staged lines, then wait for this record's outcome.
    Write(oneshot::Receiver<Outcome>),
    /// Another append is writing: wait for this record's outcome.
    Wait(oneshot::Receiver<Outcome>),
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn warn(&self, message: String) {
        self.broadcast.warn(message);
    }

    /// Announce a record, within the broadcast's byte budget.
    fn announce(&self, delivery: Arc<Delivery>, line: Option<RecordLine>) {
        self.broadcast.delivery(delivery, line);
    }

    fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "memory".to_string(), |p| p.display().to_string())
    }

    /// Give `delivery` the next id and stage its line (finished from
    /// `draft`), or, when it is not going to the file, announce it now.
    pub(super) fn stage(
        &self,
        mut delivery: Delivery,
        draft: Option<LineDraft>,
    ) -> (Arc<Delivery>, Next) {
        let mut log = self.lock();
        delivery.id = log.next_id;
        log.next_id = log.next_id.saturating_add(1);
        if log.closed {
            let reason = format!("the delivery store ({}) is closed", self.path_text());
            self.warn(format!(
                "delivery {} arrived after the store ({}) closed and was not written; \
                 answered 503",
                delivery.id,
                self.path_text()
            ));
            return (Arc::new(delivery), Next::Refused(reason.into()));
        }
        let Some(draft) = draft else {
            let delivery = Arc::new(delivery);
            // Under the lock, so subscribers see records in id order.
            self.announce(Arc::clone(&delivery), None);
            return (delivery, Next::Done);
        };
        let delivery = Arc::new(delivery);
        let staged = &mut log.staged;
        let line = draft.finish(delivery.id);
        line.append_to(&mut staged.lines);
        staged.lines.push(b'\n');
        let (done_tx, done_rx) = oneshot::channel();
        staged.records.push(Pending {
            delivery: Arc::clone(&delivery),
            line,
            done_tx,
        });
        let next = if log.writing {
            Next::Wait(done_rx)
        } else {
            log.writing = true;
            Next::Write(done_rx)
        };
        (delivery, next)
    }

    /// Stage a line that is no record (a late mirror's answer, `amend`) and
    /// write it, or leave it to the append writing now. Not written once
    /// the store is closed, which is said.
    pub(super) fn stage_answer(&self, line: &[u8]) {
        let mut log = self.lock();
        if log.closed {
            drop(log);
            self.warn(format!(
                "a mirror answered after the store ({}) closed; its answer is not kept",
                self.path_text()
            ));
            return;
        }
        log.staged.lines.extend_from_slice(line);
        log.staged.lines.push(b'\n');
        if log.writing {
            return;
        }
        log.writing = true;
        drop(log);
        self.write_staged();
    }

    /// Write what is staged, batch after batch, until nothing is; then
    /// announce each record, in id order, and let its append return.
    /// Only the append that set [`Log::writing`] calls this.
    fn write_staged(&self) {
        let mut batch = Staged::default();
        let mut wrote = false;
        loop {
            {
                let mut log = self.lock();
                if wrote && let Some(syncer) = &log.syncer {
                    syncer.soon();
                }
                if log.staged.lines.is_empty() {
                    log.writing = false;
                    log.spare = reusable(batch.lines);
                    return;
                }
                // The next batch stages its lines in the emptied buffer of
                // the one before.
                let mut spare = reusable(std::mem::take(&mut batch.lines));
                if spare.capacity() == 0 {
                    spare = std::mem::take(&mut log.spare);
                }
                std::mem::swap(&mut batch, &mut log.staged);
                log.staged.lines = spare;
            }
            let outcome = self.write_batch(&batch.lines, &batch.records);
            wrote = outcome.is_ok();
            let mut last = None;
            for Pending {
                delivery,
                line,
                done_tx,
            } in batch.records.drain(..)
            {
                last = Some(delivery.id);
                // A record that was not written is not announced: it was
                // answered 503 and its sender will send it again. The
                // warning names it.
                if wrote {
                    self.announce(delivery, Some(line));
                }
                let _ = done_tx.send(outcome.clone());
            }
            batch.lines.clear();
            if let Some(last) = last {
                // Only a close waits for this. Waking no one still took
                // a lock of each of the watch's eight lists of waiters,
                // once a batch: so the waiters are woken only when there
                // is one (a close subscribes before it first reads the
                // value, so it sees this write or is woken by it).
                self.written.send_if_modified(|written| {
                    *written = last;
                    self.written.receiver_count() > 0
                });
            }
        }
    }

    /// One `write` of a batch of lines; a failure is broadcast as a warning
    /// and is the outcome of every record in the batch.
    fn write_batch(&self, lines: &[u8], records: &[Pending]) -> Outcome {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(store) = file.as_mut() else {
            return Err(format!("the delivery store ({}) is closed", self.path_text()).into());
        };
        let last_id = records.last().map_or(0, |pending| pending.delivery.id);
        match store.write(lines, last_id) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.warn(format!(
                    "could not write {} to {}: {err}; answered 503 so the sender \
                     retries; listening goes on",
                    describe_ids(records),
                    store.path.display()
                ));
                Err(err.to_string().into())
            }
        }
    }

    /// Ask for an fsync now; `None` when there is no file (any more).
    pub(super) fn fsync_now(&self) -> Option<oneshot::Receiver<Result<(), StoreError>>> {
        self.lock().syncer.as_ref().map(Syncer::now)
    }
}

/// The staged lines are written when this is dropped: after the append
/// that holds it has yielded once, or if it is cancelled meanwhile.
pub(super) struct WriteTurn<'a>(pub(super) &'a Shared);

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.0.write_staged();
    }
}

/// The largest batch buffer kept for the next batch. Without one, each
/// batch staged its lines in a new buffer that grew by doubling, copying
/// the lines staged so far at each step: for a batch of a dozen 2.3 KB
/// lines, four reallocations. Larger buffers (a batch of big bodies) are
/// freed, so an idle listener does not hold them.
const SPARE_KEPT: usize = 1024 * 1024;

/// An emptied batch buffer, if it is small enough to keep.
fn reusable(buffer: Vec<u8>) -> Vec<u8> {
    if buffer.capacity() <= SPARE_KEPT {
        buffer
    } else {
        Vec::new()
    }
}

/// `delivery 5` or `deliveries 5–9`, for a warning.
fn describe_ids(records: &[Pending]) -> String {
    match (records.first(), records.last()) {
        (Some(first), Some(last)) if first.delivery.id != last.delivery.id => {
            format!("deliveries {}–{}", first.delivery.id, last.delivery.id)
        }
        (Some(only), _) => format!("delivery {}", only.delivery.id),
        _ => "nothing".to_string(),
    }
}

/// A record's JSON line, made before its id is known (outside the lock):
/// everything after `{"id":N`, which [`LineDraft::finish`] puts in front.
#[derive(Default)]
pub(crate) struct LineDraft(Vec<u8>);

impl LineDraft {
    pub(crate) fn of(delivery: &Delivery) -> Self {
        let mut line = Vec::with_capacity(crate::delivery::line::capacity_for(delivery));
        crate::delivery::line::write_after_id(delivery, &mut line);
        Self(line)
    }

    /// The draft as text, checked once: it is made of strings and base64,
    /// so always `Ok`, but the database's text column is told so only once
    /// checked. The draft itself when it is not.
    pub(crate) fn into_text(self) -> Result<String, LineDraft> {
        String::from_utf8(self.0).map_err(|err| LineDraft(err.into_bytes()))
    }

    /// A draft checked as text ([`LineDraft::into_text`]), back.
    pub(crate) fn of_text(text: String) -> LineDraft {
        LineDraft(text.into_bytes())
    }

    /// The line of the record that was given `id`.
    pub(crate) fn finish(self, id: u64) -> RecordLine {
        RecordLine {
            id,
            after_id: Bytes::from(self.0),
        }
    }
}

/// A written record's JSON line, as the store announces it, so `--json`
/// output need not serialize the record a second time. Kept in two parts,
/// the id and the rest, as it was drafted: the store copies it once, into
/// the batch it writes, and every subscriber shares the draft itself
/// (before, each announcement copied the line out of the batch again and
/// checked it for UTF-8).
#[derive(Debug, Clone)]
pub(crate) struct RecordLine {
    id: u64,
    after_id: Bytes,
}

impl RecordLine {
    /// Append the whole line, without a newline, to `out`.
    pub(crate) fn append_to(&self, out: &mut Vec<u8>) {
        crate::delivery::line::write_up_to_id(self.id, out);
        out.extend_from_slice(&self.after_id);
    }

    #[cfg(test)]
    pub(super) fn new(id: u64, after_id: &[u8]) -> Self {
        Self {
            id,
            after_id: Bytes::copy_from_slice(after_id),
        }
    }

    /// Bytes of the line, near enough (the id's digits aside).
    pub(crate) fn size(&self) -> usize {
        self.after_id.len() + 27
    }
}

impl std::fmt::Display for RecordLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = Vec::with_capacity(self.size());
        self.append_to(&mut line);
        f.write_str(&String::from_utf8_lossy(&line))
    }
}
