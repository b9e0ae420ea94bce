//! The help box (`?`): every key, and where the warnings go.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Widget};

use super::super::app::App;
use super::centered;
use super::text::fit_tail;
use super::theme::Theme;
use crate::display::escape_path;

/// Every key, one line each.
const HELP: [(&str, &str); 22] = [
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
    (
        "e",
        "edit the body in $VISUAL or $EDITOR, resend it re-signed",
    ),
    ("c", "copy as curl (OSC 52 and a file in the temp dir)"),
    ("p", "response policy for the next deliveries"),
    (
        "D",
        "ask Danube for its delivery log now (--webhook, --register)",
    ),
    (
        "/",
        "filter: words, -negated, \"quoted words\", keys (README):",
    ),
    (
        "",
        "event:tool.* verdict:invalid status:5xx attempt:>1 id:>9",
    ),
    (
        "",
        "path:/hooks/* header:name=v since:10m until:2h data.f>1",
    ),
    ("Esc", "clear the filter (in the list)"),
    ("space", "pause / resume auto-scroll"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit (syncs the store first)"),
    ("", ""),
    ("log", ""),
];

pub(super) fn render_help(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(4).min(76);
    let rect = centered(area, width, HELP.len() as u16 + 2);
    Clear.render(rect, buf);
    let block = Block::bordered()
        .title(" Keys (any key closes) ")
        .border_style(theme.bold(Color::Yellow));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let log = escape_path(&app.config.log_path);
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
