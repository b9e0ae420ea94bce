//! `dashboard`'s live feed of a shared store: `LISTEN` on the channel each
//! committed batch is announced on, the rows of each announced id range
//! read and announced on the dashboard's bus ([`DeliveryStore::announce`]),
//! each once; a lost connection made good on its own.
//!
//! What holds:
//! - No polling: a batch is read when its `NOTIFY` arrives, and the server
//!   sends a `NOTIFY` only once its transaction has committed, so the rows
//!   it names are there to read.
//! - Nothing shown twice: ranges overlap (ids from one sequence interleave
//!   across listeners, so one listener's `min..max` holds another's rows),
//!   and a catch-up reads again what may have been shown. [`Seen`] keeps
//!   the ids shown, within [`SEEN_CAP`].
//! - Nothing committed missed: ids are not committed in id order across
//!   listeners, so after a lost connection the catch-up does not read from
//!   the highest id shown but every id above the lowest it could have
//!   missed, and leaves out those shown (see [`Seen::low`]).
//! - A mirror's late answer is shown when its note (`mirror <id> <index>`)
//!   arrives. A note can be lost with the connection or past the queue, so
//!   a catch-up also reads again the rows of the mirrors shown waiting (the
//!   newest [`WAITING_CAP`]): at once after a lost connection, and after
//!   dropped notes at most every [`WAITING_REREAD_EVERY`].
//! - Every byte of a row is hostile: a record is parsed as the file
//!   store's lines are, one longer than a store line may be is not even
//!   fetched, and one that does not parse (or names another id than its
//!   row) is counted on the status line, never shown raw. A `NOTIFY` is
//!   anyone's with access to the database: its range is read only when it
//!   parses, and never wider than [`MAX_RANGE`]; the ids in it are read
//!   first, a page at a time, and only the records not shown yet are
//!   fetched, a few MiB at a time ([`READ_BYTES`]). So a flood of wide
//!   ranges costs index reads, not the table's records held at once. The
//!   queue of notifications is bounded ([`NOTES_QUEUED`]): past it they
//!   are dropped, and a catch-up reads what they may have named.
//! - A column someone retyped does not panic the feed: each query casts
//!   what it reads and types its parameters, and a cast that fails is an
//!   error like a lost connection's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{Client, Notification, Row};
use tokio_util::sync::CancellationToken;

use super::connect::Notes;
use super::{PgError, Target, connect, schema};
use crate::delivery::Delivery;
use crate::store::{DeliveryStore, MAX_LINE};

/// Ids remembered as shown. Past it the lowest are forgotten: an id read
/// again after that many newer ones were shown is taken as shown (a row
/// commits within its listener's answer time, long before then).
pub(crate) const SEEN_CAP: usize = 65_536;
/// Mirrors shown waiting for their answer, remembered at most (the newest
/// rows'): what a catch-up reads again, in case the note of a late answer
/// was lost with the connection or past [`NOTES_QUEUED`].
const WAITING_CAP: usize = 1_024;
/// A row's mirrors remembered waiting at most: a listener has a few, and
/// a row written by anyone must not push every other row's out.
const WAITING_PER_ROW: usize = 16;
/// After notes were dropped, the mirrors shown waiting are read again at
/// most this often: a flood of notes must not have the same rows read
/// again at every go. (After a lost connection they are read at once.)
const WAITING_REREAD_EVERY: Duration = Duration::from_secs(5);
/// The widest id range one notification has read: a batch of every
/// listener's rows together is far narrower.
const MAX_RANGE: u64 = 100_000;
/// A connection that only listens sends nothing, so a server gone without
/// a word (a cable, a firewall) is heard of only by TCP keepalives: the
/// first after this long idle, then every [`KEEPALIVE_EVERY`], given up on
/// after [`KEEPALIVE_TRIES`] unanswered (about 25 s in all).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);
const KEEPALIVE_TRIES: u32 = 3;
/// Ids of a range read by one query.
const RANGE_PAGE: i64 = 1_000;
/// The records fetched by one query, in bytes at most (a longer one goes
/// alone): what one read holds.
const READ_BYTES: i64 = 8 * 1024 * 1024;
/// Notifications waiting to be read at most; also the most read in one go.
const NOTES_QUEUED: usize = 1_024;
/// The first wait before connecting again, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The ids of a range and their records' lengths, in id order, a page
/// from `$1` on.
const RANGE_IDS: &str = "SELECT id::bigint, coalesce(octet_length(record::text), 0)::bigint \
     FROM danube_hooks.deliveries WHERE id BETWEEN $1::bigint AND $2::bigint ORDER BY id LIMIT $3::bigint";
