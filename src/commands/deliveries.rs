//! `deliveries`: Danube's delivery log for one webhook, joined with the
//! store (SPEC §11, `danube::reconcile`), as a table with each finding
//! under its row, or one JSON object per row with `--json`.
//!
//! Findings are information, not a verdict on anything the user asked to
//! check: the command exits 0 when it could show the log, findings or not;
//! when it could not, its error's class says the code (no webhook, no
//! credentials, a request Danube refused: 2; Danube or the network failing: 3).
//!
//! The store is read backwards through a `reconcile::Join`, which keeps
//! only what the rows show: memory and output follow `--limit` and
//! [`reconcile::UNKNOWN_ROWS`], not the store, whatever times Danube's log
//! claims.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};

use crate::cli::{DeliveriesArgs, UsageError};
use crate::commands::Outcome;
use crate::danube::api::Api;
use crate::danube::model::{DeliveryRecord, Webhook};
use crate::danube::reconcile::{self, Caps, Join, Joined, LocalRecord, Row};
use crate::danube::{credentials, saved_webhooks};
use crate::delivery::Delivery;
use crate::display::escape_line;
use crate::errors::wrap::Whole;
use crate::query::Query;
use crate::store::{self, StoreError};

pub(crate) mod redeliver;

/// Records are in id order, and ids are given when a record is written,
/// which can be a little after it arrived (a slow body): reading backwards
/// stops only once records are this much older than the window.
const ARRIVAL_SLACK_S: i64 = 120;
/// Records read when Danube's log gives no time to bound the window by.
const UNTIMED_RECORDS: usize = 1000;
/// How far back the store is read. Danube's log lists its newest
/// deliveries (100 at most), so any older than this are rare, and a time
/// in Danube's log, which the API chooses, must not make a read of the
/// whole store: deliveries Danube made before are shown, not judged.
const LOOK_BACK_DAYS: i64 = 30;

pub(crate) fn run(args: &DeliveriesArgs) -> anyhow::Result<Outcome> {
    if args.redeliver.redeliver {
        return redeliver::run(args);
    }
    redeliver::refuse_secret_without(&args.redeliver)?;
    let query = args
        .query
        .as_deref()
        .map(|text| crate::commands::inspect::parse_query(Some(text)))
        .transpose()?;
    let api = crate::commands::danube_api(&args.api)?;
    let webhook_id = if let Some(id) = &args.webhook_id {
        id.clone()
    } else {
        let all = saved_webhooks::load(&credentials::config_dir()?)?;
        default_webhook(&all, &saved_webhooks::Scope::of(&api))?
    };
    let runtime = crate::commands::runtime()?;
    let log = runtime.block_on(api.list_deliveries(&webhook_id, args.limit))?;
    let log_cut = log.len() >= usize::try_from(args.limit).unwrap_or(usize::MAX);
    let store_at = args.store.location()?;
    let webhook_created = if log.is_empty() {
        None
    } else {
        webhook_created(&runtime, &api, &webhook_id)
    };
    let joined = join_store(
        log,
        log_cut,
        webhook_created,
        &store_at,
        query.as_ref(),
        &mut |warning| {
            eprintln!("danube-hooks: warning: {warning}");
        },
    )?;
    let out = if args.json {
        if let Some(note) = left_out(&joined) {
            eprintln!("danube-hooks: {note}");
        }
        joined
            .rows
            .iter()
            .map(|row| crate::display::to_json_line(row) + "\n")
            .collect()
    } else {
        render(&webhook_id, &joined, &store_at)
    };
    crate::commands::out(&out)?;
    Ok(Outcome::Success)
}

/// Danube's log (as listed, `log_cut` when as long as asked for) joined
/// with the store at `store_path`, read backwards as far back as the log
/// needs, each warning on the way told to `warn`. Blocking: it reads the
/// store.
pub(crate) fn join_store(
    log: Vec<DeliveryRecord>,
    log_cut: bool,
    webhook_created: Option<DateTime<Utc>>,
    store_at: &store::Location,
    query: Option<&Query>,
    warn: &mut dyn FnMut(&str),
) -> anyhow::Result<Joined> {
    let read = !log.is_empty();
    let mut join = Join::new(
        log,
        log_cut,
        webhook_created,
        Some(Utc::now() - TimeDelta::days(LOOK_BACK_DAYS)),
        Caps::SHOWN,
    );
    // The ids of the requests `--query` matches: at most the window's.
    let mut matched = std::collections::HashSet::new();
    if read {
        let start = join.window();
        let offer = |delivery: &Delivery| {
            if query.is_some_and(|q| q.matches(delivery)) {
                matched.insert(delivery.id);
            }
            join.offer(LocalRecord::of(delivery));
        };
        read_window(store_at, start, offer, warn)?;
    }
    let mut joined = join.finish();
    if query.is_some() {
        joined
            .rows
            .retain(|row| row.local.iter().any(|a| matched.contains(&a.id)));
    }
    Ok(joined)
}

