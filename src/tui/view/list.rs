//! The list of deliveries: its title, the column names, one row per
//! delivery on screen (only those are built), the deliveries in flight
//! pinned under them, and what to do while it is empty.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use super::super::app::{App, Focus};
use super::super::config::RegisteredWith;
use super::super::danube_side::DanubeSide;
use super::cells::{
    answer_label, attempt_label, danube_cell, forward_label, listener_label, path_cell, time_cell,
    verdict_label, what_label,
};
use super::columns::{Col, Columns, columns};
use super::in_flight::render_in_flight;
use super::text::{fit, fit_right, wrap_words};
use super::theme::Theme;
use crate::delivery::{Delivery, format_duration_ms};
use crate::display::escape_line;
use crate::store::Start;

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

pub(super) fn render_list(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
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
                Col::Listener => "LISTENER",
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
    render_rows(app, theme, &cols, rows, buf);
}

/// The rows on screen, and only those, whatever the history holds; a
/// divider row above the first of each start of the listener.
fn render_rows(app: &App, theme: &Theme, cols: &Columns, rows: Rect, buf: &mut Buffer) {
    let mut y = rows.y;
    for (index, delivery) in app.visible() {
        // Not on the last row: the delivery under it goes first.
        if let Some(start) = app.divider_above(index)
            && y + 1 < rows.bottom()
        {
            let divider = divider_row(app, start, rows.width);
            buf.set_line(rows.x, y, &Line::styled(divider, theme.dim()), rows.width);
            y += 1;
        }
        if y >= rows.bottom() {
            break;
        }
        let selected = app.selected_index() == Some(index);
        let line = list_row(app, theme, delivery, cols);
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
        y += 1;
    }
}

/// `── listener started 2026-12-06 18:02:11 ──…`, across the list.
fn divider_row(app: &App, start: &Start, width: u16) -> String {
    let at = start.at.with_timezone(&app.config.utc_offset);
    let text = format!("── listener started {} ", at.format("%Y-%m-%d %H:%M:%S"));
    let rest = usize::from(width).saturating_sub(text.chars().count());
    text + &"─".repeat(rest)
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
                Col::Listener => (
                    fit(&listener_label(delivery).unwrap_or_default(), width),
                    theme.dim(),
                ),
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
    if app.config.viewer {
        return vec![
            format!("Waiting for the listeners on {url} to commit a delivery."),
            "Each batch they commit shows here as it is committed.".to_owned(),
            "A teammate starts one with: danube-hooks listen --store <this URL>".to_owned(),
        ];
    }
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
