//! Drawing the dashboard: `impl Widget for &App` and its `render_*` helpers.
//! Reads the state and never changes it.
//!
//! Every piece of text that came with a delivery (path, headers, body,
//! event, the receiver's answer) and every path or message goes through
//! [`crate::display`] before it reaches a cell, so no byte of it can drive
//! the terminal. Colour is an addition, never the only signal: badges are
//! words (`VALID`, `MISMATCH`, `500`, `RESET`), the selected tab is in
//! brackets, the selected row is reversed without colour, and with
//! `NO_COLOR` no colour is used at all.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Widget};
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

use super::app::{
    App, BodyMode, DanubeMark, DanubeSide, Focus, Mode, Picker, RegisteredWith, StatusKind, Tab,
};
use crate::danube::reconcile::{self, Row};
use crate::delivery::{Delivery, format_duration_ms, format_ms};
use crate::display::{ascii_row, escape_bytes_multiline, escape_line, escape_multiline, hex_row};
use crate::json_style::{self, PrettyLimits};
use crate::signature::Verdict;

/// Rows of the header always there; [`header_rows`] are under them.
const HEADER_ROWS: u16 = 3;
/// Width of the labels in the detail pane.
const LABEL: usize = 10;
/// The cell under a text field's cursor: reversed, which needs no colour.
const CURSOR: Style = Style::new().add_modifier(Modifier::REVERSED);

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Areas {
    pub(crate) header: Rect,
    pub(crate) list: Rect,
    pub(crate) detail: Rect,
    pub(crate) status: Rect,
    pub(crate) footer: Rect,
}

pub(crate) fn areas(app: &App, area: Rect) -> Areas {
    let header_rows = HEADER_ROWS + header_rows(app).count() as u16;
    let [header, body, status, footer] = Layout::vertical([
        Constraint::Length(header_rows),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(40), Constraint::Fill(1)]).areas(body);
    Areas {
        header,
        list,
        detail,
        status,
        footer,
    }
}

/// Delivery rows that fit in the list: its height less the title and the
/// column names.
pub(crate) fn list_rows(app: &App, area: Rect) -> usize {
    usize::from(areas(app, area).list.height.saturating_sub(2))
}

/// Rows of content in the detail pane, and the largest scroll that still
/// shows content, for `app` on a screen of `area`.
pub(crate) fn detail_geometry(app: &App, area: Rect) -> (usize, usize) {
    let detail = areas(app, area).detail;
    let rows = usize::from(detail.height.saturating_sub(1));
    let total = app.selected().map_or(0, |d| {
        detail_content(app, d, usize::from(detail.width), 0, 0).0
    });
    (rows, total.saturating_sub(rows))
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme {
            color: self.config.color,
        };
        let areas = areas(self, area);
        render_header(self, &theme, areas.header, buf);
        render_list(self, &theme, areas.list, buf);
        render_detail(self, &theme, areas.detail, buf);
        render_status(self, &theme, areas.status, buf);
        render_footer(self, &theme, areas.footer, buf);
        match &self.mode {
            Mode::Picker(picker) => render_picker(self, picker, &theme, area, buf),
            Mode::Help => render_help(self, &theme, area, buf),
            Mode::Normal | Mode::Filter => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Styles: colour only when allowed, and never the only signal.

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    fn bold(&self, color: Color) -> Style {
        self.fg(color).add_modifier(Modifier::BOLD)
    }

    fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    fn label(&self) -> Style {
        self.fg(Color::Cyan)
    }

    fn verdict(&self, verdict: Verdict) -> Style {
        self.bold(match verdict {
            Verdict::Valid => Color::Green,
            Verdict::Mismatch | Verdict::Malformed => Color::Red,
            Verdict::Stale | Verdict::Missing => Color::Yellow,
            Verdict::Unchecked => Color::Gray,
        })
    }

    fn status_code(&self, status: Option<u16>) -> Style {
        self.bold(match status {
            Some(200..=299) => Color::Green,
            Some(300..=399) => Color::Cyan,
            Some(400..=499) => Color::Yellow,
            Some(500..=599) => Color::Red,
            _ => Color::Magenta,
        })
    }

    /// A pane's title bar; the focused one stands out without colour too.
    fn title(&self, focused: bool) -> Style {
        let style = if self.color {
            Style::new().fg(Color::White).bg(if focused {
                Color::Blue
            } else {
                Color::DarkGray
            })
        } else {
            Style::new()
        };
        if focused {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }

    fn selected_row(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    fn status(&self, kind: StatusKind) -> Style {
        match kind {
            StatusKind::Info => Style::new(),
            StatusKind::Success => self.fg(Color::Green),
            StatusKind::Error => self.bold(Color::Red),
        }
    }

    fn json_key(&self) -> Style {
        self.fg(Color::Cyan)
    }

    fn json_string(&self) -> Style {
        self.fg(Color::Green)
    }

    fn json_number(&self) -> Style {
        self.fg(Color::Yellow)
    }

    fn json_literal(&self) -> Style {
        self.fg(Color::Magenta)
    }
}

// ---------------------------------------------------------------------------
// Words for badges and cells.

/// `VALID`, `MISMATCH`, …
pub(crate) fn verdict_label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Valid => "VALID",
        Verdict::Mismatch => "MISMATCH",
        Verdict::Stale => "STALE",
        Verdict::Missing => "MISSING",
        Verdict::Malformed => "MALFORMED",
        Verdict::Unchecked => "UNCHECKED",
    }
}

/// What was answered, short: `200`, `FWD 201`, `200 +12s`, `RESET`, `TIMEOUT`.
pub(crate) fn answer_label(delivery: &Delivery) -> String {
    let response = &delivery.response;
    match (response.action.as_str(), response.status) {
        ("forward", Some(status)) => format!("FWD {status}"),
        (_, Some(status)) if response.delay_ms > 0 => {
            format!("{status} +{}", format_ms(response.delay_ms))
        }
        (_, Some(status)) => status.to_string(),
        ("", None) => "-".to_string(),
        (action, None) => escape_line(&action.to_ascii_uppercase()).into_owned(),
    }
}

/// The forward's result, short: `201 12ms`, `FAILED`, `-`.
fn forward_label(delivery: &Delivery) -> String {
    match &delivery.forward {
        None => "-".to_string(),
        Some(forward) => match (forward.status, &forward.error) {
            (Some(status), _) => format!("{status} {}", format_ms(forward.duration_ms)),
            (None, Some(_)) => "FAILED".to_string(),
            (None, None) => "-".to_string(),
        },
    }
}

/// Danube's status of a delivery, short: `ok 2/3`, `fail 3`, `pending`,
/// `unknown`; `!` when something does not add up.
pub(crate) fn danube_label(row: &Row) -> String {
    let mut label = match &row.danube {
        Some(d) => match d.status.as_str() {
            "success" => format!("ok {}/{}", d.attempts, crate::facts::ATTEMPTS),
            "failed" => format!("fail {}", d.attempts),
            "pending" => "pending".to_owned(),
            other => escape_line(other).into_owned(),
        },
        None => "unknown".to_owned(),
    };
    if !row.findings.is_empty() {
        label.push('!');
    }
    label
}

/// The Danube column's cell for delivery `id`.
fn danube_cell(app: &App, theme: &Theme, id: u64) -> (String, Style) {
    match app.danube_mark(id) {
        None | Some(DanubeMark::Waiting | DanubeMark::NotJudged | DanubeMark::BeforeWebhook) => {
            ("—".to_owned(), theme.dim())
        }
        Some(DanubeMark::Row(row)) => (danube_label(row), danube_style(theme, row)),
    }
}

fn danube_style(theme: &Theme, row: &Row) -> Style {
    match row.danube.as_ref().map(|d| d.status.as_str()) {
        _ if !row.findings.is_empty() => theme.bold(Color::Yellow),
        Some("success") => theme.fg(Color::Green),
        Some("failed") | None => theme.bold(Color::Red),
        Some(_) => theme.fg(Color::Yellow),
    }
}

/// `+250ms`, `+5.0s`, `+2m05s`.
fn gap_label(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("+{ms}ms")
    } else if ms < 60_000 {
        format!("+{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("+{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// `HH:MM:SS.mmm`, or without the milliseconds when narrow.
fn time_cell(app: &App, time: &DateTime<Utc>, width: usize) -> String {
    let time = time_of(app, time);
    fit(if width < 12 { &time[..8] } else { &time[..] }, width)
}

fn time_of(app: &App, time: &DateTime<Utc>) -> String {
    time.with_timezone(&app.config.utc_offset)
        .format("%H:%M:%S%.3f")
        .to_string()
}

/// What the list shows as the event: the event, or method and path for a
/// request that was not a POST, or `(no event)`.
fn what_label(delivery: &Delivery) -> String {
    if delivery.method != "POST" {
        return escape_line(&format!("{} {}", delivery.method, delivery.path)).into_owned();
    }
    match &delivery.event {
        Some(event) => escape_line(event).into_owned(),
        None => "(no event)".to_string(),
    }
}

/// What the list shows as an arrival's event, as [`what_label`] does.
fn arrival_label(arrival: &crate::store::Arrival) -> String {
    if arrival.method != "POST" {
        return escape_line(&format!("{} {}", arrival.method, arrival.path)).into_owned();
    }
    match &arrival.event {
        Some(event) => escape_line(event).into_owned(),
        None => "(no event)".to_string(),
    }
}

/// A path in `width` columns: its end, which tells paths apart, is kept.
fn path_cell(path: &str, width: usize) -> String {
    fit(&fit_tail(&escape_line(path), width), width)
}

/// The attempt, with `↺` for a replay.
fn attempt_label(delivery: &Delivery) -> String {
    let mark = if delivery.replay_of.is_some() {
        "↺"
    } else {
        ""
    };
    format!("{}{mark}", delivery.attempt)
}

/// `text` cut (with `…`) or padded to exactly `width` columns.
fn fit(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(width);
    let mut used = 0;
    if text.width() <= width {
        out.push_str(text);
        used = text.width();
    } else if width > 0 {
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width - 1 {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// `text` right-aligned in `width` columns.
fn fit_right(text: &str, width: usize) -> String {
    let w = text.width();
    if w >= width {
        return fit(text, width);
    }
    format!("{}{text}", " ".repeat(width - w))
}

/// `text` with its start cut (`…tail`) to at most `width` columns: for
/// paths, whose end says most.
fn fit_tail(text: &str, width: usize) -> Cow<'_, str> {
    if text.width() <= width || width == 0 {
        return Cow::Borrowed(text);
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        kept.push(c);
        used += w;
    }
    let mut out = String::from("…");
    out.extend(kept.into_iter().rev());
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------
// Header, status line, footer.

fn render_header(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let config = &app.config;
    let mut first = vec![
        Span::styled("danube-hooks ", theme.bold(Color::White)),
        if app.paused {
            Span::styled("⏸ PAUSED", theme.bold(Color::Yellow))
        } else {
            Span::styled("● LIVE", theme.bold(Color::Green))
        },
        Span::raw("  "),
        Span::styled(
            escape_line(&config.listen_url).into_owned(),
            theme.bold(Color::Cyan),
        ),
    ];
    if let Some(forward) = &config.forward_url {
        first.push(Span::styled(" → forward to ", theme.dim()));
        first.push(Span::raw(escape_line(forward).into_owned()));
    }

    let policy = escape_line(&app.policy.current().describe()).into_owned();
    let secrets = if config.fingerprints.is_empty() {
        "none (not checked)".to_string()
    } else {
        escape_line(&config.fingerprints.join(", ")).into_owned()
    };
    let store = match &config.store_path {
        Some(path) => escape_line(&path.display().to_string()).into_owned(),
        None => "memory only (--no-store)".to_string(),
    };
    let used = "policy ".len() + policy.width() + "  secrets ".len() + secrets.width();
    let room = usize::from(area.width).saturating_sub(used + "  store ".len());
    let mut second = vec![
        Span::styled("policy ", theme.label()),
        Span::styled(policy, theme.bold(Color::Magenta)),
        Span::styled("  secrets ", theme.label()),
        Span::raw(secrets),
    ];
    // The policy matters most here; the store (also in the banner) goes
    // when there is no room to say anything useful about it.
    if room >= 16 {
        second.push(Span::styled("  store ", theme.label()));
        second.push(Span::raw(fit_tail(&store, room).into_owned()));
    }
    let second = Line::from(second);

    let mut lines = vec![Line::from(first), second, counters_line(app, theme)];
    let label_width = header_rows(app).map(|(label, _)| label.width()).max();
    for (label, text) in header_rows(app) {
        let width = label_width.unwrap_or(0);
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<width$} "), theme.label()),
            Span::raw(escape_line(text).into_owned()),
        ]));
    }
    for (row, line) in lines.iter().enumerate() {
        if (row as u16) < area.height {
            buf.set_line(area.x, area.y + row as u16, line, area.width);
        }
    }
}

/// The header's third row: counts by verdict and by answer, and what is
/// in flight or was not shown.
fn counters_line(app: &App, theme: &Theme) -> Line<'static> {
    let c = &app.counters;
    let mut third = vec![
        Span::styled(format!("{} total", c.total), theme.bold(Color::White)),
        Span::raw("  "),
        Span::styled(format!("{} valid", c.valid), theme.fg(Color::Green)),
        Span::raw("  "),
        Span::styled(format!("{} invalid", c.invalid), theme.fg(Color::Red)),
    ];
    if c.unchecked > 0 {
        third.push(Span::raw(format!("  {} unchecked", c.unchecked)));
    }
    third.push(Span::styled("  │ ", theme.dim()));
    for (i, count) in c.by_class.iter().enumerate() {
        let class = i as u16 + 1;
        if *count > 0 || matches!(class, 2 | 4 | 5) {
            third.push(Span::styled(
                format!("{class}xx {count}  "),
                theme.status_code(Some(class * 100)),
            ));
        }
    }
    third.push(Span::styled(
        format!("no answer {}", c.no_answer),
        theme.status_code(None),
    ));
    if !app.in_flight.is_empty() {
        third.push(Span::styled(
            format!("  │ {} in flight", app.in_flight.len()),
            theme.bold(Color::Yellow),
        ));
    }
    if app.skipped > 0 {
        third.push(Span::styled(
            if app.config.store_path.is_some() {
                format!(
                    "  │ {} not shown (fell behind; `danube-hooks log` lists them)",
                    app.skipped
                )
            } else {
                format!(
                    "  │ {} skipped (fell behind; --no-store keeps no log to read back)",
                    app.skipped
                )
            },
            theme.bold(Color::Yellow),
        ));
    }
    Line::from(third)
}

/// The header's rows under the three always there, each a label and its
/// (unescaped) text, shown only when there is something to say: one more
/// optional row is one more entry here.
fn header_rows(app: &App) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("tunnel", app.config.tunnel.as_deref()),
        ("danube webhook", app.config.danube_webhook.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, text)| Some((label, text?)))
}

