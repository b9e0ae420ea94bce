//! Danube's delivery log joined with the requests that reached the listener
//! (SPEC §11), and what does not add up between them. Pure: no I/O, no
//! clock, nothing async; `deliveries` and the dashboard feed it and show
//! its rows.
//!
//! No documented header carries Danube's delivery id, so the join is by
//! payload: the same `event`, the same envelope `timestamp` and equal
//! `data` (JSON equality: key order and spacing do not count). A body that
//! is not such a JSON envelope matches nothing. One Danube delivery
//! accounts for at most as many requests as it made attempts (at most 3);
//! a copy beyond them is a replay, and is reported as such.
//!
//! The join is fed one request at a time ([`Join::offer`]) and keeps only
//! what its rows show: the requests that match Danube's deliveries (at
//! most as many as they made attempts), and the newest requests Danube
//! does not know, up to a cap ([`Caps`]); the rest are counted. A store
//! of any size is read through it in bounded memory.

mod row;
mod unknown;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};

use self::row::plural;
use super::model::{DeliveryRecord, DeliveryStatus};
use crate::delivery::format_duration_ms;
use crate::facts;

// What the join reads and shows, named from here by its callers.
pub(crate) use self::row::Row;
pub(crate) use self::row::{
    Caps, Finding, FindingKind, LocalAttempt, LocalRecord, Payload, PayloadKey, UNKNOWN_ROWS,
};
/// Danube's times are read as its model writes them; the join and the
/// dashboard, which shows the join's rows, read them through here.
pub(crate) use super::model::parse_time;

/// [`facts::ATTEMPTS`] as a count of requests.
const MAX_ATTEMPTS: usize = facts::ATTEMPTS as usize;
/// How far before Danube's oldest listed delivery local requests are still
/// judged: the two clocks differ a little, and an attempt can be received
/// just before Danube writes `created_at` down.
pub(crate) const WINDOW_MARGIN_S: i64 = 60;
/// How many requests `record`'s delivery can account for: its attempts, or
/// up to [`MAX_ATTEMPTS`] while it is pending (its count may lag).
fn capacity(record: &DeliveryRecord) -> usize {
    if record.is_pending() {
        MAX_ATTEMPTS
    } else {
        usize::try_from(record.attempts)
            .unwrap_or(MAX_ATTEMPTS)
            .clamp(1, MAX_ATTEMPTS)
    }
}

/// When local requests start to be judged against `danube`: its oldest
/// `created_at` (or, for a record without one, its envelope's
/// `timestamp`) less [`WINDOW_MARGIN_S`], but never before
/// `webhook_created`, the webhook's own `created_at`: a request that
/// arrived before the webhook existed cannot be one of its deliveries.
/// That bound gets no margin, since nothing of the webhook's is sent
/// before it exists, and a margin would judge the requests just before,
/// which are exactly what it keeps out. `None` when no record has a
/// readable time (then nothing is called unknown).
pub(crate) fn window_start(
    danube: &[DeliveryRecord],
    webhook_created: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let start = danube
        .iter()
        .filter_map(record_time)
        .min()
        .map(|oldest| oldest - TimeDelta::seconds(WINDOW_MARGIN_S))?;
    Some(webhook_created.map_or(start, |created| start.max(to_store_precision(created))))
}

/// When Danube made `record`: its `created_at`, else its envelope's
/// `timestamp`; `None` when neither reads as a time.
pub(crate) fn record_time(record: &DeliveryRecord) -> Option<DateTime<Utc>> {
    record
        .created_at
        .as_deref()
        .and_then(parse_time)
        .or_else(|| {
            record
                .payload
                .get("timestamp")?
                .as_str()
                .and_then(parse_time)
        })
}

/// Whether a request received at `received_at` arrived before the webhook
/// created at `webhook_created` existed, so is none of its deliveries.
pub(crate) fn arrived_before(received_at: DateTime<Utc>, webhook_created: DateTime<Utc>) -> bool {
    received_at < to_store_precision(webhook_created)
}

/// `time` to the millisecond, as the store keeps a request's arrival:
/// Danube's microseconds would put a request that arrived in the same
/// millisecond before a time it came after.
fn to_store_precision(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(3)
}

/// Join Danube's log (`danube`, newest first, as listed) with the local
/// requests: one row per Danube delivery in Danube's order, then one row per
/// group of requests in the window that match none, newest first.
/// `log_cut` says the log was as long as the limit asked for, so older
/// deliveries exist that it does not show; `webhook_created` is when the
/// webhook was created, if known ([`window_start`]). For requests held in
/// memory already; a store is read through a [`Join`].
pub(crate) fn reconcile(
    danube: Vec<DeliveryRecord>,
    local: impl IntoIterator<Item = LocalRecord>,
    log_cut: bool,
    webhook_created: Option<DateTime<Utc>>,
) -> Vec<Row> {
    let mut local: Vec<LocalRecord> = local.into_iter().collect();
    local.sort_unstable_by_key(|record| Reverse(record.attempt.id));
    let mut join = Join::new(danube, log_cut, webhook_created, None, Caps::ALL);
    for record in local {
        join.offer(record);
    }
    join.finish().rows
}

