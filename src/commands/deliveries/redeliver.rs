//! `deliveries --redeliver` and `listen --catch-up`: each delivery Danube
//! made that never reached the listener, or lost attempts, sent again from
//! Danube's log: its payload, signed anew with the webhook's secret, with
//! [`REDELIVERY_HEADER`] naming Danube's delivery id. The listener records
//! that id as `redelivery_of` (only under a valid signature), and the join
//! then counts the delivery as redelivered: a second run sends nothing.
//!
//! What to send is chosen from the join's rows ([`chosen`], pure). Each
//! is sent once, within Danube's deadline, oldest first, as Danube made
//! them. Danube's payloads are hostile bytes: the API client bounds the
//! whole answer, and only an event envelope of at most [`MAX_PAYLOAD`]
//! bytes, under an id a header can carry, is sent.

mod listener;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cli::{DeliveriesArgs, RedeliverArgs, SecretArgs, UsageError};
use crate::commands::{Outcome, unix_now};
use crate::danube::api::Api;
use crate::danube::model::DeliveryRecord;
use crate::danube::reconcile::{self, FindingKind, LocalAttempt, PayloadKey, Row};
use crate::danube::saved_webhooks::{self, SavedWebhook, Scope};
use crate::delivery::{self, REDELIVERY_HEADER};
use crate::display::escape_line;
use crate::http::{self, Attempt, Outgoing, Sender, Trust};
use crate::signature::Secret;

/// The largest payload sent again: the listener's default `--max-body`.
/// A larger one would arrive cut, match nothing, and be sent again by
/// every run.
const MAX_PAYLOAD: usize = 1024 * 1024;

/// One delivery of Danube's to send again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Redelivery {
    /// Checked by [`delivery::redelivery_id`]: a header value as it is.
    pub(crate) danube_id: String,
    pub(crate) event_type: String,
    /// Why: `never_arrived` or `missing_attempts`.
    pub(crate) kind: FindingKind,
    /// The payload as the body to send.
    pub(crate) body: Vec<u8>,
}

/// What a join's rows call for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Chosen {
    /// Oldest first, as Danube made them.
    pub(crate) send: Vec<Redelivery>,
    /// Deliveries that are missing but not sent, each with why (escaped).
    pub(crate) skipped: Vec<String>,
    /// Deliveries redelivered before: never sent twice.
    pub(crate) before: usize,
}

/// What to send again of `rows` (a join's, Danube's newest first): every
/// delivery of Danube's with requests missing (and none redelivered
/// before), made at `since` or later when given.
pub(crate) fn chosen(rows: Vec<Row>, since: Option<DateTime<Utc>>) -> Chosen {
    let mut chosen = Chosen::default();
    for row in rows.into_iter().rev() {
        let Some(record) = row.danube else { continue };
        if row.redelivered.is_some() {
            chosen.before += 1;
            continue;
        }
        let Some(kind) = row.findings.iter().map(|f| f.kind).find(|k| k.is_missing()) else {
            continue;
        };
        if since.is_some_and(|since| reconcile::record_time(&record).is_none_or(|t| t < since)) {
            continue;
        }
        match redelivery(&record, kind) {
            Ok(redelivery) => chosen.send.push(redelivery),
            Err(why) => chosen.skipped.push(format!(
                "skipped {} ({}): {why}",
                escape_line(&record.id),
                escape_line(&record.event_type)
            )),
        }
    }
    chosen
}

/// `record` as a delivery to send again, or why it cannot be.
fn redelivery(record: &DeliveryRecord, kind: FindingKind) -> Result<Redelivery, String> {
    if record.is_pending() {
        return Err("Danube is still trying it (pending); its own retries may yet arrive".into());
    }
    if delivery::redelivery_id(&record.id).is_none() {
        return Err(
            "its id is not one a header can carry (1 to 128 letters, digits, _ - . :)".into(),
        );
    }
    let body = payload_body(&record.payload).ok_or(
        "its payload in Danube's log is not an event envelope ({event, timestamp, data}), so \
         the listener could not tell it apart",
    )?;
    if body.len() > MAX_PAYLOAD {
        return Err(format!(
            "its payload is {} bytes, more than the {MAX_PAYLOAD} a listener takes by default",
            body.len()
        ));
    }
    Ok(Redelivery {
        danube_id: record.id.clone(),
        event_type: record.event_type.clone(),
        kind,
        body,
    })
}

