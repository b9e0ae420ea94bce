//! The dashboard of `listen`, and of `dashboard` (a viewer of a shared
//! store, fed through a store that only announces: [`Viewer`]): the one
//! event loop.
//!
//! State and keys live in [`app`], drawing in `view`; this module does the
//! I/O around them: it reads the terminal's events, follows the store's
//! broadcast, draws, and carries out the `app::Effect`s (copy, replay, and
//! `editor`'s edit). The terminal's guard and panic hook are `terminal`'s,
//! the log file that stands in for stderr meanwhile `log_file`'s.
//!
//! - The listener never waits for the screen: deliveries arrive through the
//!   store's bounded broadcast; everything pending is drained once per
//!   frame; a lag is made good from the store file, or counted as skipped
//!   with `--no-store`.
//! - A frame is drawn only when something changed, at most every
//!   `FRAME`, and only the visible rows are built, once a frame: the
//!   layout (`fit`) builds the detail's rows, and the frame draws them.
//! - The terminal is given back on quit, on error and on panic (a Drop
//!   guard and a panic hook); while the alternate screen is up nothing goes
//!   to stderr: warnings, replay errors and panics of other threads go to a
//!   log file.
//!
//! The loop must run on the thread that called `run` (it is awaited, not
//! spawned): the panic hook tells a panic of the dashboard itself, which
//! must restore the terminal, from a panic of a listener task, which must
//! only be logged, by that thread.

pub mod app;
mod config;
mod danube_side;
mod editor;
pub(crate) use editor::editor_has_terminal;
pub mod earlier;
mod filter;
mod history;
mod in_flight;
mod line_input;
mod log_file;
mod picker;
mod runs;
mod terminal;
mod view;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use futures_util::StreamExt as _;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use ratatui::layout::Rect;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::delivery::Delivery;
use crate::policy::PolicyHandle;
use crate::store::{self, DeliveryStore, StoreEvent};
use app::{App, Effect, StatusKind};
use config::{AppConfig, HISTORY_BYTES, HISTORY_CAP, RegisteredWith};
use log_file::LogFile;
use terminal::{OTHER_PANICS, Term, TerminalGuard};

/// The shortest time between two frames: about 30 a second.
pub(crate) const FRAME: Duration = Duration::from_millis(33);

pub(crate) use crate::delivery::ReplayMode;

/// Resends a stored delivery, or a changed copy of it (`e`); Ok is a
/// one-line summary of what the target answered.
pub(crate) type Replayer = std::sync::Arc<
    dyn Fn(
            std::sync::Arc<crate::delivery::Delivery>,
            ReplayMode,
            Option<crate::resend::Edited>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

/// What `listen` hands the dashboard.
pub(crate) struct Setup {
    /// Where deliveries are received, e.g. `http://127.0.0.1:4000`; also
    /// where a copied curl command sends its request.
    pub(crate) listen_url: String,
    pub(crate) fingerprints: Vec<String>,
    pub(crate) forward_url: Option<String>,
    pub(crate) store: DeliveryStore,
    /// Subscribed before the listener started, so nothing is missed.
    pub(crate) events: broadcast::Receiver<StoreEvent>,
    pub(crate) policy: PolicyHandle,
    pub(crate) replayer: Replayer,
    /// Cancelled on SIGINT or SIGTERM.
    pub(crate) shutdown: CancellationToken,
    /// Warnings from the start (the banner's), shown on the status line
    /// since the alternate screen hides the banner.
    pub(crate) warnings: Vec<String>,
    /// `--register`'s webhook: id, URL, fingerprint, what happens on exit.
    /// Set only when one was registered, with `danube` polling the API it
    /// was registered with: the two say whom the empty list suggests
    /// asking for a first delivery ([`config::RegisteredWith`]).
    pub(crate) danube_webhook: Option<String>,
    /// Danube's delivery log, polled, when a webhook is known.
    pub(crate) danube: Option<crate::danube::poller::Handle>,
    /// `listen --tunnel`'s tunnel and webhook as they change (a start
    /// again, a re-point), for the header rows and the status line.
    pub(crate) public: Option<watch::Receiver<crate::danube::tunnel::View>>,
    /// The store's deliveries from before this start to open with.
    pub(crate) earlier: earlier::EarlierPlan,
    /// The history read already, instead of `earlier` (`dashboard`).
    pub(crate) earlier_read: Option<earlier::Earlier>,
    /// `dashboard`: a viewer of a shared store, with no listener.
    pub(crate) viewer: Option<Viewer>,
    /// `listen` on a shared store: its name (`--name`). Its history and
    /// a resync read only its own rows, as its announcements hold only its
    /// own deliveries; `None` reads every row (a file holds one listener's).
    pub(crate) own_rows: Option<String>,
}

/// What sets a viewer's dashboard (`dashboard`) apart from a listener's:
/// there is no listener to send to or to set a policy for.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// `--to`: where `r`, `R`, `e` and `c`'s curl command send.
    pub(crate) replay_to: Option<String>,
}

