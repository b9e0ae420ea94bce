//! The store's readers: `log` lists deliveries, `show` prints one whole,
//! `export` prints a curl command that reproduces one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::ControlFlow;

use crate::cli::{ExportArgs, LogArgs, ShowArgs, UsageError};
use crate::commands::Outcome;
use crate::commands::verify::render_for_a_person;
use crate::curl;
use crate::delivery::{Delivery, ForwardRecord, format_duration_ms};
use crate::display::{escape_bytes_line, escape_bytes_multiline, escape_line, escape_multiline};
use crate::errors::wrap::Whole;
use crate::headless::{self, Format};
use crate::http;
use crate::json_style::{self, PrettyLimits};
use crate::policy::Pattern;
use crate::query::Query;
use crate::store;

pub(crate) fn log(args: &LogArgs) -> anyhow::Result<Outcome> {
    let store = args.store.location()?;
    let query = log_query(args)?;
    let wanted = |d: &Delivery| query.matches(d);
    // Lines the query's byte check refuses are records never parsed; they
    // still count as read, for the note when nothing is shown.
    let check = query.line_check();
    let refused = std::cell::Cell::new(0usize);
    let keep = |line: &[u8]| {
        let may = check.may_match(line);
        if !may {
            refused.set(refused.get() + 1);
        }
        may
    };
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };
    let warn = |skipped: &store::Unparsable| {
        eprintln!("danube-hooks: warning: skipped {skipped}");
    };
    // Memory that does not grow with the store: records are printed as
    // they are read, or, for --last N, only the last N that match are held
    // (read backwards from the end, so only that tail is read).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut written = Ok(());
    let mut print = |delivery: &Delivery| {
        written = writeln!(out, "{}", headless::render(delivery, format));
        if written.is_ok() {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    };
    // Records read, and those shown: when none is shown, stderr says why.
    let (mut records, mut shown) = (0usize, 0usize);
    let read = match args.last {
        None => store::each_forward_where(&store, None, keep, |entry| match entry {
            store::Entry::Record(delivery) => {
                records += 1;
                if wanted(&delivery) {
                    shown += 1;
                    print(&delivery)
                } else {
                    ControlFlow::Continue(())
                }
            }
            store::Entry::Skipped(skipped) => {
                warn(&skipped);
                ControlFlow::Continue(())
            }
        }),
        Some(0) => Ok(()),
        Some(last) => {
            let (read, kept, skipped) = last_wanted(&store, last, keep, &wanted, &mut records);
            skipped.iter().for_each(warn);
            shown = kept.len();
            let _ = kept.iter().try_for_each(&mut print);
            read
        }
    };
    read.map_err(Whole::new)?;
    records += refused.get();
    // --last 0 asks for nothing, and is given nothing without a word.
    if shown == 0 && args.last != Some(0) {
        eprintln!("danube-hooks: {}", nothing_shown(args, &store, records));
    }
    match written.and_then(|()| out.flush()) {
        // `log | head` closed the pipe: nothing more is wanted.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(
            crate::commands::stdout_failed(err, "cannot write to standard output"),
        ),
        _ => Ok(Outcome::Success),
    }
}