/// The rows of some ids, in id order. A record longer than a store line
/// may be comes back as NULL, so it is counted without being fetched.
const READ_IDS: &str = "SELECT id::bigint, listener::text, \
     CASE WHEN octet_length(record::text) <= $2::bigint THEN record::text END \
     FROM danube_hooks.deliveries WHERE id = ANY($1::bigint[]) ORDER BY id";
/// Some ids and their records' lengths, in id order.
const IDS_LENGTHS: &str = "SELECT id::bigint, coalesce(octet_length(record::text), 0)::bigint \
     FROM danube_hooks.deliveries WHERE id = ANY($1::bigint[]) ORDER BY id";
/// The newest ids above one and their records' lengths: what a catch-up
/// may have missed.
const NEWEST_IDS_ABOVE: &str = "SELECT id::bigint, coalesce(octet_length(record::text), 0)::bigint \
     FROM danube_hooks.deliveries WHERE id > $1::bigint ORDER BY id DESC LIMIT $2::bigint";

/// The ids shown, within [`SEEN_CAP`].
#[derive(Debug, Default)]
pub(crate) struct Seen {
    ids: BTreeSet<u64>,
    /// The highest id forgotten past the cap: it and those below count as
    /// shown.
    forgotten: u64,
    /// The mirrors' late answers shown (id, index), within [`SEEN_CAP`]:
    /// past it the lowest ids' are forgotten.
    mirrors: BTreeSet<(u64, usize)>,
    /// Mirrors shown waiting for their answer (id, index), within
    /// [`WAITING_CAP`]: past it the lowest ids' are forgotten.
    waiting: BTreeSet<(u64, usize)>,
    /// Ids at or below this are not looked for by a catch-up: older than
    /// the history the dashboard opened with, or than what it has shown
    /// since. A row that commits later than that many newer ones is not
    /// seen by a catch-up; the live feed still shows it.
    low: u64,
}

impl Seen {
    /// The ids of the history shown at start; a catch-up looks above `low`.
    pub(crate) fn new(shown: impl IntoIterator<Item = u64>, low: u64) -> Self {
        let mut seen = Seen {
            low,
            ..Seen::default()
        };
        for id in shown {
            seen.first_time(id);
        }
        seen
    }

    /// Whether `id` is shown for the first time; it counts as shown from
    /// now on.
    pub(crate) fn first_time(&mut self, id: u64) -> bool {
        if id <= self.forgotten || !self.ids.insert(id) {
            return false;
        }
        while self.ids.len() > SEEN_CAP {
            if let Some(oldest) = self.ids.pop_first() {
                self.forgotten = oldest;
                self.low = self.low.max(oldest);
            }
        }
        true
    }

    fn shown(&self, id: u64) -> bool {
        id <= self.forgotten || self.ids.contains(&id)
    }

    /// `delivery` is shown: its mirrors that have answered count as shown
    /// (a note naming one, queued before the row was read, shows nothing
    /// again), and those waiting are remembered, so a catch-up reads their
    /// answers again.
    pub(crate) fn mirrors_in(&mut self, delivery: &Delivery) {
        for (index, mirror) in delivery.mirrors.iter().enumerate() {
            if !mirror.is_pending() {
                self.mirror_shown(delivery.id, index);
            } else if index < WAITING_PER_ROW && !self.mirrors.contains(&(delivery.id, index)) {
                self.waiting.insert((delivery.id, index));
            }
        }
        while self.waiting.len() > WAITING_CAP {
            self.waiting.pop_first();
        }
    }

    /// Mirror `index` of row `id` has had its late answer shown.
    fn mirror_shown(&mut self, id: u64, index: usize) {
        self.waiting.remove(&(id, index));
        self.mirrors.insert((id, index));
        while self.mirrors.len() > SEEN_CAP {
            self.mirrors.pop_first();
        }
    }

