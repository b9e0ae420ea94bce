//! `listen --register --catch-up`: when this listener last stopped, read
//! from the store before it serves, and once the webhook is active again
//! the redelivery of what Danube made since then that never arrived
//! (`deliveries::redeliver`), in a task of its own: the listener never
//! waits for it.
//!
//! When the last run stopped is not written anywhere, so the store's
//! newest record stands for it: a lower bound (the run may have gone on
//! listening after it), and every delivery Danube made while that run was
//! up reached its store, or is what the catch-up is for. Danube's clock
//! is not this machine's: deliveries it says it made up to
//! [`reconcile::WINDOW_MARGIN_S`] before that record are caught up too.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::ops::ControlFlow;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::public::Registered;
use crate::commands::deliveries::redeliver::CatchUp;
use crate::danube::reconcile;
use crate::delivery;
use crate::http;
use crate::store::{self, DeliveryStore};

/// When the store's newest record arrived, less Danube's clock margin:
/// this listener's last stop, near enough. `None` for a store with no
/// record (or none that can be read).
pub(crate) fn last_stop(at: &store::Location) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Arrived {
        received_at: String,
    }
    // When it arrived is all this reads: a mirror's late answer changes none of it.
    impl store::Amendable for Arrived {}
    let mut newest = None;
    let _ = store::each_backward::<Arrived>(at, |entry| match entry {
        store::Entry::Record(record) => {
            newest = DateTime::parse_from_rfc3339(&record.received_at)
                .ok()
                .map(|time| time.with_timezone(&Utc));
            ControlFlow::Break(())
        }
        store::Entry::Skipped(_) => ControlFlow::Continue(()),
    });
    newest.map(|newest| newest - TimeDelta::seconds(reconcile::WINDOW_MARGIN_S))
}

/// Start catching up with what Danube made since `since` for the webhook
/// `registered`, sent to this listener (bound at `local`) on the webhook
/// URL's path, until `shutdown`; its progress on stderr when `headless`
/// and stderr is a terminal, and on the dashboard's status line (through
/// `store`'s announcements) when it shows.
pub(crate) fn start(
    registered: &Registered,
    local: SocketAddr,
    store_at: store::Location,
    since: Option<DateTime<Utc>>,
    store: &DeliveryStore,
    headless: bool,
    shutdown: CancellationToken,
) {
    // Told on a terminal only, and never under the dashboard, which holds it.
    let tell = headless && std::io::stderr().is_terminal();
    let Some(since) = since else {
        if tell {
            eprintln!(
                "danube-hooks: catch-up: the store holds no earlier delivery, so there is no \
                 last stop to catch up from; `danube-hooks deliveries --redeliver --since 1h` \
                 sends what never arrived"
            );
        }
        return;
    };
    let webhook = &registered.registration.webhook;
    // The path Danube posts to; the host is always this listener's own.
    let path = http::check_url(&webhook.url)
        .ok()
        .and_then(|url| url.path_and_query().map(|p| p.as_str().to_owned()))
        .unwrap_or_else(|| "/".to_owned());
    let Ok(url) = http::url_on(own_address(local), &path) else {
        return;
    };
    let job = CatchUp {
        api: registered.api.clone(),
        webhook_id: webhook.id.clone(),
        secret: webhook.signing_secret(),
        url: url.to_string(),
        store_at,
        since,
        tell,
        notices: (!headless).then(|| store.clone()),
    };
    if tell {
        eprintln!(
            "danube-hooks: catch-up: looking in Danube's log for deliveries since {} that never \
             arrived",
            delivery::format_time(&since)
        );
    }
    tokio::spawn(async move {
        tokio::select! {
            () = job.run() => {}
            () = shutdown.cancelled() => {}
        }
    });
}

/// A listener bound to every interface is still reached on loopback.
fn own_address(local: SocketAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    }
}
