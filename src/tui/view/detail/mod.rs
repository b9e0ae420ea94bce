//! The detail pane: its tab bar, and the selected delivery's rows in the
//! tab shown ([`overview`], [`headers`], [`body`], [`response`]).
//!
//! A tab's rows are counted whole (the scroll is fitted to them) and only
//! the ones on screen built, once a frame ([`DetailRows`]); a tab's cost
//! is bounded by what it shows, not by the body.

mod body;
mod headers;
mod overview;
mod resent;
mod response;
mod rows;

#[cfg(test)]
mod tests;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr as _;

use super::super::app::{App, BodyMode, Focus, Tab};
use super::theme::Theme;
use crate::delivery::Delivery;
use rows::Rows;

/// The detail pane's rows for one frame: how many the tab has in all, and
/// the ones on screen, built. The event loop builds them as it lays the
/// frame out, fits the scroll to them, and the frame draws them as built.
pub(crate) struct DetailRows {
    /// The pane under its tab bar, which the rows were built for.
    area: Rect,
    /// Rows the tab has at this width; 0 with nothing selected.
    total: usize,
    /// The first row built: the app's scroll, or the last screenful's
    /// first row when the scroll was past the end.
    scroll: usize,
    /// The rows on screen, from `scroll` on.
    lines: Vec<Line<'static>>,
}

impl DetailRows {
    /// The detail's rows for `app` on a screen of `area`. One pass over
    /// the tab, building the rows from the app's scroll on; a second only
    /// when that scroll is past the end (the pane narrowed, or the tab now
    /// holds less), for the last screenful.
    pub(crate) fn build(app: &App, area: Rect) -> Self {
        let area = content(super::areas(app, area).detail);
        let rows = usize::from(area.height);
        let width = usize::from(area.width);
        let Some(delivery) = app.selected() else {
            return Self {
                area,
                total: 0,
                scroll: 0,
                lines: Vec::new(),
            };
        };
        let scroll = app.detail_scroll();
        let (total, lines) = detail_content(app, delivery, width, scroll, rows);
        let max = total.saturating_sub(rows);
        if scroll > max {
            let (_, lines) = detail_content(app, delivery, width, max, rows);
            return Self {
                area,
                total,
                scroll: max,
                lines,
            };
        }
        Self {
            area,
            total,
            scroll,
            lines,
        }
    }

    /// Rows of content on screen.
    pub(crate) fn rows(&self) -> usize {
        usize::from(self.area.height)
    }

    /// The largest scroll that still shows content.
    pub(crate) fn max_scroll(&self) -> usize {
        self.total.saturating_sub(self.rows())
    }

    /// Whether these rows were built for a detail pane at `pane`.
    pub(super) fn fits(&self, pane: Rect) -> bool {
        self.area == content(pane)
    }
}

/// The pane under its tab bar.
fn content(pane: Rect) -> Rect {
    Rect {
        y: pane.y.saturating_add(1),
        height: pane.height.saturating_sub(1),
        ..pane
    }
}

pub(super) fn render_detail(
    app: &App,
    theme: &Theme,
    area: Rect,
    detail: &DetailRows,
    buf: &mut Buffer,
) {
    if area.height == 0 {
        return;
    }
    let focused = app.focus == Focus::Detail;
    let bar_width = render_tab_bar(app, theme, area, buf);
    let content = content(area);
    if app.selected().is_none() {
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
    }
    for (i, line) in detail.lines.iter().enumerate() {
        buf.set_line(content.x, content.y + i as u16, line, content.width);
    }
    let (total, rows, scroll) = (detail.total, detail.rows(), detail.scroll);
    if total > rows {
        let more = format!(" {}–{}/{total} ", scroll + 1, (scroll + rows).min(total));
        // Only where the tabs leave room for it.
        if bar_width + more.width() < usize::from(area.width) {
            let x = area.right() - more.width() as u16;
            buf.set_string(x, area.y, more, theme.title(focused));
        }
    }
}

/// The pane's first row: the selected delivery's id, the tabs (the one
/// shown in brackets), and the body's modes on the body tab. Returns its
/// width.
fn render_tab_bar(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) -> usize {
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
    buf.set_line(area.x, area.y, &bar_line, area.width);
    bar_line.width()
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
        Tab::Overview => overview::overview(app, &theme, delivery, &mut rows),
        Tab::Headers => headers::headers(&theme, delivery, &mut rows),
        Tab::Body => match app.body_absence(delivery) {
            Some(absence) => rows.plain(absence, theme.dim()),
            None => body::body(app.body_mode, &theme, delivery, &mut rows),
        },
        Tab::Response => response::response(app, &theme, delivery, &mut rows),
    }
    (rows.total, rows.out)
}