fn render_status(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    if app.mode == Mode::Filter {
        let input = app.filter_input();
        let mut spans = vec![Span::styled("filter ", theme.bold(Color::Cyan))];
        spans.extend(input_spans(input.text(), input.cursor()));
        match app.filter_error() {
            Some(error) => spans.push(Span::styled(
                format!("  {}", escape_line(error)),
                theme.bold(Color::Red),
            )),
            None => spans.push(Span::styled(
                "  text · event:tool.* · verdict:mismatch|invalid|…",
                theme.dim(),
            )),
        }
        buf.set_line(area.x, area.y, &Line::from(spans), area.width);
        return;
    }
    if let Some(status) = app.status() {
        let line = Line::styled(
            escape_line(&status.text).into_owned(),
            theme.status(status.kind),
        );
        buf.set_line(area.x, area.y, &line, area.width);
    }
}

/// A text field: the text, escaped, with a reversed cell at the cursor.
fn input_spans(text: &str, cursor: usize) -> Vec<Span<'static>> {
    let split = text
        .char_indices()
        .nth(cursor)
        .map_or(text.len(), |(i, _)| i);
    let (before, after) = text.split_at(split);
    let mut after_chars = after.chars();
    let at = after_chars.next();
    let mut spans = vec![Span::raw(escape_line(before).into_owned())];
    match at {
        Some(c) => {
            let c = c.to_string();
            let shown = escape_line(&c).into_owned();
            spans.push(Span::styled(shown, CURSOR));
            spans.push(Span::raw(escape_line(after_chars.as_str()).into_owned()));
        }
        None => spans.push(Span::styled(" ", CURSOR)),
    }
    spans
}

/// A key in the footer.
#[derive(Clone, Copy)]
struct FooterKey {
    key: &'static str,
    what: &'static str,
    /// Both, shorter, for a narrow screen.
    short: (&'static str, &'static str),
    /// Which goes first when even the short ones do not fit: the highest;
    /// 0 never goes.
    drop: u8,
}

const fn key(key: &'static str, what: &'static str, drop: u8) -> FooterKey {
    FooterKey {
        key,
        what,
        short: (key, what),
        drop,
    }
}

const fn key_short(
    key: &'static str,
    what: &'static str,
    short: (&'static str, &'static str),
    drop: u8,
) -> FooterKey {
    FooterKey {
        key,
        what,
        short,
        drop,
    }
}

/// The normal mode's keys in the order shown; `?` lists them all, so it
/// stays when others go.
const NORMAL_KEYS: &[FooterKey] = &[
    key("?", "help", 0),
    key("q", "quit", 1),
    key_short("D", "ask Danube", ("D", "Danube"), 2),
    key_short("↑↓/jk", "move", ("↑↓", "move"), 4),
    key("Tab", "focus", 5),
    key("←→", "tabs", 5),
    key("r/R", "replay", 3),
    key("p", "policy", 2),
    key("/", "filter", 3),
    key("c", "curl", 6),
    key("space", "pause", 7),
    key("b", "body", 7),
    key_short("g/G", "first/last", ("g/G", "ends"), 8),
];

const FILTER_KEYS: &[FooterKey] = &[
    key_short("Enter", "keep the filter", ("Enter", "keep"), 0),
    key_short("Esc", "clear it", ("Esc", "clear"), 0),
    key("←→", "move", 2),
    key("Ctrl-U", "erase", 1),
];

const PICKER_KEYS: &[FooterKey] = &[
    key("↑↓", "choose", 1),
    key_short("Tab", "rules field", ("Tab", "rules"), 2),
    key("Enter", "apply", 0),
    key("Esc", "cancel", 0),
];

const HELP_KEYS: &[FooterKey] = &[key("any key", "closes the help", 0)];