/// What a [`Join`] found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Joined {
    /// As [`reconcile`] returns them.
    pub(crate) rows: Vec<Row>,
    /// Requests unknown to Danube in no row, past [`Caps::unknown_rows`].
    pub(crate) unshown: u64,
    /// Danube's deliveries from before the look-back: the store was not
    /// read that far, so nothing is said of them.
    pub(crate) unjudged: usize,
}

/// The join of [`reconcile`], fed one request at a time and keeping only
/// what its rows show, so that a store of any size can be read through it.
#[derive(Debug)]
pub(crate) struct Join {
    danube: Vec<DeliveryRecord>,
    keys: Vec<Option<PayloadKey>>,
    window: Option<DateTime<Utc>>,
    /// Deliveries Danube made before this are not judged.
    look_back: Option<DateTime<Utc>>,
    log_cut: bool,
    claims: HashMap<PayloadKey, Claim>,
    unknown: unknown::Strays,
    /// Danube's deliveries by id, for the requests that name one as
    /// redelivered; and those requests, the first of each (the lowest id).
    by_id: HashMap<String, usize>,
    redelivered: HashMap<usize, LocalAttempt>,
}

/// One payload of Danube's log: its deliveries, and the requests that
/// carry it.
#[derive(Debug)]
struct Claim {
    /// Oldest first: of two deliveries with the same payload, the older
    /// one's attempts arrived first.
    deliveries: Vec<usize>,
    /// Requests those deliveries account for together.
    capacity: usize,
    /// The oldest requests offered that carry the payload, at most
    /// `capacity`, the newest on top: an older one pushes it out, to be a
    /// copy beyond Danube's attempts.
    kept: BinaryHeap<ById>,
}

/// A request ordered by its id alone.
#[derive(Debug)]
struct ById(LocalAttempt);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

impl Join {
    /// A join of `danube` (as for [`reconcile`]) that judges none of
    /// Danube's deliveries made before `look_back`, nor requests that
    /// arrived more than [`WINDOW_MARGIN_S`] before it, and keeps of the
    /// requests unknown to Danube what `caps` says.
    pub(crate) fn new(
        danube: Vec<DeliveryRecord>,
        log_cut: bool,
        webhook_created: Option<DateTime<Utc>>,
        look_back: Option<DateTime<Utc>>,
        caps: Caps,
    ) -> Self {
        let margin = TimeDelta::seconds(WINDOW_MARGIN_S);
        let window = window_start(&danube, webhook_created)
            .map(|start| look_back.map_or(start, |cut| start.max(cut - margin)));
        let keys: Vec<Option<PayloadKey>> = danube
            .iter()
            .map(|d| PayloadKey::of_danube(&d.payload))
            .collect();
        let mut claims: HashMap<PayloadKey, Claim> = HashMap::new();
        for (index, key) in keys.iter().enumerate().rev() {
            if let Some(key) = key {
                let claim = claims.entry(*key).or_insert_with(|| Claim {
                    deliveries: Vec::new(),
                    capacity: 0,
                    kept: BinaryHeap::new(),
                });
                claim.deliveries.push(index);
                claim.capacity += capacity(&danube[index]);
            }
        }
        let mut by_id = HashMap::new();
        for (index, record) in danube.iter().enumerate() {
            by_id.entry(record.id.clone()).or_insert(index);
        }
        Self {
            danube,
            keys,
            window,
            look_back,
            log_cut,
            claims,
            unknown: unknown::Strays::new(caps),
            by_id,
            redelivered: HashMap::new(),
        }
    }

    /// From when requests are judged: the store need not be read further
    /// back. `None` when Danube's log has no time to bound it by.
    pub(crate) fn window(&self) -> Option<DateTime<Utc>> {
        self.window
    }

