//! The dashboard's state and key handling. No I/O: deliveries and keys come
//! in, `Effect`s go out for the event loop in `tui.rs` to carry out, and
//! `view/` draws what is here without changing it.
//!
//! The history (`tui::history`) is a window of the newest deliveries (the
//! store keeps them all); the list shows the part of it that passes the
//! filter. Selection is an index into that list, and `top` the first row on
//! screen, so drawing touches only the rows that fit. The picker, the line
//! input and Danube's side have rooms of their own beside this one.

use std::collections::VecDeque;
use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

// What an App is made from, where the dashboard bench finds it.
pub use super::config::{AppConfig, HISTORY_BYTES, HISTORY_CAP, RegisteredWith};

use super::ReplayMode;
use super::danube_side::{DanubeMark, DanubeSide, Polled};
use super::filter::{Filter, FilterError};
use super::history::History;
use super::in_flight::InFlightBoard;
use super::line_input::LineInput;
use super::picker::{Picked, Picker};
use crate::danube::poller::Poll;
use crate::delivery::Delivery;
use crate::policy::PolicyHandle;
use crate::signature::Verdict;

mod filtering;
mod late;
mod mirrored;
mod with_earlier;

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
    /// Edit this delivery's body in the user's editor, then send the copy
    /// (`tui::editor`).
    Edit(Arc<Delivery>),
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