/// Columns that `pairs` take in the footer: `key what`, two spaces apart.
fn footer_width(pairs: &[(&str, &str)]) -> usize {
    let words: usize = pairs.iter().map(|(k, w)| k.width() + 1 + w.width()).sum();
    words + 2 * pairs.len().saturating_sub(1)
}

/// What of `keys` the footer shows in `width` columns: every key as it is,
/// or with shorter words, and then without the keys that matter least
/// until the rest fit; never a key cut in half.
fn footer_keys(keys: &[FooterKey], width: usize) -> Vec<(&'static str, &'static str)> {
    let long: Vec<_> = keys.iter().map(|k| (k.key, k.what)).collect();
    if footer_width(&long) <= width {
        return long;
    }
    let mut kept: Vec<&FooterKey> = keys.iter().collect();
    loop {
        let short: Vec<_> = kept.iter().map(|k| k.short).collect();
        if footer_width(&short) <= width {
            return short;
        }
        // Of the keys that matter least, the last one shown goes.
        let Some(least) = kept
            .iter()
            .enumerate()
            .filter(|(_, k)| k.drop > 0)
            .max_by_key(|(i, k)| (k.drop, *i))
            .map(|(i, _)| i)
        else {
            return short;
        };
        kept.remove(least);
    }
}

fn render_footer(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let keys: &[FooterKey] = match app.mode {
        Mode::Normal => NORMAL_KEYS,
        Mode::Filter => FILTER_KEYS,
        Mode::Picker(_) => PICKER_KEYS,
        Mode::Help => HELP_KEYS,
    };
    let danube = app.danube().is_some();
    let keys: Vec<FooterKey> = keys
        .iter()
        .filter(|k| danube || k.key != "D")
        .copied()
        .collect();
    let mut spans = Vec::new();
    for (i, (key, what)) in footer_keys(&keys, usize::from(area.width))
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(key, theme.bold(Color::Yellow)));
        spans.push(Span::styled(format!(" {what}"), theme.dim()));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

// ---------------------------------------------------------------------------
// The list.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Time,
    Id,
    What,
    Path,
    Verdict,
    Attempt,
    Answer,
    Forward,
    Danube,
    Duration,
}

/// The widest the event column gets before any other column gets room:
/// Danube's longest event type (`agent.spend.limit_approaching`, 29) and a
/// little more.
const EVENT_CAP: usize = 32;
/// The event column is cut down to this before the duration column goes…
const EVENT_KEPT: usize = 20;
/// …and to this before the time column goes.
const EVENT_FLOOR: usize = 12;
/// The path column is shown when it can have this much, or all it needs.
const PATH_MIN: usize = 12;

/// What the rows on screen need of the columns whose width follows what
/// they hold; at least each column's name.
struct Needs {
    /// No row is on screen: the event column is set for Danube's event
    /// types, and there is no path to show.
    none: bool,
    id: usize,
    what: usize,
    path: usize,
    verdict: usize,
    attempt: usize,
    answer: usize,
    forward: usize,
    danube: usize,
}

impl Needs {
    /// Of the visible deliveries and the first `in_flight` arrivals.
    fn of(app: &App, in_flight: usize) -> Needs {
        let mut needs = Needs {
            none: true,
            id: "ID".len(),
            what: "EVENT".len(),
            path: "PATH".len(),
            verdict: "VERDICT".len(),
            attempt: "#".len(),
            answer: "ANSWERED".len(),
            forward: "FORWARD".len(),
            danube: "DANUBE".len(),
        };
        let grow = |need: &mut usize, text: &str| *need = (*need).max(text.width());
        for (_, d) in app.visible() {
            needs.none = false;
            grow(&mut needs.id, &format!("#{}", d.id));
            grow(&mut needs.what, &what_label(d));
            grow(&mut needs.path, &escape_line(&d.path));
            grow(&mut needs.verdict, verdict_label(d.signature.verdict));
            grow(&mut needs.attempt, &attempt_label(d));
            grow(&mut needs.answer, &answer_label(d));
            grow(&mut needs.forward, &forward_label(d));
            if let Some(DanubeMark::Row(row)) = app.danube_mark(d.id) {
                grow(&mut needs.danube, &danube_label(row));
            }
        }
        for arrival in app.in_flight.iter().take(in_flight) {
            needs.none = false;
            grow(&mut needs.what, &arrival_label(arrival));
            grow(&mut needs.path, &escape_line(&arrival.path));
            grow(&mut needs.verdict, verdict_label(arrival.verdict));
            grow(&mut needs.attempt, &arrival.attempt.to_string());
        }
        // Short words from a known set, but a status from Danube or an
        // answer's delay may be long: cut rather than crowd the event.
        needs.answer = needs.answer.min(12);
        needs.forward = needs.forward.min(12);
        needs.danube = needs.danube.min(10);
        needs.attempt = needs.attempt.min(4);
        if needs.none {
            let danube = crate::events::EVENT_TYPES.iter().map(|e| e.width()).max();
            needs.what = danube.unwrap_or(needs.what);
        }
        needs
    }
}

/// Columns laid side by side, `gap` spaces apart.
fn columns_width(cols: &[(Col, usize)], gap: usize) -> usize {
    cols.iter()
        .map(|(_, w)| w + gap)
        .sum::<usize>()
        .saturating_sub(gap)
}

/// The list's columns and their widths, drawn `gap` spaces apart.
struct Columns {
    cols: Vec<(Col, usize)>,
    gap: usize,
}

impl Columns {
    fn width(&self) -> usize {
        columns_width(&self.cols, self.gap)
    }

    fn what_width(&self) -> usize {
        self.cols
            .iter()
            .find(|(col, _)| *col == Col::What)
            .map_or(0, |(_, width)| *width)
    }

    /// A cell's text, already fitted to its column, and the gap after it.
    fn cell(&self, text: String, style: Style) -> Span<'static> {
        let mut text = text;
        text.extend(std::iter::repeat_n(' ', self.gap));
        Span::styled(text, style)
    }
}

/// What a list too narrow for all its columns gives up, in turn.
#[derive(Clone, Copy)]
enum GiveUp {
    Milliseconds,
    /// The event's tail, down to this many columns.
    EventTo(usize),
    Column(Col),
}

const GIVE_UP: [GiveUp; 6] = [
    GiveUp::Milliseconds,
    GiveUp::EventTo(EVENT_KEPT),
    GiveUp::Column(Col::Duration),
    GiveUp::EventTo(EVENT_FLOOR),
    GiveUp::Column(Col::Time),
    GiveUp::EventTo("EVENT".len()),
];

/// The columns of a list `width` wide and their widths, by what the rows
/// on screen hold: the event gets what they need (up to [`EVENT_CAP`]);
/// then the path what it needs and the columns two spaces apart rather
/// than one (the path first); then a longer event the rest. What is left
/// stays empty at the right. Too narrow, the least needed goes first
/// ([`GIVE_UP`]). The forward column only when forwarding is set, Danube's
/// when a webhook is known.
fn columns(app: &App, width: u16, in_flight: usize) -> Columns {
    let needs = Needs::of(app, in_flight);
    let width = usize::from(width);
    let mut cols = vec![
        (Col::Time, 12),
        (Col::Id, needs.id),
        (Col::What, needs.what.min(EVENT_CAP)),
        (Col::Verdict, needs.verdict),
        (Col::Attempt, needs.attempt),
        (Col::Answer, needs.answer),
    ];
    if app.config.forward_url.is_some() {
        cols.push((Col::Forward, needs.forward));
    }
    if app.danube().is_some() {
        cols.push((Col::Danube, needs.danube));
    }
    cols.push((Col::Duration, 8));
    let what = |cols: &[(Col, usize)]| cols.iter().position(|(c, _)| *c == Col::What);
    for give_up in GIVE_UP {
        let over = columns_width(&cols, 1).saturating_sub(width);
        if over == 0 {
            break;
        }
        match give_up {
            GiveUp::Milliseconds => {
                if let Some(time) = cols.iter_mut().find(|(col, _)| *col == Col::Time) {
                    time.1 = 8;
                }
            }
            GiveUp::EventTo(floor) => {
                if let Some(at) = what(&cols) {
                    let now = cols[at].1;
                    cols[at].1 = now.saturating_sub(over).max(floor.min(now));
                }
            }
            GiveUp::Column(gone) => cols.retain(|(col, _)| *col != gone),
        }
    }
    let Some(at) = what(&cols) else {
        return Columns { cols, gap: 1 };
    };
    // What was cut comes back when a later step made room.
    let spare = width.saturating_sub(columns_width(&cols, 1));
    cols[at].1 += spare.min(needs.what.min(EVENT_CAP).saturating_sub(cols[at].1));
    // Two spaces apart, unless only one leaves the path all it needs.
    let path = (!needs.none).then_some(needs.path);
    let fits = |gap: usize, path: Option<usize>| {
        columns_width(&cols, gap) + path.map_or(0, |path| gap + path) <= width
    };
    let gap = if fits(2, path) || !fits(1, path) && fits(2, None) {
        2
    } else {
        1
    };
    let mut spare = width.saturating_sub(columns_width(&cols, gap));
    if path.is_some() && spare >= needs.path.min(PATH_MIN) + gap {
        let path = needs.path.min(spare - gap);
        cols.insert(at + 1, (Col::Path, path));
        spare -= path + gap;
    }
    cols[at].1 += spare.min(needs.what.saturating_sub(cols[at].1));
    Columns { cols, gap }
}