    /// Whether `id` is among the ids remembered (not forgotten past the cap).
    fn holds(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }
}

/// A connection that has asked for the channel's notifications.
pub(crate) struct Listening {
    client: Client,
    notes_rx: mpsc::Receiver<Notification>,
    /// Set when a notification found the queue full and was dropped.
    dropped: Arc<AtomicBool>,
}

impl Listening {
    /// The highest id in the table now (0 when empty).
    pub(crate) async fn newest_id(&self, target: &Target) -> Result<u64, PgError> {
        let row = self
            .client
            .query_one(
                "SELECT coalesce(max(id), 0)::bigint FROM danube_hooks.deliveries",
                &[],
            )
            .await
            .map_err(|err| PgError::query(target, &err))?;
        let newest: i64 = row.try_get(0).map_err(|err| PgError::query(target, &err))?;
        Ok(u64::try_from(newest).unwrap_or(0))
    }
}

/// Connect, check the schema, and `LISTEN`: from here on every committed
/// batch is announced to this connection.
pub(crate) async fn listen(target: &Target) -> Result<Listening, PgError> {
    let (queue, notes_rx) = mpsc::channel(NOTES_QUEUED);
    let dropped = Arc::new(AtomicBool::new(false));
    let notes = Notes {
        queue,
        dropped: Arc::clone(&dropped),
    };
    let mut target = target.clone();
    target
        .config
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_EVERY)
        .keepalives_retries(KEEPALIVE_TRIES);
    let target = &target;
    let client = connect(target, Some(notes)).await?;
    schema::check(&client, target).await?;
    client
        .batch_execute(&format!("LISTEN {}", schema::CHANNEL))
        .await
        .map_err(|err| PgError::query(target, &err))?;
    Ok(Listening {
        client,
        notes_rx,
        dropped,
    })
}

/// The feed: where it reads, where it announces, what it has shown.
pub(crate) struct Feed {
    target: Arc<Target>,
    bus: DeliveryStore,
    seen: Seen,
    /// After a lost connection, at most this many rows committed meanwhile
    /// are read back, the newest: what the dashboard keeps.
    catch_up_max: usize,
    /// When the mirrors shown waiting were last read again.
    waiting_read: Option<Instant>,
    /// Notes were dropped since: the mirrors shown waiting are to be read
    /// again, once [`WAITING_REREAD_EVERY`] has passed.
    waiting_owed: bool,
}

/// Why a catch-up runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CatchUp {
    /// The connection was made again: notes sent meanwhile were lost.
    Reconnected,
    /// Notes were dropped past [`NOTES_QUEUED`].
    NotesDropped,
}

impl Feed {
    pub(crate) fn new(
        target: Arc<Target>,
        bus: DeliveryStore,
        seen: Seen,
        catch_up_max: usize,
    ) -> Feed {
        Feed {
            target,
            bus,
            seen,
            catch_up_max,
            waiting_read: None,
            waiting_owed: false,
        }
    }

    /// Follow the table until `shutdown`: each batch as it is announced,
    /// and after a lost connection, the rows committed meanwhile.
    pub(crate) async fn follow(mut self, mut listening: Listening, shutdown: CancellationToken) {
        loop {
            let lost = tokio::select! {
                () = shutdown.cancelled() => return,
                lost = self.follow_until_lost(&mut listening) => lost,
            };
            self.bus.warning(format!(
                "lost the connection to {}: {lost}; connecting again…",
                self.target
            ));
            listening = match self.reconnect(&shutdown).await {
                Some(listening) => listening,
                None => return,
            };
        }
    }

