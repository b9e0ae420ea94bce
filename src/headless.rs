//! Headless output: one human line, or one JSON record, per delivery on
//! stdout; store warnings on stderr. In human lines, a delivery whose
//! answer waits (a delay, a `timeout` hold, a forward) also gets a line as
//! it arrives, so what the sender is waiting on shows at once; JSON output
//! stays one record per delivery.
//!
//! The printer follows the store's broadcast and never holds the listener
//! up. When it falls behind (a slow pipe), it reads what it missed back from
//! the store file, so `--json | tool` still sees every record.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Local, Utc};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::delivery::{Delivery, MirrorRecord, format_duration_ms, format_ms};
use crate::display::{escape_line, truncate};
use crate::rare_wake::RareWake;
use crate::store::postgres::MOST_IN_FLIGHT;
use crate::store::{self, Arrival, StoreEvent};

/// What each delivery prints as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
}

/// One delivery as `format` prints it (no trailing newline).
pub(crate) fn render(delivery: &Delivery, format: Format) -> String {
    match format {
        Format::Json => delivery.to_json_line(),
        Format::Human => human_line(delivery),
    }
}

/// The start of both lines: the local time, and what arrived (its event,
/// or method and path when it is not a POST) escaped and cut to its
/// column's 34 characters.
fn time_and_what(
    received_at: &DateTime<Utc>,
    method: &str,
    path: &str,
    event: Option<&str>,
) -> (String, String) {
    let time = received_at
        .with_timezone(&Local)
        .format("%H:%M:%S%.3f")
        .to_string();
    let what = if method == "POST" {
        event.unwrap_or("(no event)").to_string()
    } else {
        format!("{method} {path}")
    };
    (time, truncate(&escape_line(&what), 34).into_owned())
}

/// Time, id, event, verdict, attempt, answer, forward result, duration;
/// untrusted text escaped.
pub(crate) fn human_line(delivery: &Delivery) -> String {
    let (time, what) = time_and_what(
        &delivery.received_at,
        &delivery.method,
        &delivery.path,
        delivery.event.as_deref(),
    );
    let mut line = format!(
        "{time}  #{:<5} {what:<34} {:<9} attempt {:<2} → {}",
        delivery.id, delivery.signature.verdict, delivery.attempt, delivery.response,
    );
    if let Some(forward) = &delivery.forward {
        let _ = match (&forward.status, &forward.error) {
            (Some(status), _) => {
                write!(line, "  fwd {status} in {}", format_ms(forward.duration_ms))
            }
            (None, Some(error)) => {
                write!(line, "  fwd failed: {}", truncate(&escape_line(error), 60))
            }
            (None, None) => write!(line, "  fwd -"),
        };
    }
    for mirror in &delivery.mirrors {
        let _ = write!(line, "  mirror {}", mirror_result(mirror, 60));
    }
    if let Some(first) = delivery.replay_of {
        let _ = write!(line, "  replay of #{first}");
    }
    if let Some(danube_id) = &delivery.redelivery_of {
        let _ = write!(line, "  redelivery of {}", escape_line(danube_id));
    }
    if let Some(original) = delivery.resent_from {
        let how = if delivery.edited == Some(true) {
            ", edited"
        } else {
            ""
        };
        let _ = write!(line, "  copy of #{original}{how}");
    }
    if let Some(listener) = &delivery.listener {
        // Whose delivery, on a shared store (`dashboard`).
        let _ = write!(line, "  listener {}", truncate(&escape_line(listener), 40));
    }
    let _ = write!(line, "  {}", format_duration_ms(delivery.duration_ms));
    line
}

/// A delivery whose answer waits, as it arrives: time, event, verdict,
/// attempt and the step that will answer it; untrusted text escaped.
/// A mirror's result: `200 in 3ms`, `failed: …` (the error cut to
/// `error_chars`), `waiting`.
fn mirror_result(mirror: &MirrorRecord, error_chars: usize) -> String {
    match (&mirror.status, &mirror.error) {
        (Some(status), _) => format!("{status} in {}", format_ms(mirror.duration_ms)),
        (None, Some(error)) => format!("failed: {}", truncate(&escape_line(error), error_chars)),
        (None, None) => "waiting".to_string(),
    }
}