/// The list's title: how many are shown, the filter, a pause, and what
/// Danube says never arrived.
fn list_title(app: &App, focused: bool) -> String {
    let mut title = format!(
        "{} Deliveries  {} shown",
        if focused { "▶" } else { " " },
        app.list_len()
    );
    if app.filter_active() {
        let _ = write!(
            title,
            " of {} · filter: {}",
            app.history_len(),
            escape_line(app.filter_input().text())
        );
    }
    if app.paused {
        title.push_str(" · auto-scroll paused (space resumes)");
    }
    if let Some(missing) = app
        .danube()
        .map(DanubeSide::never_arrived)
        .filter(|n| *n > 0)
    {
        let _ = write!(
            title,
            " · Danube: {missing} never arrived (`deliveries` lists them)"
        );
    }
    title
}

fn render_list(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let focused = app.focus == Focus::List;
    let title_area = Rect { height: 1, ..area };
    buf.set_style(title_area, theme.title(focused));
    let title = list_title(app, focused);
    buf.set_line(
        area.x,
        area.y,
        &Line::styled(title, theme.title(focused)),
        area.width,
    );
    if area.height < 2 {
        return;
    }
    let in_flight = app.in_flight.rows_in(usize::from(area.height - 2));
    let cols = columns(app, area.width, in_flight);
    let names: Vec<Span> = cols
        .cols
        .iter()
        .map(|(col, width)| {
            let name = match col {
                Col::Time => "TIME",
                Col::Id => "ID",
                Col::What => "EVENT",
                Col::Path => "PATH",
                Col::Verdict => "VERDICT",
                Col::Attempt => "#",
                Col::Answer => "ANSWERED",
                Col::Forward => "FORWARD",
                Col::Danube => "DANUBE",
                Col::Duration => "DURATION",
            };
            let text = if *col == Col::Duration {
                fit_right(name, *width)
            } else {
                fit(name, *width)
            };
            cols.cell(text, theme.bold(Color::Gray))
        })
        .collect();
    buf.set_line(area.x, area.y + 1, &Line::from(names), area.width);

    let rows = Rect {
        y: area.y + 2,
        height: area.height - 2,
        ..area
    };
    // The deliveries in flight are pinned under the answered ones.
    let rows = render_in_flight(app, theme, &cols, rows, buf);
    if app.list_len() == 0 {
        // The first delivery, in flight, is not "waited for" any more.
        if app.history_len() > 0 || app.in_flight.is_empty() {
            render_empty_list(app, theme, rows, buf);
        }
        return;
    }
    // Only the rows on screen are built, whatever the history holds.
    for (row, (index, delivery)) in app.visible().enumerate() {
        let y = rows.y + row as u16;
        if y >= rows.bottom() {
            break;
        }
        let selected = app.selected_index() == Some(index);
        let line = list_row(app, theme, delivery, &cols);
        if selected {
            buf.set_style(
                Rect {
                    y,
                    height: 1,
                    ..rows
                },
                theme.selected_row(),
            );
        }
        buf.set_line(rows.x, y, &line, rows.width);
    }
}

fn list_row(app: &App, theme: &Theme, delivery: &Delivery, cols: &Columns) -> Line<'static> {
    let spans = cols
        .cols
        .iter()
        .map(|(col, width)| {
            let width = *width;
            let (text, style) = match col {
                Col::Time => (time_cell(app, &delivery.received_at, width), theme.dim()),
                Col::Id => (fit(&format!("#{}", delivery.id), width), Style::new()),
                Col::What => {
                    let style = if delivery.event.is_some() {
                        Style::new()
                    } else {
                        theme.dim()
                    };
                    (fit(&what_label(delivery), width), style)
                }
                Col::Path => (path_cell(&delivery.path, width), theme.dim()),
                Col::Verdict => (
                    fit(verdict_label(delivery.signature.verdict), width),
                    theme.verdict(delivery.signature.verdict),
                ),
                Col::Attempt => (fit(&attempt_label(delivery), width), Style::new()),
                Col::Answer => (
                    fit(&answer_label(delivery), width),
                    theme.status_code(delivery.response.status),
                ),
                Col::Forward => {
                    let style = match &delivery.forward {
                        Some(forward) if forward.status.is_some() => {
                            theme.status_code(forward.status)
                        }
                        Some(_) => theme.bold(Color::Red),
                        None => theme.dim(),
                    };
                    (fit(&forward_label(delivery), width), style)
                }
                Col::Danube => {
                    let (text, style) = danube_cell(app, theme, delivery.id);
                    (fit(&text, width), style)
                }
                Col::Duration => (
                    fit_right(&format_duration_ms(delivery.duration_ms), width),
                    theme.dim(),
                ),
            };
            cols.cell(text, style)
        })
        .collect::<Vec<_>>();
    Line::from(spans)
}

/// The deliveries in flight, oldest (longest held) first, at the bottom of
/// the list's `rows`: each with how long it has been held against Danube's
/// deadline where the answer, forward and duration columns go; past the
/// deadline in red. Returns the rows left above them.
fn render_in_flight(
    app: &App,
    theme: &Theme,
    cols: &Columns,
    rows: Rect,
    buf: &mut Buffer,
) -> Rect {
    let board = &app.in_flight;
    let pinned = board.rows_in(usize::from(rows.height));
    let area = Rect {
        y: rows.bottom() - pinned as u16,
        height: pinned as u16,
        ..rows
    };
    // When they do not all fit, the last row sums up the rest.
    let (shown, more) = if board.len() > pinned {
        (
            pinned.saturating_sub(1),
            board.len() - pinned.saturating_sub(1),
        )
    } else {
        (pinned, 0)
    };
    let now = board.now();
    let tails: Vec<String> = board
        .iter()
        .take(shown)
        .map(|arrival| {
            format!(
                "{} · {}",
                arrival.held_label(now),
                escape_line(&arrival.step)
            )
        })
        .collect();
    // The tail goes where the answer and the columns after it would be,
    // to the right edge; the event gives up room for the widest tail, down
    // to a few columns, the same for every row so that the columns line up.
    let spare = usize::from(rows.width).saturating_sub(cols.width());
    let room: usize = (cols
        .cols
        .iter()
        .filter(|(col, _)| {
            matches!(
                col,
                Col::Answer | Col::Forward | Col::Danube | Col::Duration
            )
        })
        .map(|(_, width)| width + cols.gap)
        .sum::<usize>()
        + spare)
        .saturating_sub(cols.gap);
    let widest = tails.iter().map(|tail| tail.width()).max().unwrap_or(0);
    let taken = widest.saturating_sub(room);
    for (row, (arrival, tail)) in board.iter().zip(&tails).enumerate() {
        let mut spans = in_flight_cells(app, theme, cols, arrival, taken);
        let style = if arrival.held(now) >= crate::facts::DEADLINE {
            theme.bold(Color::Red)
        } else {
            theme.bold(Color::Yellow)
        };
        let given = taken.min(cols.what_width().saturating_sub(12));
        spans.push(Span::styled(fit(tail, room + given), style));
        buf.set_line(area.x, area.y + row as u16, &Line::from(spans), area.width);
    }
    if more > 0 {
        let text = format!("  … and {more} more in flight");
        let y = area.y + shown as u16;
        buf.set_line(
            area.x,
            y,
            &Line::styled(text, theme.bold(Color::Yellow)),
            area.width,
        );
    }
    Rect {
        height: rows.height - pinned as u16,
        ..rows
    }
}

/// The cells of an arrival up to the attempt, its event `taken` columns
/// narrower (down to a few) to make room for the count.
fn in_flight_cells(
    app: &App,
    theme: &Theme,
    cols: &Columns,
    arrival: &crate::store::Arrival,
    taken: usize,
) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (col, width) in &cols.cols {
        let width = *width;
        let (text, style) = match col {
            Col::Time => (time_cell(app, &arrival.received_at, width), theme.dim()),
            Col::Id => (fit("…", width), theme.dim()),
            Col::What => {
                let width = width - taken.min(width.saturating_sub(12));
                (fit(&arrival_label(arrival), width), Style::new())
            }
            Col::Path => (path_cell(&arrival.path, width), theme.dim()),
            Col::Verdict => (
                fit(verdict_label(arrival.verdict), width),
                theme.verdict(arrival.verdict),
            ),
            Col::Attempt => (fit(&arrival.attempt.to_string(), width), Style::new()),
            Col::Answer | Col::Forward | Col::Danube | Col::Duration => continue,
        };
        spans.push(cols.cell(text, style));
    }
    spans
}

fn render_empty_list(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let lines: Vec<(String, Style)> = if app.history_len() > 0 {
        vec![(
            "No delivery matches the filter (Esc clears it, / edits it).".to_owned(),
            theme.dim(),
        )]
    } else {
        first_delivery_hint(app)
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let style = if i == 0 {
                    theme.bold(Color::White)
                } else {
                    theme.dim()
                };
                (line, style)
            })
            .collect()
    };
    // Wrapped between words, so no command is cut off at the edge.
    let width = usize::from(area.width.saturating_sub(2)).max(10);
    let pieces = lines.iter().flat_map(|(line, style)| {
        wrap_words(line, width)
            .into_iter()
            .map(move |piece| Line::styled(piece, *style))
    });
    for (i, line) in pieces.enumerate() {
        let y = area.y + 1 + i as u16;
        if y >= area.bottom() {
            break;
        }
        buf.set_line(area.x + 2, y, &line, area.width.saturating_sub(2));
    }
}