    /// Read each announced range until the connection is lost; why it was.
    async fn follow_until_lost(&mut self, listening: &mut Listening) -> String {
        loop {
            let next = match self.reread_owed_at() {
                Some(at) => tokio::select! {
                    note = listening.notes_rx.recv() => note,
                    () = tokio::time::sleep_until(at) => {
                        let waiting = self.seen.waiting.clone();
                        if let Err(err) = self.reread_waiting(&listening.client, &waiting).await {
                            return super::connect::describe(&self.target, &err);
                        }
                        continue;
                    }
                },
                None => listening.notes_rx.recv().await,
            };
            let Some(first) = next else {
                return "the connection closed".to_owned();
            };
            // What else is waiting is read in the same go, each range once.
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            let mut mirrors: BTreeSet<(u64, usize)> = BTreeSet::new();
            let mut take = |note: &Notification| match note_of(note) {
                Some(Note::Range(low, high)) => ranges.push((low, high)),
                Some(Note::Mirror(id, index)) => {
                    mirrors.insert((id, index));
                }
                None => {}
            };
            let rx = &mut listening.notes_rx;
            in_one_go(first, || rx.try_recv().ok(), |note| take(&note));
            if listening.dropped.swap(false, Ordering::Relaxed)
                && let Err(err) = self.catch_up(listening, CatchUp::NotesDropped).await
            {
                return match err {
                    PgError::Query { reason, .. } => reason,
                    err => err.to_string(),
                };
            }
            for (low, high) in merged(ranges) {
                if let Err(err) = self.read_range(&listening.client, low, high).await {
                    return super::connect::describe(&self.target, &err);
                }
            }
            if let Err(err) = self.read_mirrors(&listening.client, &mirrors).await {
                return super::connect::describe(&self.target, &err);
            }
        }
    }

    /// Announce the rows of `low..=high` not shown yet: their ids a page at
    /// a time, then only the records not shown.
    async fn read_range(
        &mut self,
        client: &Client,
        mut low: i64,
        high: i64,
    ) -> Result<(), tokio_postgres::Error> {
        loop {
            let page = client.query(RANGE_IDS, &[&low, &high, &RANGE_PAGE]).await?;
            let ids = self.not_shown(&page)?;
            self.read_records(client, &ids).await?;
            let last: Option<i64> = page.last().map(|row| row.try_get(0)).transpose()?;
            match last {
                Some(last) if page.len() as i64 == RANGE_PAGE && last < high => low = last + 1,
                _ => return Ok(()),
            }
        }
    }

    /// The ids and lengths of rows (`id`, `length`) not shown yet.
    fn not_shown(&self, rows: &[Row]) -> Result<Vec<(i64, i64)>, tokio_postgres::Error> {
        let mut ids = Vec::new();
        for row in rows {
            let id: i64 = row.try_get(0)?;
            if u64::try_from(id).is_ok_and(|id| !self.seen.shown(id)) {
                ids.push((id, row.try_get(1)?));
            }
        }
        Ok(ids)
    }

    /// Fetch and announce the records of `ids` (id, length), a few MiB per
    /// query. How many were announced.
    async fn read_records(
        &mut self,
        client: &Client,
        ids: &[(i64, i64)],
    ) -> Result<usize, tokio_postgres::Error> {
        let mut shown = 0;
        for group in groups(ids, READ_BYTES, max_line()) {
            let rows = client.query(READ_IDS, &[&group, &max_line()]).await?;
            shown += self.announce(&rows);
        }
        Ok(shown)
    }

