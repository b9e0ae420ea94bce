//! The dashboard's state and key handling. No I/O: deliveries and keys come
//! in, [`Effect`]s go out for the event loop in `tui.rs` to carry out, and
//! `view.rs` draws what is here without changing it.
//!
//! The history is a window of the newest deliveries (the store keeps them
//! all); the list shows the part of it that passes the filter. Selection is
//! an index into that list, and `top` the first row on screen, so drawing
//! touches only the rows that fit.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::BuildHasher as _;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::FixedOffset;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::ReplayMode;
use super::filter::Filter;
use super::in_flight::InFlightBoard;
use crate::danube::poller::Poll;
use crate::danube::reconcile::{self, LocalRecord, Row};
use crate::delivery::Delivery;
use crate::policy::{Pattern, Policy, PolicyHandle, Rule};
use crate::signature::Verdict;

/// Deliveries kept in memory: the newest this many.
pub(crate) const HISTORY_CAP: usize = 10_000;
/// Bytes of deliveries kept in memory (SPEC §9: every in-memory history
/// has a byte budget). Past it, the oldest deliveries keep their summary
/// and drop their body, which is read back from the store when shown; if
/// the summaries alone pass it, the oldest go. 10,000 bodies of 1 MiB once
/// took the dashboard to 1.66 GB.
pub(crate) const HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// What the dashboard shows about its own setup; fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct AppConfig {
    /// Where deliveries are received, e.g. `http://127.0.0.1:4000`.
    pub(crate) listen_url: String,
    /// The secrets' fingerprints (`whsec_…abcd`); empty when none is set.
    pub(crate) fingerprints: Vec<String>,
    /// The store file; `None` with `--no-store`.
    pub(crate) store_path: Option<PathBuf>,
    /// The `--forward-to` target, when set.
    pub(crate) forward_url: Option<String>,
    /// `listen --register`'s webhook (id → URL · secret fingerprint · what
    /// happens on exit): a header row when set; re-pointed, it changes.
    pub(crate) danube_webhook: Option<String>,
    /// The tunnel `listen --tunnel` runs (program, URL, pid, starts): a
    /// header row when set; it changes when the tunnel starts again.
    pub(crate) tunnel: Option<String>,
    /// Who was asked to post here, for the empty list's hint on how to
    /// get a first delivery.
    pub(crate) registered_with: RegisteredWith,
    /// Where warnings and errors go while the dashboard is up.
    pub(crate) log_path: PathBuf,
    /// False when `NO_COLOR` is set: no colours at all, only text and
    /// modifiers.
    pub(crate) color: bool,
    /// Times are shown at this offset (the local one, fixed at start, so a
    /// render depends on nothing but the state).
    pub(crate) utc_offset: FixedOffset,
    /// The most deliveries kept in memory.
    pub(crate) history_cap: usize,
    /// The most bytes of deliveries kept in memory ([`HISTORY_BYTES`]).
    pub(crate) history_bytes: usize,
}

/// Where `listen` registered the webhook that posts to this listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum RegisteredWith {
    /// Nothing was registered: deliveries come from wherever the developer
    /// points a webhook (through a tunnel) or `trigger --to`.
    #[default]
    Nothing,
    /// Danube itself: a real event (a workflow or a tool run) delivers
    /// here, signed with a secret Danube made.
    Danube,
    /// The emulator (`danube-hooks emulate`) with its API at `api_url`:
    /// `trigger EVENT --emulator API_URL` has it deliver.
    Emulator { api_url: String },
}

impl RegisteredWith {
    /// Registered through the API at `origin` (`scheme://authority`): one
    /// on this machine is taken for the emulator, as Danube is never there.
    pub(crate) fn api(origin: &str) -> RegisteredWith {
        if crate::danube::api::is_local_danube(origin) {
            RegisteredWith::Emulator {
                api_url: origin.to_owned(),
            }
        } else {
            RegisteredWith::Danube
        }
    }
}

/// Danube's side of the deliveries, when a webhook is known (`listen
/// --webhook`, `--register`): the newest poll of its log joined with the
/// history.
#[derive(Debug, Default)]
pub(crate) struct DanubeSide {
    pub(crate) webhook_id: String,
    /// Each delivery in the history as the join needs it: its body digested
    /// when it arrived, so a body dropped from memory later still matches.
    local: HashMap<u64, LocalRecord>,
    /// The join of the last log read; empty until the first answer.
    rows: Vec<Row>,
    /// For each delivery a row holds, the row's index.
    row_of: HashMap<u64, usize>,
    /// Whether a poll has answered with a log yet.
    polled: bool,
    /// `D` asked for this poll: its answer is told on the status line.
    asked: bool,
    /// When the dashboard began to watch: its history holds only what
    /// arrived since, so an older delivery Danube lists may well have
    /// arrived (in an earlier run, and be in the store) and is not counted
    /// as never arrived.
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// When Danube created the webhook, once a poll has read it.
    webhook_created: Option<chrono::DateTime<chrono::Utc>>,
}

impl DanubeSide {
    /// Danube's deliveries in the last log read, made since the dashboard
    /// began to watch, of which nothing reached the listener (no row in
    /// the list can show them).
    pub(crate) fn never_arrived(&self) -> usize {
        self.rows
            .iter()
            .filter(|row| {
                row.findings
                    .iter()
                    .any(|f| f.kind == reconcile::FindingKind::NeverArrived)
            })
            .filter(|row| {
                let created = row
                    .danube
                    .as_ref()
                    .and_then(|d| d.created_at.as_deref())
                    .and_then(reconcile::parse_time);
                match (created, self.since) {
                    (Some(created), Some(since)) => created >= since,
                    _ => true,
                }
            })
            .count()
    }
}

/// The deliveries of the history whose group has one hash, in id order.
#[derive(Debug, Default)]
struct Bucket {
    members: VecDeque<Arc<Delivery>>,
    /// Two groups share the hash: members are told apart by their group.
    /// Kept until the bucket empties.
    mixed: bool,
}

/// What Danube says of one delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DanubeMark<'a> {
    /// No log read yet.
    Waiting,
    /// Not in the last join: older than Danube's listed deliveries, or
    /// arrived after the last poll.
    NotJudged,
    /// Arrived before the webhook was created, so none of its deliveries.
    BeforeWebhook,
    /// Its row: a delivery of Danube's, or (with `danube` None) requests
    /// Danube does not know.
    Row(&'a Row),
}

/// Which pane the movement keys act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
    List,
    Detail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    Overview,
    Headers,
    Body,
    Response,
}

impl Tab {
    pub(crate) const ALL: [Tab; 4] = [Tab::Overview, Tab::Headers, Tab::Body, Tab::Response];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Headers => "Headers",
            Tab::Body => "Body",
            Tab::Response => "Response",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    fn step(self, by: isize) -> Tab {
        let len = Tab::ALL.len() as isize;
        Tab::ALL[(self.index() as isize + by).rem_euclid(len) as usize]
    }
}

/// How the body tab shows the bytes; `b` cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyMode {
    Pretty,
    Raw,
    Hex,
}

impl BodyMode {
    pub(crate) fn label(self) -> &'static str {
        match self {
            BodyMode::Pretty => "pretty",
            BodyMode::Raw => "raw",
            BodyMode::Hex => "hex",
        }
    }

    fn next(self) -> BodyMode {
        match self {
            BodyMode::Pretty => BodyMode::Raw,
            BodyMode::Raw => BodyMode::Hex,
            BodyMode::Hex => BodyMode::Pretty,
        }
    }
}

/// What has the keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    /// Typing a filter on the status line.
    Filter,
    Picker(Picker),
    Help,
}

/// What the event loop must do after a key; the I/O `App` does not do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    None,
    Quit,
    /// Copy a curl command for this delivery (OSC 52 and a file).
    Copy(Arc<Delivery>),
    /// Read Danube's delivery log now (`D`).
    PollDanube,
    Replay(Arc<Delivery>, ReplayMode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusKind {
    Info,
    Success,
    Error,
}

/// The one-line message under the detail pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) kind: StatusKind,
    /// Unescaped; the view escapes it.
    pub(crate) text: String,
}

/// Running totals since the dashboard started (not only the history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) total: u64,
    pub(crate) valid: u64,
    /// Checked and not valid: mismatch, stale, missing, malformed.
    pub(crate) invalid: u64,
    pub(crate) unchecked: u64,
    /// Answers by class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub(crate) by_class: [u64; 5],
    /// Answered with no HTTP status: timeout, reset, close, garbage.
    pub(crate) no_answer: u64,
}

