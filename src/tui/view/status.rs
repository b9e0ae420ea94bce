//! The status line: the filter being typed, or the last message.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};

use super::super::app::{App, Mode};
use super::text::input_spans;
use super::theme::Theme;
use crate::display::escape_line;

/// What the status line shows before the filter being typed.
pub(super) const FILTER_LABEL: &str = "filter ";

pub(super) fn render_status(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    if app.mode == Mode::Filter {
        let input = app.filter_input();
        let mut spans = vec![Span::styled(FILTER_LABEL, theme.bold(Color::Cyan))];
        spans.extend(input_spans(input.text(), input.cursor()));
        match app.filter_error() {
            Some(error) => spans.push(Span::styled(
                format!("  {}", escape_line(error)),
                theme.bold(Color::Red),
            )),
            None => spans.push(Span::styled(
                format!(
                    "  {} of {} match · words, -not, \"a b\", event: verdict: status: attempt: \
                     path: header: id: since: until: data.field>1 (? lists them)",
                    app.list_len(),
                    app.history_len()
                ),
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
