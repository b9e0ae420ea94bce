//! The headers tab: every header in arrival order, the signature's
//! highlighted, long values wrapped under their name.

use ratatui::style::{Color, Style};
use unicode_width::UnicodeWidthStr as _;

use super::super::text::wrap_words;
use super::super::theme::Theme;
use super::rows::Rows;
use crate::delivery::Delivery;
use crate::display::escape_line;

pub(super) fn headers(theme: &Theme, d: &Delivery, rows: &mut Rows) {
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
