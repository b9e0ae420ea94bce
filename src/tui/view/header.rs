//! The header: the listener, the policy, secrets and store, the counters,
//! and the optional rows (the tunnel, the registered webhook).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr as _;

use super::super::app::App;
use super::text::fit_tail;
use super::theme::Theme;
use crate::display::escape_line;

/// Rows of the header always there; [`header_rows`] are under them.
pub(super) const HEADER_ROWS: u16 = 3;

pub(super) fn render_header(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let config = &app.config;
    let mut first = vec![
        Span::styled("danube-hooks ", theme.bold(Color::White)),
        if app.paused {
            Span::styled("⏸ PAUSED", theme.bold(Color::Yellow))
        } else {
            Span::styled("● LIVE", theme.bold(Color::Green))
        },
        Span::raw("  "),
        Span::styled(
            escape_line(&config.listen_url).into_owned(),
            theme.bold(Color::Cyan),
        ),
    ];
    if config.viewer {
        first.push(Span::styled(" · every listener's deliveries", theme.dim()));
    }
    if let Some(forward) = &config.forward_url {
        let to = if config.viewer {
            " · replays to "
        } else {
            " → forward to "
        };
        first.push(Span::styled(to, theme.dim()));
        first.push(Span::raw(escape_line(forward).into_owned()));
    }

    let policy = if config.viewer {
        "each listener's own".to_owned()
    } else {
        escape_line(&app.policy.current().describe()).into_owned()
    };
    let secrets = if config.fingerprints.is_empty() {
        "none (not checked)".to_string()
    } else {
        escape_line(&config.fingerprints.join(", ")).into_owned()
    };
    let store = match (&config.store_path, &config.shared_store) {
        (Some(path), _) => crate::display::escape_path(path),
        // The shared store's URL, without its password.
        (None, Some(url)) => escape_line(url).into_owned(),
        (None, None) => "memory only (--no-store)".to_string(),
    };
    let used = "policy ".len() + policy.width() + "  secrets ".len() + secrets.width();
    let room = usize::from(area.width).saturating_sub(used + "  store ".len());
    let mut second = vec![
        Span::styled("policy ", theme.label()),
        Span::styled(policy, theme.bold(Color::Magenta)),
        Span::styled("  secrets ", theme.label()),
        Span::raw(secrets),
    ];
    // The policy matters most here; the store (also in the banner) goes
    // when there is no room to say anything useful about it.
    if room >= 16 {
        second.push(Span::styled("  store ", theme.label()));
        second.push(Span::raw(fit_tail(&store, room).into_owned()));
    }
    let second = Line::from(second);

    let mut lines = vec![Line::from(first), second, counters_line(app, theme)];
    let label_width = header_rows(app).map(|(label, _)| label.width()).max();
    for (label, text) in header_rows(app) {
        let width = label_width.unwrap_or(0);
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<width$} "), theme.label()),
            Span::raw(escape_line(text).into_owned()),
        ]));
    }
    for (row, line) in lines.iter().enumerate() {
        if (row as u16) < area.height {
            buf.set_line(area.x, area.y + row as u16, line, area.width);
        }
    }
}

/// The header's third row: counts by verdict and by answer since this
/// start, the deliveries read from earlier ones, and what is in flight or
/// was not shown.
fn counters_line(app: &App, theme: &Theme) -> Line<'static> {
    let c = &app.counters;
    let mut third = vec![
        Span::styled(format!("{} total", c.total), theme.bold(Color::White)),
        Span::raw("  "),
        Span::styled(format!("{} valid", c.valid), theme.fg(Color::Green)),
        Span::raw("  "),
        Span::styled(format!("{} invalid", c.invalid), theme.fg(Color::Red)),
    ];
    if c.unchecked > 0 {
        third.push(Span::raw(format!("  {} unchecked", c.unchecked)));
    }
    third.push(Span::styled("  │ ", theme.dim()));
    for (i, count) in c.by_class.iter().enumerate() {
        let class = i as u16 + 1;
        if *count > 0 || matches!(class, 2 | 4 | 5) {
            third.push(Span::styled(
                format!("{class}xx {count}  "),
                theme.status_code(Some(class * 100)),
            ));
        }
    }
    third.push(Span::styled(
        format!("no answer {}", c.no_answer),
        theme.status_code(None),
    ));
    // The counts are this start's; the deliveries read from the store
    // before it are counted apart.
    if app.runs().loaded() > 0 {
        third.push(Span::styled(
            format!("  │ {} earlier", app.runs().loaded()),
            theme.dim(),
        ));
    }
    if !app.in_flight.is_empty() {
        third.push(Span::styled(
            format!("  │ {} in flight", app.in_flight.len()),
            theme.bold(Color::Yellow),
        ));
    }
    if app.skipped > 0 {
        third.push(Span::styled(
            if app.config.keeps_records() {
                format!(
                    "  │ {} not shown (fell behind; `danube-hooks log` lists them)",
                    app.skipped
                )
            } else {
                format!(
                    "  │ {} skipped (fell behind; --no-store keeps no log to read back)",
                    app.skipped
                )
            },
            theme.bold(Color::Yellow),
        ));
    }
    Line::from(third)
}

/// The header's rows under the three always there, each a label and its
/// (unescaped) text, shown only when there is something to say: one more
/// optional row is one more entry here.
pub(super) fn header_rows(app: &App) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("tunnel", app.config.tunnel.as_deref()),
        ("danube webhook", app.config.danube_webhook.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, text)| Some((label, text?)))
}