    /// Take one request into the join. Offered newest first (as the store
    /// is read backwards), the rows unknown to Danube kept are the newest;
    /// the matches are the same in any order.
    pub(crate) fn offer(&mut self, mut record: LocalRecord) {
        if let Some(id) = record.redelivery_of.take() {
            match self.by_id.get(&id) {
                // Counted as the redelivery only with the payload it names.
                Some(&index) if self.keys[index].map(Payload::Envelope) == Some(record.payload) => {
                    let kept = self
                        .redelivered
                        .entry(index)
                        .or_insert(record.attempt.clone());
                    if record.attempt.id < kept.id {
                        *kept = record.attempt;
                    }
                    return;
                }
                Some(_) => {}
                // From Danube's log, of a delivery older than the log lists:
                // no stranger's request, so never unknown to Danube.
                None => return,
            }
        }
        let pushed_out = match record.payload {
            Payload::Unread => return,
            Payload::Envelope(key) => match self.claims.get_mut(&key) {
                Some(claim) => {
                    claim.kept.push(ById(record.attempt));
                    if claim.kept.len() <= claim.capacity {
                        return;
                    }
                    let ById(newest) = claim.kept.pop().expect("over capacity");
                    (newest, claim.deliveries.last().copied())
                }
                None => (record.attempt, None),
            },
            Payload::NotEnvelope => (record.attempt, None),
        };
        let (attempt, copy_of) = pushed_out;
        if self
            .window
            .is_some_and(|start| attempt.received_at >= start)
        {
            self.unknown.add(attempt, record.payload, copy_of);
        }
    }

    /// The rows, and what was left out of them.
    pub(crate) fn finish(self) -> Joined {
        let mut matched: Vec<Vec<LocalAttempt>> = vec![Vec::new(); self.danube.len()];
        for claim in self.claims.into_values() {
            let mut kept = claim.kept.into_sorted_vec().into_iter();
            for index in claim.deliveries {
                let capacity = capacity(&self.danube[index]);
                matched[index].extend(kept.by_ref().take(capacity).map(|ById(a)| a));
            }
        }
        let look_back = self.look_back;
        let judged = move |record: &DeliveryRecord| {
            look_back.is_none_or(|cut| record_time(record).is_none_or(|made| made >= cut))
        };
        let unjudged = self.danube.iter().filter(|d| !judged(d)).count();
        let (mut unknown_rows, unshown) = self.unknown.finish(&self.danube, self.log_cut);
        let mut redelivered = self.redelivered;
        let mut rows: Vec<Row> = self
            .danube
            .into_iter()
            .zip(matched)
            .zip(&self.keys)
            .enumerate()
            .map(|(index, ((record, local), key))| {
                let redelivered = redelivered.remove(&index);
                let mut findings = if judged(&record) {
                    findings_of(&record, key.is_some(), &local)
                } else {
                    Vec::new()
                };
                if redelivered.is_some() {
                    // What never arrived has arrived now, from Danube's log.
                    findings.retain(|f| !f.kind.is_missing());
                }
                Row {
                    findings,
                    danube: Some(record),
                    local,
                    unlisted: 0,
                    redelivered,
                }
            })
            .collect();
        rows.append(&mut unknown_rows);
        Joined {
            rows,
            unshown,
            unjudged,
        }
    }
}

/// What does not add up about one Danube delivery and its matches.
fn findings_of(record: &DeliveryRecord, envelope: bool, local: &[LocalAttempt]) -> Vec<Finding> {
    let attempts = usize::try_from(record.attempts).unwrap_or(usize::MAX);
    let finding = |kind, detail: String| vec![Finding { kind, detail }];
    if attempts == 0 && local.is_empty() {
        // Not tried yet: nothing can have arrived.
        return Vec::new();
    }
    if !envelope {
        return finding(
            FindingKind::NeverArrived,
            "Danube's payload for this delivery is not an event envelope ({event, timestamp, \
             data}), so no request can be matched to it; compare it by hand with \
             `danube-hooks log`."
                .to_owned(),
        );
    }
    if local.is_empty() {
        let detail = if record.status == DeliveryStatus::Success {
            format!(
                "Danube recorded a success{} but nothing matching reached this listener: the \
                 webhook's URL points at another receiver, or this store does not hold that \
                 time; check the URL with `danube-hooks webhooks list`.",
                record
                    .response_status
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "None of Danube's {} reached this listener: the tunnel was down or points \
                 elsewhere, or the listener was not running; check the tunnel and the webhook's \
                 URL (`danube-hooks webhooks list`).",
                plural(attempts, "attempt")
            )
        };
        return finding(FindingKind::NeverArrived, detail);
    }
    if local.len() < attempts {
        return finding(
            FindingKind::MissingAttempts,
            format!(
                "Danube made {} but {} reached this listener: the others were lost on the way \
                 (the tunnel's gateway answered them) or the listener was down then; the \
                 tunnel's own log shows them.",
                plural(attempts, "attempt"),
                local.len()
            ),
        );
    }
    let last = local.last().expect("not empty");
    if local.len() == attempts && record.response_status != last.status {
        return finding(
            FindingKind::AnswerDiffers,
            answer_differs(record.response_status, last),
        );
    }
    Vec::new()
}

