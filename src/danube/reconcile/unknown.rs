//! The requests no Danube delivery accounts for, grouped into rows, of
//! which a [`Caps`] many are kept: memory follows the rows shown, not the
//! requests offered.

use std::cmp::Reverse;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::row::{Caps, Finding, FindingKind, LocalAttempt, Payload, PayloadKey, Row, plural};
use crate::danube::model::DeliveryRecord;
use crate::delivery::format_time;
use crate::signature::Verdict;

/// Requests unknown to Danube, a row per payload (the attempts of one
/// unknown delivery share a row; a body that is no envelope is a row of
/// its own).
#[derive(Debug)]
pub(super) struct Strays {
    caps: Caps,
    groups: Vec<Group>,
    by_key: HashMap<PayloadKey, usize>,
    /// Groups that are not copies of a Danube delivery: those count against
    /// `caps.unknown_rows` as they come. Copies are one group per payload
    /// of Danube's log at most, so bounded by it.
    fresh: usize,
    /// Requests offered past the cap, in no group.
    unshown: u64,
}

#[derive(Debug)]
struct Group {
    /// The Danube delivery whose payload it carries, when its requests are
    /// copies beyond that delivery's attempts.
    copy_of: Option<usize>,
    payload: Payload,
    /// The oldest requests offered, at most `caps.row_requests`, in no
    /// order until finished.
    local: Vec<LocalAttempt>,
    /// Requests pushed out of `local`.
    unlisted: u64,
    /// The latest arrival and the newest id of all its requests: the row's
    /// place, newest first.
    newest: (DateTime<Utc>, u64),
}

impl Group {
    /// Add `attempt`, keeping the oldest `cap` (by id).
    fn push(&mut self, attempt: LocalAttempt, cap: usize) {
        self.newest = self.newest.max((attempt.received_at, attempt.id));
        self.local.push(attempt);
        if self.local.len() > cap
            && let Some(newest) = (0..self.local.len()).max_by_key(|&i| self.local[i].id)
        {
            self.local.swap_remove(newest);
            self.unlisted += 1;
        }
    }

    fn requests(&self) -> u64 {
        self.local.len() as u64 + self.unlisted
    }
}

impl Strays {
    pub(super) fn new(caps: Caps) -> Self {
        Self {
            caps,
            groups: Vec::new(),
            by_key: HashMap::new(),
            fresh: 0,
            unshown: 0,
        }
    }

    /// One request unknown to Danube; `copy_of` as for [`Group`]. Offered
    /// newest first, a new payload past the cap is older than every row
    /// kept, so it is only counted.
    pub(super) fn add(&mut self, attempt: LocalAttempt, payload: Payload, copy_of: Option<usize>) {
        if let Payload::Envelope(key) = payload
            && let Some(&at) = self.by_key.get(&key)
        {
            self.groups[at].push(attempt, self.caps.row_requests);
            return;
        }
        if copy_of.is_none() {
            if self.fresh >= self.caps.unknown_rows {
                self.unshown += 1;
                return;
            }
            self.fresh += 1;
        }
        if let Payload::Envelope(key) = payload {
            self.by_key.insert(key, self.groups.len());
        }
        self.groups.push(Group {
            copy_of,
            payload,
            newest: (attempt.received_at, attempt.id),
            local: vec![attempt],
            unlisted: 0,
        });
    }

    /// The rows, newest first, at most `caps.unknown_rows`, and how many
    /// requests are in none of them.
    pub(super) fn finish(self, danube: &[DeliveryRecord], log_cut: bool) -> (Vec<Row>, u64) {
        let mut groups = self.groups;
        groups.sort_by_key(|group| Reverse(group.newest));
        let mut unshown = self.unshown;
        if groups.len() > self.caps.unknown_rows {
            unshown += groups
                .drain(self.caps.unknown_rows..)
                .map(|group| group.requests())
                .sum::<u64>();
        }
        let rows = groups
            .into_iter()
            .map(|mut group| {
                group.local.sort_unstable_by_key(|attempt| attempt.id);
                let detail = unknown_detail(
                    group.copy_of.map(|i| &danube[i]),
                    &group.local[0],
                    group.payload,
                    log_cut,
                );
                Row {
                    danube: None,
                    local: group.local,
                    unlisted: group.unlisted,
                    redelivered: None,
                    findings: vec![Finding {
                        kind: FindingKind::UnknownToDanube,
                        detail,
                    }],
                }
            })
            .collect();
        (rows, unshown)
    }
}

fn unknown_detail(
    copy_of: Option<&DeliveryRecord>,
    first: &LocalAttempt,
    payload: Payload,
    log_cut: bool,
) -> String {
    let at = format_time(&first.received_at);
    let verdict = first.verdict;
    if let Some(record) = copy_of {
        return format!(
            "It carries the payload of Danube's delivery {} but Danube counts only {} for it: a \
             replay (e.g. `danube-hooks replay`) or a copy someone else sent; its signature is \
             {verdict}.",
            crate::display::escape_line(&record.id),
            plural(usize::try_from(record.attempts).unwrap_or(0), "attempt"),
        );
    }
    if payload == Payload::NotEnvelope {
        return format!(
            "Reached the listener at {at} with a body that is no Danube event envelope, so Danube \
             did not send it: a probe, a forgery or another sender's request; its signature is \
             {verdict}."
        );
    }
    let older = if log_cut {
        " (Danube listed only its newest deliveries: raise --limit to see older ones)"
    } else {
        ""
    };
    if verdict == Verdict::Valid {
        format!(
            "Reached the listener at {at} signed with a configured secret, but matches none of \
             Danube's deliveries in this window{older}: a replay of an older delivery, or one \
             sent to another webhook with the same secret."
        )
    } else {
        format!(
            "Reached the listener at {at} and matches none of Danube's deliveries in this \
             window{older}, and its signature is {verdict}: forged, or meant for another webhook \
             (a receiver must refuse it)."
        )
    }
}