/// Danube's `payload` as the body Danube sends: the envelope as JSON, or
/// the text as it is when Danube keeps the body as text; `None` when it
/// is no envelope, which nothing on the listener's side could match.
fn payload_body(payload: &Value) -> Option<Vec<u8>> {
    PayloadKey::of_danube(payload)?;
    match payload {
        Value::String(text) => Some(text.clone().into_bytes()),
        other => serde_json::to_vec(other).ok(),
    }
}

/// The request that redelivers `redelivery` to `url`: as Danube sends it,
/// signed with `secret` at `t`, and naming Danube's id.
pub(crate) fn request(redelivery: &Redelivery, url: &str, secret: &Secret, t: i64) -> Outgoing {
    let mut request = Outgoing::danube(url, Some(secret), t, redelivery.body.clone());
    request.headers.push((
        REDELIVERY_HEADER.to_owned(),
        redelivery.danube_id.clone().into_bytes(),
    ));
    request
}

/// Send each of `send` to `url`, one after the other, each once within
/// Danube's deadline and signed at the moment it goes; `each` hears how
/// it went, as a line. Danube's ids of those answered 2xx.
pub(crate) async fn send_all(
    sender: &Sender,
    url: &str,
    secret: &Secret,
    send: &[Redelivery],
    mut each: impl FnMut(String),
) -> Vec<String> {
    let mut answered = Vec::new();
    for redelivery in send {
        let attempt = sender
            .send(
                &request(redelivery, url, secret, unix_now()),
                crate::facts::DEADLINE,
            )
            .await;
        if attempt.succeeded() {
            answered.push(redelivery.danube_id.clone());
        }
        each(sent_line(redelivery, &attempt));
    }
    answered
}

fn sent_line(redelivery: &Redelivery, attempt: &Attempt) -> String {
    let verb = if attempt.succeeded() {
        "redelivered"
    } else {
        "failed to redeliver"
    };
    format!(
        "{verb} {} ({}, {}): {}",
        redelivery.danube_id,
        escape_line(&redelivery.event_type),
        redelivery.kind.as_str(),
        escape_line(&attempt.summary())
    )
}

/// The summary: what was sent, and what was not. `unrecorded`: answered
/// 2xx by the listener, which then recorded no redelivery of them
/// (counted in `failed`).
fn summary(chosen: &Chosen, failed: usize, url: &str, unrecorded: &[String]) -> String {
    let mut out = String::new();
    let sent = chosen.send.len();
    if sent == 0 {
        out.push_str("Nothing to redeliver");
    } else {
        let _ = write!(
            out,
            "{} of {sent} redelivered to {}",
            sent - failed,
            escape_line(url)
        );
    }
    if chosen.before > 0 {
        let _ = write!(
            out,
            "; {} redelivered before, not sent again",
            chosen.before
        );
    }
    if !chosen.skipped.is_empty() {
        let _ = write!(out, "; {} skipped", chosen.skipped.len());
    }
    if unrecorded.is_empty() {
        out.push('.');
    } else {
        // Danube's ids passed `delivery::redelivery_id`: safe to show.
        let _ = write!(
            out,
            "; {} answered but not recorded here: is the listener on {} the one writing this \
             store, verifying with this webhook's secret?",
            unrecorded.join(", "),
            escape_line(url)
        );
    }
    out
}

/// How the table tells a row's redelivery.
pub(crate) fn told(attempt: &LocalAttempt) -> String {
    let answer = attempt
        .status
        .map_or_else(|| "no status".to_owned(), |s| format!("answered {s}"));
    format!(
        "redelivered from Danube's log: #{} at {}, {answer}",
        attempt.id,
        delivery::format_time(&attempt.received_at)
    )
}