fn answer_differs(danube: Option<u16>, last: &LocalAttempt) -> String {
    let ours = match last.status {
        Some(status) => format!("answered {status}"),
        None => format!("sent no status ({})", last.action),
    };
    let after = format_duration_ms(last.answered_after_ms);
    match (danube, last.status) {
        (None, Some(_)) if last.answered_after_ms >= facts::DEADLINE.as_secs_f64() * 1000.0 => {
            let deadline = facts::DEADLINE.as_secs();
            format!(
                "Danube recorded no response, but the listener {ours} after {after}, past Danube's \
                 {deadline} s deadline, when Danube had given up: answer within {deadline} s \
                 (acknowledge first, work afterwards)."
            )
        }
        (None, _) => format!(
            "Danube recorded no response, but the listener {ours} after {after}: the answer was \
             lost on the way back (look at the tunnel's log), or came too late by Danube's clock."
        ),
        (Some(status), None) | (Some(status @ 502..=504), Some(_)) => format!(
            "Danube recorded {status}, but the listener {ours}: the tunnel's gateway answered \
             in its place (it lost the connection to the listener, or gave up waiting); look at \
             the tunnel's log."
        ),
        (Some(status), Some(_)) => format!(
            "Danube recorded {status}, but the listener {ours}: something between them (the \
             tunnel or a proxy) changed the answer; look at its log."
        ),
    }
}

/// How many findings `rows` hold, told: `1 finding`, `3 findings`.
pub(crate) fn findings_told(rows: &[Row]) -> String {
    plural(rows.iter().map(|row| row.findings.len()).sum(), "finding")
}

#[cfg(test)]
mod tests {
    use super::row::ROW_REQUESTS;
    use super::*;
    use crate::signature::Verdict;
    use crate::test_support::sample;
    use serde_json::{Value, json};

    const T0: &str = "2026-11-30T16:00:00.000000Z";

    fn envelope(event: &str, timestamp: &str, n: u64) -> Value {
        json!({"event": event, "timestamp": timestamp, "data": {"tool_id": "abc", "n": n}})
    }

    fn danube(
        id: &str,
        payload: Value,
        status: &str,
        attempts: u32,
        answer: Option<u16>,
    ) -> DeliveryRecord {
        DeliveryRecord {
            id: id.into(),
            webhook_id: "wh_1".into(),
            event_type: payload["event"]
                .as_str()
                .unwrap_or("workflow.completed")
                .into(),
            payload,
            status: status.into(),
            response_status: answer,
            response_body: None,
            attempts,
            delivered_at: None,
            created_at: Some("2026-11-30T16:00:00Z".into()),
        }
    }

    /// A local request with `body`, received `secs` after 16:00:00.
    fn local(id: u64, body: &[u8], secs: i64, status: Option<u16>) -> LocalRecord {
        let mut delivery = sample(id, body);
        delivery.received_at =
            parse_time("2026-11-30T16:00:00Z").unwrap() + TimeDelta::seconds(secs);
        delivery.response.status = status;
        LocalRecord::of(&delivery)
    }

