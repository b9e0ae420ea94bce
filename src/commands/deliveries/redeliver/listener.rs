//! Redelivering to the listener that writes the store (no `--to`): on the
//! webhook's own path, at the running listener's address
//! (`commands::running`), and each redelivery come back as its record.
//! Nothing a received request says chooses where a payload goes: the path
//! is the webhook's own, as Danube has it, and the address is the one the
//! running listener's own records arrived on.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::danube::model::Webhook;
use crate::delivery::Delivery;
use crate::display::escape_line;
use crate::errors::wrap::Whole;
use crate::store;

/// How long a redelivery's record may take to show in the store after the
/// last send. The listener writes a record before it answers, so it is
/// there at once; this only covers a loaded machine.
const RECORD_WAIT: Duration = Duration::from_secs(2);
/// How often the store's end is read meanwhile.
const RECORD_POLL: Duration = Duration::from_millis(25);

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
    at: &store::Location,
    newest_id: u64,
    ids: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut missing = ids.to_vec();
    let until = Instant::now() + RECORD_WAIT;
    loop {
        let found = recorded_after(at, newest_id)?;
        missing.retain(|id| !found.contains(id));
        if missing.is_empty() || Instant::now() >= until {
            return Ok(missing);
        }
        std::thread::sleep(RECORD_POLL);
    }
}

/// Danube's ids the records after `newest_id` redeliver.
fn recorded_after(at: &store::Location, newest_id: u64) -> anyhow::Result<HashSet<String>> {
    let mut found = HashSet::new();
    let read = store::each_backward::<Delivery>(at, |entry| match entry {
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
}
