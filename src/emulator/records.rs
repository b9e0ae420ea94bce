//! Every webhook's Danube delivery records, within two bounds: at most
//! `--keep` per webhook, and at most [`LOG_BYTES`] over all of them (SPEC
//! §9: every in-memory history has a byte budget). Past either, the oldest
//! go first: the webhook's own for `--keep`, the oldest of all for the
//! bytes. A record is counted by what it holds ([`weight`]), its payload
//! as the JSON text it was sent as, so a flood of large events or of
//! small ones ends at the same bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::deliver::DeliveryStatus;
use super::payload::Payload;

/// Bytes of delivery records kept in memory, over every webhook. The state
/// file holds what memory holds, so this bounds it too.
pub(crate) const LOG_BYTES: usize = 32 * 1024 * 1024;
/// What a record costs besides its text: the record, its place in its
/// webhook's log and in the index, near enough.
const RECORD_OVERHEAD: usize = 512;

/// One entry of Danube's delivery log (SPEC §11), as the emulator keeps
/// and serves it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) webhook_id: String,
    pub(crate) event_type: String,
    pub(crate) payload: Payload,
    pub(crate) status: DeliveryStatus,
    #[serde(default)]
    pub(crate) response_status: Option<u16>,
    #[serde(default)]
    pub(crate) response_body: Option<String>,
    pub(crate) attempts: u32,
    #[serde(default)]
    pub(crate) delivered_at: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
}

/// What keeping `record` costs, in bytes.
pub(crate) fn weight(record: &Record) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    RECORD_OVERHEAD
        // The id and the webhook's id are in the index too.
        + 2 * (record.id.len() + record.webhook_id.len())
        + record.event_type.len()
        + record.payload.len()
        + text(&record.response_body)
        + text(&record.delivered_at)
        + text(&record.created_at)
}

struct Kept {
    /// When it was added, over every webhook: the oldest goes first.
    order: u64,
    /// Its [`weight`] as counted in [`Logs::bytes`].
    weight: usize,
    /// Shared with a snapshot being written, so taking one costs a
    /// reference count per record rather than a copy.
    record: Arc<Record>,
}

#[derive(Default)]
struct HookLog {
    /// Oldest first.
    entries: VecDeque<Kept>,
    /// The sequence number of `entries[0]`: record `n` of this webhook is
    /// at `n - first_seq` for as long as it is kept.
    first_seq: u64,
}

/// The delivery logs of every webhook.
pub(crate) struct Logs {
    hooks: HashMap<String, HookLog>,
    /// Where each kept record is: its webhook and sequence number.
    index: HashMap<String, (String, u64)>,
    /// The [`weight`]s of every kept record.
    bytes: usize,
    next_order: u64,
    keep: usize,
    budget: usize,
}

impl Logs {
    pub(crate) fn new(keep: usize, budget: usize) -> Self {
        Self {
            hooks: HashMap::new(),
            index: HashMap::new(),
            bytes: 0,
            next_order: 0,
            keep: keep.max(1),
            budget,
        }
    }

    /// An empty log for a new webhook.
    pub(crate) fn add_hook(&mut self, webhook_id: &str) {
        self.hooks.entry(webhook_id.to_owned()).or_default();
    }

    /// Forget a webhook's log.
    pub(crate) fn remove_hook(&mut self, webhook_id: &str) {
        if let Some(log) = self.hooks.remove(webhook_id) {
            for kept in log.entries {
                self.index.remove(&kept.record.id);
                self.bytes -= kept.weight;
            }
        }
    }

    /// Add a record to its webhook's log, then drop the oldest past the
    /// bounds; false (and nothing kept) when the webhook is gone.
    pub(crate) fn push(&mut self, record: Record) -> bool {
        let Some(log) = self.hooks.get_mut(&record.webhook_id) else {
            return false;
        };
        let weight = weight(&record);
        let seq = log.first_seq + log.entries.len() as u64;
        self.index
            .insert(record.id.clone(), (record.webhook_id.clone(), seq));
        log.entries.push_back(Kept {
            order: self.next_order,
            weight,
            record: Arc::new(record),
        });
        self.next_order += 1;
        self.bytes += weight;
        while log.entries.len() > self.keep {
            let dropped = log.entries.pop_front().expect("longer than keep");
            log.first_seq += 1;
            self.index.remove(&dropped.record.id);
            self.bytes -= dropped.weight;
        }
        self.within_budget();
        true
    }

    /// Change a kept record; false when it is no longer kept.
    pub(crate) fn update(&mut self, delivery_id: &str, change: impl FnOnce(&mut Record)) -> bool {
        let Some((webhook_id, seq)) = self.index.get(delivery_id) else {
            return false;
        };
        let Some(kept) = self.hooks.get_mut(webhook_id).and_then(|log| {
            let at = usize::try_from(seq.checked_sub(log.first_seq)?).ok()?;
            log.entries.get_mut(at)
        }) else {
            return false;
        };
        // Copied only when a snapshot being written still holds it.
        let record = Arc::make_mut(&mut kept.record);
        change(record);
        let weight = weight(record);
        self.bytes = self.bytes - kept.weight + weight;
        kept.weight = weight;
        self.within_budget();
        true
    }