/// The line for a mirror that answered after its delivery's line: the
/// error whole (ours, naming the URL and the limit).
pub(crate) fn mirrored_line(id: u64, mirror: &MirrorRecord) -> String {
    format!(
        "          #{id:<5} mirror {} → {}",
        escape_line(&mirror.url),
        mirror_result(mirror, 400)
    )
}

pub(crate) fn arrival_line(arrival: &Arrival) -> String {
    let (time, what) = time_and_what(
        &arrival.received_at,
        &arrival.method,
        &arrival.path,
        arrival.event.as_deref(),
    );
    format!(
        "{time}  {:<6} {what:<34} {:<9} attempt {:<2} → … in flight ({}; Danube gives up after {}s)",
        "",
        arrival.verdict,
        arrival.attempt,
        escape_line(&arrival.step),
        crate::facts::DEADLINE.as_secs(),
    )
}

/// Records rendered into one write at most; a flood is written in chunks.
const MAX_BATCH: usize = 256;
/// Bytes buffered before a write even mid-batch (a catch-up can be long).
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Print every delivery from `events` until `done` is cancelled, then
/// drain what is left. Returns early if stdout goes away.
///
/// Each wake-up renders the event that woke it and whatever else is already
/// queued (up to [`MAX_BATCH`]) into one buffer and writes it once: under a
/// flood that is one `write` per batch instead of two per record, which
/// the load benchmark showed as a large part of the listener's system time.
pub(crate) async fn print(
    mut events: broadcast::Receiver<StoreEvent>,
    store_at: Option<store::Location>,
    own_rows: Option<String>,
    format: Format,
    done: CancellationToken,
) {
    let mut printer = Printer::new(format, store_at, own_rows);
    // `done` fires once; polled beside `recv` at every wake-up (a
    // `select!`), its lock was taken once a delivery. It is polled with a
    // waker of its own, only when it woke the printer.
    let rare = Arc::new(RareWake::default());
    let rare_waker = Waker::from(Arc::clone(&rare));
    let mut cancelled = std::pin::pin!(done.cancelled());
    loop {
        let first = {
            let mut recv = std::pin::pin!(events.recv());
            std::future::poll_fn(|cx| {
                if let Poll::Ready(event) = recv.as_mut().poll(cx) {
                    return Poll::Ready(Some(event));
                }
                if !rare.take(cx.waker()) {
                    return Poll::Pending;
                }
                cancelled
                    .as_mut()
                    .poll(&mut Context::from_waker(&rare_waker))
                    .map(|()| None)
            })
            .await
        };
        let Some(first) = first else { break };
        let mut next = Some(match first {
            Ok(event) => Polled::Event(event),
            Err(RecvError::Lagged(missed)) => Polled::Lagged(missed),
            Err(RecvError::Closed) => Polled::Closed,
        });
        let mut taken = 0;
        while let Some(polled) = next.take() {
            if !printer.take(polled) {
                return;
            }
            taken += 1;
            if taken < MAX_BATCH {
                next = try_next(&mut events);
            }
        }
        if !printer.flush() {
            return;
        }
    }
    while let Some(polled) = try_next(&mut events) {
        if !printer.take(polled) {
            return;
        }
    }
    printer.flush();
}

/// What the broadcast had for the printer.
enum Polled {
    Event(StoreEvent),
    Lagged(u64),
    Closed,
}

/// The next queued event, without waiting; `None` when there is none now.
fn try_next(events: &mut broadcast::Receiver<StoreEvent>) -> Option<Polled> {
    match events.try_recv() {
        Ok(event) => Some(Polled::Event(event)),
        Err(TryRecvError::Lagged(missed)) => Some(Polled::Lagged(missed)),
        Err(TryRecvError::Closed) => Some(Polled::Closed),
        Err(TryRecvError::Empty) => None,
    }
}

/// Renders records into a buffer and writes it to stdout in one piece.
struct Printer {
    out: std::io::Stdout,
    buf: Vec<u8>,
    format: Format,
    /// The highest id rendered: a catch-up reads the store after it.
    last_id: u64,
    /// The highest id a catch-up printed: the announcements of those that
    /// follow are not printed again. Only then are ids below the newest
    /// passed over: a shared store's rows are announced out of id order.
    caught_up_through: u64,
    /// Where records are read back from (`None`: `--no-store`).
    store_at: Option<store::Location>,
    /// On a shared store, a listener's name: a catch-up prints only its
    /// rows, as its announcements hold only its deliveries.
    own_rows: Option<String>,
    /// On a shared store, the highest ids printed, [`RECENT_KEPT`] of them.
    /// The listener's batches in flight commit in either order there, so
    /// a catch-up reads again from [`MOST_IN_FLIGHT`] below the highest id
    /// printed, and leaves these out, as the announcements that follow it
    /// do. `None` on a file, whose ids only grow.
    recent: Option<BTreeSet<u64>>,
}

