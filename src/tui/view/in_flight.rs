//! The deliveries in flight, pinned under the list: how long each has been
//! held against Danube's deadline.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr as _;

use super::super::app::App;
use super::cells::{arrival_label, path_cell, time_cell, verdict_label};
use super::columns::{Col, Columns};
use super::text::fit;
use super::theme::Theme;
use crate::display::escape_line;

/// The deliveries in flight, oldest (longest held) first, at the bottom of
/// the list's `rows`: each with how long it has been held against Danube's
/// deadline where the answer, forward and duration columns go; past the
/// deadline in red. Returns the rows left above them.
pub(super) fn render_in_flight(
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
            Col::Listener => (fit("", width), theme.dim()),
            Col::Answer | Col::Forward | Col::Danube | Col::Duration => continue,
        };
        spans.push(cols.cell(text, style));
    }
    spans
}
