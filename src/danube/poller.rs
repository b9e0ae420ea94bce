//! The dashboard's view of Danube's side: a task that reads one webhook's
//! delivery log every [`INTERVAL`], and at once when asked (the `D` key),
//! and hands the newest answer to the dashboard.
//!
//! The answer goes through a `watch` channel: publishing replaces what is
//! there and never waits, so a dashboard that has not looked yet loses the
//! older answer, never the poll, and nothing here can hold up ingestion or
//! a frame. The dashboard joins the log with its own records
//! (`danube::reconcile`) when it takes an answer. The webhook's creation
//! time is read with the first log that has entries, and goes with every
//! answer after.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::api::{Api, ApiError};
use super::model::{DeliveryRecord, Webhook};
use crate::facts::DELIVERIES_PAGE_MAX;

/// How often the log is read.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);
/// One poll's time limit. Retries are left to the next poll, which comes
/// sooner than the API client's own retry schedule would.
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// One answer to a poll.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Poll {
    pub(crate) webhook_id: String,
    /// Danube's log, newest first, or the one-line error of the API client.
    pub(crate) result: Result<Vec<DeliveryRecord>, String>,
    /// How many were asked for: a log this long may have older entries.
    pub(crate) limit: u32,
    /// When Danube created the webhook, once a poll has read it: nothing
    /// that arrived before is one of its deliveries.
    pub(crate) webhook_created: Option<DateTime<Utc>>,
}

impl Poll {
    /// The log was as long as asked for, so it may leave older ones out.
    pub(crate) fn log_cut(&self) -> bool {
        self.result
            .as_ref()
            .is_ok_and(|log| log.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX))
    }
}

/// The dashboard's end: the newest answer, and a way to ask for one now.
pub(crate) struct Handle {
    pub(crate) webhook_id: String,
    /// The API polled, `scheme://authority`.
    pub(crate) api_origin: String,
    pub(crate) polls_rx: watch::Receiver<Option<Arc<Poll>>>,
    poke: Arc<Notify>,
}

impl Handle {
    /// Poll now (or right after the poll under way), not in up to 5 s.
    pub(crate) fn poll_now(&self) {
        self.poke.notify_one();
    }
}

/// Start polling `webhook_id`'s log until `shutdown`. Must be called
/// within a tokio runtime.
pub(crate) fn spawn(api: Api, webhook_id: String, shutdown: CancellationToken) -> Handle {
    let (polls_tx, polls_rx) = watch::channel(None);
    let poke = Arc::new(Notify::new());
    let api = api.with_timing(Vec::new(), POLL_TIMEOUT);
    let api_origin = api.origin();
    tokio::spawn(poll_loop(
        api,
        webhook_id.clone(),
        polls_tx,
        Arc::clone(&poke),
        shutdown,
    ));
    Handle {
        webhook_id,
        api_origin,
        polls_rx,
        poke,
    }
}

async fn poll_loop(
    api: Api,
    webhook_id: String,
    polls_tx: watch::Sender<Option<Arc<Poll>>>,
    poke: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut webhook_created = Created::Unread;
    loop {
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = read_log(&api, &webhook_id, &mut webhook_created) => result,
        };
        publish(
            &polls_tx,
            Poll {
                webhook_id: webhook_id.clone(),
                result: result.map_err(|err| err.to_string()),
                limit: DELIVERIES_PAGE_MAX,
                webhook_created: match webhook_created {
                    Created::Read(at) => at,
                    Created::Unread => None,
                },
            },
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
            () = poke.notified() => {}
        }
    }
}

/// What the poller knows of when the webhook was created. It is read
/// once, with the first log that has entries to judge by it, and again
/// after an error: a webhook's creation time does not change.
#[derive(Debug, Clone, Copy)]
enum Created {
    Unread,
    /// Read; `None` when Danube did not say (or not readably).
    Read(Option<DateTime<Utc>>),
}

/// One poll: the log, and the webhook's creation time while it is unread
/// (its error only leaves it unread; the log is what counts).
async fn read_log(
    api: &Api,
    webhook_id: &str,
    webhook_created: &mut Created,
) -> Result<Vec<DeliveryRecord>, ApiError> {
    let log = api.list_deliveries(webhook_id, DELIVERIES_PAGE_MAX).await?;
    if matches!(webhook_created, Created::Unread)
        && !log.is_empty()
        && let Ok(webhook) = api.find_webhook(webhook_id).await
    {
        *webhook_created = Created::Read(webhook.as_ref().and_then(Webhook::created));
    }
    Ok(log)
}

/// Hand `poll` over, replacing an answer not yet taken; never waits, and
/// a dashboard that has gone is no error.
pub(crate) fn publish(polls_tx: &watch::Sender<Option<Arc<Poll>>>, poll: Poll) {
    polls_tx.send_replace(Some(Arc::new(poll)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Trust;

    fn poll(id: &str, result: Result<Vec<DeliveryRecord>, String>) -> Poll {
        Poll {
            webhook_id: id.into(),
            result,
            limit: 2,
            webhook_created: None,
        }
    }

    #[test]
    fn publishing_never_waits_and_keeps_only_the_newest() {
        let (polls_tx, mut polls_rx) = watch::channel(None);
        // Nobody reads: each publish returns at once, replacing the last.
        for n in 0..1000 {
            publish(&polls_tx, poll("wh_1", Err(format!("answer {n}"))));
        }
        assert!(polls_rx.has_changed().unwrap());
        let newest = polls_rx.borrow_and_update().clone().unwrap();
        assert_eq!(newest.result, Err("answer 999".to_owned()));
        assert!(!polls_rx.has_changed().unwrap());
        // The dashboard gone: still no wait, no panic.
        drop(polls_rx);
        publish(&polls_tx, poll("wh_1", Ok(Vec::new())));
    }

    #[test]
    fn a_full_log_may_leave_older_ones_out() {
        assert!(!poll("wh_1", Ok(Vec::new())).log_cut());
        assert!(!poll("wh_1", Err("down".into())).log_cut());
        let record: DeliveryRecord = serde_json::from_value(serde_json::json!({
            "id": "dlv_1", "webhook_id": "wh_1", "event_type": "workflow.completed",
            "status": "success", "attempts": 1
        }))
        .unwrap();
        assert!(poll("wh_1", Ok(vec![record.clone(), record])).log_cut());
    }

    #[tokio::test]
    async fn errors_are_published_and_polling_goes_on_and_d_polls_at_once() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = refused.local_addr().unwrap().port();
        drop(refused);
        let api = Api::new(&format!("http://127.0.0.1:{port}"), &Trust::default(), None).unwrap();
        let shutdown = CancellationToken::new();
        let mut handle = spawn(api, "wh_1".into(), shutdown.clone());
        let wait = Duration::from_secs(5);
        tokio::time::timeout(wait, handle.polls_rx.changed())
            .await
            .expect("a first poll")
            .unwrap();
        let first = handle.polls_rx.borrow_and_update().clone().unwrap();
        assert_eq!(first.webhook_id, "wh_1");
        let error = first.result.clone().unwrap_err();
        assert!(
            error.contains("credentials") || error.contains("cannot reach"),
            "{error}"
        );
        // Well before the 5 s interval, `D` brings the next poll.
        handle.poll_now();
        tokio::time::timeout(Duration::from_secs(3), handle.polls_rx.changed())
            .await
            .expect("a poll at once on D")
            .unwrap();
        shutdown.cancel();
    }
}