/// Ids a shared store's printer remembers: the announcements a catch-up
/// can overlap (the channel's), and the rows in flight below them.
const RECENT_KEPT: usize = crate::store::EVENT_CAPACITY + MOST_IN_FLIGHT as usize;

impl Printer {
    fn new(format: Format, store_at: Option<store::Location>, own_rows: Option<String>) -> Self {
        Printer {
            // Not a lock: a `StdoutLock` can't live across `.await` in a task.
            out: std::io::stdout(),
            buf: Vec::new(),
            format,
            last_id: 0,
            caught_up_through: 0,
            store_at,
            recent: own_rows.as_ref().map(|_| BTreeSet::new()),
            own_rows,
        }
    }

    /// Whether delivery `id` is to be printed: not printed already.
    fn first_print(&mut self, id: u64) -> bool {
        match &mut self.recent {
            None if id <= self.caught_up_through => return false,
            None => {}
            Some(recent) => {
                if !recent.insert(id) {
                    return false;
                }
                while recent.len() > RECENT_KEPT {
                    recent.pop_first();
                }
            }
        }
        self.last_id = self.last_id.max(id);
        true
    }

    /// Render one polled item; false when stdout is gone or the channel
    /// closed (after writing what was rendered).
    fn take(&mut self, polled: Polled) -> bool {
        match polled {
            Polled::Event(event) => self.emit(&event),
            Polled::Lagged(missed) => self.catch_up(missed),
            Polled::Closed => {
                self.flush();
                false
            }
        }
    }

    /// Render one event; false when stdout is gone.
    fn emit(&mut self, event: &StoreEvent) -> bool {
        match event {
            StoreEvent::Delivery(delivery, line) => {
                if !self.first_print(delivery.id) {
                    return true; // already printed during a catch-up
                }
                match (self.format, line) {
                    // The store writer's line is this very rendering.
                    (Format::Json, Some(line)) => line.append_to(&mut self.buf),
                    (Format::Json, None) => {
                        crate::delivery::line::write(delivery, &mut self.buf);
                    }
                    (Format::Human, _) => {
                        self.buf.extend_from_slice(human_line(delivery).as_bytes());
                    }
                }
                self.buf.push(b'\n');
                self.buf.len() < MAX_BATCH_BYTES || self.flush()
            }
            StoreEvent::BodyElided(delivery) => {
                if self.format == Format::Human {
                    // The human line has no body in it.
                    return self.emit(&StoreEvent::Delivery(Arc::clone(delivery), None));
                }
                // The broadcast left the body out (its byte budget): the
                // JSON line needs it, so read the record back.
                let whole = self
                    .store_at
                    .as_ref()
                    .map(|at| store::find(at, delivery.id));
                match whole {
                    Some(Ok(whole)) => self.emit(&StoreEvent::Delivery(Arc::new(whole), None)),
                    Some(Err(err)) => {
                        eprintln!(
                            "danube-hooks: warning: delivery {} not printed: its body could not \
                             be read back from the store: {}",
                            delivery.id,
                            escape_line(&err.to_string())
                        );
                        true
                    }
                    None => {
                        eprintln!(
                            "danube-hooks: warning: delivery {} not printed: output fell behind \
                             and --no-store keeps no log to read its body from",
                            delivery.id
                        );
                        true
                    }
                }
            }
            StoreEvent::Warning(message) => {
                eprintln!("danube-hooks: warning: {}", escape_line(message));
                true
            }
            StoreEvent::Arrived(arrival) if self.format == Format::Human => {
                self.buf.extend_from_slice(arrival_line(arrival).as_bytes());
                self.buf.push(b'\n');
                self.buf.len() < MAX_BATCH_BYTES || self.flush()
            }
            StoreEvent::Mirrored { id, mirror, .. } if self.format == Format::Human => {
                self.buf
                    .extend_from_slice(mirrored_line(*id, mirror).as_bytes());
                self.buf.push(b'\n');
                self.buf.len() < MAX_BATCH_BYTES || self.flush()
            }
            // JSON output is one record per delivery (SPEC §5), and the
            // record's own line says when it was answered; a mirror's late
            // answer is not a record.
            // A notice is told on stderr by the work itself, where at all.
            StoreEvent::Arrived(_)
            | StoreEvent::Settled(_)
            | StoreEvent::Mirrored { .. }
            | StoreEvent::Notice(_) => true,
        }
    }

