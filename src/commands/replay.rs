//! `danube-hooks replay`: resend a stored delivery, re-signed with a fresh
//! `t` (a retrying sender) or byte-identical (a replay attack), or a
//! changed copy of it (`--set`, `--data-file`, `--header`,
//! `--drop-header`: `resend`), and print what the target answered and,
//! for a copy, what changed.

use std::fmt::Write as _;

use crate::cli::{ReplayArgs, UsageError};
use crate::commands::{Outcome, unix_now};
use crate::delivery::{Delivery, ReplayMode};
use crate::display::{escape_bytes_multiline, escape_line};
use crate::errors::wrap::Whole;
use crate::events::Assignment;
use crate::http::{self, Attempt, Outgoing, Sender};
use crate::resend::{self, Edits, diff};
use crate::sender;
use crate::store;

pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    // The flags first: a bad edit is told before the store is read.
    let edits = edits(args)?;
    let store_at = args.store.location()?;
    let delivery = store::find(&store_at, args.id).map_err(Whole::new)?;
    let url = target(args, &delivery, &store_at)?;
    let mode = if args.as_is {
        ReplayMode::AsIs
    } else {
        ReplayMode::Resigned
    };
    let edited = if edits.is_empty() {
        None
    } else {
        Some(edits.apply(&delivery).map_err(UsageError::new)?)
    };
    let secrets = args.secret.secrets()?;
    let trust = crate::commands::trust(&args.tls)?;
    let request = sender::replay_request(
        &delivery,
        &url,
        mode,
        secrets.first(),
        unix_now(),
        edited.as_ref(),
    )
    .map_err(UsageError::new)?;
    let runtime = crate::commands::runtime()?;
    let attempt =
        runtime.block_on(Sender::new(&trust, http::MAX_ANSWER_BODY).send(&request, args.timeout));
    eprintln!(
        "replayed #{}{} {} to {}",
        delivery.id,
        if edited.is_some() { ", changed," } else { "" },
        match (args.as_is, edited.is_some()) {
            (true, false) => "as-is (original signature)",
            (true, true) => "with the original signature over the changed body",
            (false, _) => "re-signed with a fresh t",
        },
        escape_line(&url)
    );
    if edited.is_some() {
        eprint!("{}", render_changes(&delivery, &request));
    }
    crate::commands::out(&render_answer(&attempt))?;
    Ok(if attempt.succeeded() {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// The edit flags, each checked: a bad one is a usage error naming it.
fn edits(args: &ReplayArgs) -> Result<Edits, UsageError> {
    let usage = |err: String| UsageError::new(err);
    Ok(Edits {
        data: args
            .data_file
            .as_deref()
            .map(crate::commands::trigger::read_data_file)
            .transpose()?,
        sets: args
            .sets
            .iter()
            .map(|text| Assignment::parse(text).map_err(|err| usage(err.to_string())))
            .collect::<Result<_, _>>()?,
        drop_headers: args
            .drop_headers
            .iter()
            .map(|name| resend::parse_drop(name).map_err(usage))
            .collect::<Result<_, _>>()?,
        headers: args
            .headers
            .iter()
            .map(|text| resend::parse_header(text).map_err(usage))
            .collect::<Result<_, _>>()?,
    })
}

/// `--to`, else the URL the delivery was forwarded to, else the listener
/// running on the store now (`commands::running`: never a port an earlier
/// run used), on the path the delivery arrived on, where the copy is
/// recorded as one.
fn target(
    args: &ReplayArgs,
    delivery: &Delivery,
    store_at: &store::Location,
) -> anyhow::Result<String> {
    match (&args.to, &delivery.forward) {
        (Some(url), _) => {
            http::check_url(url).map_err(|err| UsageError::new(format!("--to: {err}")))?;
            Ok(url.clone())
        }
        (None, Some(forward)) => Ok(recorded_target(delivery, &forward.url)?),
        // A stranger's request target that is no path was refused on
        // arrival: nothing to send back to.
        (None, None) if !delivery.path.starts_with('/') => Err(UsageError::new(format!(
            "delivery #{} arrived with the request target {:?}, which is not a path, so it \
             has no listener path to go back to: pass --to URL",
            delivery.id,
            escape_line(&delivery.path)
        ))
        .into()),
        (None, None) => {
            let home = crate::commands::running::find(store_at)?;
            let base =
                http::url_on(home.addr, "/").map_err(|err| UsageError::new(err.to_string()))?;
            Ok(crate::curl::resend_url(&base, delivery).to_string())
        }
    }
}

/// What the copy changed against the stored delivery, a line each,
/// escaped.
fn render_changes(original: &Delivery, sent: &Outgoing) -> String {
    let headers: Vec<(String, String)> = sent
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
        .collect();
    let lines = diff::lines(
        &diff::bodies(&original.body, &sent.body),
        &diff::headers(&original.headers, &headers),
    );
    let mut out = format!("changed against #{}:\n", original.id);
    for line in &lines {
        let _ = writeln!(out, "  {}", escape_line(line));
    }
    out
}

/// The default target: the URL `delivery` was forwarded to, read back into
/// its parts and built again. Records written before request targets were
/// checked may hold a URL a stranger steered (`http://127.0.0.1:3000` joined
/// with `@127.0.0.1:4001`, or with `0/`): a path that is not origin-form
/// means the recorded URL cannot be trusted to be the user's.
pub(crate) fn recorded_target(delivery: &Delivery, url: &str) -> Result<String, UsageError> {
    let untrusted = |why: String| {
        UsageError::new(format!(
            "delivery #{} was forwarded to {}, but {why}; pass --to URL to choose the target",
            delivery.id,
            escape_line(url)
        ))
    };
    if !delivery.path.starts_with('/') {
        return Err(untrusted(format!(
            "it arrived with the request target {:?}, which is not a path, so that URL may \
             have been built by the sender rather than by --forward-to",
            escape_line(&delivery.path)
        )));
    }
    let recorded = http::check_url(url).map_err(|err| untrusted(err.to_string()))?;
    let path = recorded.path_and_query().map_or("/", |p| p.as_str());
    http::url_at(&recorded, path)
        .map(|url| url.to_string())
        .map_err(|err| untrusted(err.to_string()))
}

/// The status line, the headers and the body of an answer, escaped.
pub(crate) fn render_answer(attempt: &Attempt) -> String {
    let mut out = String::new();
    match &attempt.result {
        Ok(answer) => {
            let _ = writeln!(out, "{}", attempt.summary());
            for (name, value) in &answer.headers {
                let _ = writeln!(out, "{}: {}", escape_line(name), escape_line(value));
            }
            let _ = writeln!(out);
            let body = escape_bytes_multiline(&answer.body);
            out.push_str(&body);
            if !body.is_empty() && !body.ends_with('\n') {
                out.push('\n');
            }
        }
        Err(err) => {
            let _ = writeln!(out, "{}", escape_line(&err.to_string()));
        }
    }
    out
}
