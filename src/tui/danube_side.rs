//! Danube's side of the dashboard's deliveries, when a webhook is known
//! (`listen --webhook`, `--register`): the newest poll of Danube's delivery
//! log joined with the history ([`reconcile`]), and what it says of each
//! delivery. Kept in step with the history by the [`App`](super::app::App).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::danube::poller::Poll;
use crate::danube::reconcile::{self, LocalRecord, Row};
use crate::delivery::Delivery;

/// The newest poll of Danube's log joined with the history.
#[derive(Debug, Default)]
pub(crate) struct DanubeSide {
    pub(crate) webhook_id: String,
    /// Each delivery in the history as the join needs it: its body digested
    /// when it arrived, so a body dropped from memory later still matches.
    local: HashMap<u64, LocalRecord>,
    /// The join of the last log read; empty until the first answer.
    rows: Vec<Row>,
    /// For each delivery a row holds, the row's index.
    row_of: HashMap<u64, usize>,
    /// Whether a poll has answered with a log yet.
    polled: bool,
    /// `D` asked for this poll: its answer is told on the status line.
    asked: bool,
    /// When the dashboard began to watch: its history holds only what
    /// arrived since, so an older delivery Danube lists may well have
    /// arrived (in an earlier run, and be in the store) and is not counted
    /// as never arrived.
    since: Option<DateTime<Utc>>,
    /// When Danube created the webhook, once a poll has read it.
    webhook_created: Option<DateTime<Utc>>,
}

/// What Danube says of one delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DanubeMark<'a> {
    /// No log read yet.
    Waiting,
    /// Not in the last join: older than Danube's listed deliveries, or
    /// arrived after the last poll.
    NotJudged,
    /// Arrived before the webhook was created, so none of its deliveries.
    BeforeWebhook,
    /// Its row: a delivery of Danube's, or (with `danube` None) requests
    /// Danube does not know.
    Row(&'a Row),
}

/// What a poll's answer comes to, for the status line.
pub(crate) enum Polled {
    /// The log was read; the sentence that tells it, when `D` asked.
    Read(Option<String>),
    /// The poll failed (polling goes on).
    Failed(String),
}

impl DanubeSide {
    /// Watch `webhook_id` from `since`, with the `history` already there.
    pub(crate) fn watch<'a>(
        webhook_id: String,
        since: DateTime<Utc>,
        history: impl Iterator<Item = &'a Arc<Delivery>>,
    ) -> Self {
        DanubeSide {
            webhook_id,
            local: history.map(|d| (d.id, LocalRecord::of(d))).collect(),
            since: Some(since),
            ..DanubeSide::default()
        }
    }

    /// A delivery joined the history.
    pub(crate) fn arrived(&mut self, delivery: &Delivery) {
        self.local.insert(delivery.id, LocalRecord::of(delivery));
    }

    /// Delivery `id` left the history.
    pub(crate) fn left(&mut self, id: u64) {
        self.local.remove(&id);
    }

    /// `D`: the next answer is told on the status line; the sentence that
    /// says it was asked.
    pub(crate) fn ask(&mut self) -> String {
        self.asked = true;
        format!(
            "asking Danube for webhook {}'s deliveries…",
            self.webhook_id
        )
    }

    /// What Danube says of delivery `id`.
    pub(crate) fn mark(&self, id: u64) -> DanubeMark<'_> {
        if !self.polled {
            return DanubeMark::Waiting;
        }
        let before_webhook = |id| {
            let received = self.local.get(&id).map(|l| l.attempt.received_at);
            matches!(
                (received, self.webhook_created),
                (Some(at), Some(created)) if reconcile::arrived_before(at, created)
            )
        };
        match self.row_of.get(&id) {
            Some(&index) => DanubeMark::Row(&self.rows[index]),
            None if before_webhook(id) => DanubeMark::BeforeWebhook,
            None => DanubeMark::NotJudged,
        }
    }

    /// A poll's answer: the log joined with the history.
    pub(crate) fn apply(&mut self, poll: &Poll) -> Polled {
        let log = match &poll.result {
            Err(error) => {
                self.asked = false;
                return Polled::Failed(error.clone());
            }
            Ok(log) => log,
        };
        self.polled = true;
        self.webhook_created = poll.webhook_created.or(self.webhook_created);
        self.rows = reconcile::reconcile(
            log.clone(),
            self.local.values().cloned(),
            poll.log_cut(),
            self.webhook_created,
        );
        self.row_of = self
            .rows
            .iter()
            .enumerate()
            .flat_map(|(index, row)| row.local.iter().map(move |l| (l.id, index)))
            .collect();
        let told = std::mem::take(&mut self.asked).then(|| {
            format!(
                "Danube: {} deliver{} of webhook {} read, {} (see the overview)",
                log.len(),
                if log.len() == 1 { "y" } else { "ies" },
                self.webhook_id,
                reconcile::findings_told(&self.rows),
            )
        });
        Polled::Read(told)
    }

    /// Danube's deliveries in the last log read, made since the dashboard
    /// began to watch, of which nothing reached the listener (no row in
    /// the list can show them).
    pub(crate) fn never_arrived(&self) -> usize {
        self.rows
            .iter()
            .filter(|row| {
                row.findings
                    .iter()
                    .any(|f| f.kind == reconcile::FindingKind::NeverArrived)
            })
            .filter(|row| {
                let created = row
                    .danube
                    .as_ref()
                    .and_then(|d| d.created_at.as_deref())
                    .and_then(reconcile::parse_time);
                match (created, self.since) {
                    (Some(created), Some(since)) => created >= since,
                    _ => true,
                }
            })
            .count()
    }
}

#[cfg(test)]
impl DanubeSide {
    /// Deliveries of the history kept for the join.
    pub(crate) fn local_len(&self) -> usize {
        self.local.len()
    }

    pub(crate) fn rows(&self) -> &[Row] {
        &self.rows
    }
}
