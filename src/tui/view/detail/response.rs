//! The response tab: what this tool answered and by which rule, what that
//! means to Danube, what the developer's receiver answered when the
//! delivery was forwarded, and what each mirror answered to its copy.

use ratatui::style::{Color, Style};

use super::super::super::app::App;
use super::super::cells::{answer_label, mirror_label};
use super::super::theme::Theme;
use super::rows::{LABEL, Rows};
use crate::delivery::{Delivery, format_duration_ms, format_ms};
use crate::display::{escape_line, escape_multiline};

/// What an answer that is not a plain status means to Danube.
fn tunnel_note(action: &str, delay_ms: u64) -> Option<&'static str> {
    match action {
        "reset" | "close" | "garbage" => Some(
            "through a tunnel (ngrok, cloudflared) Danube does not see this as a transport \
             fault: the tunnel answers with its own gateway error (such as 502), so Danube \
             records an HTTP error status for the attempt. Only a direct connection sees the \
             connection itself fail.",
        ),
        "abandoned" => Some(
            "the client went away while the answer waited (Danube gives up at its 10 s \
             deadline), so nothing was sent; the duration is how long it waited.",
        ),
        "timeout" => Some(
            "held with no answer past Danube's 10 s deadline: the attempt fails as a timeout \
             (through a tunnel, the tunnel may answer with its own timeout error first).",
        ),
        _ if u128::from(delay_ms) >= crate::facts::DEADLINE.as_millis() => Some(
            "answered after Danube's 10 s deadline: Danube has given up by then, so the \
             attempt fails even though the status is a success.",
        ),
        _ => None,
    }
}

pub(super) fn response(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let r = &d.response;
    rows.field(
        theme,
        "answered",
        Some((
            format!("{}  ", answer_label(d)),
            theme.status_code(r.status),
        )),
        "(what danube-hooks sent back)",
        theme.dim(),
    );
    let status = r
        .status
        .map_or_else(|| "none".to_string(), |s| s.to_string());
    rows.field(
        theme,
        "ours",
        None,
        &escape_line(&format!(
            "{}status {status} · delay {} · took {}",
            if r.action == "status" {
                String::new()
            } else {
                format!("action {} · ", r.action)
            },
            format_ms(r.delay_ms),
            format_duration_ms(d.duration_ms)
        )),
        Style::new(),
    );
    rows.field(theme, "rule", None, &escape_line(&r.rule), Style::new());
    let note = tunnel_note(&r.action, r.delay_ms);
    if let Some(note) = note {
        rows.field(theme, "note", None, note, theme.fg(Color::Yellow));
    }
    forward_section(app, theme, d, rows);
    mirror_lines(theme, d, rows);
}

/// What each `--mirror-to` answered to its copy (never sent back to the
/// sender): its status and time, its error, or that it had not answered
/// yet; shared with the overview.
pub(super) fn mirror_lines(theme: &Theme, d: &Delivery, rows: &mut Rows) {
    for mirror in &d.mirrors {
        let label = mirror_label(mirror);
        let style = match mirror.status {
            Some(status) => theme.status_code(Some(status)),
            None if mirror.is_pending() => theme.dim(),
            None => theme.bold(Color::Red),
        };
        let text = match &mirror.error {
            Some(error) => format!("{} · {error}", mirror.url),
            None if mirror.is_pending() => format!(
                "{} · no answer after {} (it is shown when it comes)",
                mirror.url,
                format_ms(mirror.duration_ms)
            ),
            None => mirror.url.clone(),
        };
        rows.field(
            theme,
            "mirror",
            Some((format!("{label}  "), style)),
            &escape_line(&text),
            Style::new(),
        );
    }
}

/// What the developer's receiver answered, when the delivery was forwarded.
fn forward_section(app: &App, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let r = &d.response;
    let Some(forward) = &d.forward else {
        let why = match (&app.config.forward_url, r.action.as_str()) {
            (None, _) => "not forwarded: no --forward-to is set",
            (Some(_), "forward") => "not forwarded",
            (Some(_), _) if r.rule.ends_with(crate::delivery::NO_ROUTE) => {
                "not forwarded: no --forward-to rule matches its event"
            }
            (Some(_), _) => "not forwarded: the policy answered instead of your receiver",
        };
        rows.field(theme, "forward", None, why, theme.dim());
        return;
    };
    let badge = match (forward.status, &forward.error) {
        (Some(status), _) => (format!("{status}  "), theme.status_code(Some(status))),
        (None, _) => ("FAILED  ".to_string(), theme.bold(Color::Red)),
    };
    rows.field(
        theme,
        "forward",
        Some(badge),
        &escape_line(&format!(
            "in {} from {}",
            format_ms(forward.duration_ms),
            forward.url
        )),
        Style::new(),
    );
    if let Some(error) = &forward.error {
        rows.field(
            theme,
            "error",
            None,
            &escape_line(error),
            theme.bold(Color::Red),
        );
    }
    if forward.headers.is_empty() {
        rows.field(theme, "headers", None, "-", Style::new());
    }
    for (i, (name, value)) in forward.headers.iter().enumerate() {
        let label = if i == 0 { "headers" } else { "" };
        rows.field(
            theme,
            label,
            None,
            &escape_line(&format!("{name}: {value}")),
            Style::new(),
        );
    }
    match forward.body_preview.as_deref() {
        None | Some("") => rows.field(theme, "body", None, "-", Style::new()),
        Some(preview) => {
            let text = escape_multiline(preview).replace('\t', "    ");
            for (i, line) in text.split('\n').enumerate() {
                let label = if i == 0 { "body" } else { "" };
                rows.line(vec![
                    (format!("{label:<LABEL$}"), theme.label()),
                    (line.to_string(), Style::new()),
                ]);
            }
        }
    }
}