    fn body(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    fn kinds(row: &Row) -> Vec<FindingKind> {
        row.findings.iter().map(|f| f.kind).collect()
    }

    fn ids(row: &Row) -> Vec<u64> {
        row.local.iter().map(|l| l.id).collect()
    }

    #[test]
    fn retries_match_one_delivery_whatever_the_key_order() {
        let payload = envelope("workflow.completed", T0, 1);
        // The same payload with its keys in another order and other spacing.
        let reordered = br#"{ "data": {"n": 1, "tool_id": "abc"}, "timestamp": "2026-11-30T16:00:00.000000Z", "event": "workflow.completed" }"#;
        let rows = reconcile(
            vec![danube("dlv_1", payload.clone(), "success", 2, Some(200))],
            [
                local(7, &body(&payload), 1, Some(500)),
                local(8, reordered, 3, Some(200)),
            ],
            false,
            None,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(ids(&rows[0]), [7, 8]);
        assert!(rows[0].findings.is_empty(), "{:?}", rows[0].findings);
    }

    #[test]
    fn the_same_event_at_two_timestamps_is_two_deliveries() {
        let first = envelope("tool.execution.completed", "2026-11-30T16:00:00.000001Z", 1);
        let second = envelope("tool.execution.completed", "2026-11-30T16:00:05.000001Z", 1);
        let rows = reconcile(
            vec![
                danube("dlv_2", second.clone(), "success", 1, Some(200)),
                danube("dlv_1", first.clone(), "success", 1, Some(200)),
            ],
            [
                local(1, &body(&first), 1, Some(200)),
                local(2, &body(&second), 6, Some(200)),
            ],
            false,
            None,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].danube.as_ref().unwrap().id, "dlv_2");
        assert_eq!(ids(&rows[0]), [2]);
        assert_eq!(ids(&rows[1]), [1]);
        assert!(rows.iter().all(|r| r.findings.is_empty()));
    }

    #[test]
    fn data_must_be_equal_not_just_alike() {
        let sent = envelope("workflow.completed", T0, 1);
        let other = envelope("workflow.completed", T0, 2);
        let as_float = json!({"event": "workflow.completed", "timestamp": T0, "data": {"tool_id": "abc", "n": 1.5}});
        let rows = reconcile(
            vec![danube("dlv_1", sent, "failed", 1, Some(500))],
            [
                local(1, &body(&other), 1, Some(500)),
                local(2, &body(&as_float), 2, Some(500)),
            ],
            false,
            None,
        );
        assert_eq!(kinds(&rows[0]), [FindingKind::NeverArrived]);
        assert_eq!(rows.len(), 3, "both count as unknown");
    }

    #[test]
    fn never_arrived_says_why_by_status() {
        let rows = reconcile(
            vec![
                danube(
                    "dlv_2",
                    envelope("workflow.failed", T0, 2),
                    "failed",
                    3,
                    Some(502),
                ),
                danube(
                    "dlv_1",
                    envelope("workflow.failed", T0, 1),
                    "success",
                    1,
                    Some(200),
                ),
                danube(
                    "dlv_0",
                    envelope("workflow.failed", T0, 0),
                    "pending",
                    0,
                    None,
                ),
            ],
            [],
            false,
            None,
        );
        assert_eq!(kinds(&rows[0]), [FindingKind::NeverArrived]);
        assert!(
            rows[0].findings[0]
                .detail
                .contains("None of Danube's 3 attempts"),
            "{:?}",
            rows[0]
        );
        assert!(
            rows[1].findings[0].detail.contains("another receiver"),
            "{:?}",
            rows[1]
        );
        assert!(rows[2].findings.is_empty(), "not tried yet: {:?}", rows[2]);
    }

    #[test]
    fn missing_attempts_when_danube_counts_more() {
        let payload = envelope("workflow.completed", T0, 1);
        let rows = reconcile(
            vec![danube("dlv_1", payload.clone(), "success", 3, Some(200))],
            [
                local(1, &body(&payload), 1, Some(500)),
                local(2, &body(&payload), 20, Some(200)),
            ],
            false,
            None,
        );
        assert_eq!(kinds(&rows[0]), [FindingKind::MissingAttempts]);
        assert!(
            rows[0].findings[0].detail.contains("3 attempts but 2"),
            "{:?}",
            rows[0]
        );
    }

    #[test]
    fn answer_differs_for_a_gateway_and_for_the_deadline() {
        let gateway = envelope("workflow.completed", T0, 1);
        let late = envelope("workflow.completed", T0, 2);
        let same = envelope("workflow.completed", T0, 3);
        let mut slow = local(2, &body(&late), 2, Some(200));
        slow.attempt.answered_after_ms = 12_000.0;
        let rows = reconcile(
            vec![
                danube("dlv_3", same.clone(), "success", 1, Some(200)),
                danube("dlv_2", late, "failed", 1, None),
                danube("dlv_1", gateway.clone(), "failed", 1, Some(502)),
            ],
            [
                local(1, &body(&gateway), 1, Some(200)),
                slow,
                local(3, &body(&same), 3, Some(200)),
            ],
            false,
            None,
        );
        assert!(rows[0].findings.is_empty());
        assert_eq!(kinds(&rows[1]), [FindingKind::AnswerDiffers]);
        assert!(
            rows[1].findings[0]
                .detail
                .contains("12.0s, past Danube's 10 s deadline"),
            "{:?}",
            rows[1]
        );
        assert_eq!(kinds(&rows[2]), [FindingKind::AnswerDiffers]);
        assert!(
            rows[2].findings[0]
                .detail
                .contains("recorded 502, but the listener answered 200: the tunnel's gateway"),
            "{:?}",
            rows[2]
        );
    }

    #[test]
    fn unknown_to_danube_only_in_the_window() {
        let known = envelope("workflow.completed", T0, 1);
        let forged = envelope("workflow.completed", T0, 9);
        let mut forged_record = local(3, &body(&forged), 5, Some(200));
        forged_record.attempt.verdict = Verdict::Mismatch;
        let rows = reconcile(
            vec![danube("dlv_1", known.clone(), "success", 1, Some(200))],
            [
                // Long before Danube's oldest delivery: not judged.
                local(1, &body(&forged), -3600, Some(200)),
                local(2, &body(&known), 1, Some(200)),
                forged_record,
                // Its retry: the same row.
                local(4, &body(&forged), 9, Some(200)),
                // Just inside the margin.
                local(5, b"not json", -(WINDOW_MARGIN_S - 1), Some(200)),
            ],
            true,
            None,
        );
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows[0].findings.is_empty());
        assert_eq!(rows[1].danube, None);
        assert_eq!(ids(&rows[1]), [3, 4], "newest first");
        assert_eq!(kinds(&rows[1]), [FindingKind::UnknownToDanube]);
        let detail = &rows[1].findings[0].detail;
        assert!(
            detail.contains("mismatch") && detail.contains("raise --limit"),
            "{detail}"
        );
        assert_eq!(ids(&rows[2]), [5]);
        assert!(
            rows[2].findings[0]
                .detail
                .contains("no Danube event envelope")
        );
    }