/// What to do for a first delivery, the first line the headline: it
/// depends on who was asked to post here. Under `--register` the webhook's
/// secret was made by Danube, so `trigger --to` would need a secret the
/// developer does not have; Danube or the emulator is asked instead.
fn first_delivery_hint(app: &App) -> Vec<String> {
    let url = escape_line(&app.config.listen_url).into_owned();
    match &app.config.registered_with {
        RegisteredWith::Danube => vec![
            "Waiting for Danube's deliveries: the webhook in the header posts here.".to_owned(),
            "Run a workflow or a tool in Danube, and its events arrive here.".to_owned(),
            "Nothing after a run? D asks Danube which deliveries it made.".to_owned(),
        ],
        RegisteredWith::Emulator { api_url } => {
            let api_url = escape_line(api_url);
            vec![
                format!("Waiting for deliveries from the emulator at {api_url}."),
                "Have it send one, signed with the webhook's secret:".to_owned(),
                format!("danube-hooks trigger workflow.completed --emulator {api_url}"),
            ]
        }
        // `--tunnel` without a credential: the tunnel runs, Danube does not
        // know it yet.
        RegisteredWith::Nothing if app.config.tunnel.is_some() => vec![
            "Waiting for deliveries through the tunnel in the header.".to_owned(),
            "Paste its https:// URL, plus a path such as /webhooks/danube, as the webhook URL \
             in Danube, and start again with the webhook's secret (--secret whsec_…)."
                .to_owned(),
            "Or run `danube-hooks login` and start again: the webhook is then registered by \
             itself."
                .to_owned(),
        ],
        RegisteredWith::Nothing => {
            let port = url.rsplit(':').next().unwrap_or("4000").to_string();
            vec![
                format!("Waiting for deliveries: POST to {url}/any/path"),
                // A command to a line, so that none is wrapped.
                format!("Put a tunnel in front: ngrok http {port}"),
                format!("or: cloudflared tunnel --url http://localhost:{port}"),
                "then register the tunnel's https:// URL as the webhook URL in Danube.".to_owned(),
            ]
        }
    }
}

// ---------------------------------------------------------------------------
// The detail pane.

fn render_detail(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let focused = app.focus == Focus::Detail;
    let bar = Rect { height: 1, ..area };
    buf.set_style(bar, theme.title(focused));
    let mut spans = vec![Span::styled(
        if focused { "▶ " } else { "  " },
        theme.title(focused),
    )];
    if let Some(delivery) = app.selected() {
        spans.push(Span::styled(
            format!("#{}  ", delivery.id),
            theme.title(focused),
        ));
    }
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let text = if *tab == app.tab {
            format!("[{} {}]", i + 1, tab.title())
        } else {
            format!(" {} {} ", i + 1, tab.title())
        };
        let mut style = theme.title(focused);
        if *tab == app.tab {
            style = style.add_modifier(Modifier::BOLD);
            if theme.color {
                style = style.fg(Color::Yellow);
            }
        }
        spans.push(Span::styled(text, style));
    }
    if app.tab == Tab::Body {
        spans.push(Span::styled("  b:", theme.title(focused)));
        for mode in [BodyMode::Pretty, BodyMode::Raw, BodyMode::Hex] {
            // Narrow, only the mode shown: the room goes to the rows count.
            let text = if mode == app.body_mode {
                format!("[{}]", mode.label())
            } else if area.width >= 100 {
                format!(" {} ", mode.label())
            } else {
                continue;
            };
            spans.push(Span::styled(text, theme.title(focused)));
        }
    }
    let bar_line = Line::from(spans);
    let bar_width = bar_line.width();
    buf.set_line(area.x, area.y, &bar_line, area.width);

    let content = Rect {
        y: area.y + 1,
        height: area.height - 1,
        ..area
    };
    let Some(delivery) = app.selected() else {
        let line = Line::styled("Nothing selected yet.", theme.dim());
        if content.height > 0 {
            buf.set_line(
                content.x + 2,
                content.y + 1.min(content.height - 1),
                &line,
                content.width,
            );
        }
        return;
    };
    let rows = usize::from(content.height);
    // The scroll as set by keys; the event loop fits it to this layout
    // before drawing, so the second pass is only for a stale one.
    let width = usize::from(content.width);
    let (total, lines) = detail_content(app, delivery, width, app.detail_scroll(), rows);
    let (scroll, lines) = match total.saturating_sub(rows) {
        max if app.detail_scroll() > max => {
            (max, detail_content(app, delivery, width, max, rows).1)
        }
        _ => (app.detail_scroll(), lines),
    };
    for (i, line) in lines.iter().enumerate() {
        buf.set_line(content.x, content.y + i as u16, line, content.width);
    }
    if total > rows {
        let more = format!(" {}–{}/{total} ", scroll + 1, (scroll + rows).min(total));
        // Only where the tabs leave room for it.
        if bar_width + more.width() < usize::from(area.width) {
            let x = area.right() - more.width() as u16;
            buf.set_string(x, area.y, more, theme.title(focused));
        }
    }
}

/// The detail's rows for `delivery` at `width`: how many there are in all,
/// and the `take` rows from `skip` on. Only those are built as `Line`s for
/// the body, which may be large.
fn detail_content(
    app: &App,
    delivery: &Delivery,
    width: usize,
    skip: usize,
    take: usize,
) -> (usize, Vec<Line<'static>>) {
    let theme = Theme {
        color: app.config.color,
    };
    let mut rows = Rows::new(width.max(1), skip, take);
    match app.tab {
        Tab::Overview => overview(app, &theme, delivery, &mut rows),
        Tab::Headers => headers(&theme, delivery, &mut rows),
        Tab::Body => match app.body_absence(delivery) {
            Some(absence) => rows.plain(absence, theme.dim()),
            None => body(app.body_mode, &theme, delivery, &mut rows),
        },
        Tab::Response => response(app, &theme, delivery, &mut rows),
    }
    (rows.total, rows.out)
}

/// Wraps source lines into rows of a width, counting them all and building
/// only the rows asked for.
struct Rows {
    width: usize,
    skip: usize,
    take: usize,
    total: usize,
    out: Vec<Line<'static>>,
}

impl Rows {
    fn new(width: usize, skip: usize, take: usize) -> Self {
        Self {
            width,
            skip,
            take,
            total: 0,
            out: Vec::new(),
        }
    }

    fn wanted(&self) -> bool {
        self.total >= self.skip && self.total < self.skip + self.take
    }

    /// A line off screen known to take one row: counted, not built.
    fn count_row(&mut self) {
        self.total += 1;
    }

    /// One source line of safe text (already escaped, no tabs or line
    /// breaks), cut into rows at the width, characters kept whole.
    fn line(&mut self, segments: Vec<(String, Style)>) {
        let mut row: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        let mut wanted = self.wanted();
        for (text, style) in segments {
            if used + text.width() <= self.width {
                used += text.width();
                if wanted {
                    row.push(Span::styled(text, style));
                }
                continue;
            }
            let mut piece = String::new();
            for c in text.chars() {
                let w = c.width().unwrap_or(0);
                if used + w > self.width && used > 0 {
                    if wanted {
                        row.push(Span::styled(std::mem::take(&mut piece), style));
                        self.out.push(Line::from(std::mem::take(&mut row)));
                    }
                    piece.clear();
                    self.total += 1;
                    used = 0;
                    wanted = self.wanted();
                }
                used += w;
                if wanted {
                    piece.push(c);
                }
            }
            if wanted && !piece.is_empty() {
                row.push(Span::styled(piece, style));
            }
        }
        if wanted {
            self.out.push(Line::from(row));
        }
        self.total += 1;
    }

    fn plain(&mut self, text: impl Into<String>, style: Style) {
        self.line(vec![(text.into(), style)]);
    }

    /// `label` in a column of [`LABEL`], then `prefix` (a badge), then
    /// `text` word-wrapped with its continuation under the text.
    fn field(
        &mut self,
        theme: &Theme,
        label: &str,
        prefix: Option<(String, Style)>,
        text: &str,
        style: Style,
    ) {
        let indent = LABEL + prefix.as_ref().map_or(0, |(p, _)| p.width());
        let room = self.width.saturating_sub(indent).max(10);
        let wrapped = wrap_words(text, room);
        let mut prefix = prefix;
        for (i, piece) in wrapped.into_iter().enumerate() {
            let mut segments = Vec::new();
            if i == 0 {
                segments.push((format!("{label:<LABEL$}"), theme.label()));
                segments.extend(prefix.take());
            } else {
                segments.push((" ".repeat(indent), Style::new()));
            }
            segments.push((piece, style));
            self.line(segments);
        }
    }
}

/// Greedy word wrap of one line of safe text at `width` columns; a word
/// longer than a row is cut. Always at least one piece.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!current.is_empty());
        if current.width() + sep + word.width() <= width {
            if sep == 1 {
                current.push(' ');
            }
            current.push_str(word);
            continue;
        }
        if !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        let mut used = 0;
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                pieces.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(c);
            used += w;
        }
    }
    pieces.push(current);
    pieces
}

