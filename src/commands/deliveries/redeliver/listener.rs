//! Redelivering to the listener that writes the store (no `--to`): where
//! it is, that it runs, and that each redelivery came back as its record.
//! Nothing a received request says chooses where a payload goes: the path
//! is the webhook's own, as Danube has it, and the address is the one the
//! running listener's own records arrived on.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::UsageError;
use crate::danube::model::Webhook;
use crate::delivery::Delivery;
use crate::display::escape_line;
use crate::errors::wrap::Whole;
use crate::store::{self, StoreError};

/// How long a redelivery's record may take to show in the store after the
/// last send. The listener writes a record before it answers, so it is
/// there at once; this only covers a loaded machine.
const RECORD_WAIT: Duration = Duration::from_secs(2);
/// How often the store's end is read meanwhile.
const RECORD_POLL: Duration = Duration::from_millis(25);

/// The listener that writes a store, as the store tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoreListener {
    pub(super) addr: SocketAddr,
    /// The store's newest record before anything is sent: the
    /// redeliveries' records come after it.
    pub(super) newest_id: u64,
}

/// The listener that writes the store at `store_path`. Refused, before
/// anything is sent, unless a listener holds the store's lock now and
/// has recorded a delivery since it started: only then is the address in
/// the newest record its own, and not a port anyone may hold since.
pub(super) fn find(store_path: &Path) -> anyhow::Result<StoreListener> {
    let shown = escape_line(&store_path.display().to_string()).into_owned();
    let refuse = |why: String, remedy: &str| {
        anyhow::Error::from(UsageError::new(format!(
            "no --to, and {why}: {remedy}, or pass --to URL (the listener's, e.g. \
             http://127.0.0.1:4000/webhooks/danube); nothing was sent"
        )))
    };
    let start = format!("start `danube-hooks listen --store {shown}` first");
    match store::held_by_listener(store_path) {
        Ok(Some(true)) => {}
        Ok(Some(false)) => {
            return Err(refuse(
                format!(
                    "no listener is running on the store at {shown}, so the address its \
                     records name may be anyone's now"
                ),
                &start,
            ));
        }
        Ok(None) => {
            return Err(refuse(
                format!(
                    "the file system of {shown} has no locks, so whether a listener runs on \
                     it cannot be told"
                ),
                &start,
            ));
        }
        Err(err) => {
            return Err(refuse(
                format!("whether a listener runs on the store at {shown} cannot be told ({err})"),
                &start,
            ));
        }
    }
    let newest = newest(store_path)?;
    let started = store::read_starts(store_path).last().map(|s| s.first_id);
    match newest {
        Some(newest) if started.is_some_and(|first| newest.id >= first) => Ok(StoreListener {
            addr: crate::curl::arrival_addr(&newest),
            newest_id: newest.id,
        }),
        _ => Err(refuse(
            format!(
                "the listener running on the store at {shown} has recorded no delivery since \
                 it started, so its address is not known here"
            ),
            "send it one",
        )),
    }
}

/// The store's newest record, if any.
fn newest(store_path: &Path) -> anyhow::Result<Option<Delivery>> {
    let mut newest = None;
    let read = store::each_backward::<Delivery>(store_path, |entry| match entry {
        store::Entry::Record(delivery) => {
            newest = Some(delivery);
            ControlFlow::Break(())
        }
        store::Entry::Skipped(_) => ControlFlow::Continue(()),
    });
    match read {
        Ok(()) | Err(StoreError::Missing { .. }) => Ok(newest),
        Err(err) => Err(anyhow::Error::from(Whole::new(err))),
    }
}

/// The path and query of `webhook`'s URL as Danube has it: where Danube
/// itself sends, so where the listener takes it.
pub(super) fn webhook_path(webhook: Option<&Webhook>, id: &str) -> anyhow::Result<String> {
    let webhook = webhook.ok_or_else(|| {
        anyhow::anyhow!(
            "webhook {} is not in Danube's list of webhooks, so the path to redeliver to is not \
             known: pass --to URL; nothing was sent",
            escape_line(id)
        )
    })?;
    let uri: hyper::Uri = webhook.url.parse().map_err(|err| {
        anyhow::anyhow!(
            "webhook {}'s URL in Danube ({}) does not parse ({err}): pass --to URL; nothing was \
             sent",
            escape_line(id),
            escape_line(&webhook.url)
        )
    })?;
    Ok(uri
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str)
        .to_owned())
}

/// Of `ids` (Danube's, each answered 2xx by the listener), those the store
/// at `path` holds no redelivery record of after `newest_id`, once all are
/// there or [`RECORD_WAIT`] has passed.
pub(super) fn unrecorded(
    path: &Path,
    newest_id: u64,
    ids: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut missing = ids.to_vec();
    let until = Instant::now() + RECORD_WAIT;
    loop {
        let found = recorded_after(path, newest_id)?;
        missing.retain(|id| !found.contains(id));
        if missing.is_empty() || Instant::now() >= until {
            return Ok(missing);
        }
        std::thread::sleep(RECORD_POLL);
    }
}

/// Danube's ids the records after `newest_id` redeliver.
fn recorded_after(path: &Path, newest_id: u64) -> anyhow::Result<HashSet<String>> {
    let mut found = HashSet::new();
    let read = store::each_backward::<Delivery>(path, |entry| match entry {
        store::Entry::Record(delivery) if delivery.id <= newest_id => ControlFlow::Break(()),
        store::Entry::Record(delivery) => {
            found.extend(delivery.redelivery_of);
            ControlFlow::Continue(())
        }
        store::Entry::Skipped(_) => ControlFlow::Continue(()),
    });
    read.map_err(|err| anyhow::Error::from(Whole::new(err)))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> Webhook {
        Webhook {
            id: "wh_1".into(),
            url: url.into(),
            events: Vec::new(),
            is_active: true,
            description: None,
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn the_path_is_the_webhooks_own_path_and_query_never_its_host() {
        let path = |url: &str| webhook_path(Some(&webhook(url)), "wh_1").unwrap();
        assert_eq!(
            path("https://abc.ngrok.app/webhooks/danube"),
            "/webhooks/danube"
        );
        assert_eq!(path("https://abc.ngrok.app/hooks?k=1"), "/hooks?k=1");
        assert_eq!(path("https://abc.ngrok.app"), "/");
        let none = webhook_path(None, "wh_\u{1b}[2J").unwrap_err().to_string();
        assert!(none.contains("--to") && !none.contains('\u{1b}'), "{none}");
    }

    #[test]
    fn a_store_no_listener_holds_is_refused_and_says_how_to_go_on() {
        let dir = std::env::temp_dir().join(format!("danube-hooks-unheld-{}", std::process::id()));
        let path = dir.join("deliveries.jsonl");
        let err = find(&path).unwrap_err().to_string();
        assert!(
            err.contains("no listener is running")
                && err.contains("listen --store")
                && err.contains("--to"),
            "{err}"
        );
        // The question creates nothing.
        assert!(!dir.exists());
    }
}