/// When Danube created `webhook_id`, so that requests from before are not
/// judged. Only a refinement: an API error is a warning and the join goes
/// on without it.
pub(super) fn webhook_created(
    runtime: &tokio::runtime::Runtime,
    api: &Api,
    webhook_id: &str,
) -> Option<DateTime<Utc>> {
    match runtime.block_on(api.find_webhook(webhook_id)) {
        Ok(webhook) => webhook.as_ref().and_then(Webhook::created),
        Err(err) => {
            eprintln!(
                "danube-hooks: warning: cannot read when webhook {} was created ({err}), so \
                 requests from before it are judged too",
                escape_line(webhook_id)
            );
            None
        }
    }
}

/// The webhook `listen --register` made in `scope` (the API and the
/// organization), else the only one saved there, else an error saying to
/// name one.
pub(super) fn default_webhook(
    all: &[saved_webhooks::SavedWebhook],
    scope: &saved_webhooks::Scope,
) -> Result<String, UsageError> {
    if let Some(registered) = saved_webhooks::registered(all, scope) {
        return Ok(registered.id.clone());
    }
    let saved: Vec<&str> = all
        .iter()
        .filter(|w| scope.holds(w))
        .map(|w| w.id.as_str())
        .collect();
    let place = match &scope.org_id {
        Some(org) => format!(
            "{} (organization {})",
            escape_line(&scope.api_url),
            escape_line(org)
        ),
        None => escape_line(&scope.api_url).into_owned(),
    };
    match saved.as_slice() {
        [only] => Ok((*only).to_owned()),
        [] => Err(UsageError::new(format!(
            "no webhook given, and none saved for {place}: pass WEBHOOK_ID (`danube-hooks \
             webhooks list` shows them), or make one with `listen --register`"
        ))),
        several => Err(UsageError::new(format!(
            "no webhook given, and {} are saved for {place} ({}): pass one as WEBHOOK_ID",
            several.len(),
            escape_line(&several.join(", "))
        ))),
    }
}

