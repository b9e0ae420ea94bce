//! The footer: the keys of the mode in force, as many as fit, shorter
//! words first and the least needed keys last.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr as _;

use super::super::app::{App, Mode};
use super::status::FILTER_LABEL;
use super::theme::Theme;
use crate::display::escape_line;

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

pub(super) fn render_footer(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    if app.mode == Mode::Filter
        && let Some(column) = app.filter_error_column()
    {
        render_caret(app, column, theme, area, buf);
        return;
    }
    let keys: &[FooterKey] = match app.mode {
        Mode::Normal => NORMAL_KEYS,
        Mode::Filter => FILTER_KEYS,
        Mode::Picker(_) => PICKER_KEYS,
        Mode::Help => HELP_KEYS,
    };
    let danube = app.danube().is_some();
    // A viewer of a shared store has no policy to set.
    let policy = !app.config.viewer;
    let keys: Vec<FooterKey> = keys
        .iter()
        .filter(|k| danube || k.key != "D")
        .filter(|k| policy || k.key != "p")
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

/// Under a filter that does not parse, a caret under its bad part, as
/// `log --query` prints one: the status line above holds the query, drawn
/// as typed and escaped, after [`FILTER_LABEL`].
fn render_caret(app: &App, column: usize, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let before: String = app
        .filter_input()
        .text()
        .chars()
        .take(column.saturating_sub(1))
        .collect();
    let indent = FILTER_LABEL.width() + escape_line(&before).width();
    let line = Line::from(vec![
        Span::raw(" ".repeat(indent)),
        Span::styled("^", theme.bold(Color::Red)),
        Span::styled("  Esc clear it  Ctrl-U erase", theme.dim()),
    ]);
    buf.set_line(area.x, area.y, &line, area.width);
}
