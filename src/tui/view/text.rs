//! Text fitted to cells: cut or padded to a width, word-wrapped, and a
//! text field with its cursor. Widths are in terminal columns.

use std::borrow::Cow;

use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

use crate::display::escape_line;

/// The cell under a text field's cursor: reversed, which needs no colour.
pub(super) const CURSOR: Style = Style::new().add_modifier(Modifier::REVERSED);

/// `text` cut (with `…`) or padded to exactly `width` columns.
pub(super) fn fit(text: &str, width: usize) -> String {
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
pub(super) fn fit_right(text: &str, width: usize) -> String {
    let w = text.width();
    if w >= width {
        return fit(text, width);
    }
    format!("{}{text}", " ".repeat(width - w))
}

/// `text` with its start cut (`…tail`) to at most `width` columns: for
/// paths, whose end says most.
pub(super) fn fit_tail(text: &str, width: usize) -> Cow<'_, str> {
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

/// Greedy word wrap of one line of safe text at `width` columns; a word
/// longer than a row is cut. Always at least one piece.
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
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

/// A text field: the text, escaped, with a reversed cell at the cursor.
pub(super) fn input_spans(text: &str, cursor: usize) -> Vec<Span<'static>> {
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