    /// Drop the oldest records of all until the kept ones fit the budget.
    fn within_budget(&mut self) {
        while self.bytes > self.budget {
            // A scan of the webhooks (a bounded few) for the oldest front.
            let Some(log) = self
                .hooks
                .values_mut()
                .filter(|log| !log.entries.is_empty())
                .min_by_key(|log| log.entries[0].order)
            else {
                return;
            };
            let dropped = log.entries.pop_front().expect("not empty");
            log.first_seq += 1;
            self.index.remove(&dropped.record.id);
            self.bytes -= dropped.weight;
        }
    }

    /// A kept record.
    pub(crate) fn get(&self, delivery_id: &str) -> Option<Arc<Record>> {
        let (webhook_id, seq) = self.index.get(delivery_id)?;
        let log = self.hooks.get(webhook_id)?;
        let at = usize::try_from(seq.checked_sub(log.first_seq)?).ok()?;
        log.entries.get(at).map(|kept| Arc::clone(&kept.record))
    }

    /// The ids of a webhook's newest `limit` records, newest first; `None`
    /// for a webhook without a log.
    pub(crate) fn newest_ids(&self, webhook_id: &str, limit: usize) -> Option<Vec<String>> {
        let log = self.hooks.get(webhook_id)?;
        Some(
            log.entries
                .iter()
                .rev()
                .take(limit)
                .map(|kept| kept.record.id.clone())
                .collect(),
        )
    }

    /// A webhook's records, newest first (shared, not copied).
    pub(crate) fn newest_first(&self, webhook_id: &str) -> Vec<Arc<Record>> {
        self.hooks.get(webhook_id).map_or_else(Vec::new, |log| {
            log.entries
                .iter()
                .rev()
                .map(|kept| Arc::clone(&kept.record))
                .collect()
        })
    }

    /// Records kept, over every webhook.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes the kept records count for (at most the budget).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::value::RawValue;

    fn record(id: &str, webhook: &str, data_bytes: usize) -> Record {
        let data = RawValue::from_string(format!("\"{}\"", "x".repeat(data_bytes))).unwrap();
        Record {
            id: id.to_owned(),
            webhook_id: webhook.to_owned(),
            event_type: "workflow.failed".to_owned(),
            payload: Payload::envelope("workflow.failed", Utc::now(), &data),
            status: DeliveryStatus::Pending,
            response_status: None,
            response_body: None,
            attempts: 0,
            delivered_at: None,
            created_at: None,
        }
    }

    fn ids(logs: &Logs, webhook: &str) -> Vec<String> {
        logs.newest_ids(webhook, 100).unwrap()
    }

    #[test]
    fn past_the_budget_the_oldest_of_all_webhooks_go_first() {
        let one = weight(&record("d0", "a", 1000));
        let mut logs = Logs::new(100, 3 * one);
        logs.add_hook("a");
        logs.add_hook("b");
        assert!(logs.push(record("d0", "a", 1000)));
        assert!(logs.push(record("d1", "b", 1000)));
        assert!(logs.push(record("d2", "a", 1000)));
        assert_eq!(logs.bytes(), 3 * one);
        assert!(logs.push(record("d3", "b", 1000)));
        assert_eq!(ids(&logs, "a"), ["d2"], "d0 was the oldest of all");
        assert_eq!(ids(&logs, "b"), ["d3", "d1"]);
        assert!(logs.get("d0").is_none() && logs.get("d1").is_some());
        // A large record takes the place of several.
        assert!(logs.push(record("big", "a", 2 * 1000 + one)));
        assert_eq!(ids(&logs, "a"), ["big"]);
        assert_eq!(ids(&logs, "b"), Vec::<String>::new());
        assert!(logs.bytes() <= 3 * one);
        assert_eq!(logs.len(), 1);
    }

    #[test]
    fn keep_bounds_each_webhook_and_updates_are_counted() {
        let mut logs = Logs::new(2, LOG_BYTES);
        logs.add_hook("a");
        for n in 0..5 {
            logs.push(record(&format!("d{n}"), "a", 10));
        }
        assert_eq!(ids(&logs, "a"), ["d4", "d3"]);
        assert!(!logs.update("d0", |_| {}), "dropped");
        let before = logs.bytes();
        assert!(logs.update("d3", |r| {
            r.response_body = Some("y".repeat(2000));
            r.status = DeliveryStatus::Failed;
        }));
        assert_eq!(logs.bytes(), before + 2000);
        assert_eq!(logs.get("d3").unwrap().status, DeliveryStatus::Failed);
        // A record for a webhook that is gone is not kept.
        assert!(!logs.push(record("d9", "gone", 10)));
        logs.remove_hook("a");
        assert_eq!((logs.len(), logs.bytes()), (0, 0));
        assert!(logs.newest_ids("a", 10).is_none());
    }
}
