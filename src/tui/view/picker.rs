//! The policy picker's box (`p`): the policy now, the presets, and the
//! rules field with its cursor and error.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Widget};
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

use super::super::app::App;
use super::super::picker::Picker;
use super::centered;
use super::text::{CURSOR, input_spans, wrap_words};
use super::theme::Theme;
use crate::display::escape_line;

pub(super) fn render_picker(
    app: &App,
    picker: &Picker,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let width = area.width.saturating_sub(4).min(76);
    let inner_width = usize::from(width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    let current = escape_line(&app.policy.current().describe()).into_owned();
    lines.push(Line::from(vec![
        Span::styled("now: ", theme.label()),
        Span::styled(current, theme.bold(Color::Magenta)),
    ]));
    lines.push(Line::styled(
        "Applies to the next deliveries: attempt n gets step n, the last repeats.",
        theme.dim(),
    ));
    for piece in picker_replaces(picker)
        .iter()
        .flat_map(|line| wrap_words(line, inner_width.max(10)))
    {
        lines.push(Line::styled(piece, theme.bold(Color::Yellow)));
    }
    for (i, preset) in picker.presets.iter().enumerate() {
        let selected = picker.selected == i;
        let marker = if selected { "▶ " } else { "  " };
        let mut line = Line::from(vec![
            Span::styled(marker, theme.bold(Color::Yellow)),
            Span::styled(format!("{:<10}", preset.rule), theme.bold(Color::White)),
            Span::raw(preset.what),
        ]);
        if selected {
            line = line.style(theme.selected_row());
        }
        lines.push(line);
    }
    picker_field(picker, theme, inner_width, &mut lines);
    let height = lines.len() as u16 + 2;
    let rect = centered(area, width, height);
    Clear.render(rect, buf);
    let block = Block::bordered()
        .title(" Response policy (p) ")
        .border_style(theme.bold(Color::Yellow));
    let inner = block.inner(rect);
    block.render(rect, buf);
    for (i, line) in lines.iter().enumerate() {
        let y = inner.y + i as u16;
        if y >= inner.bottom() {
            break;
        }
        if line.style != Style::new() {
            buf.set_style(
                Rect {
                    y,
                    height: 1,
                    ..inner
                },
                line.style,
            );
        }
        buf.set_line(inner.x, y, line, inner.width);
    }
}

/// The rules field: escaped text, a cursor, and the error under it.
fn picker_field(picker: &Picker, theme: &Theme, inner_width: usize, lines: &mut Vec<Line<'_>>) {
    let on_field = picker.on_field();
    let label = if on_field {
        "▶ rules › "
    } else {
        "  rules › "
    };
    let room = inner_width.saturating_sub(label.width() + 1);
    let text = picker.field.text();
    let cursor = picker.field.cursor();
    let before: String = text.chars().take(cursor).collect();
    let shift = escape_line(&before).width().saturating_sub(room);
    let mut field = vec![Span::styled(label, theme.bold(Color::Yellow))];
    let spans = if on_field && picker.field.all_selected() {
        vec![Span::styled(escape_line(text).into_owned(), CURSOR)]
    } else if on_field {
        input_spans(text, cursor)
    } else {
        vec![Span::raw(escape_line(text).into_owned())]
    };
    field.extend(skip_columns(spans, shift));
    let mut field_line = Line::from(field);
    if on_field {
        field_line = field_line.style(if theme.color {
            Style::new().bg(Color::DarkGray)
        } else {
            Style::new()
        });
    }
    lines.push(field_line);
    match &picker.error {
        Some(error) => {
            let prefix: String = text.chars().take(error.column.saturating_sub(1)).collect();
            let at = (label.width() + escape_line(&prefix).width()).saturating_sub(shift);
            lines.push(Line::styled(
                format!("{}^", " ".repeat(at)),
                theme.bold(Color::Red),
            ));
            let message =
                escape_line(&format!("at column {}: {}", error.column, error.message)).into_owned();
            for piece in wrap_words(&message, inner_width.saturating_sub(4).max(10)) {
                lines.push(Line::styled(format!("    {piece}"), theme.bold(Color::Red)));
            }
        }
        None => lines.push(Line::styled(
            "          e.g. 500,500,forward · workflow.*=timeout · tool.*=12s+200; 503",
            theme.dim(),
        )),
    }
}

/// What Enter does to rules in force that name events, which a developer
/// may expect a preset to leave alone: said before it is done.
fn picker_replaces(picker: &Picker) -> Option<String> {
    let events = picker.event_rules();
    if events.is_empty() {
        return None;
    }
    let all = picker.replaces.len();
    let named = events
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let line = if picker.on_field() {
        format!("Enter applies the rules as typed, in place of all {all} now.")
    } else {
        let preset = picker.presets[picker.selected].rule;
        let which = if all == 1 {
            "the rule".to_owned()
        } else {
            format!("all {all} rules")
        };
        format!(
            "Enter replaces {which} with {preset} for every event, {named} too; \
             to keep {}, edit the rules (Tab).",
            if events.len() == 1 { "it" } else { "them" }
        )
    };
    Some(escape_line(&line).into_owned())
}

/// `spans` without their first `columns` columns (a field scrolled so
/// its cursor shows).
fn skip_columns(spans: Vec<Span<'static>>, columns: usize) -> Vec<Span<'static>> {
    let mut left = columns;
    let mut out = Vec::new();
    for span in spans {
        if left == 0 {
            out.push(span);
            continue;
        }
        let mut kept = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if left >= w && left > 0 {
                left -= w;
            } else {
                left = 0;
                kept.push(c);
            }
        }
        if !kept.is_empty() {
            out.push(Span::styled(kept, span.style));
        }
    }
    out
}
