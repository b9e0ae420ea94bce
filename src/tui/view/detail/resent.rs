//! On a copy this tool resent (`replay`, `r`, `R`, `e`): whose copy it
//! says it is, and what it changed against that original (the body's JSON
//! path by path, the headers added and removed), when the original is in
//! the dashboard's history with its body.

use ratatui::style::{Color, Style};

use super::super::super::app::App;
use super::super::theme::Theme;
use super::rows::Rows;
use crate::delivery::Delivery;
use crate::display::escape_line;
use crate::resend::{RESENT_FROM, diff};

pub(super) fn resent(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let Some(original) = d.resent_from else {
        return;
    };
    let what = if d.edited == Some(true) {
        "changed"
    } else {
        "unchanged"
    };
    // Only a claim: any client can send the header.
    rows.field(
        theme,
        "resent",
        Some((format!("COPY of #{original}  "), theme.bold(Color::Cyan))),
        &format!("{what}, as its {RESENT_FROM} header claims"),
        Style::new(),
    );
    let lines = match app.find(original) {
        None => vec![format!(
            "#{original} is not in the history here: `danube-hooks show {original}` has it"
        )],
        Some(first) if app.body_absence(first).is_some() => vec![format!(
            "#{original}'s body is not in memory: select it to read it back"
        )],
        Some(first) => diff::lines(
            &diff::bodies(&first.body, &d.body),
            &diff::headers(&first.headers, &d.headers),
        ),
    };
    for (i, line) in lines.iter().enumerate() {
        let style = match line.chars().next() {
            Some('+') => theme.fg(Color::Green),
            Some('-') => theme.fg(Color::Red),
            Some('~') => theme.fg(Color::Yellow),
            _ => theme.dim(),
        };
        let label = if i == 0 { "changes" } else { "" };
        rows.field(theme, label, None, &escape_line(line), style);
    }
}