fn overview(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let verdict = d.signature.verdict;
    rows.field(
        theme,
        "verdict",
        Some((
            format!("{}  ", verdict_label(verdict)),
            theme.verdict(verdict),
        )),
        &escape_line(&d.signature.detail),
        Style::new(),
    );
    for hint in &d.signature.hints {
        rows.field(
            theme,
            "hint",
            None,
            &escape_line(hint),
            theme.fg(Color::Yellow),
        );
    }
    let when = match (d.signature.timestamp, d.signature.skew_s) {
        (Some(t), Some(skew)) if skew >= 0 => format!("t={t} ({skew} s before arrival)"),
        (Some(t), Some(skew)) => format!("t={t} ({} s in the future)", -skew),
        (Some(t), None) => format!("t={t}"),
        (None, _) => "no t".to_string(),
    };
    let secret = d.signature.secret.as_deref().map_or_else(
        || "no secret matched".to_string(),
        |s| format!("secret {}", escape_line(s)),
    );
    let replay = d
        .replay_of
        .map(|first| (format!("REPLAY of #{first}  "), theme.bold(Color::Red)));
    let signed = format!(
        "{when} · {secret}{}",
        if replay.is_none() {
            " · not a replay"
        } else {
            ""
        }
    );
    rows.field(theme, "signed", replay, &escape_line(&signed), Style::new());
    rows.field(
        theme,
        "answered",
        Some((
            format!("{}  ", answer_label(d)),
            theme.status_code(d.response.status),
        )),
        &escape_line(&format!(
            "rule {} · in {}",
            d.response.rule,
            format_duration_ms(d.duration_ms)
        )),
        Style::new(),
    );
    if let Some(forward) = &d.forward {
        let text = match (forward.status, &forward.error) {
            (Some(status), _) => format!(
                "{status} in {} from {}",
                format_ms(forward.duration_ms),
                forward.url
            ),
            (None, Some(error)) => format!("failed: {error}"),
            (None, None) => forward.url.clone(),
        };
        rows.field(theme, "forward", None, &escape_line(&text), Style::new());
    }
    let group = app.group_of(d);
    rows.field(
        theme,
        "attempts",
        None,
        &escape_line(&format!("{} in memory · group {}", group.len(), d.group)),
        Style::new(),
    );
    timeline(app, theme, d, &group, rows);
    danube_lines(app, theme, d, rows);
    let mut request = format!(
        "{} {} · {} · from {} · {} bytes",
        d.method, d.path, d.http_version, d.remote_addr, d.body_size
    );
    if d.body_truncated {
        let _ = write!(request, " ({} kept)", d.body.len());
    }
    rows.field(theme, "request", None, &escape_line(&request), Style::new());
}

/// What Danube recorded for the delivery, and each finding, when a webhook
/// is known.
fn danube_lines(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let Some(mark) = app.danube_mark(d.id) else {
        return;
    };
    let webhook = app.danube().map_or("", |side| side.webhook_id.as_str());
    let row = match mark {
        DanubeMark::Waiting => {
            let text = format!("asking Danube for webhook {webhook}'s deliveries…");
            rows.field(theme, "danube", None, &escape_line(&text), theme.dim());
            return;
        }
        DanubeMark::NotJudged => {
            let text =
                format!("not in the part of webhook {webhook}'s log last read (D reads it again)");
            rows.field(theme, "danube", None, &escape_line(&text), theme.dim());
            return;
        }
        DanubeMark::BeforeWebhook => {
            let text =
                format!("arrived before webhook {webhook} was created: none of its deliveries");
            rows.field(theme, "danube", None, &escape_line(&text), theme.dim());
            return;
        }
        DanubeMark::Row(row) => row,
    };
    let text = match &row.danube {
        Some(record) => {
            let attempts = match record.attempts {
                1 => "1 attempt".to_owned(),
                n => format!("{n} attempts"),
            };
            let recorded = record
                .response_status
                .map_or_else(|| "no response".to_owned(), |s| s.to_string());
            let at = record
                .delivered_at
                .as_deref()
                .map(|t| match reconcile::parse_time(t) {
                    Some(time) => format!(" at {}", time_of(app, &time)),
                    None => format!(" at {t}"),
                })
                .unwrap_or_default();
            format!(
                "{} after {attempts}, recorded {recorded}{at} · {}",
                record.status, record.id
            )
        }
        None => format!("not in webhook {webhook}'s log: Danube did not send this"),
    };
    rows.field(
        theme,
        "danube",
        Some((format!("{}  ", danube_label(row)), danube_style(theme, row))),
        &escape_line(&text),
        Style::new(),
    );
    for finding in &row.findings {
        rows.field(
            theme,
            "finding",
            Some((
                format!("{}  ", finding.kind.as_str()),
                theme.bold(Color::Yellow),
            )),
            &escape_line(&finding.detail),
            theme.fg(Color::Yellow),
        );
    }
}

/// The group's attempts, each with its time, the gap since the one before,
/// its verdict and what it got. A group may hold thousands (the same body
/// sent again and again): only the attempts on screen are built; the others
/// are counted, a row each when their width fits, which is worked out
/// without formatting them.
fn timeline(app: &App, theme: &Theme, d: &Delivery, group: &[&Arc<Delivery>], rows: &mut Rows) {
    let mut previous: Option<&DateTime<Utc>> = None;
    for attempt in group {
        let gap_ms = previous.map(|p| (attempt.received_at - *p).num_milliseconds());
        previous = Some(&attempt.received_at);
        if !rows.wanted() && timeline_width(attempt, gap_ms) <= rows.width {
            rows.count_row();
            continue;
        }
        let gap = gap_ms.map_or_else(String::new, gap_label);
        let marker = if attempt.id == d.id { "▶ " } else { "  " };
        let verdict = attempt.signature.verdict;
        rows.line(vec![
            (format!("  {marker}"), theme.bold(Color::Yellow)),
            (format!("{:<7}", format!("#{}", attempt.id)), Style::new()),
            (format!("attempt {:<3}", attempt.attempt), Style::new()),
            (
                format!("{}  ", time_of(app, &attempt.received_at)),
                theme.dim(),
            ),
            (format!("{gap:>9}  "), theme.fg(Color::Cyan)),
            (
                format!("{:<10}", verdict_label(verdict)),
                theme.verdict(verdict),
            ),
            (
                answer_label(attempt),
                theme.status_code(attempt.response.status),
            ),
        ]);
    }
}

/// The width of a [`timeline`] row, or more: at most, never less, so a row
/// said to fit does fit (one that does not is built and measured).
fn timeline_width(attempt: &Delivery, gap_ms: Option<i64>) -> usize {
    fn digits(n: u64) -> usize {
        n.checked_ilog10().map_or(1, |log| log as usize + 1)
    }
    // `+59.9s` and shorter below a minute; `+{m}m{ss}s` above.
    let gap = match gap_ms {
        Some(ms) if ms >= 60_000 => digits(ms as u64 / 60_000) + 5,
        _ => 0,
    };
    let answer = match (attempt.response.action.as_str(), attempt.response.status) {
        // `FWD 201`; a status with a delay (`200 +12.5s`) gets the most a
        // delay below 10^15 ms takes.
        ("forward", Some(status)) => 4 + digits(u64::from(status)),
        (_, Some(status)) if attempt.response.delay_ms > 0 => {
            digits(u64::from(status)) + 2 + digits(attempt.response.delay_ms) + 2
        }
        (_, Some(status)) => digits(u64::from(status)),
        _ => answer_label(attempt).width(),
    };
    // The marker (`▶` taken as two columns at most), `#id` in 7, `attempt
    // n` in 11, the time and two spaces, the gap in 9 and two spaces, the
    // verdict in 10, the answer.
    5 + (digits(attempt.id) + 1).max(7)
        + 8
        + digits(u64::from(attempt.attempt)).max(3)
        + 14
        + gap.max(9)
        + 2
        + 10
        + answer
}

fn headers(theme: &Theme, d: &Delivery, rows: &mut Rows) {
    rows.plain(
        format!("{} headers, in arrival order", d.headers.len()),
        theme.dim(),
    );
    for (name, value) in &d.headers {
        let name_style = if name.eq_ignore_ascii_case(crate::signature::HEADER_NAME) {
            theme.bold(Color::Yellow)
        } else {
            theme.label()
        };
        let name = escape_line(name).into_owned();
        let indent = 2;
        let first_room = rows.width.saturating_sub(name.width() + 2).max(10);
        let value = escape_line(value);
        let mut pieces = wrap_words(&value, first_room).into_iter();
        let first = pieces.next().unwrap_or_default();
        rows.line(vec![
            (format!("{name}: "), name_style),
            (first, Style::new()),
        ]);
        let rest: String = pieces.collect::<Vec<_>>().join(" ");
        if !rest.is_empty() {
            for piece in wrap_words(&rest, rows.width.saturating_sub(indent).max(10)) {
                rows.line(vec![
                    (" ".repeat(indent), Style::new()),
                    (piece, Style::new()),
                ]);
            }
        }
    }
}

/// The body tab shows at most this many bytes of a body, raw or hex: a
/// frame is built two or three times (layout, then draw), and must be
/// done within its budget whatever the body.
const BODY_VIEW_BYTES: usize = 64 * 1024;