impl Counters {
    fn count(&mut self, delivery: &Delivery) {
        self.total += 1;
        match delivery.signature.verdict {
            Verdict::Valid => self.valid += 1,
            Verdict::Unchecked => self.unchecked += 1,
            _ => self.invalid += 1,
        }
        match delivery.response.status {
            Some(status @ 100..=599) => self.by_class[usize::from(status / 100) - 1] += 1,
            _ => self.no_answer += 1,
        }
    }
}

/// A one-line text field with a cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LineInput {
    text: String,
    /// In characters, `0..=text.chars().count()`.
    cursor: usize,
    /// The whole text is selected: typing replaces it, Backspace erases it.
    /// Set when a prefilled field gets the focus, so a new rule can be
    /// typed straight away and the old one kept by moving the cursor.
    all_selected: bool,
}

impl LineInput {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            cursor: text.chars().count(),
            all_selected: false,
        }
    }

    pub(crate) fn all_selected(&self) -> bool {
        self.all_selected && !self.text.is_empty()
    }

    fn select_all(&mut self) {
        self.all_selected = true;
        self.cursor = self.text.chars().count();
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Edit by `key`; false when the key is not an editing key.
    fn edit(&mut self, key: KeyEvent) -> bool {
        if std::mem::take(&mut self.all_selected)
            && matches!(
                key.code,
                KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete
            )
        {
            self.text.clear();
            self.cursor = 0;
            if !matches!(key.code, KeyCode::Char(_)) {
                return true;
            }
        }
        let len = self.text.chars().count();
        match key.code {
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.text.clear();
                self.cursor = 0;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.text.remove(at);
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => return false,
        }
        true
    }
}

/// One of the picker's common answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Preset {
    /// A rule as `--respond` takes it.
    pub(crate) rule: &'static str,
    pub(crate) what: &'static str,
}

/// The common answers; `forward` is offered only when forwarding is set.
pub(crate) const PRESETS: [Preset; 10] = [
    Preset {
        rule: "200",
        what: "OK: the delivery succeeds",
    },
    Preset {
        rule: "500",
        what: "server error: Danube retries",
    },
    Preset {
        rule: "503",
        what: "unavailable: Danube retries",
    },
    Preset {
        rule: "429",
        what: "too many requests",
    },
    Preset {
        rule: "timeout",
        what: "no answer, held past Danube's 10 s deadline",
    },
    Preset {
        rule: "reset",
        what: "abort the connection (TCP RST)",
    },
    Preset {
        rule: "close",
        what: "close the connection without an answer",
    },
    Preset {
        rule: "garbage",
        what: "write bytes that are not HTTP",
    },
    Preset {
        rule: "12s+200",
        what: "200 after 12 s: a success that comes too late",
    },
    Preset {
        rule: "forward",
        what: "pass each delivery to your receiver",
    },
];

/// The policy picker: the presets, then a field for any rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picker {
    pub(crate) presets: Vec<Preset>,
    /// `0..presets.len()` a preset; `presets.len()` the sequence field.
    pub(crate) selected: usize,
    /// Rules as `--respond` takes them, several separated by `;`.
    pub(crate) field: LineInput,
    pub(crate) error: Option<FieldError>,
    /// The rules in force when the picker opened (`--respond`'s, or an
    /// earlier pick): a preset replaces them all, for every event.
    pub(crate) replaces: Vec<Rule>,
}

impl Picker {
    pub(crate) fn on_field(&self) -> bool {
        self.selected == self.presets.len()
    }

    /// The rules in force that name events (`workflow.*=timeout`): the
    /// ones a developer may not expect a preset to drop.
    pub(crate) fn event_rules(&self) -> Vec<&Rule> {
        self.replaces
            .iter()
            .filter(|rule| matches!(rule.pattern, Some(Pattern::Exact(_) | Pattern::Prefix(_))))
            .collect()
    }
}

/// Why the sequence field does not parse, placed in the field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// 1-based, in characters of the whole field.
    pub(crate) column: usize,
    /// `expected …; found "…"` (unescaped).
    pub(crate) message: String,
}

/// Everything the dashboard shows, and how keys change it.
pub(crate) struct App {
    pub(crate) config: AppConfig,
    /// The policy in force, shared with the listener.
    pub(crate) policy: PolicyHandle,
    /// The newest deliveries, in id order.
    history: VecDeque<Arc<Delivery>>,
    /// How many of `history`'s oldest have had their body dropped: always
    /// a prefix, since bodies are dropped oldest first.
    stripped: usize,
    /// [`weight`] of everything in `history`, within `history_bytes`.
    held_bytes: usize,
    /// The deliveries of `history` by the hash of their group, in id
    /// order, kept at ingest and eviction: the overview's timeline of the
    /// selected delivery is a lookup, not a walk over the whole history
    /// every frame.
    groups: HashMap<u64, Bucket, foldhash::fast::RandomState>,
    /// The hash of each `history` delivery's group, in the same order: an
    /// eviction finds its bucket without reading the oldest record's group
    /// (cold memory by then; reading it doubled the cost of an ingest).
    group_hashes: VecDeque<u64>,
    /// Seeded per process, so group keys cannot be chosen to collide.
    group_hasher: foldhash::fast::RandomState,
    /// The selected delivery whole, read back from the store after its
    /// body was dropped; at most one.
    opened: Option<Arc<Delivery>>,
    /// The id whose body is being read back, so it is asked for once.
    reading_back: Option<u64>,
    /// The id whose body could not be read back: not asked for again
    /// until the selection moves.
    failed_read_back: Option<u64>,
    /// The deliveries of `history` that pass `filter`, in id order.
    list: VecDeque<Arc<Delivery>>,
    /// Index into `list`; `None` only when it is empty.
    selected: Option<usize>,
    /// The id last selected, kept while a filter being typed matches
    /// nothing, so the selection comes back to it.
    anchor: Option<u64>,
    /// The first row of `list` on screen.
    top: usize,
    /// Rows of the list on screen; set by the event loop from the layout.
    list_rows: usize,
    pub(crate) focus: Focus,
    pub(crate) tab: Tab,
    pub(crate) body_mode: BodyMode,
    /// Auto-scroll off: new deliveries do not move the selection.
    pub(crate) paused: bool,
    pub(crate) mode: Mode,
    detail_scroll: usize,
    /// The largest useful `detail_scroll`, and a page, from the last layout.
    detail_max: usize,
    detail_rows: usize,
    filter: Filter,
    filter_input: LineInput,
    filter_error: Option<String>,
    pub(crate) counters: Counters,
    /// Deliveries the dashboard fell behind on and could not read back
    /// (`--no-store`).
    pub(crate) skipped: u64,
    /// Deliveries arrived and not answered yet, shown under the list.
    pub(crate) in_flight: InFlightBoard,
    last_id: u64,
    status: Option<Status>,
    /// Danube's side; `None` when no webhook is known.
    danube: Option<DanubeSide>,
    /// The last notice of the public side shown ([`App::apply_public`]).
    public_notice_seen: u64,
}

impl App {
    pub(crate) fn new(config: AppConfig, policy: PolicyHandle) -> Self {
        Self {
            config,
            policy,
            history: VecDeque::new(),
            stripped: 0,
            held_bytes: 0,
            groups: HashMap::default(),
            group_hashes: VecDeque::new(),
            group_hasher: foldhash::fast::RandomState::default(),
            opened: None,
            reading_back: None,
            failed_read_back: None,
            list: VecDeque::new(),
            selected: None,
            anchor: None,
            top: 0,
            list_rows: 10,
            focus: Focus::List,
            tab: Tab::Overview,
            body_mode: BodyMode::Pretty,
            paused: false,
            mode: Mode::Normal,
            detail_scroll: 0,
            detail_max: usize::MAX,
            detail_rows: 10,
            filter: Filter::default(),
            filter_input: LineInput::default(),
            filter_error: None,
            counters: Counters::default(),
            skipped: 0,
            in_flight: InFlightBoard::default(),
            last_id: 0,
            status: None,
            danube: None,
            public_notice_seen: 0,
        }
    }

    /// Show Danube's side for `webhook_id`: a column in the list, a line
    /// in the overview, and `D`.
    pub(crate) fn watch_danube(
        &mut self,
        webhook_id: String,
        since: chrono::DateTime<chrono::Utc>,
    ) {
        let local = self
            .history
            .iter()
            .map(|d| (d.id, LocalRecord::of(d)))
            .collect();
        self.danube = Some(DanubeSide {
            webhook_id,
            local,
            since: Some(since),
            ..DanubeSide::default()
        });
    }

