//! `danube-hooks trigger`: act as Danube. Build the envelope from the
//! fixtures with a fresh timestamp, sign it, post it, retry failed attempts,
//! and print the outcome as Danube's delivery record. With `--emulator`,
//! hand the event to a local Danube (`emulate`) instead, which delivers it
//! to its webhooks; print the deliveries it made.

use std::cell::Cell;
use std::hash::{BuildHasher as _, Hasher as _};

use anyhow::Context as _;
use chrono::Utc;

use crate::cli::{TriggerArgs, UsageError};
use crate::commands::{Outcome, unix_now};
use crate::danube::model::{DeliveryRecord, DeliveryStatus};
use crate::display::{escape_line, to_json_line};
use crate::events::{self, Assignment};
use crate::http::{self, Outgoing, Sender};
use crate::sender::{self, RetryPlan};
use crate::signature::Secret;

/// The webhook id in reports: there is no Danube webhook behind a trigger.
const LOCAL_WEBHOOK_ID: &str = "wh_local";

pub(crate) fn run(args: &TriggerArgs) -> anyhow::Result<Outcome> {
    let trust = crate::commands::trust(&args.tls)?;
    let events: Vec<String> = if args.all {
        events::EVENT_TYPES
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        let event = args.event.clone().unwrap_or_default();
        events::fixture(&event).map_err(|err| UsageError::new(err.to_string()))?;
        vec![event]
    };
    let assignments = args
        .sets
        .iter()
        .map(|text| Assignment::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| UsageError::new(err.to_string()))?;
    let data = args.data_file.as_deref().map(read_data_file).transpose()?;
    let to = match (&args.emulator, &args.to) {
        (Some(emulator), _) => return emit(emulator, &events, data.as_ref(), &assignments),
        (None, Some(to)) => to,
        (None, None) => return Err(UsageError::new("give --to URL or --emulator URL").into()),
    };
    let secret = args.secret.secrets()?.into_iter().next();
    if secret.is_none() {
        eprintln!(
            "danube-hooks: warning: no --secret: deliveries go out unsigned (Danube always signs)"
        );
    }
    http::check_url(to).map_err(|err| UsageError::new(format!("--to: {err}")))?;
    let plan = RetryPlan {
        attempts: args.attempts,
        backoff: args.backoff.0.clone(),
        timeout: args.timeout,
    };
    let runtime = crate::commands::runtime()?;
    let sender = Sender::new(&trust, http::MAX_ANSWER_BODY);
    let mut all_delivered = true;
    for event in &events {
        let created_at = Utc::now();
        let body = events::envelope(event, created_at, data.clone(), &assignments)
            .map_err(|err| UsageError::new(err.to_string()))?;
        let report = runtime.block_on(deliver(
            &sender,
            args,
            to,
            &plan,
            secret.as_ref(),
            event,
            body,
            created_at,
        ));
        all_delivered &= report.status == DeliveryStatus::Success;
        crate::commands::out_line(&to_json_line(&report))?;
    }
    Ok(if all_delivered {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

#[allow(clippy::too_many_arguments)] // one call site: run's pieces, passed through
async fn deliver(
    sender: &Sender,
    args: &TriggerArgs,
    to: &str,
    plan: &RetryPlan,
    secret: Option<&Secret>,
    event: &str,
    body: Vec<u8>,
    created_at: chrono::DateTime<Utc>,
) -> DeliveryRecord {
    let first_t = unix_now();
    // The t of the attempt being sent, and the attempt and t of the last
    // one that may have reached the receiver: only a signature the
    // receiver has seen can be repeated to it.
    let sent_t = Cell::new(first_t);
    let arrived: Cell<Option<(u32, i64)>> = Cell::new(None);
    let attempts = sender
        .deliver(
            plan,
            |n| {
                // Whether Danube re-signs a retry is not published; by default
                // each attempt is signed anew, --same-signature keeps the first.
                let t = if args.same_signature {
                    first_t
                } else {
                    unix_now()
                };
                if let Some(warning) = same_t_warning(args.same_signature, arrived.get(), t) {
                    eprintln!("{event} attempt {n}/{}: {warning}", plan.attempts);
                }
                sent_t.set(t);
                Outgoing::danube(to, secret, t, body.clone())
            },
            |n, attempt, wait| {
                if attempt.may_have_arrived() {
                    arrived.set(Some((n, sent_t.get())));
                }
                let then = match wait {
                    Some(wait) => format!(
                        "; retrying in {}",
                        crate::delivery::format_ms(wait.as_millis() as u64)
                    ),
                    None => String::new(),
                };
                eprintln!(
                    "{event} attempt {n}/{}: {}{then}",
                    plan.attempts,
                    escape_line(&attempt.summary())
                );
            },
        )
        .await;
    sender::delivery_record(
        delivery_id(),
        LOCAL_WEBHOOK_ID.into(),
        event,
        &body,
        created_at,
        &attempts,
    )
}

/// `--data-file`'s JSON (`trigger`, `replay`): a file that cannot be read
/// or is not JSON is a usage error naming it.
pub(crate) fn read_data_file(path: &std::path::Path) -> Result<serde_json::Value, UsageError> {
    let text = std::fs::read(path).map_err(|err| {
        UsageError::new(format!("cannot read --data-file {}: {err}", path.display()))
    })?;
    serde_json::from_slice(&text).map_err(|err| {
        UsageError::new(format!("--data-file {} is not JSON: {err}", path.display()))
    })
}

/// What to say of an attempt signed with `t` when `arrived` is the attempt
/// (and its t) that last may have reached the receiver: t counts seconds,
/// so a retry within the same second is signed exactly as that one was.
/// Nothing with `--same-signature`, which asks for exactly that.
fn same_t_warning(same_signature: bool, arrived: Option<(u32, i64)>, t: i64) -> Option<String> {
    let (earlier, earlier_t) = arrived.filter(|_| !same_signature)?;
    (earlier_t == t).then(|| {
        format!(
            "signed with the same t as attempt {earlier}, less than a second earlier, so its \
             signature repeats; `listen` flags it as a replay, and a receiver that rejects \
             repeated signatures rejects it"
        )
    })
}

/// `--emulator`: each event's `data`, built as for a delivery, handed to
/// the local Danube at `emulator`, which signs, posts and retries it to
/// each subscribed webhook; one JSON line per event of the deliveries it
/// made, and a line for a person on stderr.
fn emit(
    emulator: &str,
    events: &[String],
    data: Option<&serde_json::Value>,
    assignments: &[Assignment],
) -> anyhow::Result<Outcome> {
    if let Some(outside) = assignments.iter().find(|a| a.path[0] != "data") {
        return Err(UsageError::new(format!(
            "--set {}: with --emulator only data.… can be set; the emulator builds the rest of \
             the envelope (event, a fresh timestamp)",
            escape_line(&outside.path.join("."))
        ))
        .into());
    }
    // A local Danube is an API like Danube's: the receivers' --cacert and
    // --insecure are not for it.
    let api = crate::commands::danube_api_at(emulator, &crate::http::Trust::default())
        .context("--emulator")?;
    let runtime = crate::commands::runtime()?;
    for event in events {
        let envelope = events::envelope(event, Utc::now(), data.cloned(), assignments)
            .map_err(|err| UsageError::new(err.to_string()))?;
        let mut envelope: serde_json::Value =
            serde_json::from_slice(&envelope).expect("an envelope is JSON");
        let data = envelope["data"].take();
        let made = runtime.block_on(api.emit_event(event, &data))?;
        let shown = escape_line(emulator);
        if made.is_empty() {
            eprintln!(
                "{event}: the emulator at {shown} has no active webhook subscribed to it; nothing \
                 was delivered (see `danube-hooks webhooks list --api-url {shown}`)"
            );
        } else {
            let list: Vec<String> = made
                .iter()
                .map(|d| format!("{} to {}", d.id, d.webhook_id))
                .collect();
            eprintln!(
                "{event}: the emulator at {shown} made {} deliver{}: {}",
                made.len(),
                if made.len() == 1 { "y" } else { "ies" },
                escape_line(&list.join(", "))
            );
        }
        crate::commands::out_line(&to_json_line(&serde_json::json!({
            "event": event,
            "emulator": emulator,
            "deliveries": made,
        })))?;
    }
    Ok(Outcome::Success)
}

/// A fresh `dlv_…` id: 64 random bits from the standard library's hasher
/// seed, enough to tell deliveries apart in a log.
fn delivery_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .unsigned_abs()
            .into(),
    );
    format!("dlv_{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_repeat_of_a_signature_the_receiver_saw_is_told() {
        // Nothing reached the receiver yet: whatever t, nothing repeats.
        assert_eq!(same_t_warning(false, None, 100), None);
        // Attempt 1 arrived at t=100; attempt 2 in the same second repeats it.
        let told = same_t_warning(false, Some((1, 100)), 100).unwrap();
        assert!(
            told.starts_with("signed with the same t as attempt 1, less than a second"),
            "{told}"
        );
        assert_eq!(same_t_warning(false, Some((1, 100)), 101), None);
        // --same-signature asked for it.
        assert_eq!(same_t_warning(true, Some((1, 100)), 100), None);
    }
}