/// Offer the store's records received since `start` to `offer`, read
/// backwards from the end, one at a time; without a `start` (Danube's log
/// has no time we can read), the newest [`UNTIMED_RECORDS`]. No store yet
/// is no record, said to `warn`.
fn read_window(
    store_at: &store::Location,
    start: Option<DateTime<Utc>>,
    mut offer: impl FnMut(&Delivery),
    warn: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let stop = start.map(|start| start - TimeDelta::seconds(ARRIVAL_SLACK_S));
    let mut offered = 0;
    let read = store::each_backward::<Delivery>(store_at, |entry| match entry {
        store::Entry::Record(delivery) if stop.is_some_and(|stop| delivery.received_at < stop) => {
            ControlFlow::Break(())
        }
        store::Entry::Record(delivery) => {
            if start.is_none_or(|start| delivery.received_at >= start) {
                offer(&delivery);
                offered += 1;
            }
            if start.is_none() && offered >= UNTIMED_RECORDS {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        store::Entry::Skipped(skipped) => {
            warn(&format!("skipped {skipped}"));
            ControlFlow::Continue(())
        }
    });
    match read {
        Ok(()) => Ok(()),
        Err(StoreError::Missing { store }) => {
            warn(&format!(
                "no store at {}: nothing reached a listener with it, so \
                 every delivery shows as never arrived (pass --store PATH if it is elsewhere)",
                escape_line(&store.to_string())
            ));
            Ok(())
        }
        // The store's error tells its cause already.
        Err(err) => Err(Whole::new(err)).context("cannot read the store"),
    }
}

/// What the rows leave out, a sentence each: requests unknown to Danube
/// past the rows shown, and deliveries older than the look-back.
fn left_out(joined: &Joined) -> Option<String> {
    let mut said = Vec::new();
    if joined.unshown > 0 {
        said.push(format!(
            "{} more requests unknown to Danube are not shown: only the newest {} rows of them \
             are (`danube-hooks log` lists every request).",
            joined.unshown,
            reconcile::UNKNOWN_ROWS
        ));
    }
    if joined.unjudged > 0 {
        said.push(format!(
            "{} of Danube's deliveries were made more than {LOOK_BACK_DAYS} days ago, further \
             back than the store is read: they are listed, not judged.",
            joined.unjudged
        ));
    }
    (!said.is_empty()).then(|| said.join(" "))
}

/// The table, each finding on a line under its row, and a summary.
fn render(webhook_id: &str, joined: &Joined, store_at: &store::Location) -> String {
    let rows = joined.rows.as_slice();
    let mut out = String::new();
    if rows.iter().all(|row| row.danube.is_none()) {
        let _ = writeln!(
            out,
            "Danube lists no deliveries for webhook {}.",
            escape_line(webhook_id)
        );
        if rows.is_empty() {
            return out;
        }
    }
    let header = [
        "DANUBE ID",
        "EVENT",
        "STATUS",
        "TRIES",
        "ANSWER",
        "DELIVERED",
        "LOCAL",
        "VERDICTS",
    ]
    .map(str::to_owned);
    let mut cells = vec![header.to_vec()];
    cells.extend(rows.iter().map(cells_of));
    let lines = crate::commands::aligned(&cells);
    let mut lines = lines.into_iter();
    if let Some(header) = lines.next() {
        let _ = writeln!(out, "{header}");
    }
    for (row, line) in rows.iter().zip(lines) {
        let _ = writeln!(out, "{line}");
        for finding in &row.findings {
            let _ = writeln!(
                out,
                "  ! {}: {}",
                finding.kind.as_str(),
                escape_line(&finding.detail)
            );
        }
        if let Some(redelivery) = &row.redelivered {
            let _ = writeln!(out, "  + {}", redeliver::told(redelivery));
        }
    }
    let known = rows.iter().filter(|row| row.danube.is_some()).count();
    let unknown = rows.len() - known;
    let _ = writeln!(
        out,
        "{known} from Danube (webhook {}), {unknown} unknown to it, {}; local side from {}",
        escape_line(webhook_id),
        reconcile::findings_told(rows),
        escape_line(&store_at.to_string()),
    );
    if let Some(note) = left_out(joined) {
        let _ = writeln!(out, "{note}");
    }
    out
}

/// One row's cells, every text from Danube or the wire escaped.
fn cells_of(row: &Row) -> Vec<String> {
    let none = || "—".to_owned();
    let local = if row.local.is_empty() {
        "0".to_owned()
    } else {
        let answers: Vec<String> = row
            .local
            .iter()
            .map(|attempt| {
                attempt.status.map_or_else(
                    || escape_line(&attempt.action).into_owned(),
                    |s| s.to_string(),
                )
            })
            .collect();
        let more = if row.unlisted > 0 { ", …" } else { "" };
        format!(
            "{}: {}{more}",
            row.local.len() as u64 + row.unlisted,
            answers.join(", ")
        )
    };
    let verdicts: Vec<&str> = row.local.iter().map(|a| a.verdict.as_str()).collect();
    let verdicts = if verdicts.is_empty() {
        none()
    } else {
        verdicts.join(", ")
    };
    match &row.danube {
        Some(d) => vec![
            escape_line(&d.id).into_owned(),
            escape_line(&d.event_type).into_owned(),
            escape_line(d.status.as_str()).into_owned(),
            d.attempts.to_string(),
            d.response_status.map_or_else(none, |s| s.to_string()),
            d.delivered_at
                .as_deref()
                .map_or_else(none, |t| escape_line(t).into_owned()),
            local,
            verdicts,
        ],
        None => vec![
            none(),
            row.local
                .first()
                .and_then(|a| a.event.as_deref())
                .map_or_else(none, |e| escape_line(e).into_owned()),
            none(),
            none(),
            none(),
            none(),
            local,
            verdicts,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danube::model::DeliveryRecord;
    use crate::danube::reconcile::{Finding, FindingKind, LocalAttempt};
    use crate::danube::saved_webhooks::{Origin, SavedWebhook, Scope};
    use crate::signature::Verdict;

    fn saved(id: &str, api_url: &str, origin: Origin) -> SavedWebhook {
        SavedWebhook::for_test(id, api_url, "https://abc.ngrok.app/webhooks/danube", origin)
    }

    fn scope(api_url: &str, org_id: Option<&str>) -> Scope {
        Scope {
            api_url: api_url.into(),
            org_id: org_id.map(str::to_owned),
            by: None,
        }
    }

    #[test]
    fn the_default_webhook_is_the_registered_one_else_the_only_one() {
        let api = &scope("http://127.0.0.1:9", None);
        let (api_url, other) = ("http://127.0.0.1:9", "https://api.danubeai.com");
        let all = [
            saved("wh_create", api_url, Origin::Create),
            saved("wh_reg", api_url, Origin::Register),
            saved("wh_far", other, Origin::Register),
        ];
        assert_eq!(default_webhook(&all, api).unwrap(), "wh_reg");
        assert_eq!(default_webhook(&all[..1], api).unwrap(), "wh_create");
        let none = default_webhook(&all[2..], api).unwrap_err().to_string();
        assert!(
            none.contains("pass WEBHOOK_ID") && none.contains("webhooks list"),
            "{none}"
        );
        let two = [
            saved("wh_a", api_url, Origin::Create),
            saved("wh_b", api_url, Origin::Create),
        ];
        let several = default_webhook(&two, api).unwrap_err().to_string();
        assert!(
            several.contains("2 are saved") && several.contains("wh_a, wh_b"),
            "{several}"
        );
        // Another organization's webhooks are not this one's default.
        let in_b = scope(api_url, Some("org_b"));
        let none = default_webhook(&all, &in_b).unwrap_err().to_string();
        assert!(none.contains("(organization org_b)"), "{none}");
    }

    #[test]
    fn the_table_escapes_and_puts_findings_under_rows() {
        let record = DeliveryRecord {
            id: "dlv_\u{1b}[2J1".into(),
            webhook_id: "wh_1".into(),
            event_type: "workflow.completed".into(),
            payload: serde_json::Value::Null,
            status: "success".into(),
            response_status: Some(200),
            response_body: None,
            attempts: 3,
            delivered_at: Some("2026-11-30T16:00:01Z".into()),
            created_at: None,
        };
        let attempt = |id, status| LocalAttempt {
            id,
            attempt: u32::try_from(id).unwrap(),
            received_at: reconcile::parse_time("2026-11-30T16:00:00Z").unwrap(),
            verdict: Verdict::Valid,
            status,
            event: Some("workflow.completed".into()),
            action: if status.is_some() { "status" } else { "reset" }.into(),
            answered_after_ms: 1.0,
        };
        let rows = [
            Row {
                danube: Some(record),
                local: vec![attempt(1, None), attempt(2, Some(200))],
                findings: vec![Finding {
                    kind: FindingKind::MissingAttempts,
                    detail: "lost \u{202e}here".into(),
                }],
                unlisted: 0,
                redelivered: None,
            },
            Row {
                danube: None,
                local: vec![attempt(3, Some(200))],
                unlisted: 2,
                redelivered: None,
                findings: vec![],
            },
        ];
        let joined = |unshown, unjudged| Joined {
            rows: rows.to_vec(),
            unshown,
            unjudged,
        };
        let text = render(
            "wh_1",
            &joined(0, 0),
            &store::Location::File("/tmp/d.jsonl".into()),
        );
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("DANUBE ID"), "{text}");
        assert!(
            lines[1].contains(
                "success  3      200     2026-11-30T16:00:01Z  2: reset, 200  valid, valid"
            ),
            "{text}"
        );
        assert!(
            lines[2].starts_with("  ! missing_attempts: lost "),
            "{text}"
        );
        assert!(lines[3].starts_with("—  "), "{text}");
        assert!(lines[3].contains("  3: 200, …  "), "{text}");
        assert!(
            lines[4].starts_with("1 from Danube (webhook wh_1), 1 unknown to it, 1 finding;"),
            "{text}"
        );
        assert_eq!(lines.len(), 5, "nothing left out, nothing said: {text}");
        let text = render(
            "wh_1",
            &joined(4000, 1),
            &store::Location::File("/tmp/d.jsonl".into()),
        );
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with(
                "4000 more requests unknown to Danube are not shown: only the newest 100 rows"
            ) && last.contains("1 of Danube's deliveries were made more than 30 days ago"),
            "{text}"
        );
        let empty = Joined {
            rows: Vec::new(),
            unshown: 0,
            unjudged: 0,
        };
        assert_eq!(
            render("wh_1", &empty, &store::Location::File("x".into())),
            "Danube lists no deliveries for webhook wh_1.\n"
        );
    }
}