    #[test]
    fn requests_from_before_the_webhook_existed_are_not_judged() {
        let known = envelope("workflow.completed", T0, 1);
        let earlier = envelope("workflow.completed", T0, 2);
        // The webhook was made 10 s before its delivery, well inside the
        // margin that Danube's delivery times leave.
        let created = parse_time("2026-11-30T15:59:50Z");
        let rows = reconcile(
            vec![danube("dlv_1", known.clone(), "success", 1, Some(200))],
            [
                // Before the webhook: another webhook's, or a test.
                local(1, &body(&earlier), -30, Some(200)),
                local(2, b"not json", -11, Some(200)),
                local(3, &body(&known), 1, Some(200)),
                // Once it existed, still judged.
                local(4, b"not json", -10, Some(200)),
                local(5, &body(&earlier), 2, Some(200)),
            ],
            false,
            created,
        );
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(ids(&rows[0]), [3]);
        assert!(rows[0].findings.is_empty());
        assert_eq!(ids(&rows[1]), [5]);
        assert_eq!(ids(&rows[2]), [4]);
        assert!(
            rows[1..]
                .iter()
                .all(|row| kinds(row) == [FindingKind::UnknownToDanube])
        );
        // Without the webhook's time, the margin alone bounds the window.
        let rows = reconcile(
            vec![danube("dlv_1", known.clone(), "success", 1, Some(200))],
            [local(1, &body(&earlier), -30, Some(200))],
            false,
            None,
        );
        assert_eq!(rows.len(), 2, "{rows:#?}");
        // The store keeps milliseconds: a request in the webhook's own
        // millisecond is not before it.
        let created = parse_time("2026-11-30T15:59:50.000900Z").unwrap();
        let same_ms = parse_time("2026-11-30T15:59:50.000Z").unwrap();
        assert!(!arrived_before(same_ms, created));
        assert!(arrived_before(
            same_ms - TimeDelta::milliseconds(1),
            created
        ));
        assert_eq!(window_start(&records_at(T0), Some(created)), Some(same_ms));
        // A webhook older than the margin leaves the window as it was.
        let old = parse_time("2026-11-30T15:00:00Z");
        let records = records_at(T0);
        assert_eq!(window_start(&records, old), window_start(&records, None));
        assert_eq!(window_start(&[], old), None);
    }

    fn records_at(timestamp: &str) -> Vec<DeliveryRecord> {
        vec![danube(
            "dlv_1",
            envelope("workflow.completed", timestamp, 1),
            "success",
            1,
            Some(200),
        )]
    }

    /// Offer `local` to a join of `danube` newest first, as the store is read.
    fn join_newest_first(
        danube: Vec<DeliveryRecord>,
        mut local: Vec<LocalRecord>,
        look_back: Option<DateTime<Utc>>,
        caps: Caps,
    ) -> Joined {
        local.sort_by_key(|record| Reverse(record.attempt.id));
        let mut join = Join::new(danube, false, None, look_back, caps);
        for record in local {
            join.offer(record);
        }
        join.finish()
    }

    #[test]
    fn the_join_keeps_the_newest_unknown_rows_and_counts_the_rest() {
        let known = envelope("workflow.completed", T0, 1);
        let replayed = envelope("workflow.completed", T0, 2);
        let mut requests = vec![local(1, &body(&known), 1, Some(200))];
        // 200 probes, one row each, then one payload sent 15 times.
        requests.extend((2..202).map(|id| local(id, b"probe", 2, Some(200))));
        requests.extend((202..217).map(|id| local(id, &body(&replayed), 3, Some(200))));
        let caps = Caps {
            unknown_rows: 5,
            row_requests: 3,
        };
        let joined = join_newest_first(
            vec![danube("dlv_1", known, "success", 1, Some(200))],
            requests,
            None,
            caps,
        );
        let rows = &joined.rows;
        assert_eq!(rows.len(), 6, "{rows:#?}");
        assert_eq!(ids(&rows[0]), [1]);
        assert!(rows[0].findings.is_empty());
        // The newest row: the oldest 3 of its 15 requests, the rest counted.
        assert_eq!(ids(&rows[1]), [202, 203, 204]);
        assert_eq!(rows[1].unlisted, 12);
        let probes: Vec<Vec<u64>> = rows[2..].iter().map(ids).collect();
        assert_eq!(probes, [[201], [200], [199], [198]]);
        assert_eq!(joined.unshown, 200 - 4);
        assert_eq!(joined.unjudged, 0);
        let value = serde_json::to_value(&rows[1]).unwrap();
        assert_eq!(value["unlisted"], 12);
        assert!(
            serde_json::to_value(&rows[2])
                .unwrap()
                .get("unlisted")
                .is_none()
        );
    }

