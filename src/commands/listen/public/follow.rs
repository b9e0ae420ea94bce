//! `listen`'s public side while listening: each event of the tunnel's
//! supervision told on a view (the dashboard's header rows and status
//! line, or stderr), a new URL proved and the webhook re-pointed; and on
//! the way out, the tunnel ended and the webhook paused.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Proof, Public};
use crate::danube::api::Api;
use crate::danube::register;
use crate::danube::tunnel::supervisor::TunnelEvent;
use crate::danube::tunnel::{self, Notice, PublicUrl, View, reach};
use crate::display::escape_line;
use crate::http::Sender;
use crate::server::reach::ReachProbes;

/// How many proof windows a start again's new URL gets.
const REPOINT_PATIENCE: u32 = 3;

impl Public {
    /// Follow the tunnel while listening: each start again is told, and a
    /// new URL proved and the webhook re-pointed. What is shown comes on
    /// the returned view.
    pub(crate) fn follow(mut self, trust: &crate::http::Trust, probes: ReachProbes) -> Following {
        let sender = Sender::new(trust, super::PROBE_ANSWER_BYTES);
        let (view_tx, view_rx) = watch::channel(self.view());
        // The follower reads the events; the state keeps the rest.
        let events = self.tunnel.as_mut().and_then(|tunnel| tunnel.events.take());
        let state = Arc::new(Mutex::new(self));
        let stop = CancellationToken::new();
        let task = events.map(|events| {
            tokio::spawn(follow_events(
                events,
                Arc::clone(&state),
                sender,
                probes,
                view_tx,
                stop.clone(),
            ))
        });
        Following {
            state,
            stop,
            task,
            view: view_rx,
        }
    }
}

/// The public side while listening.
pub(crate) struct Following {
    state: Arc<Mutex<Public>>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    pub(crate) view: watch::Receiver<View>,
}

impl Following {
    /// The webhook whose Danube side the dashboard shows.
    pub(crate) async fn webhook(&self) -> Option<(Api, String)> {
        let state = self.state.lock().await;
        state
            .registered
            .as_ref()
            .map(|r| (r.api.clone(), r.registration.webhook.id.clone()))
    }

    /// Stop following (a re-point under way is dropped: it changes only
    /// the URL, never whether the webhook is active), end the tunnel, and
    /// pause (or delete, or leave) the webhook.
    pub(crate) async fn close(self) {
        self.stop.cancel();
        if let Some(task) = self.task {
            let _ = task.await;
        }
        // The follower has ended (or never ran): the state is free.
        let mut public = self.state.lock().await;
        if let Some(tunnel) = public.tunnel.take() {
            tunnel.close().await;
        }
        if let Some(registered) = &public.registered {
            registered.finish().await;
        }
    }
}

/// The follower: each event of the supervisor, told on `view_tx`.
async fn follow_events(
    mut events: mpsc::Receiver<TunnelEvent>,
    state: Arc<Mutex<Public>>,
    sender: Sender,
    probes: ReachProbes,
    view_tx: watch::Sender<View>,
    stop: CancellationToken,
) {
    let mut seq = 0;
    let mut tell = |view: View, text: String, is_error: bool| {
        seq += 1;
        let _ = view_tx.send(View {
            notice: Some(Notice {
                seq,
                text,
                is_error,
            }),
            ..view
        });
    };
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = stop.cancelled() => return,
        };
        let Some(event) = event else { return };
        let mut public = state.lock().await;
        let handled = async {
            match event {
                TunnelEvent::Started { pid, .. } => {
                    if let Some(tunnel) = public.tunnel.as_mut() {
                        tunnel.pid = pid;
                        tunnel.starts += 1;
                    }
                    None
                }
                TunnelEvent::Down {
                    why, restart_in, ..
                } => {
                    let name = public
                        .tunnel
                        .as_ref()
                        .map_or("the tunnel", |t| t.program.name());
                    let next = restart_in.map_or_else(
                        || "it is not started again".to_owned(),
                        |wait| format!("starting it again in {} s", wait.as_secs()),
                    );
                    Some((
                        format!("{name} stopped: {}; {next}", escape_line(&why)),
                        true,
                    ))
                }
                TunnelEvent::Up { url, .. } => {
                    Some(took_up(&mut public, url, &sender, &probes).await)
                }
            }
        };
        let told = tokio::select! {
            told = handled => told,
            () = stop.cancelled() => return,
        };
        if let Some((text, is_error)) = told {
            tell(public.view(), text, is_error);
        }
    }
}

/// The tunnel gave a URL again: the same one, or a new one to prove and
/// point the webhook at. What to tell, and whether it is an error.
async fn took_up(
    public: &mut Public,
    url: PublicUrl,
    sender: &Sender,
    probes: &ReachProbes,
) -> (String, bool) {
    let name = public
        .tunnel
        .as_ref()
        .map_or("the tunnel", |t| t.program.name());
    let shown = tunnel::shown_origin(&url.origin);
    if url.origin == public.url.origin {
        return (format!("{name} started again; same URL {shown}"), false);
    }
    // A URL a start again gives may take longer to route than a first one
    // is given (the listener is up already; nothing else waits on it).
    let window = reach::window() * REPOINT_PATIENCE;
    let verify = public.proof != Proof::Skipped;
    if verify && let Err(why) = reach::prove(sender, probes, &url.origin, window).await {
        // The URL shown and registered stays the last one proved: the next
        // start again is proved anew.
        return (
            format!(
                "{name} started again with a new URL {shown}, which does not reach this \
                 listener ({}); the webhook was left as it was",
                escape_line(&why)
            ),
            true,
        );
    }
    public.url = url;
    let webhook_url = public.webhook_url_text();
    let path = public.path.clone();
    match public.registered.as_mut() {
        Some(registered) => {
            let Ok(target) = public.url.webhook_url(&path) else {
                return (format!("{name} started again with a new URL {shown}"), true);
            };
            let api = registered.api.clone();
            match register::repoint(
                &api,
                &registered.dir,
                &mut registered.registration,
                &target.to_string(),
            )
            .await
            {
                Ok(done) => (
                    format!("{name} started again with a new URL; {done}"),
                    false,
                ),
                Err(failed) => (
                    format!("{name} started again with a new URL; {failed}"),
                    true,
                ),
            }
        }
        None => (
            format!(
                "{name} started again with a new URL: paste {webhook_url} as the webhook URL in \
                 Danube"
            ),
            true,
        ),
    }
}
