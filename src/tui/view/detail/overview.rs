//! The overview tab: the verdict and its hints, when it was signed, whose
//! copy it is and what it changed (`resent`), what was answered and
//! forwarded, the group's timeline, and what Danube recorded of the
//! delivery.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ratatui::style::{Color, Style};
use unicode_width::UnicodeWidthStr as _;

use super::super::super::app::App;
use super::super::super::danube_side::DanubeMark;
use super::super::cells::{
    answer_label, danube_label, danube_style, gap_label, time_of, verdict_label,
};
use super::super::theme::Theme;
use super::rows::Rows;
use crate::danube::reconcile;
use crate::delivery::{Delivery, format_duration_ms, format_ms};
use crate::display::escape_line;

pub(super) fn overview(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    verdict_lines(theme, d, rows);
    signed_line(theme, d, rows);
    super::resent::resent(app, theme, d, rows);
    answer_lines(theme, d, rows);
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

/// The verdict with its one sentence, and each hint.
fn verdict_lines(theme: &Theme, d: &Delivery, rows: &mut Rows) {
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
}

/// When it was signed, with which secret, and whether it is a replay.
fn signed_line(theme: &Theme, d: &Delivery, rows: &mut Rows) {
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
}

/// What was answered and by which rule, the forward's result and the mirrors'.
fn answer_lines(theme: &Theme, d: &Delivery, rows: &mut Rows) {
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
    super::response::mirror_lines(theme, d, rows);
}

/// The group's attempts, each with its time, the gap since the one before,
/// its verdict and what it got. A group may hold thousands (the same body
/// sent again and again): only the attempts on screen are built; the others
/// are counted, a row each when their width fits, which is worked out
/// without formatting them.
pub(super) fn timeline(
    app: &App,
    theme: &Theme,
    d: &Delivery,
    group: &[&Arc<Delivery>],
    rows: &mut Rows,
) {
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
pub(super) fn timeline_width(attempt: &Delivery, gap_ms: Option<i64>) -> usize {
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