    pub(crate) fn danube(&self) -> Option<&DanubeSide> {
        self.danube.as_ref()
    }

    /// What Danube says of delivery `id`; `None` when no webhook is known.
    pub(crate) fn danube_mark(&self, id: u64) -> Option<DanubeMark<'_>> {
        let side = self.danube.as_ref()?;
        if !side.polled {
            return Some(DanubeMark::Waiting);
        }
        let before_webhook = |id| {
            let received = side.local.get(&id).map(|l| l.attempt.received_at);
            matches!(
                (received, side.webhook_created),
                (Some(at), Some(created)) if reconcile::arrived_before(at, created)
            )
        };
        Some(match side.row_of.get(&id) {
            Some(&index) => DanubeMark::Row(&side.rows[index]),
            None if before_webhook(id) => DanubeMark::BeforeWebhook,
            None => DanubeMark::NotJudged,
        })
    }

    /// The public side changed (the tunnel started again, the webhook was
    /// re-pointed): the header rows follow, and a new notice goes on the
    /// status line.
    pub(crate) fn apply_public(&mut self, view: &crate::danube::tunnel::View) {
        self.config.tunnel.clone_from(&view.tunnel);
        if view.webhook.is_some() {
            self.config.danube_webhook.clone_from(&view.webhook);
        }
        if let Some(notice) = &view.notice
            && self.public_notice_seen < notice.seq
        {
            self.public_notice_seen = notice.seq;
            let kind = if notice.is_error {
                StatusKind::Error
            } else {
                StatusKind::Info
            };
            self.set_status(kind, notice.text.clone());
        }
    }

    /// A poll's answer: the log joined with the history, or its error on
    /// the status line (polling goes on).
    pub(crate) fn apply_danube(&mut self, poll: &Poll) {
        let Some(side) = self.danube.as_mut() else {
            return;
        };
        match &poll.result {
            Err(error) => {
                side.asked = false;
                self.set_status(
                    StatusKind::Error,
                    format!("Danube (still polling; D polls now): {error}"),
                );
            }
            Ok(log) => {
                side.polled = true;
                side.webhook_created = poll.webhook_created.or(side.webhook_created);
                side.rows = reconcile::reconcile(
                    log.clone(),
                    side.local.values().cloned(),
                    poll.log_cut(),
                    side.webhook_created,
                );
                side.row_of = side
                    .rows
                    .iter()
                    .enumerate()
                    .flat_map(|(index, row)| row.local.iter().map(move |l| (l.id, index)))
                    .collect();
                let told = format!(
                    "Danube: {} deliver{} of webhook {} read, {} (see the overview)",
                    log.len(),
                    if log.len() == 1 { "y" } else { "ies" },
                    side.webhook_id,
                    reconcile::findings_told(&side.rows),
                );
                if std::mem::take(&mut side.asked) {
                    self.set_status(StatusKind::Success, told);
                } else if self
                    .status
                    .as_ref()
                    .is_some_and(|status| status.text.starts_with("Danube"))
                {
                    // The error of an earlier poll is over.
                    self.status = None;
                }
            }
        }
    }

    // ---- What the view reads.

    /// The rows on screen: their index in the list, and the delivery.
    pub(crate) fn visible(&self) -> impl Iterator<Item = (usize, &Arc<Delivery>)> {
        self.list
            .iter()
            .enumerate()
            .skip(self.top)
            .take(self.list_rows)
    }

    pub(crate) fn list_len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn history_len(&self) -> usize {
        self.history.len()
    }

    pub(crate) fn selected_index(&self) -> Option<usize> {
        self.selected
    }

    /// The selected delivery: whole when it was read back from the store.
    pub(crate) fn selected(&self) -> Option<&Arc<Delivery>> {
        let selected = self.list.get(self.selected?)?;
        match &self.opened {
            Some(opened) if opened.id == selected.id => Some(opened),
            _ => Some(selected),
        }
    }

    /// Why `delivery`'s body is not in memory, when it is not: a sentence
    /// for the body tab and the status line.
    pub(crate) fn body_absence(&self, delivery: &Delivery) -> Option<String> {
        if !body_left_out(delivery) || self.opened.as_ref().is_some_and(|o| o.id == delivery.id) {
            return None;
        }
        let budget = self.config.history_bytes / (1024 * 1024);
        Some(match &self.config.store_path {
            Some(_) if self.reading_back == Some(delivery.id) => format!(
                "the body of #{} is not in memory (the dashboard keeps the newest {budget} \
                 MiB); reading it back from the store…",
                delivery.id
            ),
            Some(_) => format!(
                "the body of #{} could not be read back from the store; `danube-hooks show {}` \
                 prints it",
                delivery.id, delivery.id
            ),
            None => format!(
                "the body of #{} is gone from memory (the dashboard keeps the newest {budget} \
                 MiB, and --no-store keeps no log to read it back from)",
                delivery.id
            ),
        })
    }

    /// The id of the selected delivery when its body must be read back
    /// from the store; marks it asked for, so the event loop reads it once
    /// per selection.
    pub(crate) fn body_to_read_back(&mut self) -> Option<u64> {
        self.config.store_path.as_ref()?;
        let selected = self.list.get(self.selected?)?;
        let wanted = body_left_out(selected)
            && self.opened.as_ref().is_none_or(|o| o.id != selected.id)
            && self.reading_back.is_none()
            && self.failed_read_back != Some(selected.id);
        wanted.then(|| {
            self.reading_back = Some(selected.id);
            selected.id
        })
    }

    /// A body read back from the store: kept while its delivery is selected.
    pub(crate) fn read_back(&mut self, id: u64, result: Result<Delivery, String>) {
        if self.reading_back == Some(id) {
            self.reading_back = None;
        }
        match result {
            Ok(delivery)
                if self
                    .list
                    .get(self.selected.unwrap_or(usize::MAX))
                    .is_some_and(|d| d.id == id) =>
            {
                self.opened = Some(Arc::new(delivery));
            }
            Ok(_) => {}
            Err(error) => {
                // Asked again only when the selection comes back to it.
                self.opened = None;
                self.set_status(
                    StatusKind::Error,
                    format!("could not read #{id} back from the store: {error}"),
                );
                self.failed_read_back = Some(id);
            }
        }
    }

    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The attempts of `delivery`'s group still in memory, in id order.
    pub(crate) fn group_of(&self, delivery: &Delivery) -> Vec<&Arc<Delivery>> {
        let hash = self.group_hasher.hash_one(&delivery.group);
        match self.groups.get(&hash) {
            None => Vec::new(),
            Some(bucket) if bucket.mixed => bucket
                .members
                .iter()
                .filter(|d| d.group == delivery.group)
                .collect(),
            Some(bucket) => bucket.members.iter().collect(),
        }
    }

    pub(crate) fn detail_scroll(&self) -> usize {
        self.detail_scroll
    }

    pub(crate) fn filter_active(&self) -> bool {
        !self.filter.is_empty()
    }

    pub(crate) fn filter_input(&self) -> &LineInput {
        &self.filter_input
    }

    pub(crate) fn filter_error(&self) -> Option<&str> {
        self.filter_error.as_deref()
    }

    pub(crate) fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    pub(crate) fn last_id(&self) -> u64 {
        self.last_id
    }

    // ---- What the event loop tells it.

    /// Rows of the list and of the detail on screen, and how far the
    /// detail's content can scroll; from the layout, before each draw.
    pub(crate) fn set_geometry(&mut self, list_rows: usize, detail_rows: usize, detail_max: usize) {
        self.list_rows = list_rows.max(1);
        self.detail_rows = detail_rows.max(1);
        self.detail_max = detail_max;
        self.detail_scroll = self.detail_scroll.min(detail_max);
        self.ensure_visible();
    }

    /// A delivery from the store, in id order; one already seen (after a
    /// resync) is ignored.
    pub(crate) fn ingest(&mut self, delivery: Arc<Delivery>) {
        if delivery.id <= self.last_id {
            return;
        }
        self.last_id = delivery.id;
        self.counters.count(&delivery);
        if let Some(side) = &mut self.danube {
            side.local.insert(delivery.id, LocalRecord::of(&delivery));
        }
        self.held_bytes += weight(&delivery);
        let hash = self.group_hasher.hash_one(&delivery.group);
        let bucket = self.groups.entry(hash).or_default();
        // The newest member stands for the bucket's group (all the same
        // unless already mixed), and is likely still in the cache.
        bucket.mixed |= bucket
            .members
            .back()
            .is_some_and(|last| last.group != delivery.group);
        bucket.members.push_back(Arc::clone(&delivery));
        self.group_hashes.push_back(hash);
        self.history.push_back(Arc::clone(&delivery));
        if self.filter.matches(&delivery) {
            self.list.push_back(delivery);
            if !self.paused || self.selected.is_none() {
                self.select(self.list.len() - 1);
            }
        }
        self.strip_bodies();
        while self.history.len() > self.config.history_cap.max(1)
            || (self.held_bytes > self.config.history_bytes && self.history.len() > 1)
        {
            let Some(oldest) = self.history.pop_front() else {
                break;
            };
            self.held_bytes -= weight(&oldest);
            if let Some(side) = &mut self.danube {
                side.local.remove(&oldest.id);
            }
            // The oldest of the history is the oldest of its bucket.
            if let Some(hash) = self.group_hashes.pop_front()
                && let Some(bucket) = self.groups.get_mut(&hash)
            {
                bucket.members.pop_front();
                if bucket.members.is_empty() {
                    self.groups.remove(&hash);
                }
            }
            self.stripped = self.stripped.saturating_sub(1);
            if self.list.front().is_some_and(|d| Arc::ptr_eq(d, &oldest)) {
                self.list.pop_front();
                self.top = self.top.saturating_sub(1);
                self.selected = match self.selected {
                    _ if self.list.is_empty() => None,
                    Some(0) => {
                        self.detail_scroll = 0;
                        Some(0)
                    }
                    other => other.map(|s| s - 1),
                };
                self.anchor = self.selected().map(|d| d.id);
            }
        }
        self.ensure_visible();
    }

    /// Past the byte budget, drop the bodies of the oldest deliveries that
    /// still have one (the newest always keeps its own). The summary stays
    /// in the list; the body is read back from the store when shown.
    fn strip_bodies(&mut self) {
        while self.held_bytes > self.config.history_bytes && self.stripped + 1 < self.history.len()
        {
            let index = self.stripped;
            self.stripped += 1;
            let whole = &self.history[index];
            if whole.body.is_empty() {
                continue;
            }
            let summary = Arc::new(whole.without_body());
            self.held_bytes -= weight(whole) - weight(&summary);
            let id = summary.id;
            if let Ok(at) = self.list.binary_search_by_key(&id, |d| d.id) {
                self.list[at] = Arc::clone(&summary);
            }
            if let Some(bucket) = self.groups.get_mut(&self.group_hashes[index])
                && let Ok(at) = bucket.members.binary_search_by_key(&id, |d| d.id)
            {
                bucket.members[at] = Arc::clone(&summary);
            }
            self.history[index] = summary;
        }
    }

    /// The dashboard fell behind and could not read `missed` back.
    pub(crate) fn note_skipped(&mut self, missed: u64) {
        self.skipped += missed;
    }

    pub(crate) fn set_status(&mut self, kind: StatusKind, text: impl Into<String>) {
        self.status = Some(Status {
            kind,
            text: text.into(),
        });
    }

    /// A replay started by `r` or `R` came back.
    pub(crate) fn replay_finished(
        &mut self,
        id: u64,
        mode: ReplayMode,
        result: Result<String, String>,
    ) {
        let how = replay_label(mode);
        match result {
            Ok(summary) => self.set_status(
                StatusKind::Success,
                format!("replay of #{id} ({how}): {summary}"),
            ),
            Err(error) => self.set_status(
                StatusKind::Error,
                format!("replay of #{id} ({how}) failed: {error} · logged (? shows where)"),
            ),
        }
    }

    // ---- Keys.

    /// Handle one key press.
    pub(crate) fn handle_key(&mut self, key: KeyEvent) -> Effect {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        match self.mode {
            Mode::Normal => self.normal_key(key),
            Mode::Filter => {
                self.filter_key(key);
                Effect::None
            }
            Mode::Picker(_) => {
                self.picker_key(key);
                Effect::None
            }
            Mode::Help => {
                self.mode = Mode::Normal;
                Effect::None
            }
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Effect {
        // Replay and copy need the body: not a summary whose body is out
        // of memory and not yet read back.
        if matches!(key.code, KeyCode::Char('r' | 'R' | 'c'))
            && let Some(absence) = self.selected().and_then(|d| self.body_absence(d))
        {
            self.set_status(StatusKind::Error, absence);
            return Effect::None;
        }
        match key.code {
            KeyCode::Char('q') => return Effect::Quit,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('j') | KeyCode::Down => self.move_by(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_by(-1),
            KeyCode::PageDown => self.move_by(self.page() as isize),
            KeyCode::PageUp => self.move_by(-(self.page() as isize)),
            KeyCode::Char('g') | KeyCode::Home => self.move_to_start(),
            KeyCode::Char('G') | KeyCode::End => self.move_to_end(),
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::List => Focus::Detail,
                    Focus::Detail => Focus::List,
                };
            }
            KeyCode::Enter if self.selected.is_some() => self.focus = Focus::Detail,
            KeyCode::Right | KeyCode::Char('l') => self.set_tab(self.tab.step(1)),
            KeyCode::Left | KeyCode::Char('h') => self.set_tab(self.tab.step(-1)),
            KeyCode::Char(c @ '1'..='4') => {
                self.set_tab(Tab::ALL[usize::from(c as u8 - b'1')]);
            }
            KeyCode::Char('b') => {
                if self.tab == Tab::Body {
                    self.body_mode = self.body_mode.next();
                    self.detail_scroll = 0;
                } else {
                    self.set_tab(Tab::Body);
                }
            }
            KeyCode::Char(' ') => {
                self.paused = !self.paused;
                if !self.paused && !self.list.is_empty() {
                    self.select(self.list.len() - 1);
                }
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                self.filter_error = None;
            }
            KeyCode::Char('p') => self.open_picker(),
            KeyCode::Char('D') => {
                if let Some(side) = &mut self.danube {
                    side.asked = true;
                    let text = format!(
                        "asking Danube for webhook {}'s deliveries…",
                        side.webhook_id
                    );
                    self.set_status(StatusKind::Info, text);
                    return Effect::PollDanube;
                }
                self.set_status(
                    StatusKind::Error,
                    "no Danube webhook to ask about: start with --webhook ID or --register",
                );
            }
            KeyCode::Char(c @ ('r' | 'R')) => {
                let mode = if c == 'r' {
                    ReplayMode::Resigned
                } else {
                    ReplayMode::AsIs
                };
                if let Some(delivery) = self.selected().cloned() {
                    self.set_status(
                        StatusKind::Info,
                        format!("replaying #{} ({})…", delivery.id, replay_label(mode)),
                    );
                    return Effect::Replay(delivery, mode);
                }
                self.set_status(StatusKind::Error, "nothing selected to replay");
            }
            KeyCode::Char('c') => {
                if let Some(delivery) = self.selected().cloned() {
                    return Effect::Copy(delivery);
                }
                self.set_status(StatusKind::Error, "nothing selected to copy");
            }
            KeyCode::Esc => {
                if self.focus == Focus::Detail {
                    self.focus = Focus::List;
                } else if self.filter_active() {
                    self.clear_filter();
                } else {
                    self.status = None;
                }
            }
            _ => {}
        }
        Effect::None
    }

    fn page(&self) -> usize {
        match self.focus {
            Focus::List => self.list_rows.saturating_sub(1).max(1),
            Focus::Detail => self.detail_rows.saturating_sub(1).max(1),
        }
    }

    fn set_tab(&mut self, tab: Tab) {
        if self.tab != tab {
            self.tab = tab;
            self.detail_scroll = 0;
        }
    }

    fn move_by(&mut self, by: isize) {
        match self.focus {
            Focus::Detail => {
                self.detail_scroll = self
                    .detail_scroll
                    .saturating_add_signed(by)
                    .min(self.detail_max);
            }
            Focus::List => {
                let Some(current) = self.selected else { return };
                let target = current.saturating_add_signed(by).min(self.list.len() - 1);
                if target < current {
                    // Reading back through the list: new arrivals must not
                    // pull the selection away.
                    self.paused = true;
                }
                self.select(target);
            }
        }
    }

    fn move_to_start(&mut self) {
        match self.focus {
            Focus::Detail => self.detail_scroll = 0,
            Focus::List if !self.list.is_empty() => {
                self.paused = true;
                self.select(0);
            }
            Focus::List => {}
        }
    }

    fn move_to_end(&mut self) {
        match self.focus {
            Focus::Detail => self.detail_scroll = self.detail_max,
            Focus::List => {
                self.paused = false;
                if !self.list.is_empty() {
                    self.select(self.list.len() - 1);
                }
            }
        }
    }

    fn select(&mut self, index: usize) {
        if self.list.is_empty() {
            self.selected = None;
            return;
        }
        let index = index.min(self.list.len() - 1);
        let id = self.list[index].id;
        self.anchor = Some(id);
        if self.opened.as_ref().is_some_and(|o| o.id != id) {
            // One body read back at a time: the one on screen.
            self.opened = None;
        }
        if self.failed_read_back.is_some_and(|failed| failed != id) {
            self.failed_read_back = None;
        }
        if self.selected != Some(index) {
            self.selected = Some(index);
            self.detail_scroll = 0;
        }
        self.ensure_visible();
    }

    fn ensure_visible(&mut self) {
        let rows = self.list_rows.max(1);
        let Some(selected) = self.selected else {
            self.top = 0;
            return;
        };
        if selected < self.top {
            self.top = selected;
        } else if selected >= self.top + rows {
            self.top = selected + 1 - rows;
        }
        // No blank rows at the bottom while older rows could fill them.
        self.top = self.top.min(self.list.len().saturating_sub(rows));
    }

    // ---- The filter.

    fn filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {
                self.clear_filter();
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => {
                if self.filter_error.is_none() {
                    self.mode = Mode::Normal;
                }
            }
            _ => {
                if self.filter_input.edit(key) {
                    match Filter::parse(self.filter_input.text()) {
                        Ok(filter) => {
                            self.filter_error = None;
                            if filter != self.filter {
                                self.filter = filter;
                                self.refilter();
                            }
                        }
                        Err(error) => self.filter_error = Some(error),
                    }
                }
            }
        }
    }

    fn clear_filter(&mut self) {
        self.filter_input = LineInput::default();
        self.filter_error = None;
        if self.filter_active() {
            self.filter = Filter::default();
            self.refilter();
        }
    }

    /// Rebuild the list after the filter changed, keeping the selected
    /// delivery (or the nearest older one) unless following the newest.
    fn refilter(&mut self) {
        let keep = self.anchor;
        self.list = self
            .history
            .iter()
            .filter(|d| self.filter.matches(d))
            .cloned()
            .collect();
        self.selected = None;
        self.detail_scroll = 0;
        if self.list.is_empty() {
            self.top = 0;
            return;
        }
        let index = match keep {
            Some(id) if self.paused => self.list.partition_point(|d| d.id <= id).saturating_sub(1),
            _ => self.list.len() - 1,
        };
        self.select(index);
    }

    // ---- The policy picker.

    fn open_picker(&mut self) {
        let policy = self.policy.current();
        let presets: Vec<Preset> = PRESETS
            .iter()
            .filter(|p| p.rule != "forward" || policy.forwarding())
            .copied()
            .collect();
        let rules: Vec<String> = policy.rules().iter().map(ToString::to_string).collect();
        let current = rules.join("; ");
        let selected = match rules.as_slice() {
            [] => 0,
            [one] => presets
                .iter()
                .position(|p| p.rule == one)
                .unwrap_or(presets.len()),
            _ => presets.len(),
        };
        let mut field = LineInput::new(&current);
        if selected == presets.len() {
            field.select_all();
        }
        self.mode = Mode::Picker(Picker {
            presets,
            selected,
            field,
            error: None,
            replaces: policy.rules().to_vec(),
        });
    }

    fn picker_key(&mut self, key: KeyEvent) {
        let Mode::Picker(picker) = &mut self.mode else {
            return;
        };
        let last = picker.presets.len();
        let on_field = picker.on_field();
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Down => picker.selected = (picker.selected + 1).min(last),
            KeyCode::Char('k') if !on_field => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Char('j') if !on_field => picker.selected = (picker.selected + 1).min(last),
            KeyCode::Tab => picker.selected = last,
            KeyCode::BackTab => picker.selected = 0,
            KeyCode::Enter => {
                let text = if on_field {
                    picker.field.text().to_string()
                } else {
                    picker.presets[picker.selected].rule.to_string()
                };
                // A typed field shows what it replaces; a preset says so
                // once applied, as the rules it replaced are off screen.
                let replaced: Vec<String> = if on_field {
                    Vec::new()
                } else {
                    picker.replaces.iter().map(ToString::to_string).collect()
                };
                let forwarding = self.policy.current().forwarding();
                match parse_rules(&text, forwarding) {
                    Ok(policy) => {
                        let mut status =
                            format!("policy for the next deliveries: {}", policy.describe());
                        if !replaced.is_empty() && replaced != [text.as_str()] {
                            let _ = write!(
                                status,
                                " for every event; it replaced {} rule{}: {}",
                                replaced.len(),
                                if replaced.len() == 1 { "" } else { "s" },
                                replaced.join("; ")
                            );
                        }
                        self.policy.replace(policy);
                        self.mode = Mode::Normal;
                        self.set_status(StatusKind::Success, status);
                    }
                    Err(error) => {
                        if let Mode::Picker(picker) = &mut self.mode {
                            picker.selected = last;
                            picker.field = LineInput::new(&text);
                            picker.error = Some(error);
                        }
                    }
                }
            }
            _ if on_field && picker.field.edit(key) => picker.error = None,
            _ => {}
        }
        if let Mode::Picker(picker) = &mut self.mode
            && !on_field
            && picker.on_field()
        {
            picker.field.select_all();
        }
    }
}

