//! Words for badges and cells: a delivery's verdict, answer, forward, mirrors,
//! Danube's status, times and gaps, as the list and the detail show them,
//! escaped.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use ratatui::style::{Color, Style};

use super::super::app::App;
use super::super::danube_side::DanubeMark;
use super::text::{fit, fit_tail};
use super::theme::Theme;
use crate::danube::reconcile::Row;
use crate::delivery::{Delivery, MirrorRecord, format_ms};
use crate::display::escape_line;
use crate::signature::Verdict;

/// `VALID`, `MISMATCH`, …
pub(super) fn verdict_label(verdict: Verdict) -> &'static str {
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
pub(super) fn answer_label(delivery: &Delivery) -> String {
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

/// The forward's result, short: `201 12ms`, `FAILED`, `-`; then `+m`
/// when mirrored (`+m!` when a mirror failed or answered other than 2xx).
pub(super) fn forward_label(delivery: &Delivery) -> String {
    let forward = match &delivery.forward {
        None => "-".to_string(),
        Some(forward) => match (forward.status, &forward.error) {
            (Some(status), _) => format!("{status} {}", format_ms(forward.duration_ms)),
            (None, Some(_)) => "FAILED".to_string(),
            (None, None) => "-".to_string(),
        },
    };
    if delivery.mirrors.is_empty() {
        return forward;
    }
    let trouble = delivery
        .mirrors
        .iter()
        .any(|m| m.error.is_some() || m.status.is_some_and(|s| !(200..300).contains(&s)));
    format!("{forward} +m{}", if trouble { "!" } else { "" })
}

/// A mirror's result, short: `200 12ms`, `FAILED`, `waiting`.
pub(super) fn mirror_label(mirror: &MirrorRecord) -> String {
    match (mirror.status, &mirror.error) {
        (Some(status), _) => format!("{status} {}", format_ms(mirror.duration_ms)),
        (None, Some(_)) => "FAILED".to_string(),
        (None, None) => "waiting".to_string(),
    }
}

/// Danube's status of a delivery, short: `ok 2/3`, `fail 3`, `pending`,
/// `unknown`; `!` when something does not add up.
pub(super) fn danube_label(row: &Row) -> String {
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
pub(super) fn danube_cell(app: &App, theme: &Theme, id: u64) -> (String, Style) {
    match app.danube_mark(id) {
        None | Some(DanubeMark::Waiting | DanubeMark::NotJudged | DanubeMark::BeforeWebhook) => {
            ("—".to_owned(), theme.dim())
        }
        Some(DanubeMark::Row(row)) => (danube_label(row), danube_style(theme, row)),
    }
}

pub(super) fn danube_style(theme: &Theme, row: &Row) -> Style {
    match row.danube.as_ref().map(|d| d.status.as_str()) {
        _ if !row.findings.is_empty() => theme.bold(Color::Yellow),
        Some("success") => theme.fg(Color::Green),
        Some("failed") | None => theme.bold(Color::Red),
        Some(_) => theme.fg(Color::Yellow),
    }
}

/// `+250ms`, `+5.0s`, `+2m05s`.
pub(super) fn gap_label(ms: i64) -> String {
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
pub(super) fn time_cell(app: &App, time: &DateTime<Utc>, width: usize) -> String {
    let time = time_of(app, time);
    fit(if width < 12 { &time[..8] } else { &time[..] }, width)
}

pub(super) fn time_of(app: &App, time: &DateTime<Utc>) -> String {
    time.with_timezone(&app.config.utc_offset)
        .format("%H:%M:%S%.3f")
        .to_string()
}

/// What the list shows as the event: the event, or method and path for a
/// request that was not a POST, or `(no event)`.
pub(super) fn what_label(delivery: &Delivery) -> String {
    event_label(&delivery.method, &delivery.path, delivery.event.as_deref())
}

/// [`what_label`] of a request's method, path and event.
fn event_label(method: &str, path: &str, event: Option<&str>) -> String {
    if method != "POST" {
        return escape_line(&format!("{} {}", head(method), head(path))).into_owned();
    }
    match event {
        Some(event) => escape_line(&head(event)).into_owned(),
        None => "(no event)".to_string(),
    }
}

/// Whose delivery it is on a shared store, escaped; `None` for a record
/// that does not say (a file store's).
pub(super) fn listener_label(delivery: &Delivery) -> Option<String> {
    let listener = delivery.listener.as_deref()?;
    Some(escape_line(&head(listener)).into_owned())
}

/// The most characters of a record's text a cell looks at: wider than any
/// terminal, where a record can hold megabytes (a hostile body's event, a
/// shared store's row that anyone may write), escaped again at every
/// frame. What is cut is marked `…`.
const CELL_TEXT_MAX: usize = 1024;

/// The start of `text`, within [`CELL_TEXT_MAX`] characters.
fn head(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(CELL_TEXT_MAX) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

/// The end of `text`, within [`CELL_TEXT_MAX`] characters.
fn tail(text: &str) -> Cow<'_, str> {
    match text.char_indices().rev().nth(CELL_TEXT_MAX - 1) {
        Some((at, _)) if at > 0 => Cow::Owned(format!("…{}", &text[at..])),
        _ => Cow::Borrowed(text),
    }
}

/// What the list shows as an arrival's event, as [`what_label`] does.
pub(super) fn arrival_label(arrival: &crate::store::Arrival) -> String {
    event_label(&arrival.method, &arrival.path, arrival.event.as_deref())
}

/// A path, escaped: its end, which tells paths apart, is kept.
pub(super) fn path_label(path: &str) -> String {
    escape_line(&tail(path)).into_owned()
}

/// A path in `width` columns, as [`path_label`] keeps it.
pub(super) fn path_cell(path: &str, width: usize) -> String {
    fit(&fit_tail(&path_label(path), width), width)
}

/// The attempt, with `↺` for a replay.
pub(super) fn attempt_label(delivery: &Delivery) -> String {
    let mark = if delivery.replay_of.is_some() {
        "↺"
    } else {
        ""
    };
    format!("{}{mark}", delivery.attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    #[test]
    fn a_listeners_name_of_megabytes_is_cut_before_it_is_escaped() {
        let mut delivery = sample(1, b"");
        delivery.listener = Some(format!("\u{1b}[2J{}", "n".repeat(1 << 20)));
        let label = listener_label(&delivery).unwrap();
        assert!(
            label.len() < 4 * CELL_TEXT_MAX && !label.contains('\u{1b}'),
            "{}",
            label.len()
        );
        delivery.listener = Some("ann@laptop".into());
        assert_eq!(listener_label(&delivery).as_deref(), Some("ann@laptop"));
    }

    #[test]
    fn an_event_or_path_of_megabytes_is_cut_before_it_is_escaped() {
        let mut delivery = sample(1, b"");
        delivery.event = Some(format!("\u{1b}[2J{}", "e".repeat(1 << 20)));
        let label = what_label(&delivery);
        assert!(!label.contains('\u{1b}'), "escaped");
        assert!(
            label.len() < 4 * CELL_TEXT_MAX && label.ends_with('…'),
            "{}",
            label.len()
        );
        let path = format!("/{}/end", "p".repeat(1 << 20));
        let cell = path_cell(&path, 20);
        assert!(cell.ends_with("ppp/end"), "{cell}");
        assert_eq!(tail("/short"), "/short");
        assert_eq!(head("short"), "short");
        let exact = "x".repeat(CELL_TEXT_MAX);
        assert_eq!(head(&exact), exact.as_str(), "nothing cut, nothing marked");
        assert_eq!(tail(&exact), exact.as_str());
        assert_eq!(tail(&format!("y{exact}")), format!("…{exact}"));
        assert_eq!(head(&format!("{exact}y")), format!("{exact}…"));
    }
}
