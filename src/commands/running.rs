//! The listener running on a store, as the store tells: a command that
//! sends back to "this listener" without `--to` (`replay`, `deliveries
//! --redeliver`) sends only to one that holds the store's lock now, at the
//! address its own records of this run arrived on; never to a port an
//! earlier run used, which anyone may hold since.

use std::net::SocketAddr;
use std::ops::ControlFlow;

use crate::cli::UsageError;
use crate::delivery::Delivery;
use crate::display::escape_line;
use crate::errors::wrap::Whole;
use crate::store::{self, Location, StoreError};

/// The listener that writes a store, as the store tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreListener {
    pub(crate) addr: SocketAddr,
    /// The store's newest record before anything is sent: the
    /// redeliveries' records come after it.
    pub(crate) newest_id: u64,
}

/// The listener that writes the store `at`. Refused, before anything is
/// sent, on a shared store (several listeners write it, none holds it, and
/// a reader never makes another machine's listener receive anything), and
/// unless a listener holds the store's lock now; its
/// address is the one it noted with its start, or, from a listener that
/// noted none, the one its newest record arrived on if that record is
/// from this start: never a port an earlier run used, which anyone may
/// hold since.
pub(crate) fn find(at: &Location) -> anyhow::Result<StoreListener> {
    let shown = escape_line(&at.to_string()).into_owned();
    let refuse = |why: String, remedy: &str| {
        anyhow::Error::from(UsageError::new(format!(
            "no --to, and {why}: {remedy}, or pass --to URL (the listener's, e.g. \
             http://127.0.0.1:4000/webhooks/danube); nothing was sent"
        )))
    };
    let Location::File(store_path) = at else {
        return Err(refuse(
            format!(
                "the store at {shown} is shared by a team's listeners, so which of them would \
                 receive it cannot be told"
            ),
            "name the receiver yourself",
        ));
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
    let newest = newest(at)?;
    let last_start = store::read_starts(at).pop();
    // The running listener noted where it listens as it opened the store
    // (under the lock it holds now): its address, before it has any record.
    if let Some(addr) = last_start.as_ref().and_then(|start| start.listener) {
        return Ok(StoreListener {
            addr,
            newest_id: newest.map_or(0, |newest| newest.id),
        });
    }
    let started = last_start.map(|s| s.first_id);
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
fn newest(at: &Location) -> anyhow::Result<Option<Delivery>> {
    let mut newest = None;
    let read = store::each_backward::<Delivery>(at, |entry| match entry {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_no_listener_holds_is_refused_and_says_how_to_go_on() {
        let dir = std::env::temp_dir().join(format!("danube-hooks-unheld-{}", std::process::id()));
        let path = dir.join("deliveries.jsonl");
        let err = find(&Location::File(path)).unwrap_err().to_string();
        assert!(
            err.contains("no listener is running")
                && err.contains("listen --store")
                && err.contains("--to"),
            "{err}"
        );
        // The question creates nothing.
        assert!(!dir.exists());
    }

    #[test]
    fn a_shared_store_names_no_listener_and_asks_for_to() {
        // Refused before any connection: this host does not exist.
        let at = Location::choose(Some("postgres://ann@db.invalid/hooks")).unwrap();
        let err = find(&at).unwrap_err().to_string();
        assert!(
            err.contains("postgres://ann@db.invalid:5432/hooks")
                && err.contains("shared")
                && err.contains("pass --to URL")
                && err.contains("nothing was sent"),
            "{err}"
        );
    }
}
