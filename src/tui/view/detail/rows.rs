//! The detail's rows: source lines wrapped at the pane's width, every row
//! counted and only the rows on screen built.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

use super::super::text::wrap_words;
use super::super::theme::Theme;

/// Width of the labels in the detail pane.
pub(super) const LABEL: usize = 10;

/// Wraps source lines into rows of a width, counting them all and building
/// only the rows asked for.
pub(super) struct Rows {
    /// Columns of a row.
    pub(super) width: usize,
    skip: usize,
    take: usize,
    /// Rows so far, built or counted.
    pub(super) total: usize,
    /// The rows asked for, built.
    pub(super) out: Vec<Line<'static>>,
}

impl Rows {
    pub(super) fn new(width: usize, skip: usize, take: usize) -> Self {
        Self {
            width,
            skip,
            take,
            total: 0,
            out: Vec::new(),
        }
    }

    pub(super) fn wanted(&self) -> bool {
        self.total >= self.skip && self.total < self.skip + self.take
    }

    /// A line off screen known to take one row: counted, not built.
    pub(super) fn count_row(&mut self) {
        self.total += 1;
    }

    /// One source line of safe text (already escaped, no tabs or line
    /// breaks), cut into rows at the width, characters kept whole.
    pub(super) fn line(&mut self, segments: Vec<(String, Style)>) {
        let mut row: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        let mut wanted = self.wanted();
        for (text, style) in segments {
            if used + text.width() <= self.width {
                used += text.width();
                if wanted {
                    row.push(Span::styled(text, style));
                }
                continue;
            }
            let mut piece = String::new();
            for c in text.chars() {
                let w = c.width().unwrap_or(0);
                if used + w > self.width && used > 0 {
                    if wanted {
                        row.push(Span::styled(std::mem::take(&mut piece), style));
                        self.out.push(Line::from(std::mem::take(&mut row)));
                    }
                    piece.clear();
                    self.total += 1;
                    used = 0;
                    wanted = self.wanted();
                }
                used += w;
                if wanted {
                    piece.push(c);
                }
            }
            if wanted && !piece.is_empty() {
                row.push(Span::styled(piece, style));
            }
        }
        if wanted {
            self.out.push(Line::from(row));
        }
        self.total += 1;
    }

    pub(super) fn plain(&mut self, text: impl Into<String>, style: Style) {
        self.line(vec![(text.into(), style)]);
    }

    /// `label` in a column of [`LABEL`], then `prefix` (a badge), then
    /// `text` word-wrapped with its continuation under the text.
    pub(super) fn field(
        &mut self,
        theme: &Theme,
        label: &str,
        prefix: Option<(String, Style)>,
        text: &str,
        style: Style,
    ) {
        let indent = LABEL + prefix.as_ref().map_or(0, |(p, _)| p.width());
        let room = self.width.saturating_sub(indent).max(10);
        let wrapped = wrap_words(text, room);
        let mut prefix = prefix;
        for (i, piece) in wrapped.into_iter().enumerate() {
            let mut segments = Vec::new();
            if i == 0 {
                segments.push((format!("{label:<LABEL$}"), theme.label()));
                segments.extend(prefix.take());
            } else {
                segments.push((" ".repeat(indent), Style::new()));
            }
            segments.push((piece, style));
            self.line(segments);
        }
    }
}