    /// Show the mirrors' late answers `mirrors` (id, index) names, of rows
    /// held here: each row's record read again (a few MiB per query), and
    /// the answer it now holds announced, once (a mirror answers once; a
    /// note naming it again is anyone's, and costs nothing). Of the
    /// mirrors remembered waiting, only those their row still shows
    /// waiting stay remembered: a row gone, unreadable or changed is not
    /// read again.
    async fn read_mirrors(
        &mut self,
        client: &Client,
        mirrors: &BTreeSet<(u64, usize)>,
    ) -> Result<(), tokio_postgres::Error> {
        let mut was_waiting = BTreeSet::new();
        for answer in mirrors {
            if self.seen.waiting.remove(answer) {
                was_waiting.insert(*answer);
            }
        }
        let mirrors: BTreeSet<(u64, usize)> = mirrors
            .iter()
            .filter(|(id, _)| self.seen.holds(*id))
            .filter(|answer| !self.seen.mirrors.contains(answer))
            .copied()
            .collect();
        let mut ids: Vec<i64> = mirrors
            .iter()
            .filter_map(|(id, _)| i64::try_from(*id).ok())
            .collect();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let lengths = client.query(IDS_LENGTHS, &[&ids]).await?;
        let lengths = lengths
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(i64, i64)>, tokio_postgres::Error>>()?;
        for group in groups(&lengths, READ_BYTES, max_line()) {
            for row in client.query(READ_IDS, &[&group, &max_line()]).await? {
                let Some(id) = row_id(&row) else {
                    continue;
                };
                let text = row.try_get(2).ok().flatten();
                let Some(record) = record_of(id, None, text) else {
                    continue;
                };
                for &(_, index) in mirrors.range((id, 0)..=(id, usize::MAX)) {
                    match record.mirrors.get(index) {
                        Some(mirror) if !mirror.is_pending() => {
                            self.seen.mirror_shown(id, index);
                            self.bus.announce_mirrored(id, index, mirror.clone());
                        }
                        Some(_) if was_waiting.contains(&(id, index)) => {
                            self.seen.waiting.insert((id, index));
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Connect again, with a growing wait, until connected or `shutdown`;
    /// then read what was committed meanwhile.
    async fn reconnect(&mut self, shutdown: &CancellationToken) -> Option<Listening> {
        let mut wait = FIRST_BACKOFF;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(wait) => {}
            }
            let attempt = async {
                let listening = listen(&self.target).await?;
                let caught_up = self.catch_up(&listening, CatchUp::Reconnected).await?;
                Ok::<_, PgError>((listening, caught_up))
            };
            match attempt.await {
                Ok((listening, (shown, older))) => {
                    // Told as the loss was (a warning): headless output,
                    // which prints warnings only, says it is back too.
                    let mut notice = format!(
                        "connected to {} again; {shown} committed meanwhile shown",
                        self.target
                    );
                    if older {
                        notice.push_str(
                            " (older ones too many to keep: `danube-hooks log --store` lists \
                             them)",
                        );
                    }
                    self.bus.warning(notice);
                    return Some(listening);
                }
                Err(err) => {
                    self.bus
                        .warning(format!("{err}; trying again in {} ms", wait.as_millis()));
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Show the rows committed while the connection was lost: every id
    /// above [`Seen::low`] not shown yet, the newest [`Feed::catch_up_max`];
    /// and the late answers of mirrors shown waiting, whose notes may have
    /// been lost too. Called once `LISTEN` is on again, so what commits
    /// from then on is announced, and read, as usual. How many rows were
    /// shown, and whether older ones were left out.
    async fn catch_up(
        &mut self,
        listening: &Listening,
        why: CatchUp,
    ) -> Result<(usize, bool), PgError> {
        let target = Arc::clone(&self.target);
        let fail = |err: tokio_postgres::Error| PgError::query(&target, &err);
        // Before the rows are read: their mirrors are read with them.
        let waiting = self.seen.waiting.clone();
        let low = i64::try_from(self.seen.low).unwrap_or(i64::MAX);
        let limit = i64::try_from(SEEN_CAP + self.catch_up_max).unwrap_or(i64::MAX);
        let rows = listening
            .client
            .query(NEWEST_IDS_ABOVE, &[&low, &limit])
            .await
            .map_err(fail)?;
        let mut missed = self.not_shown(&rows).map_err(fail)?;
        let older = missed.len() > self.catch_up_max || rows.len() as i64 == limit;
        missed.truncate(self.catch_up_max);
        // Oldest first, as the live feed announces them.
        missed.reverse();
        let shown = self
            .read_records(&listening.client, &missed)
            .await
            .map_err(fail)?;
        if why == CatchUp::Reconnected || self.next_reread() <= Instant::now() {
            self.reread_waiting(&listening.client, &waiting)
                .await
                .map_err(fail)?;
        } else {
            self.waiting_owed = true;
        }
        Ok((shown, older))
    }

    /// When the mirrors shown waiting are owed a read, the time it is due.
    fn reread_owed_at(&self) -> Option<Instant> {
        self.waiting_owed.then(|| self.next_reread())
    }

    /// The earliest the mirrors shown waiting may be read again after
    /// dropped notes: [`WAITING_REREAD_EVERY`] after the last read.
    fn next_reread(&self) -> Instant {
        self.waiting_read
            .map_or_else(Instant::now, |at| at + WAITING_REREAD_EVERY)
    }

    /// Read the mirrors shown `waiting` again, now.
    async fn reread_waiting(
        &mut self,
        client: &Client,
        waiting: &BTreeSet<(u64, usize)>,
    ) -> Result<(), tokio_postgres::Error> {
        self.waiting_read = Some(Instant::now());
        self.waiting_owed = false;
        self.read_mirrors(client, waiting).await
    }

    /// Announce the rows not shown yet, in id order; count those that are
    /// not records. How many were announced.
    fn announce(&mut self, rows: &[Row]) -> usize {
        let mut shown = 0;
        let mut bad = Vec::new();
        for row in rows {
            let Some(id) = row_id(row) else {
                continue;
            };
            if !self.seen.first_time(id) {
                continue;
            }
            let (listener, text) = (row.try_get(1).ok().flatten(), row.try_get(2).ok().flatten());
            match record_of(id, listener, text) {
                Some(record) => {
                    self.seen.mirrors_in(&record);
                    self.bus.announce(Arc::new(record));
                    shown += 1;
                }
                None => bad.push(id),
            }
        }
        if !bad.is_empty() {
            self.bus.warning(unparsable_warning(&bad));
        }
        shown
    }
}

/// `first` and what else is waiting (`next`), at most [`NOTES_QUEUED`] in
/// all, each handed to `take`; what is not taken stays waiting.
fn in_one_go<T>(first: T, mut next: impl FnMut() -> Option<T>, mut take: impl FnMut(T)) {
    take(first);
    for _ in 1..NOTES_QUEUED {
        let Some(item) = next() else {
            break;
        };
        take(item);
    }
}

/// A read row's id (its first column), when it is one.
fn row_id(row: &Row) -> Option<u64> {
    row.try_get::<_, i64>(0)
        .ok()
        .and_then(|id| u64::try_from(id).ok())
}

/// The longest record fetched, as the query's parameter.
fn max_line() -> i64 {
    i64::try_from(MAX_LINE).unwrap_or(i64::MAX)
}

/// The record a row holds, when it is one: it parses as a store line does
/// and names the row's id. A record that does not name its listener gets
/// the row's.
pub(crate) fn record_of(id: u64, listener: Option<String>, text: Option<&str>) -> Option<Delivery> {
    let mut record = serde_json::from_str::<Delivery>(text?).ok()?;
    if record.id != id {
        return None;
    }
    if record.listener.is_none() {
        record.listener = listener;
    }
    Some(record)
}

/// `ids` (id, length) in groups fetched by one query each: at most
/// `budget` bytes of records a group, or one record alone. A record longer
/// than `max_line` is not fetched, so it costs nothing.
fn groups(ids: &[(i64, i64)], budget: i64, max_line: i64) -> Vec<Vec<i64>> {
    let mut groups: Vec<Vec<i64>> = Vec::new();
    let mut bytes = 0i64;
    for &(id, len) in ids {
        let cost = if len > max_line { 0 } else { len.max(0) };
        match groups.last_mut() {
            Some(group) if bytes.saturating_add(cost) <= budget => {
                group.push(id);
                bytes += cost;
            }
            _ => {
                groups.push(vec![id]);
                bytes = cost;
            }
        }
    }
    groups
}

/// The status line's words for rows that are not records.
fn unparsable_warning(ids: &[u64]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(|id| format!("#{id}")).collect();
    let more = if ids.len() > 5 { ", …" } else { "" };
    format!(
        "{} row{} of {} not shown: not a delivery record ({}{more})",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        schema::DELIVERIES,
        shown.join(", ")
    )
}

/// What a notification on the channel names.
#[derive(Debug, PartialEq)]
enum Note {
    /// A batch committed: its lowest and highest ids.
    Range(u64, u64),
    /// Mirror `.1` of row `.0` has its late answer in the row.
    Mirror(u64, usize),
}

/// What `note` names; `None` when it is neither (anyone may notify).
fn note_of(note: &Notification) -> Option<Note> {
    if note.channel() != schema::CHANNEL {
        return None;
    }
    parse_note(note.payload())
}

fn parse_note(payload: &str) -> Option<Note> {
    match payload.strip_prefix(schema::MIRROR_NOTE) {
        Some(rest) => {
            let (id, index) = rest.trim().split_once(' ')?;
            let id: u64 = id.parse().ok()?;
            i64::try_from(id).ok()?;
            Some(Note::Mirror(id, index.trim().parse().ok()?))
        }
        None => parse_range(payload).map(|(low, high)| Note::Range(low, high)),
    }
}

/// The id range of a batch's note (`<min_id> <max_id>`), as the query's
/// parameters; `None` when it is not one. Never wider than [`MAX_RANGE`]:
/// a wider one keeps its top.
fn parse_range(payload: &str) -> Option<(u64, u64)> {
    let (low, high) = payload.trim().split_once(' ')?;
    let (low, high): (u64, u64) = (low.parse().ok()?, high.trim().parse().ok()?);
    // The query takes ids as PostgreSQL's bigint.
    if low > high || i64::try_from(high).is_err() {
        return None;
    }
    Some((low.max(high.saturating_sub(MAX_RANGE - 1)), high))
}

/// Ranges sorted and joined where they overlap or touch, as `i64` for the
/// query.
fn merged(mut ranges: Vec<(u64, u64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut joined: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match joined.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => joined.push((low, high)),
        }
    }
    joined
        .into_iter()
        .filter_map(|(low, high)| Some((i64::try_from(low).ok()?, i64::try_from(high).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    #[test]
    fn a_notification_names_a_range_or_nothing() {
        assert_eq!(parse_range("3 9"), Some((3, 9)));
        assert_eq!(parse_range(" 7 7 "), Some((7, 7)));
        for hostile in [
            "",
            "9 3",
            "1",
            "a b",
            "-1 4",
            "1 2 3",
            "1 99999999999999999999",
        ] {
            assert_eq!(parse_range(hostile), None, "{hostile:?}");
        }
        let wide = parse_range(&format!("1 {}", 10 * MAX_RANGE)).unwrap();
        assert_eq!(wide, (9 * MAX_RANGE + 1, 10 * MAX_RANGE), "its top is kept");
        assert_eq!(parse_range(&format!("1 {}", u64::MAX)), None, "past bigint");
    }

    #[test]
    fn one_go_takes_at_most_a_queue_of_notes_and_leaves_the_rest_waiting() {
        let mut waiting: std::collections::VecDeque<usize> = (1..NOTES_QUEUED + 5).collect();
        let mut taken = Vec::new();
        in_one_go(0, || waiting.pop_front(), |n| taken.push(n));
        assert_eq!(taken, (0..NOTES_QUEUED).collect::<Vec<_>>());
        assert_eq!(waiting.len(), 5, "none taken out and dropped");
        assert_eq!(waiting.front(), Some(&NOTES_QUEUED));
        let mut taken = Vec::new();
        in_one_go(7, || None, |n| taken.push(n));
        assert_eq!(taken, [7]);
    }

    #[test]
    fn mirrors_shown_waiting_are_remembered_until_answered_within_the_caps() {
        let with_mirrors = |id: u64, statuses: &[Option<u16>]| {
            let mut delivery = crate::test_support::sample(id, b"{}");
            delivery.mirrors = statuses
                .iter()
                .map(|&status| crate::delivery::MirrorRecord {
                    url: "http://127.0.0.1:3001/".into(),
                    status,
                    error: None,
                    duration_ms: 1,
                })
                .collect();
            delivery
        };
        let mut seen = Seen::new([], 0);
        seen.mirrors_in(&with_mirrors(5, &[Some(200), None, None]));
        assert_eq!(
            seen.waiting,
            BTreeSet::from([(5, 1), (5, 2)]),
            "only the waiting"
        );
        assert!(
            seen.mirrors.contains(&(5, 0)),
            "an answer the row holds counts as shown, so its note shows nothing again"
        );
        seen.mirror_shown(5, 1);
        assert_eq!(seen.waiting, BTreeSet::from([(5, 2)]), "an answer shown");
        seen.mirrors_in(&with_mirrors(5, &[Some(200), None, None]));
        assert!(
            !seen.waiting.contains(&(5, 1)),
            "an answer shown is not waited for again"
        );
        seen.mirrors_in(&with_mirrors(9, &[None; WAITING_PER_ROW + 10]));
        assert_eq!(
            seen.waiting.range((9, 0)..=(9, usize::MAX)).count(),
            WAITING_PER_ROW,
            "one row's at most"
        );
        for id in 10..10 + WAITING_CAP as u64 {
            seen.mirrors_in(&with_mirrors(id, &[None]));
        }
        assert_eq!(seen.waiting.len(), WAITING_CAP);
        assert!(
            !seen.waiting.contains(&(5, 2)),
            "the oldest row's forgotten"
        );
    }

    #[test]
    fn the_mirrors_answers_shown_are_remembered_within_the_cap() {
        let mut seen = Seen::new([1, 2], 0);
        assert!(seen.holds(1) && !seen.holds(3));
        for id in 0..=SEEN_CAP as u64 {
            seen.mirror_shown(id, 0);
        }
        assert_eq!(seen.mirrors.len(), SEEN_CAP);
        assert!(!seen.mirrors.contains(&(0, 0)), "the lowest forgotten");
        assert!(seen.mirrors.contains(&(SEEN_CAP as u64, 0)));
    }

    #[test]
    fn a_notification_names_a_mirrors_late_answer_or_nothing() {
        let note = schema::mirror_note(42, 1);
        assert_eq!(parse_note(&note), Some(Note::Mirror(42, 1)));
        assert_eq!(parse_note("3 9"), Some(Note::Range(3, 9)));
        for hostile in [
            "mirror ",
            "mirror 42",
            "mirror x 1",
            "mirror 42 -1",
            "mirror 42 1 2",
            "mirror -42 1",
            "mirrors 42 1",
            "mirror 18446744073709551615 0",
        ] {
            assert_eq!(parse_note(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn ranges_are_read_once_each() {
        assert_eq!(
            merged(vec![(5, 9), (1, 3), (4, 4), (20, 22), (8, 12)]),
            [(1, 12), (20, 22)]
        );
        assert!(merged(Vec::new()).is_empty());
    }

    #[test]
    fn records_are_fetched_a_few_mib_at_a_time() {
        let ids = [(1, 5), (2, 5), (3, 20), (4, 1), (5, 100), (6, 2), (7, -1)];
        assert_eq!(
            groups(&ids, 10, 50),
            [vec![1, 2], vec![3], vec![4, 5, 6, 7]],
            "a record too long to fetch costs nothing; one over the budget goes alone"
        );
        assert_eq!(groups(&[(1, 30)], 10, 50), [vec![1]]);
        assert!(groups(&[], 10, 50).is_empty());
    }

    #[test]
    fn seen_ids_are_shown_once_and_bounded() {
        let mut seen = Seen::new([4, 6], 3);
        assert!(!seen.first_time(6), "shown with the history");
        assert!(
            seen.first_time(5),
            "a late commit below the newest is shown"
        );
        assert!(!seen.first_time(5));
        assert!(seen.first_time(2), "below low: still shown when announced");
        for id in 100..100 + SEEN_CAP as u64 {
            seen.first_time(id);
        }
        assert!(seen.ids.len() <= SEEN_CAP);
        assert!(!seen.first_time(4), "forgotten counts as shown");
        assert!(seen.low >= 6, "a catch-up looks above what was forgotten");
        assert!(seen.shown(100) && !seen.shown(100 + SEEN_CAP as u64));
    }

    #[test]
    fn a_row_is_shown_only_when_it_is_a_record_of_its_id() {
        let mut record = sample(7, b"{}");
        record.listener = None;
        let line = record.to_json_line();
        let parsed = record_of(7, Some("ann@laptop".into()), Some(&line)).unwrap();
        assert_eq!(parsed.listener.as_deref(), Some("ann@laptop"), "the row's");
        record.listener = Some("bob@ci".into());
        let line = record.to_json_line();
        let parsed = record_of(7, Some("ann@laptop".into()), Some(&line)).unwrap();
        assert_eq!(
            parsed.listener.as_deref(),
            Some("bob@ci"),
            "the record's own"
        );
        assert!(record_of(8, None, Some(&line)).is_none(), "another id");
        assert!(record_of(7, None, Some("\u{1b}[2Jnot json")).is_none());
        assert!(record_of(7, None, None).is_none(), "too long to fetch");
        let warning = unparsable_warning(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            warning,
            "6 rows of danube_hooks.deliveries not shown: not a delivery record \
             (#1, #2, #3, #4, #5, …)"
        );
    }
}