/// The last `last` records `wanted` takes, and the lines that did not
/// parse on the way, oldest first: read backwards from the end, so only
/// that tail is read. `records` counts the records read.
fn last_wanted(
    store: &store::Location,
    last: usize,
    keep: impl FnMut(&[u8]) -> bool,
    wanted: &dyn Fn(&Delivery) -> bool,
    records: &mut usize,
) -> (
    Result<(), store::StoreError>,
    Vec<Delivery>,
    Vec<store::Unparsable>,
) {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let read = store::each_backward_where(store, keep, |entry| {
        match entry {
            store::Entry::Record(delivery) => {
                *records += 1;
                if wanted(&delivery) {
                    kept.push(delivery);
                }
            }
            store::Entry::Skipped(line) => skipped.push(line),
        }
        if kept.len() >= last {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    kept.reverse();
    skipped.reverse();
    (read, kept, skipped)
}

/// `--query`, with `--event` and `--verdict` as terms of it.
fn log_query(args: &LogArgs) -> Result<Query, UsageError> {
    let mut query = parse_query(args.query.as_deref())?;
    if let Some(event) = &args.event {
        let pattern =
            Pattern::parse(event).map_err(|err| UsageError::new(format!("--event: {err}")))?;
        query.and_event(pattern);
    }
    if let Some(verdict) = args.verdict {
        query.and_verdict(verdict);
    }
    Ok(query)
}

/// `--query`'s text as a query (none: every delivery), `since:` counted
/// back from now; a bad one is a usage error that points at it.
pub(crate) fn parse_query(text: Option<&str>) -> Result<Query, UsageError> {
    text.map_or_else(
        || Ok(Query::default()),
        |text| {
            Query::parse(text, chrono::Utc::now()).map_err(|err| UsageError::new(err.to_string()))
        },
    )
}

/// Why `log` printed nothing: the store holds no delivery, or none of
/// its `records` passes the filters (each named as it was given).
fn nothing_shown(args: &LogArgs, store: &store::Location, records: usize) -> String {
    let path = escape_line(&store.to_string()).into_owned();
    if records == 0 {
        return format!("no deliveries in {path} yet (danube-hooks listen records them there)");
    }
    let mut filters = Vec::new();
    if let Some(event) = &args.event {
        filters.push(format!("--event {}", escape_line(event)));
    }
    if let Some(verdict) = args.verdict {
        filters.push(format!("--verdict {verdict}"));
    }
    if let Some(query) = &args.query {
        filters.push(format!("--query {}", escape_line(query)));
    }
    let deliveries = if records == 1 {
        "the one delivery".to_string()
    } else {
        format!("the {records} deliveries")
    };
    format!(
        "none of {deliveries} in {path} matches {}",
        filters.join(" ")
    )
}

pub(crate) fn show(args: &ShowArgs) -> anyhow::Result<Outcome> {
    let store = args.store.location()?;
    let delivery = store::find(&store, args.id).map_err(Whole::new)?;
    crate::commands::out(&render_whole(&delivery, args.raw))?;
    Ok(Outcome::Success)
}

pub(crate) fn export(args: &ExportArgs) -> anyhow::Result<Outcome> {
    let store = args.store.location()?;
    let to = args
        .to
        .as_deref()
        .map(http::check_url)
        .transpose()
        .map_err(|err| UsageError::new(format!("--to: {err}")))?;
    let Some(id) = args.id else {
        return export_matching(&store, args.query.as_deref(), to.as_ref());
    };
    let delivery = store::find(&store, id).map_err(Whole::new)?;
    crate::commands::out_line(&export_command(&delivery, to.as_ref()))?;
    Ok(Outcome::Success)
}

/// `export --query`: a command for each delivery that matches, oldest
/// first, each after a comment naming it, streamed as the store is read.
fn export_matching(
    store: &store::Location,
    query: Option<&str>,
    to: Option<&hyper::Uri>,
) -> anyhow::Result<Outcome> {
    let text = query.unwrap_or_default();
    let query = parse_query(Some(text))?;
    let check = query.line_check();
    let mut shown = 0usize;
    let mut written = Ok(());
    let read = store::each_forward_where(
        store,
        None,
        |line| check.may_match(line),
        |entry| match entry {
            store::Entry::Record(delivery) if query.matches(&delivery) => {
                shown += 1;
                let command = export_command(&delivery, to);
                written = crate::commands::out(&format!("# delivery {}\n{command}\n", delivery.id));
                if written.is_ok() {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            }
            store::Entry::Record(_) => ControlFlow::Continue(()),
            store::Entry::Skipped(skipped) => {
                eprintln!("danube-hooks: warning: skipped {skipped}");
                ControlFlow::Continue(())
            }
        },
    );
    read.map_err(Whole::new)?;
    written?;
    if shown == 0 {
        eprintln!(
            "danube-hooks: no delivery in {} matches --query {}",
            escape_line(&store.to_string()),
            escape_line(text)
        );
    }
    Ok(Outcome::Success)
}

/// The curl command for `delivery`, to `to` or to where it arrived.
fn export_command(delivery: &Delivery, to: Option<&hyper::Uri>) -> String {
    if let Some(url) = to {
        return curl::command(delivery, url);
    }
    if !delivery.path.starts_with('/') {
        eprintln!(
            "danube-hooks: delivery #{} arrived with the request target {}, which is not \
             a path (it was refused with 400); the command sends to / instead",
            delivery.id,
            escape_line(&delivery.path)
        );
    }
    curl::command(delivery, &curl::arrival_url(delivery))
}

/// One delivery, whole: the request, the verdict, the answer, the headers
/// and the body. Every untrusted byte escaped.
pub(crate) fn render_whole(delivery: &Delivery, raw: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#{}  {}  {} {}  {}  from {}",
        delivery.id,
        crate::delivery::format_time(&delivery.received_at),
        escape_line(&delivery.method),
        escape_line(&delivery.path),
        escape_line(&delivery.http_version),
        escape_line(&delivery.remote_addr),
    );
    let _ = writeln!(
        out,
        "event: {}   group {}   attempt {}",
        escape_line(delivery.event.as_deref().unwrap_or("(none)")),
        escape_line(&delivery.group),
        delivery.attempt
    );
    write_lineage(&mut out, delivery);
    let _ = writeln!(
        out,
        "\nsignature: {}",
        render_for_a_person(&delivery.signature, None).trim_end()
    );
    let response = &delivery.response;
    let _ = writeln!(
        out,
        "\nanswer: {}   rule {}   in {}",
        response,
        escape_line(&response.rule),
        format_duration_ms(delivery.duration_ms)
    );
    if let Some(forward) = &delivery.forward {
        write_forward(&mut out, forward);
    }
    let _ = writeln!(out, "\nheaders:");
    // The bytes as received: a value that is not UTF-8 shows `\xe9`, not
    // the Latin-1 text the record also keeps.
    for (name, value) in delivery.header_bytes() {
        let _ = writeln!(
            out,
            "  {}: {}",
            escape_line(name),
            escape_bytes_line(&value)
        );
    }
    let truncated = if delivery.body_truncated {
        ", truncated"
    } else {
        ""
    };
    let _ = writeln!(out, "\nbody ({} bytes{truncated}):", delivery.body_size);
    out.push_str(&body_text(&delivery.body, raw));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The lines that say what a delivery is a repetition of: a replay the
/// listener recognised, a redelivery from Danube's log, or a copy `replay`
/// sent. Each appears only when the record carries it.
fn write_lineage(out: &mut String, delivery: &Delivery) {
    if let Some(first) = delivery.replay_of {
        let _ = writeln!(out, "replay of #{first}");
    }
    if let Some(danube_id) = &delivery.redelivery_of {
        let _ = writeln!(
            out,
            "redelivery of Danube's delivery {} (from its log)",
            escape_line(danube_id)
        );
    }
    if let Some(original) = delivery.resent_from {
        let _ = writeln!(
            out,
            "copy of #{original}, {}, as its {} header claims",
            if delivery.edited == Some(true) {
                "changed"
            } else {
                "unchanged"
            },
            crate::resend::RESENT_FROM
        );
    }
}

/// The forward's line: where it went and what came back (a status, or the
/// failure escaped, since a receiver's error text is untrusted).
fn write_forward(out: &mut String, forward: &ForwardRecord) {
    let outcome = match (&forward.status, &forward.error) {
        (Some(status), _) => status.to_string(),
        (None, Some(error)) => escape_line(error).into_owned(),
        (None, None) => "-".into(),
    };
    let _ = writeln!(
        out,
        "forward: {} → {outcome} in {}ms",
        escape_line(&forward.url),
        forward.duration_ms
    );
}

/// Pretty JSON when the body is JSON and `raw` is off; else the bytes,
/// escaped. A body too deep or too wide to re-indent at a bounded cost (a
/// 1 MiB body nested 126 levels deep is 127 MB pretty) is shown raw, and
/// re-indented text is cut at [`PrettyLimits::SHOW`]'s text, each with a note.
fn body_text(body: &[u8], raw: bool) -> String {
    if raw {
        return escape_bytes_multiline(body);
    }
    match json_style::pretty_bounded(body, &PrettyLimits::SHOW) {
        Ok((text, cut)) => {
            let mut out = escape_multiline(&text).into_owned();
            if cut {
                let _ = write!(
                    out,
                    "\n… cut: the re-indented body is over {} MiB; --raw shows it all",
                    PrettyLimits::SHOW.text / (1024 * 1024)
                );
            }
            out
        }
        Err(json_style::NotPretty::NotJson) => escape_bytes_multiline(body),
        Err(json_style::NotPretty::Shape(why)) => format!(
            "(not re-indented: {why}; shown raw)\n{}",
            escape_bytes_multiline(body)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    #[test]
    fn show_prints_everything_escaped() {
        let mut delivery = sample(5, b"{\"event\":\"x\",\"note\":\"\\u001b[2J\"}");
        delivery
            .headers
            .push(("x-evil".into(), "a\u{202e}b".into()));
        let (headers, raw) = crate::delivery::record_headers(
            delivery
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .chain([("x-latin", &b"caf\xe9"[..])]),
        );
        delivery.headers = headers;
        delivery.raw_headers = raw;
        let text = render_whole(&delivery, false);
        for part in [
            "#5",
            "POST /webhooks/danube?x=1",
            "signature: VALID",
            "answer: 200",
            "x-evil: a\\u{202e}b",
            "x-latin: caf\\xe9",
            "\"note\": \"\\u001b[2J\"",
        ] {
            assert!(text.contains(part), "{part:?} missing:\n{text}");
        }
        assert!(
            !text
                .chars()
                .any(|c| crate::display::is_dangerous(c) && c != '\n')
        );
        let raw = render_whole(&sample(6, b"line\x1b[31m\n"), true);
        assert!(raw.contains("line\\x1b[31m"), "{raw}");
    }

    #[test]
    fn show_does_not_blow_up_on_a_deep_or_huge_body() {
        // 1 MiB nested 126 levels deep: 127 MB if pretty-printed whole.
        let body = crate::test_support::nested(126, 1024 * 1024);
        let text = body_text(&body, false);
        assert!(
            text.starts_with("(not re-indented: the JSON is nested more than 64 levels deep"),
            "{}",
            &text[..200]
        );
        assert!(text.len() < 2 * body.len(), "{} bytes", text.len());
        // Shallow, but past the text cap.
        let wide = format!("[\"{}\"]", "x".repeat(PrettyLimits::SHOW.text + 1));
        let text = body_text(wide.as_bytes(), false);
        assert!(
            text.len() <= PrettyLimits::SHOW.text + 100,
            "{} bytes",
            text.len()
        );
        assert!(text.ends_with("over 16 MiB; --raw shows it all"));
    }
}