/// Whether `delivery` came without its body, or had it dropped here: the
/// store leaves bodies out of its broadcast past the broadcast's byte
/// budget, and the history drops them past its own. A record otherwise
/// keeps every byte it counts, unless it was truncated.
fn body_left_out(delivery: &Delivery) -> bool {
    if delivery.body_truncated {
        delivery.body.is_empty() && delivery.body_size > 0
    } else {
        delivery.body.len() as u64 != delivery.body_size
    }
}

/// What a delivery costs in memory, near enough: its variable parts (the
/// body, headers, path, hints, the forward's preview) and a fixed share
/// for the rest.
fn weight(delivery: &Delivery) -> usize {
    const FIXED: usize = 512;
    let headers: usize = delivery
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 48)
        .sum();
    let hints: usize = delivery.signature.hints.iter().map(String::len).sum();
    let forward = delivery.forward.as_ref().map_or(0, |f| {
        f.url.len()
            + f.error.as_ref().map_or(0, String::len)
            + f.body_preview.as_ref().map_or(0, String::len)
    });
    FIXED
        + delivery.body.capacity()
        + headers
        + delivery.path.len()
        + delivery.group.len()
        + delivery.event.as_ref().map_or(0, String::len)
        + delivery.signature.detail.len()
        + hints
        + forward
}