/// Run the dashboard until `q`, Ctrl-C or `shutdown`; sync the store, give
/// the terminal back, and return the log file if anything was written to it.
pub(crate) async fn run(setup: Setup) -> anyhow::Result<Option<PathBuf>> {
    let store_path = setup.store.path().map(Path::to_path_buf);
    let mut log = LogFile::beside(store_path.as_deref());
    let config = app_config(&setup, store_path, log.path.clone());
    let mut app = App::new(config, setup.policy.clone());
    app.start_at(setup.earlier.first_id);
    let store_at = setup.store.location();
    let mut reading = match setup.earlier_read {
        Some(read) => earlier::Reading::ready(read),
        None => earlier::Reading::start(
            store_at.clone(),
            setup.own_rows.clone(),
            setup.earlier,
            HISTORY_BYTES,
        ),
    };
    if let Some(danube) = &setup.danube {
        app.watch_danube(danube.webhook_id.clone(), chrono::Utc::now());
    }
    if !setup.warnings.is_empty() {
        app.set_status(StatusKind::Error, setup.warnings.join(" · "));
    }
    let mut guard = TerminalGuard::enter(log.path.clone()).context("cannot start the dashboard")?;
    if let Some(error) = reading.wait_briefly(&mut app).await {
        log.write(&error);
    }
    let mut looping = Loop {
        store: setup.store.clone(),
        store_rx: setup.events,
        store_open: true,
        store_at,
        own_rows: setup.own_rows,
        replayer: setup.replayer,
        // A viewer's copied curl command goes where its replays go.
        curl_base: match setup.viewer {
            Some(viewer) => viewer.replay_to.unwrap_or_default(),
            None => setup.listen_url,
        },
        log,
        panics_seen: 0,
        polls_rx: setup.danube.as_ref().map(|d| d.polls_rx.clone()),
        poll_due: false,
        danube: setup.danube,
        public: setup.public,
        earlier: reading,
    };
    let result = looping
        .run(&mut guard.terminal, &mut app, &setup.shutdown)
        .await;
    // q promises a synced store; listen closes it after this returns.
    app.set_status(StatusKind::Info, "syncing the store…");
    let _ = guard
        .terminal
        .draw(|frame| frame.render_widget(&app, frame.area()));
    if let Err(err) = setup.store.sync().await {
        looping
            .log
            .write(&format!("could not sync the store on quit: {err}"));
    }
    drop(guard);
    result?;
    Ok(looping.log.written.then_some(looping.log.path))
}

/// What the dashboard shows of its setup, and its bounds.
fn app_config(setup: &Setup, store_path: Option<PathBuf>, log_path: PathBuf) -> AppConfig {
    AppConfig {
        listen_url: setup.listen_url.clone(),
        fingerprints: setup.fingerprints.clone(),
        store_path,
        shared_store: match setup.store.location() {
            Some(crate::store::Location::Postgres(target)) => Some(target.shown.clone()),
            _ => None,
        },
        forward_url: setup.forward_url.clone(),
        danube_webhook: setup.danube_webhook.clone(),
        tunnel: setup
            .public
            .as_ref()
            .and_then(|public| public.borrow().tunnel.clone()),
        registered_with: match (&setup.danube_webhook, &setup.danube) {
            (Some(_), Some(danube)) => RegisteredWith::api(&danube.api_origin),
            (Some(_), None) => RegisteredWith::Danube,
            (None, _) => RegisteredWith::Nothing,
        },
        log_path,
        color: color_allowed(std::env::var_os("NO_COLOR").as_deref()),
        utc_offset: *chrono::Local::now().offset(),
        history_cap: HISTORY_CAP,
        history_bytes: HISTORY_BYTES,
        viewer: setup.viewer.is_some(),
    }
}