    #[test]
    fn a_flood_of_copies_keeps_the_oldest_as_attempts_and_the_next_few_as_a_replay() {
        let payload = envelope("workflow.completed", T0, 1);
        let local = (1..=1000)
            .map(|id| local(id, &body(&payload), 1, Some(200)))
            .collect();
        let joined = join_newest_first(
            vec![danube("dlv_1", payload, "success", 2, Some(200))],
            local,
            None,
            Caps::SHOWN,
        );
        let rows = &joined.rows;
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(ids(&rows[0]), [1, 2]);
        assert!(rows[0].findings.is_empty());
        assert_eq!(
            ids(&rows[1]),
            (3..3 + ROW_REQUESTS as u64).collect::<Vec<_>>()
        );
        assert_eq!(rows[1].unlisted, 998 - ROW_REQUESTS as u64);
        assert!(
            rows[1].findings[0]
                .detail
                .contains("payload of Danube's delivery dlv_1")
        );
        assert_eq!(joined.unshown, 0);
    }

    #[test]
    fn deliveries_from_before_the_look_back_are_listed_not_judged() {
        let recent = envelope("workflow.completed", T0, 1);
        let mut ancient = danube(
            "dlv_0",
            envelope("workflow.failed", "1970-01-01T00:00:00Z", 0),
            "failed",
            3,
            Some(502),
        );
        ancient.created_at = Some("1970-01-01T00:00:00Z".into());
        let cut = parse_time("2026-11-30T15:00:00Z").unwrap();
        let joined = join_newest_first(
            vec![
                danube("dlv_1", recent.clone(), "failed", 1, Some(502)),
                ancient,
            ],
            vec![
                // Before the cut and its margin: never read, never judged.
                local(1, b"probe", -3600 - WINDOW_MARGIN_S - 1, Some(200)),
                local(2, b"probe", -3600 - WINDOW_MARGIN_S + 1, Some(200)),
            ],
            Some(cut),
            Caps::SHOWN,
        );
        let rows = &joined.rows;
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(kinds(&rows[0]), [FindingKind::NeverArrived]);
        assert!(rows[1].findings.is_empty(), "not judged: {:?}", rows[1]);
        assert_eq!(ids(&rows[2]), [2]);
        assert_eq!(joined.unjudged, 1);
    }

    #[test]
    fn a_copy_beyond_danubes_attempts_is_a_replay() {
        let payload = envelope("workflow.completed", T0, 1);
        let rows = reconcile(
            vec![danube("dlv_1", payload.clone(), "success", 1, Some(200))],
            [
                local(1, &body(&payload), 1, Some(200)),
                local(2, &body(&payload), 30, Some(200)),
            ],
            false,
            None,
        );
        assert_eq!(ids(&rows[0]), [1]);
        assert!(rows[0].findings.is_empty());
        assert_eq!(ids(&rows[1]), [2]);
        assert!(
            rows[1].findings[0]
                .detail
                .contains("payload of Danube's delivery dlv_1"),
            "{:?}",
            rows[1]
        );
    }

