//! The body tab: the body as re-indented JSON, raw (escaped) or hex, at a
//! bounded cost whatever its size.

use std::fmt::Write as _;

use ratatui::style::Style;

use super::super::super::app::BodyMode;
use super::super::theme::Theme;
use super::rows::Rows;
use crate::delivery::Delivery;
use crate::display::{ascii_row, escape_bytes_multiline, escape_multiline, hex_row};
use crate::json_style::{self, PrettyLimits};

/// The body tab shows at most this many bytes of a body, raw or hex: a
/// frame builds the tab's rows once (twice when the scroll was past the
/// end), and must be done within its budget whatever the body.
const BODY_VIEW_BYTES: usize = 64 * 1024;

pub(super) fn body(mode: BodyMode, theme: &Theme, d: &Delivery, rows: &mut Rows) {
    let mut about = format!("{} bytes", d.body_size);
    if d.body_truncated {
        let _ = write!(about, ", truncated: the first {} kept", d.body.len());
    }
    if d.body.is_empty() {
        rows.plain(format!("{about} · (empty body)"), theme.dim());
        return;
    }
    let shown = &d.body[..d.body.len().min(BODY_VIEW_BYTES)];
    if shown.len() < d.body.len() {
        let _ = write!(about, ", the first {} KiB shown", BODY_VIEW_BYTES / 1024);
    }
    let cut = (shown.len() < d.body.len()).then(|| {
        format!(
            "… cut: the first {} KiB of {} bytes shown; `danube-hooks show {} --raw` prints it all",
            BODY_VIEW_BYTES / 1024,
            d.body.len(),
            d.id
        )
    });
    match mode {
        BodyMode::Pretty => pretty_lines(&about, shown, cut.is_some(), theme, rows),
        BodyMode::Raw => {
            rows.plain(format!("{about} · raw, escaped"), theme.dim());
            raw_lines(shown, rows);
        }
        BodyMode::Hex => {
            rows.plain(format!("{about} · hex"), theme.dim());
            for (i, chunk) in shown.chunks(16).enumerate() {
                rows.line(vec![
                    (format!("{:08x}  ", i * 16), theme.dim()),
                    (hex_row(chunk), theme.json_number()),
                    (ascii_row(chunk), Style::new()),
                ]);
            }
        }
    }
    if let Some(cut) = cut {
        rows.plain(cut, theme.dim());
    }
}

/// The body re-indented, its tokens coloured, when it is JSON small
/// enough to try (`cut`: only its start is shown, so it is not); raw with
/// the reason otherwise.
fn pretty_lines(about: &str, shown: &[u8], cut: bool, theme: &Theme, rows: &mut Rows) {
    // `Err(None)`: too large to try.
    let pretty = if cut {
        Err(None)
    } else {
        json_style::pretty_bounded(shown, &PrettyLimits::DASHBOARD).map_err(Some)
    };
    match pretty {
        Ok((text, text_cut)) => {
            rows.plain(
                format!("{about} · JSON re-indented (b: raw shows the exact bytes)"),
                theme.dim(),
            );
            for line in text.lines() {
                rows.line(json_segments(line, theme));
            }
            if text_cut {
                rows.plain(
                    format!(
                        "… cut: re-indented, it is over {} KiB; b: raw shows the bytes",
                        PrettyLimits::DASHBOARD.text / 1024
                    ),
                    theme.dim(),
                );
            }
        }
        Err(Some(json_style::NotPretty::NotJson)) => {
            rows.plain(format!("{about} · not JSON, shown raw"), theme.dim());
            raw_lines(shown, rows);
        }
        Err(why) => {
            let why = why.map_or_else(
                || format!("over {} KiB", BODY_VIEW_BYTES / 1024),
                |why| why.to_string(),
            );
            rows.plain(
                format!("{about} · not re-indented ({why}), shown raw"),
                theme.dim(),
            );
            raw_lines(shown, rows);
        }
    }
}

fn raw_lines(body: &[u8], rows: &mut Rows) {
    let text = escape_bytes_multiline(body);
    for line in text.split('\n') {
        rows.plain(line.replace('\t', "    "), Style::new());
    }
}

/// One line of pretty JSON, split into coloured tokens: keys, strings,
/// numbers, literals. Each token is escaped (serde leaves DEL, C1 and the
/// bidi controls as they are).
fn json_segments(line: &str, theme: &Theme) -> Vec<(String, Style)> {
    let mut segments = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut plain_start = 0;
    let flush = |segments: &mut Vec<(String, Style)>, from: usize, to: usize| {
        if to > from {
            segments.push((escape_multiline(&line[from..to]).into_owned(), Style::new()));
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                flush(&mut segments, plain_start, i);
                let start = i;
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                let end = i.min(bytes.len());
                let is_key = line[end..].trim_start().starts_with(':');
                let style = if is_key {
                    theme.json_key()
                } else {
                    theme.json_string()
                };
                segments.push((escape_multiline(&line[start..end]).into_owned(), style));
                i = end;
                plain_start = i;
            }
            b'-' | b'0'..=b'9' => {
                flush(&mut segments, plain_start, i);
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                segments.push((line[start..i].to_string(), theme.json_number()));
                plain_start = i;
            }
            b't' | b'f' | b'n' => {
                let rest = &line[i..];
                let literal = ["true", "false", "null"]
                    .into_iter()
                    .find(|l| rest.starts_with(l));
                if let Some(literal) = literal {
                    flush(&mut segments, plain_start, i);
                    segments.push((literal.to_string(), theme.json_literal()));
                    i += literal.len();
                    plain_start = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    flush(&mut segments, plain_start, bytes.len());
    segments
}