/// Returns when what `watched` holds has changed (`true`) or its sender is
/// gone (`false`); never while there is nothing to watch.
async fn changed<T>(watched: &mut Option<watch::Receiver<T>>) -> bool {
    match watched {
        Some(watched) => watched.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// `NO_COLOR` set to anything but the empty string turns colour off.
pub(crate) fn color_allowed(no_color: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// The one event enum of the loop.
enum Event {
    Terminal(TermEvent),
    TerminalGone(Option<io::Error>),
    Store(Result<StoreEvent, RecvError>),
    Replayed {
        id: u64,
        mode: ReplayMode,
        result: Result<String, String>,
    },
    /// A new answer from Danube's API, taken at the next frame.
    DanubePolled,
    /// The poller has stopped (shutdown).
    DanubeGone,
    /// The tunnel or the webhook changed (`true`), or nothing more will
    /// change there (`false`: shutdown).
    Public(bool),
    /// A body out of memory, read back from the store.
    ReadBack {
        id: u64,
        result: Result<Box<Delivery>, String>,
    },
    /// Word from the read of the store's earlier deliveries.
    Earlier(earlier::Loading),
    /// Time for a frame that is due.
    Frame,
    /// Time to redraw the counts of the deliveries in flight.
    Tick,
    Shutdown,
}

struct Loop {
    /// For the deliveries in flight after a lag.
    store: DeliveryStore,
    store_rx: broadcast::Receiver<StoreEvent>,
    store_open: bool,
    /// Where records are read back from (`None`: `--no-store`).
    store_at: Option<store::Location>,
    /// Only this listener's rows are read back ([`Setup::own_rows`]).
    own_rows: Option<String>,
    replayer: Replayer,
    curl_base: String,
    log: LogFile,
    panics_seen: usize,
    danube: Option<crate::danube::poller::Handle>,
    /// The poller's answers: only the newest counts, applied at the next
    /// frame (`poll_due`).
    polls_rx: Option<watch::Receiver<Option<Arc<crate::danube::poller::Poll>>>>,
    poll_due: bool,
    public: Option<watch::Receiver<crate::danube::tunnel::View>>,
    /// The read of the store's earlier deliveries, while under way.
    earlier: earlier::Reading,
}

impl Loop {
    /// `D`: ask Danube now rather than at the next 5 s.
    fn poll_danube(&self) {
        if let Some(danube) = &self.danube {
            danube.poll_now();
        }
    }

    /// The one loop: a frame when one is due, then the next event.
    async fn run(
        &mut self,
        terminal: &mut Term,
        app: &mut App,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        // crossterm's EventStream rather than a blocking reader thread: it
        // wakes this one select! like every other source, and stops
        // reading the terminal when dropped, so no thread is left blocked
        // on stdin after the dashboard returns.
        let mut term_events = EventStream::new();
        let (replay_tx, mut replay_rx) = mpsc::unbounded_channel();
        // One read at a time (the App asks once per selection), so at most
        // one body is in this channel.
        let (read_back_tx, mut read_back_rx) = mpsc::unbounded_channel();
        let mut dirty = true;
        let mut last_draw: Option<Instant> = None;
        loop {
            if dirty && last_draw.is_none_or(|at| at.elapsed() >= FRAME) {
                self.frame(terminal, app, &read_back_tx).await?;
                last_draw = Some(Instant::now());
                dirty = false;
            }
            let next_frame = last_draw.map_or_else(Instant::now, |at| at + FRAME);
            let event = tokio::select! {
                () = shutdown.cancelled() => Event::Shutdown,
                () = tokio::time::sleep_until(next_frame.into()), if dirty => Event::Frame,
                // While a delivery is in flight its count of how long it
                // has been held goes on, so a frame is due now and then.
                () = tokio::time::sleep_until(
                    (last_draw.unwrap_or_else(Instant::now) + in_flight::TICK).into()
                ), if !dirty && !app.in_flight.is_empty() => Event::Tick,
                event = term_events.next() => match event {
                    Some(Ok(event)) => Event::Terminal(event),
                    Some(Err(err)) => Event::TerminalGone(Some(err)),
                    None => Event::TerminalGone(None),
                },
                // While a frame is due, deliveries wait in the broadcast and
                // are drained all at once before it is drawn.
                event = self.store_rx.recv(), if !dirty && self.store_open => Event::Store(event),
                Some((id, mode, result)) = replay_rx.recv() => Event::Replayed { id, mode, result },
                Some((id, result)) = read_back_rx.recv() => Event::ReadBack { id, result },
                polled = changed(&mut self.polls_rx), if self.polls_rx.is_some() => {
                    if polled { Event::DanubePolled } else { Event::DanubeGone }
                }
                alive = changed(&mut self.public), if self.public.is_some() => Event::Public(alive),
                loading = self.earlier.next(), if self.earlier.is_on() => Event::Earlier(loading),
            };
            match self
                .handle(event, terminal, app, &replay_tx, &mut term_events)
                .await
            {
                ControlFlow::Break(end) => return end,
                ControlFlow::Continue(redraw) => dirty |= redraw,
            }
        }
    }

    /// Draw a frame: first take in what waited for it (the broadcast,
    /// Danube's newest answer, panics of other threads), and ask for the
    /// selected body when it must be read back; then lay out and draw.
    async fn frame(
        &mut self,
        terminal: &mut Term,
        app: &mut App,
        read_back_tx: &mpsc::UnboundedSender<(u64, Result<Box<Delivery>, String>)>,
    ) -> anyhow::Result<()> {
        self.drain_store(app).await;
        if std::mem::take(&mut self.poll_due)
            && let Some(poll) = self.polls_rx.as_ref().and_then(|rx| rx.borrow().clone())
        {
            app.apply_danube(&poll);
        }
        self.note_other_panics(app);
        self.read_back(app, read_back_tx);
        app.in_flight.set_now(Instant::now());
        let size = terminal.size().context("cannot read the terminal size")?;
        let detail = fit(app, Rect::new(0, 0, size.width, size.height));
        let screen = view::Screen {
            app,
            detail: &detail,
        };
        terminal
            .draw(|frame| frame.render_widget(screen, frame.area()))
            .context("cannot draw the dashboard")?;
        Ok(())
    }

    /// One event's work: whether there is something new to draw, or the
    /// end of the loop and how it ended.
    async fn handle(
        &mut self,
        event: Event,
        terminal: &mut Term,
        app: &mut App,
        replay_tx: &mpsc::UnboundedSender<(u64, ReplayMode, Result<String, String>)>,
        term_events: &mut EventStream,
    ) -> ControlFlow<anyhow::Result<()>, bool> {
        match event {
            Event::Shutdown => return ControlFlow::Break(Ok(())),
            Event::TerminalGone(err) => {
                return ControlFlow::Break(Err(err.map_or_else(
                    || anyhow::anyhow!("the terminal closed"),
                    |err| anyhow::Error::new(err).context("cannot read the terminal"),
                )));
            }
            Event::Terminal(TermEvent::Key(key)) => {
                if key.kind == KeyEventKind::Release {
                    return ControlFlow::Continue(false);
                }
                match app.handle_key(key) {
                    Effect::None => {}
                    Effect::Quit => return ControlFlow::Break(Ok(())),
                    Effect::Copy(delivery) => self.copy(terminal, app, &delivery),
                    Effect::PollDanube => self.poll_danube(),
                    Effect::Replay(delivery, mode) => {
                        self.replay(delivery, mode, None, replay_tx.clone());
                    }
                    Effect::Edit(delivery) => {
                        let edited = self.edit(terminal, app, delivery, term_events, replay_tx);
                        if let Err(err) = edited.await {
                            return ControlFlow::Break(Err(err));
                        }
                    }
                }
            }
            Event::Terminal(TermEvent::Resize(..)) | Event::Tick => {}
            Event::Store(event) => self.take(app, event).await,
            Event::Replayed { id, mode, result } => {
                if let Err(error) = &result {
                    self.log.write(&format!(
                        "replay of #{id} ({}) failed: {error}",
                        app::replay_label(mode)
                    ));
                }
                app.replay_finished(id, mode, result);
            }
            Event::DanubePolled => self.poll_due = true,
            Event::DanubeGone => {
                self.polls_rx = None;
                return ControlFlow::Continue(false);
            }
            Event::Public(alive) => return ControlFlow::Continue(self.take_public(app, alive)),
            Event::ReadBack { id, result } => app.read_back(id, result.map(|d| *d)),
            Event::Earlier(loading) => {
                if let Some(error) = self.earlier.take(app, loading) {
                    self.log.write(&error);
                }
            }
            // A frame falls due at the top of the loop; mouse, focus and
            // paste events change nothing.
            Event::Frame | Event::Terminal(_) => return ControlFlow::Continue(false),
        }
        ControlFlow::Continue(true)
    }

    /// The public side changed: show it; `alive` false stops watching it.
    /// Whether there is something new to draw.
    fn take_public(&mut self, app: &mut App, alive: bool) -> bool {
        match self.public.as_mut() {
            Some(public) if alive => {
                app.apply_public(&public.borrow_and_update());
                true
            }
            _ => {
                self.public = None;
                false
            }
        }
    }

    /// Resend `delivery`, or a changed copy (`edit`: the change and a line
    /// that says what it changed), off this loop; the outcome comes back
    /// on `replay_tx`, with that line.
    fn replay(
        &self,
        delivery: Arc<Delivery>,
        mode: ReplayMode,
        edit: Option<(crate::resend::Edited, String)>,
        replay_tx: mpsc::UnboundedSender<(u64, ReplayMode, Result<String, String>)>,
    ) {
        let id = delivery.id;
        let (edited, changes) = edit.unzip();
        let replay = (self.replayer)(delivery, mode, edited);
        tokio::spawn(async move {
            let result = match changes {
                Some(changes) => replay
                    .await
                    .map(|answer| format!("edited {changes} · {answer}"))
                    .map_err(|error| format!("{error} · edited: {changes}")),
                None => replay.await,
            };
            let _ = replay_tx.send((id, mode, result));
        });
    }

    /// Read the selected delivery back from the store when its body is out
    /// of memory: off this thread, once per selection, so the loop never
    /// waits on the file.
    fn read_back(
        &self,
        app: &mut App,
        read_back_tx: &mpsc::UnboundedSender<(u64, Result<Box<Delivery>, String>)>,
    ) {
        let (Some(id), Some(at)) = (app.body_to_read_back(), self.store_at.clone()) else {
            return;
        };
        let read_back_tx = read_back_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = store::find(&at, id)
                .map(Box::new)
                .map_err(|err| err.to_string());
            let _ = read_back_tx.send((id, result));
        });
    }

    /// Everything pending in the broadcast, at most one channel's worth so
    /// a flood cannot hold the frame up for ever.
    async fn drain_store(&mut self, app: &mut App) {
        for _ in 0..store::EVENT_CAPACITY {
            if !self.store_open {
                return;
            }
            let event = match self.store_rx.try_recv() {
                Ok(event) => Ok(event),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
            };
            self.take(app, event).await;
        }
    }

    async fn take(&mut self, app: &mut App, event: Result<StoreEvent, RecvError>) {
        match event {
            // An elided record comes without its body (the broadcast was
            // past its byte budget); the body is in the store
            // (`store::find`).
            Ok(StoreEvent::Delivery(delivery, _) | StoreEvent::BodyElided(delivery)) => {
                app.ingest(delivery);
            }
            Ok(StoreEvent::Arrived(arrival)) => app.in_flight.arrive(arrival),
            Ok(StoreEvent::Settled(number)) => app.in_flight.settle(number),
            Ok(StoreEvent::Mirrored { id, index, mirror }) => app.mirrored(id, index, &mirror),
            Ok(StoreEvent::Notice(message)) => app.set_status(StatusKind::Info, message),
            Ok(StoreEvent::Warning(message)) => {
                self.log.write(&format!("store: {message}"));
                app.set_status(
                    StatusKind::Error,
                    format!("store: {message} · logged (? shows where)"),
                );
            }
            Err(RecvError::Lagged(missed)) => {
                // Arrivals and settles may be among what was missed.
                app.in_flight.replace(self.store.in_flight());
                self.resync(app, missed).await;
            }
            Err(RecvError::Closed) => self.store_open = false,
        }
    }

    /// The dashboard fell `missed` records behind the broadcast: read them
    /// back from the store file (off this thread), or count them skipped.
    /// Streamed, one record at a time, keeping only the summaries of the
    /// newest `history_cap`: the bodies are read back when shown. (Read
    /// whole, a history's worth of 1 MiB records is 10 GB at once.)
    async fn resync(&mut self, app: &mut App, missed: u64) {
        let Some(at) = self.store_at.clone() else {
            app.note_skipped(missed);
            return;
        };
        let own = self.own_rows.clone();
        let after = crate::store::postgres::resync_after(app.last_id(), own.is_some());
        let cap = app.config.history_cap.max(1);
        let read = tokio::task::spawn_blocking(move || {
            let mut summaries = VecDeque::new();
            store::each_forward::<Delivery>(&at, Some(after), |entry| {
                if let store::Entry::Record(mut record) = entry
                    && own
                        .as_ref()
                        .is_none_or(|own| record.listener.as_ref() == Some(own))
                {
                    if summaries.len() == cap {
                        summaries.pop_front();
                    }
                    // A summary: the record is ours, so its body is dropped
                    // rather than every other field copied.
                    record.body = Vec::new();
                    summaries.push_back(record);
                }
                ControlFlow::Continue(())
            })
            .map(|()| summaries)
        })
        .await;
        match read
            .map_err(|err| err.to_string())
            .and_then(|read| read.map_err(|err| err.to_string()))
        {
            Ok(summaries) => {
                for summary in summaries {
                    app.ingest(Arc::new(summary));
                }
            }
            Err(err) => {
                app.note_skipped(missed);
                self.log
                    .write(&format!("could not read back from the store: {err}"));
            }
        }
    }

    /// `c`: the curl command to the terminal's clipboard (OSC 52) and to a
    /// file, whose path the status line shows.
    fn copy(&mut self, terminal: &mut Term, app: &mut App, delivery: &Delivery) {
        let url = self.curl_base.parse().map_or_else(
            |_| crate::curl::arrival_url(delivery),
            |base| crate::curl::resend_url(&base, delivery),
        );
        let command = crate::curl::command(delivery, &url);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&command);
        // The command is terminal-safe (curl::quote escapes every control),
        // and OSC 52 moves no cursor, so ratatui's picture stays right.
        let clipboard = write!(terminal.backend_mut(), "\x1b]52;c;{encoded}\x07")
            .and_then(|()| terminal.backend_mut().flush());
        let file = std::env::temp_dir().join(format!("danube-hooks-curl-{}.sh", delivery.id));
        let script = format!(
            "#!/bin/sh\n# delivery #{} as received by danube-hooks, resent to the listener\n{command}\n",
            delivery.id
        );
        match crate::fsutil::write_private_in_place(&file, script.as_bytes()) {
            Ok(()) => {
                let how = if clipboard.is_ok() {
                    "copied (OSC 52) and saved to"
                } else {
                    "saved to"
                };
                app.set_status(
                    StatusKind::Success,
                    format!("curl for #{} {how} {}", delivery.id, file.display()),
                );
            }
            Err(err) => {
                let message = format!(
                    "could not save the curl command to {}: {err}",
                    file.display()
                );
                self.log.write(&message);
                app.set_status(StatusKind::Error, message);
            }
        }
    }

    fn note_other_panics(&mut self, app: &mut App) {
        let panics = OTHER_PANICS.load(Ordering::Relaxed);
        if panics != self.panics_seen {
            self.panics_seen = panics;
            app.set_status(
                StatusKind::Error,
                format!(
                    "a listener task panicked ({panics} so far); details in {}",
                    self.log.path.display()
                ),
            );
        }
    }
}

/// Lay `app` out on a screen `area`: tell it how big its panes are, and
/// build the detail's rows for the frame, which the frame then draws as
/// they are ([`view::Screen`]).
pub(crate) fn fit(app: &mut App, area: Rect) -> view::DetailRows {
    let detail = view::DetailRows::build(app, area);
    let rows = view::list_rows(app, area);
    // The deliveries in flight are pinned under the list's rows.
    let rows = rows - app.in_flight.rows_in(rows);
    app.set_geometry(rows, detail.rows(), detail.max_scroll());
    detail
}