fn body(mode: BodyMode, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let mut about = format!("{} bytes", d.body_size);
    if d.body_truncated {
        let _ = write!(about, ", truncated: the first {} kept", d.body.len());
    }
    if d.body.is_empty() {
        rows.plain(format!("{about} · (empty body)"), theme.dim());
        return;
    }
    let shown = &d.body[..d.body.len().min(BODY_VIEW_BYTES)];
    if shown.len() < d.body.len() {
        let _ = write!(about, ", the first {} KiB shown", BODY_VIEW_BYTES / 1024);
    }
    let cut = (shown.len() < d.body.len()).then(|| {
        format!(
            "… cut: the first {} KiB of {} bytes shown; `danube-hooks show {} --raw` prints it all",
            BODY_VIEW_BYTES / 1024,
            d.body.len(),
            d.id
        )
    });
    match mode {
        BodyMode::Pretty => {
            // `Err(None)`: too large to try.
            let pretty = if cut.is_some() {
                Err(None)
            } else {
                json_style::pretty_bounded(shown, &PrettyLimits::DASHBOARD).map_err(Some)
            };
            match pretty {
                Ok((text, text_cut)) => {
                    rows.plain(
                        format!("{about} · JSON re-indented (b: raw shows the exact bytes)"),
                        theme.dim(),
                    );
                    for line in text.lines() {
                        rows.line(json_segments(line, theme));
                    }
                    if text_cut {
                        rows.plain(
                            format!(
                                "… cut: re-indented, it is over {} KiB; b: raw shows the bytes",
                                PrettyLimits::DASHBOARD.text / 1024
                            ),
                            theme.dim(),
                        );
                    }
                }
                Err(Some(json_style::NotPretty::NotJson)) => {
                    rows.plain(format!("{about} · not JSON, shown raw"), theme.dim());
                    raw_lines(shown, rows);
                }
                Err(why) => {
                    let why = why.map_or_else(
                        || format!("over {} KiB", BODY_VIEW_BYTES / 1024),
                        |why| why.to_string(),
                    );
                    rows.plain(
                        format!("{about} · not re-indented ({why}), shown raw"),
                        theme.dim(),
                    );
                    raw_lines(shown, rows);
                }
            }
        }
        BodyMode::Raw => {
            rows.plain(format!("{about} · raw, escaped"), theme.dim());
            raw_lines(shown, rows);
        }
        BodyMode::Hex => {
            rows.plain(format!("{about} · hex"), theme.dim());
            for (i, chunk) in shown.chunks(16).enumerate() {
                rows.line(vec![
                    (format!("{:08x}  ", i * 16), theme.dim()),
                    (hex_row(chunk), theme.json_number()),
                    (ascii_row(chunk), Style::new()),
                ]);
            }
        }
    }
    if let Some(cut) = cut {
        rows.plain(cut, theme.dim());
    }
}

fn raw_lines(body: &[u8], rows: &mut Rows) {
    let text = escape_bytes_multiline(body);
    for line in text.split('\n') {
        rows.plain(line.replace('\t', "    "), Style::new());
    }
}