    #[test]
    fn no_window_without_a_time_and_unread_bodies_are_never_judged() {
        let mut record = danube(
            "dlv_1",
            json!({"event": "workflow.completed", "timestamp": "at noon", "data": {}}),
            "success",
            1,
            Some(200),
        );
        record.created_at = Some("yesterday".into());
        let mut elided = local(2, b"{}", 1, Some(200));
        elided.payload = Payload::Unread;
        let rows = reconcile(
            vec![record],
            [local(1, b"garbage", 1, Some(200)), elided],
            false,
            None,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(kinds(&rows[0]), [FindingKind::NeverArrived]);
    }

    #[test]
    fn a_danube_payload_that_is_no_envelope_matches_nothing() {
        let not_envelope = json!({"tool_id": "abc"});
        let text = Value::String(
            body(&envelope("workflow.completed", T0, 1))
                .iter()
                .map(|&b| char::from(b))
                .collect(),
        );
        let rows = reconcile(
            vec![
                danube("dlv_2", text, "success", 1, Some(200)),
                danube("dlv_1", not_envelope.clone(), "success", 1, Some(200)),
            ],
            [
                local(1, &body(&not_envelope), 1, Some(200)),
                local(
                    2,
                    &body(&envelope("workflow.completed", T0, 1)),
                    2,
                    Some(200),
                ),
            ],
            false,
            None,
        );
        // A payload kept as JSON text is still the envelope.
        assert_eq!(ids(&rows[0]), [2]);
        assert!(rows[0].findings.is_empty());
        assert_eq!(kinds(&rows[1]), [FindingKind::NeverArrived]);
        assert!(rows[1].findings[0].detail.contains("not an event envelope"));
        assert_eq!(rows[2].danube, None);
    }

    #[test]
    fn the_window_falls_back_on_the_envelopes_timestamp() {
        let mut record = danube(
            "dlv_1",
            envelope("workflow.completed", "2026-11-30T15:00:00.000000Z", 1),
            "success",
            1,
            Some(200),
        );
        record.created_at = None;
        assert_eq!(
            window_start(&[record], None),
            parse_time("2026-11-30T14:59:00Z")
        );
    }

    #[test]
    fn naive_and_rfc3339_times() {
        let want = parse_time("2026-11-30T16:00:00.5Z").unwrap();
        assert_eq!(parse_time("2026-11-30T16:00:00.500000"), Some(want));
        assert_eq!(parse_time("2026-11-30 16:00:00.5"), Some(want));
        assert_eq!(parse_time("2026-11-30T17:00:00.5+01:00"), Some(want));
        assert_eq!(parse_time("soon"), None);
    }

    #[test]
    fn rows_serialize_as_the_issue_says() {
        let payload = envelope("workflow.completed", T0, 1);
        let rows = reconcile(
            vec![danube("dlv_1", payload.clone(), "failed", 1, Some(502))],
            [local(7, &body(&payload), 1, Some(200))],
            false,
            None,
        );
        let value = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(value["danube"]["id"], "dlv_1");
        assert_eq!(
            value["local"],
            json!([{"id": 7, "attempt": 1, "received_at": "2026-11-30T16:00:01.000Z", "verdict": "valid", "status": 200}])
        );
        assert_eq!(value["findings"][0]["kind"], "answer_differs");
        assert!(value["findings"][0]["detail"].is_string());
    }

    #[test]
    fn a_valid_redelivery_stands_for_what_never_arrived() {
        let never = envelope("workflow.failed", T0, 1);
        let lost = envelope("workflow.failed", T0, 2);
        let other = envelope("workflow.failed", T0, 3);
        let redelivery = |id, body: &Value, of: &str| {
            let mut record = local(id, &self::body(body), 30, Some(200));
            record.redelivery_of = Some(of.to_owned());
            record
        };
        // The header under a bad signature: the listener does not keep it,
        // and a record that has it anyway vouches for nothing.
        let mut forged = sample(6, &body(&other));
        forged.signature.verdict = Verdict::Mismatch;
        forged.redelivery_of = Some("dlv_3".into());
        let forged = LocalRecord::of(&forged);
        assert_eq!(forged.redelivery_of, None);
        let rows = reconcile(
            vec![
                danube("dlv_3", other.clone(), "failed", 3, Some(502)),
                danube("dlv_2", lost.clone(), "failed", 3, Some(502)),
                danube("dlv_1", never.clone(), "failed", 3, Some(502)),
            ],
            [
                local(1, &body(&lost), 1, Some(500)),
                redelivery(2, &never, "dlv_1"),
                redelivery(3, &never, "dlv_1"),
                redelivery(4, &lost, "dlv_2"),
                // Names a delivery, but carries another's payload.
                redelivery(5, &lost, "dlv_1"),
                forged,
                // From Danube's log, of a delivery it no longer lists.
                redelivery(7, &envelope("workflow.failed", T0, 9), "dlv_old"),
            ],
            false,
            None,
        );
        assert_eq!(rows.len(), 3, "nothing unknown to Danube: {rows:#?}");
        let redelivered = |row: &Row| row.redelivered.as_ref().map(|a| a.id);
        assert_eq!(redelivered(&rows[2]), Some(2), "the first of the two");
        assert!(rows[2].findings.is_empty(), "{:?}", rows[2].findings);
        assert_eq!(redelivered(&rows[1]), Some(4));
        assert_eq!(
            ids(&rows[1]),
            [1, 5],
            "the mismatched one counts as an attempt"
        );
        assert!(rows[1].findings.is_empty(), "{:?}", rows[1].findings);
        assert_eq!(redelivered(&rows[0]), None);
        assert_eq!(ids(&rows[0]), [6]);
        assert_eq!(kinds(&rows[0]), [FindingKind::MissingAttempts]);
    }
}