    /// Write what is buffered; false when stdout is gone.
    fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let written = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.buf.clear();
        written.is_ok()
    }

    /// After a lag, print what was missed from the store file.
    fn catch_up(&mut self, missed: u64) -> bool {
        let Some(at) = self.store_at.clone() else {
            eprintln!(
                "danube-hooks: warning: output fell behind; {missed} deliveries not printed (--no-store keeps no log to catch up from)"
            );
            return true;
        };
        // Streamed: one record at a time, however far behind it fell.
        let mut open = true;
        let own = self.own_rows.clone();
        let after = store::postgres::resync_after(self.last_id, self.recent.is_some());
        let read = store::each_forward::<Delivery>(&at, Some(after), |entry| {
            if let store::Entry::Record(record) = entry
                && (own.as_ref()).is_none_or(|own| record.listener.as_ref() == Some(own))
            {
                open = self.emit(&StoreEvent::Delivery(Arc::new(record), None));
            }
            if open {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        self.caught_up_through = self.last_id;
        match read {
            Ok(()) => open,
            Err(err) => {
                eprintln!(
                    "danube-hooks: warning: output fell behind and the store could not be read: {err}"
                );
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ForwardRecord;
    use crate::test_support::sample;

    /// A store file in a folder of its own named for `name` holding
    /// `records`; the folder (to remove) and the file.
    fn store_of(
        name: &str,
        records: impl IntoIterator<Item = Delivery>,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("danube-hooks-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("deliveries.jsonl");
        let mut text = String::new();
        for record in records {
            text.push_str(&record.to_json_line());
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// The ids of the records `printer` has rendered as JSON, in order.
    fn printed_ids(printer: &Printer) -> Vec<u64> {
        String::from_utf8_lossy(&printer.buf)
            .lines()
            .map(|line| serde_json::from_str::<Delivery>(line).unwrap().id)
            .collect()
    }

    #[test]
    fn human_line_has_every_column_and_escapes() {
        let mut delivery = sample(12, br#"{"event":"tool.execution.completed"}"#);
        delivery.attempt = 2;
        let line = human_line(&delivery);
        for part in [
            "#12",
            "tool.execution.completed",
            "valid",
            "attempt 2",
            "→ 200",
            "400µs",
        ] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
        delivery.listener = Some("bob\x1b[2J@ci".into());
        assert!(human_line(&delivery).contains("  listener bob\\x1b[2J@ci  "));
        delivery.listener = None;
        delivery.event = Some("evil\x1b]0;pwned\x07\u{202e}".into());
        delivery.forward = Some(ForwardRecord {
            url: "http://127.0.0.1:3000/".into(),
            status: Some(201),
            headers: vec![],
            error: None,
            duration_ms: 12,
            body_preview: None,
        });
        let line = human_line(&delivery);
        assert!(!line.chars().any(crate::display::is_dangerous), "{line:?}");
        assert!(line.contains("\\x1b]0;pwned"), "{line}");
        assert!(line.contains("fwd 201 in 12ms"), "{line}");
        assert!(!line.contains("redelivery"), "{line}");
        delivery.redelivery_of = Some("dlv_8f3a".into());
        assert!(
            human_line(&delivery).contains("  redelivery of dlv_8f3a  "),
            "{line}"
        );
        assert!(!line.contains("copy of"), "{line}");
        delivery.resent_from = Some(3);
        delivery.edited = Some(true);
        assert!(human_line(&delivery).contains("  copy of #3, edited"));
    }

    /// A listener on a shared store that fell behind prints only its own
    /// rows back (a file holding two listeners' stands in for the table);
    /// an announcement of a row printed by the catch-up is not printed
    /// again.
    #[test]
    fn a_catch_up_prints_only_this_listeners_rows_once() {
        let (dir, path) = store_of(
            "own",
            (1..=4).map(|id| {
                let mut record = sample(id, b"{}");
                record.listener = Some(if id % 2 == 0 { "ann" } else { "bob" }.into());
                record
            }),
        );
        let mut printer = Printer::new(
            Format::Json,
            Some(store::Location::File(path)),
            Some("ann".into()),
        );
        assert!(printer.catch_up(4));
        let again = StoreEvent::Delivery(Arc::new(sample(4, b"{}")), None);
        assert!(printer.emit(&again));
        assert_eq!(printed_ids(&printer), [2, 4]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// On a shared store rows are announced out of id order (the
    /// listener's batches in flight commit in either order): a catch-up
    /// reads again below the highest id printed, prints the rows it finds
    /// there not printed yet, and no row is printed twice, whichever way it
    /// comes.
    #[test]
    fn a_catch_up_on_a_shared_store_prints_the_rows_below_the_newest_not_printed_yet() {
        let ann = |id| {
            let mut record = sample(id, b"{}");
            record.listener = Some("ann".into());
            record
        };
        let (dir, path) = store_of("late", (8..=13).map(ann));
        let mut printer = Printer::new(
            Format::Json,
            Some(store::Location::File(path)),
            Some("ann".into()),
        );
        for id in [10, 12] {
            assert!(printer.emit(&StoreEvent::Delivery(Arc::new(ann(id)), None)));
        }
        // Fell behind: 8, 9, 11 and 13 were missed, 8 and 11 below 12.
        assert!(printer.catch_up(4));
        // The channel still held some: printed already.
        for id in [11, 13, 8] {
            assert!(printer.emit(&StoreEvent::Delivery(Arc::new(ann(id)), None)));
        }
        // One committed later still, below the newest.
        assert!(printer.emit(&StoreEvent::Delivery(Arc::new(ann(7)), None)));
        assert_eq!(printed_ids(&printer), [10, 12, 8, 9, 11, 13, 7]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_elided_record_is_read_back_for_json_and_printed_as_is_for_people() {
        let whole = sample(7, br#"{"event":"workflow.failed","big":"body"}"#);
        let (dir, path) = store_of("elided", [whole.clone()]);
        let mut elided = whole.clone();
        elided.body.clear();
        let elided = StoreEvent::BodyElided(Arc::new(elided));
        let printer = |format, store_at| Printer::new(format, store_at, None);

        let mut json = printer(Format::Json, Some(store::Location::File(path.clone())));
        assert!(json.emit(&elided));
        let expected = format!("{}\n", whole.to_json_line());
        assert_eq!(String::from_utf8(json.buf.clone()).unwrap(), expected);

        let mut human = printer(Format::Human, Some(store::Location::File(path)));
        assert!(human.emit(&elided));
        assert_eq!(
            String::from_utf8(human.buf.clone()).unwrap(),
            format!("{}\n", human_line(&whole))
        );

        // With no store to read from, the record is not printed half.
        let mut memory = printer(Format::Json, None);
        assert!(memory.emit(&elided));
        assert!(memory.buf.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_arrival_gets_a_line_in_human_output_only() {
        use std::time::{Duration, Instant};
        let mut arrival =
            crate::test_support::arrival(Instant::now(), Duration::ZERO, "12s+200\u{1b}[2J");
        arrival.event = Some("tool.\u{202e}evil".into());
        let line = arrival_line(&arrival);
        for part in [
            "tool.\\u{202e}evil",
            "valid",
            "attempt 2",
            "→ … in flight (12s+200\\x1b[2J; Danube gives up after 10s)",
        ] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
        assert!(!line.chars().any(crate::display::is_dangerous), "{line:?}");
        assert!(!line.contains('#'), "no id before the record: {line}");

        let event = StoreEvent::Arrived(Arc::new(arrival));
        let printer = |format| Printer::new(format, None, None);
        let mut human = printer(Format::Human);
        assert!(human.emit(&event) && human.emit(&StoreEvent::Settled(1)));
        assert_eq!(String::from_utf8(human.buf).unwrap(), format!("{line}\n"));
        // JSON output is one record per delivery.
        let mut json = printer(Format::Json);
        assert!(json.emit(&event) && json.emit(&StoreEvent::Settled(1)));
        assert!(json.buf.is_empty());
    }

    #[test]
    fn other_methods_show_method_and_path() {
        let mut delivery = sample(3, b"");
        delivery.method = "PUT".into();
        assert!(human_line(&delivery).contains("PUT /webhooks/danube?x=1"));
    }
}