/// One line of pretty JSON, split into coloured tokens: keys, strings,
/// numbers, literals. Each token is escaped (serde leaves DEL, C1 and the
/// bidi controls as they are).
fn json_segments(line: &str, theme: &Theme) -> Vec<(String, Style)> {
    let mut segments = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut plain_start = 0;
    let flush = |segments: &mut Vec<(String, Style)>, from: usize, to: usize| {
        if to > from {
            segments.push((escape_multiline(&line[from..to]).into_owned(), Style::new()));
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                flush(&mut segments, plain_start, i);
                let start = i;
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                let end = i.min(bytes.len());
                let is_key = line[end..].trim_start().starts_with(':');
                let style = if is_key {
                    theme.json_key()
                } else {
                    theme.json_string()
                };
                segments.push((escape_multiline(&line[start..end]).into_owned(), style));
                i = end;
                plain_start = i;
            }
            b'-' | b'0'..=b'9' => {
                flush(&mut segments, plain_start, i);
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                segments.push((line[start..i].to_string(), theme.json_number()));
                plain_start = i;
            }
            b't' | b'f' | b'n' => {
                let rest = &line[i..];
                let literal = ["true", "false", "null"]
                    .into_iter()
                    .find(|l| rest.starts_with(l));
                if let Some(literal) = literal {
                    flush(&mut segments, plain_start, i);
                    segments.push((literal.to_string(), theme.json_literal()));
                    i += literal.len();
                    plain_start = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    flush(&mut segments, plain_start, bytes.len());
    segments
}

/// What an answer that is not a plain status means to Danube.
fn tunnel_note(action: &str, delay_ms: u64) -> Option<&'static str> {
    match action {
        "reset" | "close" | "garbage" => Some(
            "through a tunnel (ngrok, cloudflared) Danube does not see this as a transport \
             fault: the tunnel answers with its own gateway error (such as 502), so Danube \
             records an HTTP error status for the attempt. Only a direct connection sees the \
             connection itself fail.",
        ),
        "abandoned" => Some(
            "the client went away while the answer waited (Danube gives up at its 10 s \
             deadline), so nothing was sent; the duration is how long it waited.",
        ),
        "timeout" => Some(
            "held with no answer past Danube's 10 s deadline: the attempt fails as a timeout \
             (through a tunnel, the tunnel may answer with its own timeout error first).",
        ),
        _ if u128::from(delay_ms) >= crate::facts::DEADLINE.as_millis() => Some(
            "answered after Danube's 10 s deadline: Danube has given up by then, so the \
             attempt fails even though the status is a success.",
        ),
        _ => None,
    }
}

fn response(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let r = &d.response;
    rows.field(
        theme,
        "answered",
        Some((
            format!("{}  ", answer_label(d)),
            theme.status_code(r.status),
        )),
        "(what danube-hooks sent back)",
        theme.dim(),
    );
    let status = r
        .status
        .map_or_else(|| "none".to_string(), |s| s.to_string());
    rows.field(
        theme,
        "ours",
        None,
        &escape_line(&format!(
            "{}status {status} · delay {} · took {}",
            if r.action == "status" {
                String::new()
            } else {
                format!("action {} · ", r.action)
            },
            format_ms(r.delay_ms),
            format_duration_ms(d.duration_ms)
        )),
        Style::new(),
    );
    rows.field(theme, "rule", None, &escape_line(&r.rule), Style::new());
    let note = tunnel_note(&r.action, r.delay_ms);
    if let Some(note) = note {
        rows.field(theme, "note", None, note, theme.fg(Color::Yellow));
    }
    forward_section(app, theme, d, rows);
}

/// What the developer's receiver answered, when the delivery was forwarded.
fn forward_section(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let r = &d.response;
    let Some(forward) = &d.forward else {
        let why = match (&app.config.forward_url, r.action.as_str()) {
            (None, _) => "not forwarded: no --forward-to is set",
            (Some(_), "forward") => "not forwarded",
            (Some(_), _) => "not forwarded: the policy answered instead of your receiver",
        };
        rows.field(theme, "forward", None, why, theme.dim());
        return;
    };
    let badge = match (forward.status, &forward.error) {
        (Some(status), _) => (format!("{status}  "), theme.status_code(Some(status))),
        (None, _) => ("FAILED  ".to_string(), theme.bold(Color::Red)),
    };
    rows.field(
        theme,
        "forward",
        Some(badge),
        &escape_line(&format!(
            "in {} from {}",
            format_ms(forward.duration_ms),
            forward.url
        )),
        Style::new(),
    );
    if let Some(error) = &forward.error {
        rows.field(
            theme,
            "error",
            None,
            &escape_line(error),
            theme.bold(Color::Red),
        );
    }
    if forward.headers.is_empty() {
        rows.field(theme, "headers", None, "-", Style::new());
    }
    for (i, (name, value)) in forward.headers.iter().enumerate() {
        let label = if i == 0 { "headers" } else { "" };
        rows.field(
            theme,
            label,
            None,
            &escape_line(&format!("{name}: {value}")),
            Style::new(),
        );
    }
    match forward.body_preview.as_deref() {
        None | Some("") => rows.field(theme, "body", None, "-", Style::new()),
        Some(preview) => {
            let text = escape_multiline(preview).replace('\t', "    ");
            for (i, line) in text.split('\n').enumerate() {
                let label = if i == 0 { "body" } else { "" };
                rows.line(vec![
                    (format!("{label:<LABEL$}"), theme.label()),
                    (line.to_string(), Style::new()),
                ]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Overlays.

/// A box of at most `width` × `height`, centred in `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn render_picker(app: &App, picker: &Picker, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(4).min(76);
    let inner_width = usize::from(width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    let current = escape_line(&app.policy.current().describe()).into_owned();
    lines.push(Line::from(vec![
        Span::styled("now: ", theme.label()),
        Span::styled(current, theme.bold(Color::Magenta)),
    ]));
    lines.push(Line::styled(
        "Applies to the next deliveries: attempt n gets step n, the last repeats.",
        theme.dim(),
    ));
    for piece in picker_replaces(picker)
        .iter()
        .flat_map(|line| wrap_words(line, inner_width.max(10)))
    {
        lines.push(Line::styled(piece, theme.bold(Color::Yellow)));
    }
    for (i, preset) in picker.presets.iter().enumerate() {
        let selected = picker.selected == i;
        let marker = if selected { "▶ " } else { "  " };
        let mut line = Line::from(vec![
            Span::styled(marker, theme.bold(Color::Yellow)),
            Span::styled(format!("{:<10}", preset.rule), theme.bold(Color::White)),
            Span::raw(preset.what),
        ]);
        if selected {
            line = line.style(theme.selected_row());
        }
        lines.push(line);
    }
    picker_field(picker, theme, inner_width, &mut lines);
    let height = lines.len() as u16 + 2;
    let rect = centered(area, width, height);
    Clear.render(rect, buf);
    let block = Block::bordered()
        .title(" Response policy (p) ")
        .border_style(theme.bold(Color::Yellow));
    let inner = block.inner(rect);
    block.render(rect, buf);
    for (i, line) in lines.iter().enumerate() {
        let y = inner.y + i as u16;
        if y >= inner.bottom() {
            break;
        }
        if line.style != Style::new() {
            buf.set_style(
                Rect {
                    y,
                    height: 1,
                    ..inner
                },
                line.style,
            );
        }
        buf.set_line(inner.x, y, line, inner.width);
    }
}

/// The rules field: escaped text, a cursor, and the error under it.
fn picker_field(picker: &Picker, theme: &Theme, inner_width: usize, lines: &mut Vec<Line<'_>>) {
    let on_field = picker.on_field();
    let label = if on_field {
        "▶ rules › "
    } else {
        "  rules › "
    };
    let room = inner_width.saturating_sub(label.width() + 1);
    let text = picker.field.text();
    let cursor = picker.field.cursor();
    let before: String = text.chars().take(cursor).collect();
    let shift = escape_line(&before).width().saturating_sub(room);
    let mut field = vec![Span::styled(label, theme.bold(Color::Yellow))];
    let spans = if on_field && picker.field.all_selected() {
        vec![Span::styled(escape_line(text).into_owned(), CURSOR)]
    } else if on_field {
        input_spans(text, cursor)
    } else {
        vec![Span::raw(escape_line(text).into_owned())]
    };
    field.extend(skip_columns(spans, shift));
    let mut field_line = Line::from(field);
    if on_field {
        field_line = field_line.style(if theme.color {
            Style::new().bg(Color::DarkGray)
        } else {
            Style::new()
        });
    }
    lines.push(field_line);
    match &picker.error {
        Some(error) => {
            let prefix: String = text.chars().take(error.column.saturating_sub(1)).collect();
            let at = (label.width() + escape_line(&prefix).width()).saturating_sub(shift);
            lines.push(Line::styled(
                format!("{}^", " ".repeat(at)),
                theme.bold(Color::Red),
            ));
            let message =
                escape_line(&format!("at column {}: {}", error.column, error.message)).into_owned();
            for piece in wrap_words(&message, inner_width.saturating_sub(4).max(10)) {
                lines.push(Line::styled(format!("    {piece}"), theme.bold(Color::Red)));
            }
        }
        None => lines.push(Line::styled(
            "          e.g. 500,500,forward · workflow.*=timeout · tool.*=12s+200; 503",
            theme.dim(),
        )),
    }
}

/// What Enter does to rules in force that name events, which a developer
/// may expect a preset to leave alone: said before it is done.
fn picker_replaces(picker: &Picker) -> Option<String> {
    let events = picker.event_rules();
    if events.is_empty() {
        return None;
    }
    let all = picker.replaces.len();
    let named = events
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let line = if picker.on_field() {
        format!("Enter applies the rules as typed, in place of all {all} now.")
    } else {
        let preset = picker.presets[picker.selected].rule;
        let which = if all == 1 {
            "the rule".to_owned()
        } else {
            format!("all {all} rules")
        };
        format!(
            "Enter replaces {which} with {preset} for every event, {named} too; \
             to keep {}, edit the rules (Tab).",
            if events.len() == 1 { "it" } else { "them" }
        )
    };
    Some(escape_line(&line).into_owned())
}

/// `spans` without their first `columns` columns (a field scrolled so
/// its cursor shows).
fn skip_columns(spans: Vec<Span<'static>>, columns: usize) -> Vec<Span<'static>> {
    let mut left = columns;
    let mut out = Vec::new();
    for span in spans {
        if left == 0 {
            out.push(span);
            continue;
        }
        let mut kept = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if left >= w && left > 0 {
                left -= w;
            } else {
                left = 0;
                kept.push(c);
            }
        }
        if !kept.is_empty() {
            out.push(Span::styled(kept, span.style));
        }
    }
    out
}

/// Every key, one line each.
pub(crate) const HELP: [(&str, &str); 19] = [
    ("↑ ↓  j k", "move in the list / scroll the detail"),
    ("PgUp PgDn", "a page up / down"),
    ("g  G", "first / last (G resumes auto-scroll)"),
    ("Tab", "focus: list ⇄ detail"),
    ("Enter  Esc", "open the detail / back to the list"),
    (
        "← →  h l  1-4",
        "detail tabs: overview, headers, body, response",
    ),
    ("b", "body as pretty JSON → raw (escaped) → hex"),
    ("r", "replay re-signed (fresh t)"),
    ("R", "replay as-is (original signature)"),
    ("c", "copy as curl (OSC 52 and a file in the temp dir)"),
    ("p", "response policy for the next deliveries"),
    (
        "D",
        "ask Danube for its delivery log now (--webhook, --register)",
    ),
    ("/", "filter: text, event:tool.*, verdict:mismatch"),
    ("Esc", "clear the filter (in the list)"),
    ("space", "pause / resume auto-scroll"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit (syncs the store first)"),
    ("", ""),
    ("log", ""),
];

fn render_help(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(4).min(76);
    let rect = centered(area, width, HELP.len() as u16 + 2);
    Clear.render(rect, buf);
    let block = Block::bordered()
        .title(" Keys (any key closes) ")
        .border_style(theme.bold(Color::Yellow));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let log = escape_line(&app.config.log_path.display().to_string()).into_owned();
    for (i, (key, what)) in HELP.iter().enumerate() {
        let y = inner.y + i as u16;
        if y >= inner.bottom() {
            break;
        }
        let line = if *key == "log" {
            let room = usize::from(inner.width).saturating_sub(15);
            Line::from(vec![
                Span::styled(format!("{:<15}", "warnings log"), theme.bold(Color::Yellow)),
                Span::raw(fit_tail(&log, room).into_owned()),
            ])
        } else {
            Line::from(vec![
                Span::styled(format!("{key:<15}"), theme.bold(Color::Yellow)),
                Span::raw(*what),
            ])
        };
        buf.set_line(inner.x, y, &line, inner.width);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::delivery::ForwardRecord;
    use crate::policy::{Policy, PolicyHandle};
    use crate::test_support::{app_config, sample};

    /// One group of `n` attempts with every kind of answer and gaps from
    /// milliseconds to hours.
    fn app_with_group(n: u64) -> App {
        let mut config = app_config();
        config.history_cap = 10_000;
        let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
        let mut at = sample(1, b"{}").received_at;
        for id in 1..=n {
            let mut d = sample(id, br#"{"event":"workflow.failed"}"#);
            at += chrono::Duration::milliseconds([7, 1_500, 61_000, 40_000_000][id as usize % 4]);
            d.received_at = at;
            d.attempt = u32::try_from(id).unwrap();
            d.replay_of = (id % 5 == 0).then_some(1);
            match id % 6 {
                0 => (d.response.action, d.response.status) = ("reset".into(), None),
                1 => d.response.delay_ms = 12_345,
                2 => {
                    d.response.action = "forward".into();
                    d.response.status = Some(201);
                    d.forward = Some(ForwardRecord {
                        url: "http://localhost:3000/".into(),
                        status: Some(201),
                        headers: Vec::new(),
                        error: None,
                        duration_ms: 12,
                        body_preview: None,
                    });
                }
                3 => (d.response.action, d.response.status) = ("ＷＩＤＥ".into(), None),
                _ => d.response.status = Some(503),
            }
            app.ingest(Arc::new(d));
        }
        app
    }

    #[test]
    fn a_timeline_row_is_never_wider_than_its_width_says() {
        let app = app_with_group(24);
        let selected = app.selected().unwrap();
        let group = app.group_of(selected);
        let mut rows = Rows::new(10_000, 0, 1_000);
        timeline(&app, &Theme { color: true }, selected, &group, &mut rows);
        assert_eq!(rows.out.len(), group.len());
        let mut previous: Option<DateTime<Utc>> = None;
        for (attempt, line) in group.iter().zip(&rows.out) {
            let gap = previous.map(|p| (attempt.received_at - p).num_milliseconds());
            previous = Some(attempt.received_at);
            let said = timeline_width(attempt, gap);
            assert!(
                said >= line.width(),
                "#{}: said {said}, drew {}",
                attempt.id,
                line.width()
            );
            // Near enough that an 80-column screen counts every row.
            assert!(said <= 80, "#{}: said {said}", attempt.id);
        }
    }

    #[test]
    fn the_rows_counted_off_screen_are_the_rows_built() {
        let mut app = app_with_group(300);
        let selected = Arc::clone(app.selected().unwrap());
        for tab in [Tab::Overview, Tab::Response] {
            app.tab = tab;
            for width in [12, 40, 66, 70, 80, 160] {
                let (total, all) = detail_content(&app, &selected, width, 0, usize::MAX);
                assert_eq!(total, all.len());
                for (skip, take) in [(0, 20), (7, 20), (150, 45), (total - 3, 20), (total, 5)] {
                    let (counted, lines) = detail_content(&app, &selected, width, skip, take);
                    assert_eq!(counted, total, "width {width}, from {skip}");
                    assert_eq!(
                        lines,
                        all[skip.min(total)..(skip + take).min(total)],
                        "width {width}, from {skip}"
                    );
                }
            }
        }
    }
}
