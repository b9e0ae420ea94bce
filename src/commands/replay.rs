//! `danube-hooks replay`: resend a stored delivery, re-signed with a fresh
//! `t` (a retrying sender) or byte-identical (a replay attack), and print
//! what the target answered.

use std::fmt::Write as _;

use crate::cli::{ReplayArgs, UsageError};
use crate::commands::{Outcome, unix_now};
use crate::delivery::{Delivery, ReplayMode};
use crate::display::{escape_bytes_multiline, escape_line};
use crate::errors::wrap::Whole;
use crate::http::{self, Attempt, Sender};
use crate::sender;
use crate::store;

pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let path = args.store.path()?;
    let delivery = store::find(&path, args.id).map_err(Whole::new)?;
    let url = match (&args.to, &delivery.forward) {
        (Some(url), _) => {
            http::check_url(url).map_err(|err| UsageError::new(format!("--to: {err}")))?;
            url.clone()
        }
        (None, Some(forward)) => recorded_target(&delivery, &forward.url)?,
        (None, None) => {
            return Err(UsageError::new(format!(
                "delivery #{} was not forwarded (the policy answered it, or no --forward-to rule \
                 matched its event), so there is no target to default to: pass --to URL",
                args.id
            ))
            .into());
        }
    };
    let mode = if args.as_is {
        ReplayMode::AsIs
    } else {
        ReplayMode::Resigned
    };
    let secrets = args.secret.secrets()?;
    let trust = crate::commands::trust(&args.tls)?;
    let request = sender::replay_request(&delivery, &url, mode, secrets.first(), unix_now())
        .map_err(UsageError::new)?;
    let runtime = crate::commands::runtime()?;
    let attempt =
        runtime.block_on(Sender::new(&trust, http::MAX_ANSWER_BODY).send(&request, args.timeout));
    eprintln!(
        "replayed #{} {} to {}",
        delivery.id,
        if args.as_is {
            "as-is (original signature)"
        } else {
            "re-signed with a fresh t"
        },
        escape_line(&url)
    );
    crate::commands::out(&render_answer(&attempt))?;
    Ok(if attempt.succeeded() {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// The default target: the URL `delivery` was forwarded to, read back into
/// its parts and built again. Records written before request targets were
/// checked may hold a URL a stranger steered (`http://127.0.0.1:3000` joined
/// with `@127.0.0.1:4001`, or with `0/`): a path that is not origin-form
/// means the recorded URL cannot be trusted to be the user's.
fn recorded_target(delivery: &Delivery, url: &str) -> Result<String, UsageError> {
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