pub(crate) fn run(args: &DeliveriesArgs) -> anyhow::Result<Outcome> {
    let api = crate::commands::danube_api(&args.api)?;
    let scope = Scope::of(&api);
    let saved = saved_webhooks::load(&crate::danube::credentials::config_dir()?)?;
    let webhook_id = match &args.webhook_id {
        Some(id) => id.clone(),
        None => super::default_webhook(&saved, &scope)?,
    };
    // Before anything is asked or sent: nothing ever goes unsigned.
    let secret = secret_for(&args.redeliver.secret, &saved, &scope, &webhook_id)?;
    let store_at = args.store.location()?;
    let runtime = crate::commands::runtime()?;
    let (url, listener) = if let Some(to) = args.redeliver.to.as_deref() {
        http::check_url(to).map_err(|err| UsageError::new(format!("--to: {err}")))?;
        (to.to_owned(), None)
    } else {
        let listener = crate::commands::running::find(&store_at)?;
        let webhook = runtime.block_on(api.find_webhook(&webhook_id))?;
        let path = listener::webhook_path(webhook.as_ref(), &webhook_id)?;
        let url = http::url_on(listener.addr, &path)?.to_string();
        (url, Some(listener))
    };
    let log = runtime.block_on(api.list_deliveries(&webhook_id, args.limit))?;
    let log_cut = log.len() >= usize::try_from(args.limit).unwrap_or(usize::MAX);
    let joined = super::join_store(log, log_cut, None, &store_at, None, &mut |warning| {
        eprintln!("danube-hooks: warning: {warning}");
    })?;
    let since = args.redeliver.since.map(|age| Utc::now() - age);
    let chosen = chosen(joined.rows, since);
    for line in &chosen.skipped {
        crate::commands::out_line(line)?;
    }
    let sender = Sender::new(&Trust::default(), http::MAX_ANSWER_BODY);
    let answered = runtime.block_on(send_all(&sender, &url, &secret, &chosen.send, |line| {
        // Told as each is sent; a closed stdout stops the telling, not the
        // sending, and the summary's write then ends the command quietly.
        let _ = crate::commands::out_line(&line);
    }));
    // Sent to the store's listener, each must come back as its record: a
    // 2xx from anything else is no redelivery, and the next run would send
    // it again. A receiver of `--to` records nothing here.
    let unrecorded = match listener {
        Some(listener) if !answered.is_empty() => {
            listener::unrecorded(&store_at, listener.newest_id, &answered)?
        }
        _ => Vec::new(),
    };
    let failed = chosen.send.len() - answered.len() + unrecorded.len();
    crate::commands::out_line(&summary(&chosen, failed, &url, &unrecorded))?;
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// A secret given without `--redeliver`, the one use `deliveries` has for
/// it, is refused rather than ignored.
pub(crate) fn refuse_secret_without(args: &RedeliverArgs) -> Result<(), UsageError> {
    if args.secret.secrets.is_empty() && args.secret.secret_file.is_none() {
        Ok(())
    } else {
        Err(UsageError::new(
            "--secret and --secret-file sign redeliveries: pass --redeliver with them",
        ))
    }
}

/// The secret to sign with: `--secret` or `--secret-file` when given, else
/// the one saved for `webhook_id` in `scope`, else `DANUBE_WEBHOOK_SECRET`;
/// none is a usage error that says how to give it.
fn secret_for(
    flags: &SecretArgs,
    saved: &[SavedWebhook],
    scope: &Scope,
    webhook_id: &str,
) -> Result<Secret, UsageError> {
    let given = !flags.secrets.is_empty() || flags.secret_file.is_some();
    if !given && let Some(webhook) = saved.iter().find(|w| w.id == webhook_id && scope.holds(w)) {
        return Ok(webhook.signing_secret());
    }
    flags.secrets()?.into_iter().next().ok_or_else(|| {
        UsageError::new(format!(
            "the signing secret of webhook {} is not saved here (Danube shows a secret once, \
             when the webhook is made, and danube-hooks keeps it only for webhooks that `listen \
             --register` or `webhooks create --save` made): pass it with --secret whsec_… or \
             --secret-file PATH (or set DANUBE_WEBHOOK_SECRET); nothing was sent",
            escape_line(webhook_id)
        ))
    })
}

/// `listen --register --catch-up`'s work: everything it needs, taken
/// once the webhook is active again.
pub(crate) struct CatchUp {
    pub(crate) api: Api,
    pub(crate) webhook_id: String,
    pub(crate) secret: Secret,
    /// This listener, on the registered webhook's path.
    pub(crate) url: String,
    pub(crate) store_at: crate::store::Location,
    /// When this listener last stopped, near enough: its newest record.
    pub(crate) since: DateTime<Utc>,
    /// Whether to tell the progress on stderr.
    pub(crate) tell: bool,
    /// Under the dashboard: the store whose announcements it shows, to tell
    /// the progress on its status line.
    pub(crate) notices: Option<crate::store::DeliveryStore>,
}

impl CatchUp {
    /// Redeliver what Danube made since `since` that never arrived: run in
    /// a task of its own, so the listener never waits for it. Each step is
    /// told on stderr when `tell`, on the dashboard's status line when it
    /// shows, and nothing is said otherwise.
    pub(crate) async fn run(self) {
        let say = |line: &str| {
            if self.tell {
                eprintln!("danube-hooks: catch-up: {line}");
            }
            if let Some(store) = &self.notices {
                store.notice(format!("catch-up: {line}"));
            }
        };
        let limit = crate::facts::DELIVERIES_PAGE_MAX;
        let log = match self.api.list_deliveries(&self.webhook_id, limit).await {
            Ok(log) => log,
            Err(err) => {
                say(&format!("cannot read Danube's delivery log: {err}"));
                return;
            }
        };
        let log_cut = log.len() >= limit as usize;
        let (at, tell) = (self.store_at.clone(), self.tell);
        let joined = tokio::task::spawn_blocking(move || {
            // Never on the dashboard's screen: only where progress is told.
            let mut warn = |warning: &str| {
                if tell {
                    eprintln!("danube-hooks: catch-up: warning: {warning}");
                }
            };
            super::join_store(log, log_cut, None, &at, None, &mut warn)
        })
        .await;
        let joined = match joined {
            Ok(Ok(joined)) => joined,
            Ok(Err(err)) => {
                say(&format!("cannot read the store: {err:#}"));
                return;
            }
            Err(_) => return,
        };
        let chosen = chosen(joined.rows, Some(self.since));
        say(&format!(
            "{} of Danube's deliveries since {} never arrived",
            chosen.send.len(),
            delivery::format_time(&self.since)
        ));
        for line in &chosen.skipped {
            say(line);
        }
        let sender = Sender::new(&Trust::default(), http::MAX_ANSWER_BODY);
        let answered = send_all(&sender, &self.url, &self.secret, &chosen.send, |line| {
            say(&line);
        })
        .await;
        say(&summary(
            &chosen,
            chosen.send.len() - answered.len(),
            &self.url,
            &[],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danube::reconcile::Finding;
    use crate::signature::Verdict;
    use serde_json::json;

    fn record(id: &str, status: &str, payload: Value, created_at: &str) -> DeliveryRecord {
        DeliveryRecord {
            id: id.into(),
            webhook_id: "wh_1".into(),
            event_type: "workflow.failed".into(),
            payload,
            status: status.into(),
            response_status: Some(502),
            response_body: None,
            attempts: 3,
            delivered_at: None,
            created_at: Some(created_at.into()),
        }
    }

    fn envelope(n: u64) -> Value {
        json!({"event": "workflow.failed", "timestamp": "2026-11-30T16:00:00.000001Z", "data": {"n": n}})
    }

    fn row(record: DeliveryRecord, kind: Option<FindingKind>) -> Row {
        Row {
            danube: Some(record),
            local: Vec::new(),
            unlisted: 0,
            redelivered: None,
            findings: kind
                .map(|kind| Finding {
                    kind,
                    detail: String::new(),
                })
                .into_iter()
                .collect(),
        }
    }

    const T1: &str = "2026-11-30T16:00:00Z";
    const T2: &str = "2026-11-30T17:00:00Z";

    #[test]
    fn only_what_is_missing_is_sent_oldest_first_and_never_twice() {
        let mut before = row(
            record("dlv_before", "failed", envelope(4), T1),
            Some(FindingKind::NeverArrived),
        );
        before.findings.clear();
        before.redelivered = Some(LocalAttempt {
            id: 9,
            attempt: 1,
            received_at: reconcile::parse_time(T2).unwrap(),
            verdict: Verdict::Valid,
            status: Some(200),
            event: None,
            action: "status".into(),
            answered_after_ms: 1.0,
        });
        // Danube's order: newest first.
        let rows = vec![
            row(
                record("dlv_missing", "success", envelope(3), T2),
                Some(FindingKind::MissingAttempts),
            ),
            row(
                record("dlv_differs", "failed", envelope(2), T2),
                Some(FindingKind::AnswerDiffers),
            ),
            row(
                record(
                    "dlv_never",
                    "failed",
                    Value::String(envelope(1).to_string()),
                    T1,
                ),
                Some(FindingKind::NeverArrived),
            ),
            before,
        ];
        let chosen = chosen(rows.clone(), None);
        let ids: Vec<&str> = chosen.send.iter().map(|r| r.danube_id.as_str()).collect();
        assert_eq!(ids, ["dlv_never", "dlv_missing"]);
        assert_eq!(chosen.before, 1);
        // Danube's text is sent as it is; an object as its JSON.
        assert_eq!(chosen.send[0].body, envelope(1).to_string().into_bytes());
        let sent: Value = serde_json::from_slice(&chosen.send[1].body).unwrap();
        assert_eq!(sent, envelope(3));
        // --since leaves out what Danube made before.
        let since = super::chosen(rows, reconcile::parse_time("2026-11-30T16:30:00Z"));
        let ids: Vec<&str> = since.send.iter().map(|r| r.danube_id.as_str()).collect();
        assert_eq!(ids, ["dlv_missing"]);
    }

    #[test]
    fn what_cannot_be_sent_is_skipped_and_said() {
        let never = Some(FindingKind::NeverArrived);
        let rows = vec![
            row(record("dlv_pending", "pending", envelope(1), T1), never),
            row(record("dlv_\u{1b}[2J", "failed", envelope(2), T1), never),
            row(record("dlv_text", "failed", json!("ping"), T1), never),
            row(
                record(
                    "dlv_big",
                    "failed",
                    json!({"event": "x", "timestamp": T1, "data": "a".repeat(MAX_PAYLOAD)}),
                    T1,
                ),
                never,
            ),
        ];
        let chosen = chosen(rows, None);
        assert!(chosen.send.is_empty());
        let said = chosen.skipped.join("\n");
        for expected in [
            "dlv_big (workflow.failed): its payload is 1048",
            "dlv_text (workflow.failed): its payload in Danube's log is not an event envelope",
            "(workflow.failed): its id is not one a header can carry",
            "dlv_pending (workflow.failed): Danube is still trying it",
        ] {
            assert!(said.contains(expected), "{expected}: {said}");
        }
        assert!(!said.contains('\u{1b}'), "{said:?}");
    }

    #[test]
    fn the_request_is_signed_as_danube_signs_and_names_the_delivery() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let redelivery = Redelivery {
            danube_id: "dlv_1".into(),
            event_type: "workflow.failed".into(),
            kind: FindingKind::NeverArrived,
            body: envelope(1).to_string().into_bytes(),
        };
        let request = request(&redelivery, "http://127.0.0.1:9/hook", &secret, 100);
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header(crate::signature::HEADER_NAME),
            Some(crate::signature::sign(&secret, 100, &redelivery.body).into_bytes())
        );
        assert_eq!(header(REDELIVERY_HEADER), Some(b"dlv_1".to_vec()));
        assert_eq!(request.body, redelivery.body);
    }

    #[test]
    fn an_explicit_secret_wins_and_none_says_how_to_give_one() {
        let api_url = "http://127.0.0.1:9";
        let saved = [SavedWebhook::for_test(
            "wh_1",
            api_url,
            "https://abc.ngrok.app/webhooks/danube",
            saved_webhooks::Origin::Register,
        )];
        let scope = Scope {
            api_url: api_url.into(),
            org_id: None,
            by: None,
        };
        let flags = |secrets: &[&str]| SecretArgs {
            secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
            secret_file: None,
        };
        let from_saved = secret_for(&flags(&[]), &saved, &scope, "wh_1").unwrap();
        assert_eq!(from_saved.fingerprint(), saved[0].fingerprint());
        let given = secret_for(
            &flags(&["whsec_given_for_this_webhook_0000"]),
            &saved,
            &scope,
            "wh_1",
        )
        .unwrap();
        assert_eq!(given.fingerprint(), "whsec_…0000");
        // Not saved, and no flag: the environment is the last resort.
        if std::env::var_os(crate::cli::SECRET_ENV).is_none() {
            let none = secret_for(&flags(&[]), &saved, &scope, "wh_other")
                .unwrap_err()
                .to_string();
            assert!(
                none.contains("wh_other")
                    && none.contains("--secret whsec_…")
                    && none.contains("nothing was sent"),
                "{none}"
            );
        }
    }
}