/// `re-signed` or `as-is`.
pub(crate) fn replay_label(mode: ReplayMode) -> &'static str {
    match mode {
        ReplayMode::Resigned => "re-signed",
        ReplayMode::AsIs => "as-is",
    }
}

/// The picker's field: rules separated by `;`, each as `--respond` takes
/// it; empty means the default. An error's column counts in the whole field.
pub(crate) fn parse_rules(text: &str, forwarding: bool) -> Result<Policy, FieldError> {
    let mut rules = Vec::new();
    let mut chars_before = 0;
    for piece in text.split(';') {
        if !piece.trim().is_empty() {
            if let Err(error) = Policy::parse(&[piece.to_string()], forwarding) {
                let found = if error.found.is_empty() {
                    "nothing".to_string()
                } else {
                    format!("\"{}\"", error.found)
                };
                return Err(FieldError {
                    column: chars_before + error.column,
                    message: format!("expected {}; found {found}", error.expected),
                });
            }
            rules.push(piece.to_string());
        }
        chars_before += piece.chars().count() + 1;
    }
    Policy::parse(&rules, forwarding).map_err(|error| FieldError {
        column: 1,
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{app_config as config, sample};

    fn app_with(n: u64) -> App {
        let mut app = App::new(config(), PolicyHandle::new(Policy::default_for(false)));
        app.set_geometry(5, 10, 100);
        for id in 1..=n {
            let event = if id % 2 == 0 {
                "workflow.failed"
            } else {
                "tool.execution.completed"
            };
            let mut d = sample(id, format!(r#"{{"event":"{event}","n":{id}}}"#).as_bytes());
            if id % 3 == 0 {
                d.signature.verdict = Verdict::Mismatch;
            }
            app.ingest(Arc::new(d));
        }
        app
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// `"jjk"` → keys; `<Tab>`, `<Esc>`, `<Enter>`, `<Up>`, `<Down>`,
    /// `<Left>`, `<Right>`, `<BS>`, `<C-c>`, `<Space>` name the others.
    fn keys(spec: &str) -> Vec<KeyEvent> {
        let mut out = Vec::new();
        let mut rest = spec;
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && let Some(end) = rest.find('>')
            {
                let name = &rest[1..end];
                out.push(match name {
                    "Tab" => key(KeyCode::Tab),
                    "Esc" => key(KeyCode::Esc),
                    "Enter" => key(KeyCode::Enter),
                    "Up" => key(KeyCode::Up),
                    "Down" => key(KeyCode::Down),
                    "Left" => key(KeyCode::Left),
                    "Right" => key(KeyCode::Right),
                    "BS" => key(KeyCode::Backspace),
                    "Space" => key(KeyCode::Char(' ')),
                    "C-c" => KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                    other => panic!("unknown key name {other}"),
                });
                rest = &rest[end + 1..];
                continue;
            }
            out.push(key(KeyCode::Char(c)));
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    fn press(app: &mut App, spec: &str) -> Vec<Effect> {
        keys(spec)
            .into_iter()
            .map(|k| app.handle_key(k))
            .filter(|e| *e != Effect::None)
            .collect()
    }

    #[derive(Debug, PartialEq)]
    struct Seen {
        selected_id: Option<u64>,
        focus: Focus,
        tab: Tab,
        body: BodyMode,
        paused: bool,
        list_len: usize,
    }

    fn seen(app: &App) -> Seen {
        Seen {
            selected_id: app.selected().map(|d| d.id),
            focus: app.focus,
            tab: app.tab,
            body: app.body_mode,
            paused: app.paused,
            list_len: app.list_len(),
        }
    }

    #[test]
    fn key_sequences_move_switch_and_pause() {
        use BodyMode::{Hex, Pretty, Raw};
        use Focus::{Detail, List};
        use Tab::{Body, Headers, Overview, Response};
        let s = |selected_id, focus, tab, body, paused, list_len| Seen {
            selected_id: Some(selected_id),
            focus,
            tab,
            body,
            paused,
            list_len,
        };
        // (keys after 6 deliveries, expected state)
        let cases = [
            ("", s(6, List, Overview, Pretty, false, 6)),
            ("k", s(5, List, Overview, Pretty, true, 6)),
            ("kkj", s(5, List, Overview, Pretty, true, 6)),
            ("<Up><Up><Down>", s(5, List, Overview, Pretty, true, 6)),
            ("g", s(1, List, Overview, Pretty, true, 6)),
            ("gG", s(6, List, Overview, Pretty, false, 6)),
            ("gkkk", s(1, List, Overview, Pretty, true, 6)),
            ("Gjjj", s(6, List, Overview, Pretty, false, 6)),
            ("<Space>", s(6, List, Overview, Pretty, true, 6)),
            ("<Space><Space>", s(6, List, Overview, Pretty, false, 6)),
            ("gk<Space>", s(6, List, Overview, Pretty, false, 6)),
            ("<Tab>", s(6, Detail, Overview, Pretty, false, 6)),
            ("<Tab><Tab>", s(6, List, Overview, Pretty, false, 6)),
            ("<Enter>", s(6, Detail, Overview, Pretty, false, 6)),
            ("<Enter><Esc>", s(6, List, Overview, Pretty, false, 6)),
            ("<Tab>k", s(6, Detail, Overview, Pretty, false, 6)),
            ("<Right>", s(6, List, Headers, Pretty, false, 6)),
            (
                "<Right><Right><Right>",
                s(6, List, Response, Pretty, false, 6),
            ),
            ("<Left>", s(6, List, Response, Pretty, false, 6)),
            (
                "<Right><Right><Right><Right>",
                s(6, List, Overview, Pretty, false, 6),
            ),
            ("l3", s(6, List, Body, Pretty, false, 6)),
            ("b", s(6, List, Body, Pretty, false, 6)),
            ("bb", s(6, List, Body, Raw, false, 6)),
            ("bbb", s(6, List, Body, Hex, false, 6)),
            ("bbbb", s(6, List, Body, Pretty, false, 6)),
            ("?j", s(6, List, Overview, Pretty, false, 6)),
            (
                "/event:workflow.*<Enter>",
                s(6, List, Overview, Pretty, false, 3),
            ),
            (
                "/event:workflow.*<Enter>k",
                s(4, List, Overview, Pretty, true, 3),
            ),
            (
                "/verdict:mismatch<Enter>",
                s(6, List, Overview, Pretty, false, 2),
            ),
            (
                "/verdict:invalid event:tool.*<Enter>",
                s(3, List, Overview, Pretty, false, 1),
            ),
            ("/\"n\":5<Enter>", s(5, List, Overview, Pretty, false, 1)),
            (
                "/event:workflow.*<Enter><Esc>",
                s(6, List, Overview, Pretty, false, 6),
            ),
            ("/event:tool.*<Esc>", s(6, List, Overview, Pretty, false, 6)),
            (
                "kk/event:tool.*<Enter>",
                s(3, List, Overview, Pretty, true, 3),
            ),
            ("q", s(6, List, Overview, Pretty, false, 6)),
        ];
        for (spec, expected) in cases {
            let mut app = app_with(6);
            press(&mut app, spec);
            assert_eq!(seen(&app), expected, "keys {spec:?}");
        }
    }

    #[test]
    fn quit_copy_and_replay_are_effects() {
        let mut app = app_with(3);
        assert_eq!(press(&mut app, "q"), vec![Effect::Quit]);
        assert_eq!(press(&mut app, "<C-c>"), vec![Effect::Quit]);
        let selected = app.selected().cloned().unwrap();
        assert_eq!(
            press(&mut app, "c"),
            vec![Effect::Copy(Arc::clone(&selected))]
        );
        assert_eq!(
            press(&mut app, "rR"),
            vec![
                Effect::Replay(Arc::clone(&selected), ReplayMode::Resigned),
                Effect::Replay(selected, ReplayMode::AsIs)
            ]
        );
        // Typed into the filter, q is text; Ctrl-C still quits.
        assert_eq!(press(&mut app, "/q"), vec![]);
        assert_eq!(app.filter_input().text(), "q");
        assert_eq!(press(&mut app, "<C-c>"), vec![Effect::Quit]);
        // Help closes on any key, q included, without quitting.
        let mut app = app_with(1);
        assert_eq!(press(&mut app, "?q"), vec![]);
        assert_eq!(app.mode, Mode::Normal);
        // Nothing to act on in an empty list.
        let mut empty = app_with(0);
        assert_eq!(press(&mut empty, "crRjkgG<Tab><Enter>"), vec![]);
        assert_eq!(empty.status().unwrap().kind, StatusKind::Error);
    }

    #[test]
    fn a_bad_filter_term_shows_an_error_and_keeps_the_last_good_filter() {
        let mut app = app_with(6);
        press(&mut app, "/event:tool.* verdict:nope");
        assert_eq!(app.mode, Mode::Filter);
        assert!(app.filter_error().unwrap().contains("verdict:nope"));
        press(&mut app, "<Enter>");
        assert_eq!(app.mode, Mode::Filter, "Enter does not accept an error");
        press(&mut app, "<BS><BS><BS><BS>valid<Enter>");
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.filter_error(), None);
        assert_eq!(app.list_len(), 2);
    }

    #[test]
    fn the_picker_applies_presets_and_typed_rules_to_the_policy_handle() {
        // (keys, the policy described afterwards, still in the picker)
        let cases = [
            ("p<Enter>", "200", false),
            ("pj<Enter>", "500", false),
            ("p<Down><Down><Down><Down>j<Enter>", "reset", false),
            ("pjjjjjjjj<Enter>", "12s+200", false),
            ("p<Tab>500,500,200<Enter>", "500,500,200", false),
            (
                "p<Tab>workflow.*=timeout; 503<Enter>",
                "workflow.*=timeout; 503",
                false,
            ),
            ("p<Tab>500,5x0<Enter>", "200", true),
            ("p<Tab>forward<Enter>", "200", true),
            ("pj<Esc>", "200", false),
        ];
        for (spec, described, in_picker) in cases {
            let handle = PolicyHandle::new(Policy::default_for(false));
            let mut app = App::new(config(), handle.clone());
            press(&mut app, spec);
            assert_eq!(handle.current().describe(), described, "keys {spec:?}");
            assert_eq!(
                matches!(app.mode, Mode::Picker(_)),
                in_picker,
                "keys {spec:?}"
            );
        }
    }

    #[test]
    fn a_rule_that_does_not_parse_is_shown_with_its_column_in_the_field() {
        let mut app = App::new(config(), PolicyHandle::new(Policy::default_for(false)));
        press(&mut app, "p<Tab>200; tool.*=500,5x0<Enter>");
        let Mode::Picker(picker) = &app.mode else {
            panic!("the picker stays open on an error")
        };
        let error = picker.error.as_ref().unwrap();
        assert_eq!(error.column, 17, "the column of 5x0 in the whole field");
        assert!(error.message.contains("found \"5x0\""), "{}", error.message);
        assert!(picker.on_field());
        // Editing clears the error; the field is kept.
        press(&mut app, "<BS>");
        let Mode::Picker(picker) = &app.mode else {
            panic!()
        };
        assert_eq!(picker.error, None);
        assert_eq!(picker.field.text(), "200; tool.*=500,5x");
        // forward is offered, and accepted, only when forwarding is set.
        let forwarding = PolicyHandle::new(Policy::default_for(true));
        let mut app = App::new(config(), forwarding.clone());
        press(&mut app, "p");
        let Mode::Picker(picker) = &app.mode else {
            panic!()
        };
        assert!(picker.presets.iter().any(|p| p.rule == "forward"));
        press(&mut app, "<Tab>500,500,forward<Enter>");
        assert_eq!(forwarding.current().describe(), "500,500,forward");
        // Reopened, the field holds the rules in force.
        press(&mut app, "p");
        let Mode::Picker(picker) = &app.mode else {
            panic!()
        };
        assert_eq!(picker.field.text(), "500,500,forward");
        assert!(picker.on_field() && picker.field.all_selected());
        // Typing replaces the rules shown; moving the cursor first keeps them.
        press(&mut app, "503<Enter>");
        assert_eq!(forwarding.current().describe(), "503");
        press(&mut app, "p<Tab><Left><Right>,forward<Enter>");
        assert_eq!(forwarding.current().describe(), "503,forward");
        // An empty field goes back to the default.
        let mut app2 = App::new(config(), forwarding.clone());
        press(&mut app2, "p");
        for _ in 0..20 {
            app2.handle_key(key(KeyCode::Backspace));
        }
        press(&mut app2, "<Enter>");
        assert_eq!(forwarding.current().describe(), "forward");
    }

    #[test]
    fn the_history_is_capped_and_the_selection_follows_or_stays() {
        let mut config = config();
        config.history_cap = 4;
        let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
        app.set_geometry(3, 10, 0);
        for id in 1..=6 {
            app.ingest(Arc::new(sample(id, b"{}")));
        }
        assert_eq!(app.history_len(), 4);
        assert_eq!(app.counters.total, 6, "counters count everything seen");
        assert_eq!(app.selected().unwrap().id, 6);
        let ids: Vec<u64> = app.visible().map(|(_, d)| d.id).collect();
        assert_eq!(ids, vec![4, 5, 6], "the newest rows fill the screen");
        // Paused on #4: new arrivals do not move the selection.
        press(&mut app, "kk");
        assert_eq!(app.selected().unwrap().id, 4);
        app.ingest(Arc::new(sample(7, b"{}")));
        assert_eq!(app.selected().unwrap().id, 4);
        // #4 is evicted: the selection moves to the oldest left.
        app.ingest(Arc::new(sample(8, b"{}")));
        app.ingest(Arc::new(sample(9, b"{}")));
        assert_eq!(app.selected().unwrap().id, 6);
        // A record seen again after a resync is ignored.
        app.ingest(Arc::new(sample(9, b"{}")));
        app.ingest(Arc::new(sample(2, b"{}")));
        assert_eq!(app.counters.total, 9);
        assert_eq!(app.last_id(), 9);
    }

    #[test]
    fn danubes_side_holds_no_more_than_the_history() {
        let mut config = config();
        config.history_cap = 4;
        let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
        let since = reconcile::parse_time("2026-11-23T09:00:00Z").unwrap();
        app.watch_danube("wh_1".into(), since);
        for id in 1..=1000 {
            let body = format!(
                r#"{{"event":"workflow.failed","timestamp":"2026-11-23T09:14:07Z","data":{{"n":{id}}}}}"#
            );
            app.ingest(Arc::new(sample(id, body.as_bytes())));
        }
        let record: crate::danube::model::DeliveryRecord = serde_json::from_value(serde_json::json!({
            "id": "dlv_1", "webhook_id": "wh_1", "event_type": "workflow.failed",
            "payload": {"event": "workflow.failed", "timestamp": "2026-11-23T09:14:00Z", "data": {}},
            "status": "failed", "attempts": 1, "created_at": "2026-11-23T09:14:00Z"
        }))
        .unwrap();
        app.apply_danube(&Poll {
            webhook_id: "wh_1".into(),
            result: Ok(vec![record]),
            limit: 100,
            webhook_created: None,
        });
        let side = app.danube().unwrap();
        assert_eq!(
            side.local.len(),
            4,
            "one summary per delivery in the history"
        );
        assert_eq!(side.rows.len(), 1 + 4, "{:#?}", side.rows);
        assert!(
            matches!(app.danube_mark(1000), Some(DanubeMark::Row(row)) if row.danube.is_none())
        );
    }

    #[test]
    fn counters_sort_answers_by_class() {
        let mut app = app_with(0);
        for (id, status, action) in [
            (1, Some(200), "status"),
            (2, Some(500), "status"),
            (3, None, "reset"),
            (4, Some(201), "forward"),
        ] {
            let mut d = sample(id, b"{}");
            d.response.status = status;
            d.response.action = action.into();
            app.ingest(Arc::new(d));
        }
        assert_eq!(app.counters.by_class, [0, 2, 0, 0, 1]);
        assert_eq!(app.counters.no_answer, 1);
        assert_eq!(app.counters.valid, 4);
    }

    fn app_with_budget(bytes: usize, store: bool) -> App {
        let mut config = config();
        config.history_bytes = bytes;
        if !store {
            config.store_path = None;
        }
        let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
        app.set_geometry(5, 10, 100);
        app
    }

    fn with_body(id: u64, size: usize) -> Arc<Delivery> {
        let mut body = format!(r#"{{"event":"workflow.completed","n":{id},"pad":""#).into_bytes();
        body.resize(size - 2, b'x');
        body.extend_from_slice(b"\"}");
        Arc::new(sample(id, &body))
    }

    #[test]
    fn the_history_is_bounded_by_bytes_not_by_count() {
        const BUDGET: usize = 256 * 1024;
        let mut app = app_with_budget(BUDGET, true);
        for id in 1..=2_000 {
            app.ingest(with_body(id, 16 * 1024));
            assert!(
                app.held_bytes() <= BUDGET,
                "after #{id}: {} bytes held",
                app.held_bytes()
            );
        }
        assert_eq!(app.counters.total, 2_000, "counters count everything seen");
        // Far more summaries than bodies fit in the budget.
        assert!(
            app.history_len() > BUDGET / (16 * 1024) * 4,
            "{}",
            app.history_len()
        );
        assert!(app.history_len() < 2_000, "the oldest summaries go too");
        // The newest keep their body, the oldest only their summary.
        let newest = app.selected().unwrap();
        assert_eq!((newest.id, newest.body.len()), (2_000, 16 * 1024));
        assert_eq!(app.body_absence(newest), None);
        press(&mut app, "g");
        let oldest = Arc::clone(app.selected().unwrap());
        assert!(oldest.body.is_empty() && oldest.body_size == 16 * 1024);
        assert_eq!(oldest.event.as_deref(), Some("workflow.completed"));
        // A summary weighs what it holds, not what its body did.
        assert!(weight(&oldest) < 2048, "{}", weight(&oldest));
    }

    #[test]
    fn an_old_body_is_read_back_once_and_kept_while_it_is_shown() {
        let mut app = app_with_budget(64 * 1024, true);
        for id in 1..=50 {
            app.ingest(with_body(id, 8 * 1024));
        }
        press(&mut app, "g");
        let id = app.selected().unwrap().id;
        let absence = app.body_absence(app.selected().unwrap());
        assert!(
            absence.unwrap().contains("could not be read back"),
            "not asked yet"
        );
        // Replay and copy need the body.
        assert_eq!(press(&mut app, "rc"), vec![]);
        assert_eq!(app.status().unwrap().kind, StatusKind::Error);
        assert_eq!(app.body_to_read_back(), Some(id));
        assert_eq!(app.body_to_read_back(), None, "asked for once");
        let absence = app.body_absence(app.selected().unwrap()).unwrap();
        assert!(
            absence.contains("reading it back from the store"),
            "{absence}"
        );
        let whole = Delivery::clone(&with_body(id, 8 * 1024));
        app.read_back(id, Ok(whole.clone()));
        let selected = Arc::clone(app.selected().unwrap());
        assert_eq!(*selected, whole);
        assert_eq!(app.body_absence(&selected), None);
        assert_eq!(press(&mut app, "c"), vec![Effect::Copy(selected)]);
        // Moving on lets it go; coming back reads it again.
        press(&mut app, "j");
        assert!(app.opened.is_none());
        press(&mut app, "k");
        assert_eq!(app.body_to_read_back(), Some(id));
        // A failed read is said, and not retried in a loop.
        app.read_back(id, Err("No such file or directory".into()));
        assert!(app.status().unwrap().text.contains("No such file"));
        assert_eq!(app.body_to_read_back(), None);
    }

    #[test]
    fn a_delivery_the_broadcast_sent_without_its_body_is_read_back_too() {
        let mut app = app_with_budget(HISTORY_BYTES, true);
        let whole = with_body(1, 4096);
        app.ingest(Arc::new(whole.without_body()));
        let selected = Arc::clone(app.selected().unwrap());
        assert!(app.body_absence(&selected).is_some());
        assert_eq!(app.body_to_read_back(), Some(1));
        app.read_back(1, Ok(Delivery::clone(&whole)));
        assert_eq!(app.selected().unwrap().body, whole.body);
        // A body that is simply empty, or cut short on the wire, is not
        // missing.
        let mut truncated = sample(2, b"");
        (truncated.body_size, truncated.body_truncated) = (0, false);
        app.ingest(Arc::new(truncated));
        assert_eq!(app.body_absence(app.selected().unwrap()), None);
        let mut cut = sample(3, b"{\"a\"");
        (cut.body_size, cut.body_truncated) = (100, true);
        app.ingest(Arc::new(cut));
        assert_eq!(app.body_absence(app.selected().unwrap()), None);
    }

    #[test]
    fn without_a_store_an_old_body_is_said_to_be_gone() {
        let mut app = app_with_budget(64 * 1024, false);
        for id in 1..=50 {
            app.ingest(with_body(id, 8 * 1024));
        }
        press(&mut app, "g");
        assert_eq!(app.body_to_read_back(), None);
        let absence = app.body_absence(app.selected().unwrap()).unwrap();
        assert!(absence.contains("gone from memory"), "{absence}");
        assert!(absence.contains("--no-store"), "{absence}");
        assert_eq!(press(&mut app, "R"), vec![]);
    }

    #[test]
    fn groups_sharing_a_hash_are_told_apart_by_their_key() {
        let mut app = app_with(0);
        let of = |id, group: &str| {
            let mut d = sample(id, b"{}");
            d.group = group.into();
            Arc::new(d)
        };
        app.ingest(of(1, "sha256:a"));
        // A collision, as no real pair of keys can be found: #2 of group b
        // lands in a's bucket.
        let a = app.group_hasher.hash_one("sha256:a");
        let two = of(2, "sha256:b");
        app.ingest(Arc::clone(&two));
        let b = app.group_hasher.hash_one("sha256:b");
        app.groups.remove(&b);
        app.groups
            .get_mut(&a)
            .unwrap()
            .members
            .push_back(Arc::clone(&two));
        *app.group_hashes.back_mut().unwrap() = a;
        assert!(!app.groups[&a].mixed);
        app.ingest(of(3, "sha256:a"));
        assert!(app.groups[&a].mixed, "a newcomer of another group marks it");
        let ids = |app: &App, d: &Delivery| -> Vec<u64> {
            app.group_of(d).iter().map(|d| d.id).collect()
        };
        let one = Arc::clone(&app.history[0]);
        assert_eq!(ids(&app, &one), [1, 3]);
        assert_eq!(app.group_of(&two).len(), 0, "b's own hash has no bucket");
        // Evicted, they leave the shared bucket in order.
        app.config.history_cap = 1;
        app.ingest(of(4, "sha256:c"));
        assert!(!app.groups.contains_key(&a));
        assert_eq!(app.groups.len(), 1);
    }

    mod incremental {
        //! The state kept at ingest (the group index, the filtered list, the
        //! counters) against a recount from scratch after every step of a
        //! random sequence of ingests, evictions, stripped bodies and
        //! filter changes.

        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Step {
            /// A delivery in one of a few groups, with a body this big and
            /// this answer.
            Ingest {
                group: u8,
                size: usize,
                status: Option<u16>,
                mismatch: bool,
            },
            /// A resync sends an old id again.
            Again,
            Filter(&'static str),
        }

        const FILTERS: [&str; 5] = [
            "",
            "event:workflow.*",
            "verdict:invalid",
            "n",
            "event:tool.*",
        ];

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                6 => (0u8..4, 2usize..3000, prop::option::of(100u16..600), any::<bool>()).prop_map(
                    |(group, size, status, mismatch)| Step::Ingest {
                        group,
                        size,
                        status,
                        mismatch
                    }
                ),
                1 => Just(Step::Again),
                1 => prop::sample::select(FILTERS.to_vec()).prop_map(Step::Filter),
            ]
        }

        fn recount(seen: &[Arc<Delivery>]) -> Counters {
            let mut counters = Counters::default();
            for d in seen {
                counters.count(d);
            }
            counters
        }

        fn check(app: &App, seen: &[Arc<Delivery>]) -> Result<(), TestCaseError> {
            // Groups: each member of the history is in its group, in id
            // order, as the same Arc (a stripped body included); nothing else.
            let mut members = 0;
            for bucket in app.groups.values() {
                prop_assert!(!bucket.members.is_empty(), "empty bucket kept");
                members += bucket.members.len();
            }
            prop_assert_eq!(members, app.history.len());
            prop_assert_eq!(app.group_hashes.len(), app.history.len());
            for d in &app.history {
                let expected: Vec<&Arc<Delivery>> =
                    app.history.iter().filter(|m| m.group == d.group).collect();
                let got = app.group_of(d);
                prop_assert_eq!(got.len(), expected.len());
                for (got, want) in got.iter().zip(expected) {
                    prop_assert!(Arc::ptr_eq(got, want), "#{} is not the history's", got.id);
                }
            }
            // The list is the history through the filter.
            let list: Vec<u64> = app.list.iter().map(|d| d.id).collect();
            let filtered: Vec<u64> = app
                .history
                .iter()
                .filter(|d| app.filter.matches(d))
                .map(|d| d.id)
                .collect();
            prop_assert_eq!(list, filtered);
            prop_assert_eq!(&app.counters, &recount(seen));
            let held: usize = app.history.iter().map(|d| weight(d)).sum();
            prop_assert_eq!(app.held_bytes, held);
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn kept_state_equals_a_recount(
                steps in prop::collection::vec(step(), 1..120),
                cap in 1usize..12,
                budget in 2_000usize..20_000,
            ) {
                let mut config = config();
                config.history_cap = cap;
                config.history_bytes = budget;
                let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
                app.set_geometry(3, 10, 100);
                let mut seen: Vec<Arc<Delivery>> = Vec::new();
                let mut id = 0;
                for step in steps {
                    match step {
                        Step::Ingest { group, size, status, mismatch } => {
                            id += 1;
                            let event = if group % 2 == 0 { "workflow.failed" } else { "tool.execution.completed" };
                            let mut body = format!(r#"{{"event":"{event}","n":{id},"pad":""#).into_bytes();
                            body.resize(body.len().max(size), b'x');
                            let mut d = sample(id, &body);
                            d.group = format!("sha256:group{group}");
                            d.response.status = status;
                            if mismatch {
                                d.signature.verdict = Verdict::Mismatch;
                            }
                            let d = Arc::new(d);
                            seen.push(Arc::clone(&d));
                            app.ingest(d);
                        }
                        Step::Again => {
                            if let Some(old) = seen.first() {
                                app.ingest(Arc::clone(old));
                            }
                        }
                        Step::Filter(text) => {
                            app.filter = Filter::parse(text).unwrap();
                            app.refilter();
                        }
                    }
                    check(&app, &seen)?;
                }
            }
        }
    }
}