/// Everything the dashboard shows, and how keys change it.
pub struct App {
    pub(crate) config: AppConfig,
    /// The policy in force, shared with the listener.
    pub(crate) policy: PolicyHandle,
    /// The newest deliveries within their count and byte budget, their
    /// groups, and the body read back for the selected one.
    history: History,
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
    filter_error: Option<FilterError>,
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
    pub fn new(config: AppConfig, policy: PolicyHandle) -> Self {
        Self {
            history: History::new(config.history_cap, config.history_bytes),
            config,
            policy,
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
        self.danube = Some(DanubeSide::watch(webhook_id, since, self.history.iter()));
    }

    pub(crate) fn danube(&self) -> Option<&DanubeSide> {
        self.danube.as_ref()
    }

    /// What Danube says of delivery `id`; `None` when no webhook is known.
    pub(crate) fn danube_mark(&self, id: u64) -> Option<DanubeMark<'_>> {
        Some(self.danube.as_ref()?.mark(id))
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
        match side.apply(poll) {
            Polled::Failed(error) => self.set_status(
                StatusKind::Error,
                format!("Danube (still polling; D polls now): {error}"),
            ),
            Polled::Read(Some(told)) => self.set_status(StatusKind::Success, told),
            Polled::Read(None) => {
                if self
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

    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub(crate) fn selected_index(&self) -> Option<usize> {
        self.selected
    }

    /// The selected delivery: whole when it was read back from the store.
    pub(crate) fn selected(&self) -> Option<&Arc<Delivery>> {
        let selected = self.list.get(self.selected?)?;
        match self.history.opened() {
            Some(opened) if opened.id == selected.id => Some(opened),
            _ => Some(selected),
        }
    }

    /// Why `delivery`'s body is not in memory, when it is not: a sentence
    /// for the body tab and the status line.
    pub(crate) fn body_absence(&self, delivery: &Delivery) -> Option<String> {
        self.history
            .body_absence(delivery, self.config.keeps_records())
    }

    /// The id of the selected delivery when its body must be read back
    /// from the store; marks it asked for, so the event loop reads it once
    /// per selection.
    pub(crate) fn body_to_read_back(&mut self) -> Option<u64> {
        if !self.config.keeps_records() {
            return None;
        }
        let selected = self.list.get(self.selected?)?;
        self.history.body_to_read_back(selected)
    }

    /// A body read back from the store: kept while its delivery is selected.
    pub(crate) fn read_back(&mut self, id: u64, result: Result<Delivery, String>) {
        let selected = self.list.get(self.selected.unwrap_or(usize::MAX));
        if let Err(error) = self.history.read_back(id, result, selected.map(|d| d.id)) {
            self.set_status(
                StatusKind::Error,
                format!("could not read #{id} back from the store: {error}"),
            );
        }
    }

    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.history.held_bytes()
    }

    /// The attempts of `delivery`'s group still in memory, in id order.
    /// Delivery `id`, when the history holds it (a copy's original).
    pub(crate) fn find(&self, id: u64) -> Option<&Arc<Delivery>> {
        self.history.iter().find(|delivery| delivery.id == id)
    }

    pub(crate) fn group_of(&self, delivery: &Delivery) -> Vec<&Arc<Delivery>> {
        self.history.group_of(delivery)
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
        self.filter_error.as_ref().map(|err| err.headline.as_str())
    }

    /// Where in the filter being typed its error is (1-based, in
    /// characters), for the caret under it.
    pub(crate) fn filter_error_column(&self) -> Option<usize> {
        self.filter_error.as_ref().map(|err| err.column)
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
    /// resync) is ignored. One older than the newest that is new here (a
    /// shared store's listeners commit in their own order) goes in its
    /// place ([`App::ingest_late`]).
    pub fn ingest(&mut self, delivery: Arc<Delivery>) {
        if delivery.id <= self.last_id {
            self.ingest_late(delivery);
            return;
        }
        self.last_id = delivery.id;
        self.counters.count(&delivery);
        if let Some(side) = &mut self.danube {
            side.arrived(&delivery);
        }
        self.history.push(Arc::clone(&delivery));
        if self.filter.matches(&delivery) {
            self.list.push_back(delivery);
            if !self.paused || self.selected.is_none() {
                self.select(self.list.len() - 1);
            }
        }
        self.keep_within_limits();
    }

    /// The history back within its limits after a delivery came in, and
    /// the list with it.
    fn keep_within_limits(&mut self) {
        // The summary stays in the list; the body is read back from the
        // store when shown.
        let list = &mut self.list;
        self.history.strip_bodies(|summary| {
            if let Ok(at) = list.binary_search_by_key(&summary.id, |d| d.id) {
                list[at] = Arc::clone(summary);
            }
        });
        while let Some(oldest) = self.history.pop_over_limits() {
            if let Some(side) = &mut self.danube {
                side.left(oldest.id);
            }
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
        match key.code {
            KeyCode::Char('q' | 'D' | 'r' | 'R' | 'c' | 'e') => return self.effect_key(key.code),
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

    /// The keys that ask the event loop for what `App` does not do: quit,
    /// ask Danube, replay, edit, copy.
    fn effect_key(&mut self, code: KeyCode) -> Effect {
        // Replay, edit and copy need the body: not a summary whose body is
        // out of memory and not yet read back.
        if matches!(code, KeyCode::Char('r' | 'R' | 'c' | 'e'))
            && let Some(absence) = self.selected().and_then(|d| self.body_absence(d))
        {
            self.set_status(StatusKind::Error, absence);
            return Effect::None;
        }
        match code {
            KeyCode::Char('q') => return Effect::Quit,
            KeyCode::Char('D') => {
                if let Some(side) = &mut self.danube {
                    let text = side.ask();
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
            KeyCode::Char('e') => {
                if let Some(delivery) = self.selected().cloned() {
                    return Effect::Edit(delivery);
                }
                self.set_status(StatusKind::Error, "nothing selected to edit");
            }
            KeyCode::Char('c') => {
                if let Some(delivery) = self.selected().cloned() {
                    return Effect::Copy(delivery);
                }
                self.set_status(StatusKind::Error, "nothing selected to copy");
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
        self.history.selection_moved_to(id);
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
        self.fit_dividers();
    }

    // ---- The policy picker.

    fn open_picker(&mut self) {
        if self.config.viewer {
            self.set_status(
                StatusKind::Info,
                "no listener here: each listener's policy is its own (listen --respond, where it \
                 runs); a dashboard changes nothing of theirs",
            );
            return;
        }
        self.mode = Mode::Picker(Picker::open(&self.policy.current()));
    }

    fn picker_key(&mut self, key: KeyEvent) {
        let Mode::Picker(picker) = &mut self.mode else {
            return;
        };
        match picker.handle_key(key, &self.policy) {
            Picked::Open => {}
            Picked::Cancelled => self.mode = Mode::Normal,
            Picked::Applied(status) => {
                self.mode = Mode::Normal;
                self.set_status(StatusKind::Success, status);
            }
        }
    }
}

/// `re-signed` or `as-is`.
pub(crate) fn replay_label(mode: ReplayMode) -> &'static str {
    match mode {
        ReplayMode::Resigned => "re-signed",
        ReplayMode::AsIs => "as-is",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danube::reconcile;
    use crate::delivery::memory;
    use crate::policy::Policy;
    use crate::test_support::{app_config as config, sample};

    pub(super) fn app_with(n: u64) -> App {
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

    pub(super) fn press(app: &mut App, spec: &str) -> Vec<Effect> {
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
            // The query language: quotes keep spaces, and n=5 is the body's field.
            ("/n=5<Enter>", s(5, List, Overview, Pretty, false, 1)),
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
            press(&mut app, "e"),
            vec![Effect::Edit(Arc::clone(&selected))]
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
            side.local_len(),
            4,
            "one summary per delivery in the history"
        );
        assert_eq!(side.rows().len(), 1 + 4, "{:#?}", side.rows());
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
        assert!(
            memory::estimate(&oldest) < 2048,
            "{}",
            memory::estimate(&oldest)
        );
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
        assert!(app.history.opened().is_none());
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
            let (members, hashes, empty) = app.history.group_counts();
            prop_assert!(!empty, "empty bucket kept");
            prop_assert_eq!(members, app.history.len());
            prop_assert_eq!(hashes, app.history.len());
            for d in app.history.iter() {
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
            let held: usize = app.history.iter().map(|d| memory::estimate(d)).sum();
            prop_assert_eq!(app.history.held_bytes(), held);
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
