//! The history the dashboard opens with: the store's latest deliveries from
//! before this start, read off the event loop, and the starts of the
//! listener among them, which the list marks with a divider row.
//!
//! - The read ([`store::read_tail`]) costs what it keeps, whatever the
//!   store's size: the newest records back from the end, within the
//!   history's record cap (`--history N`) and byte budget.
//! - The listener serves before the read begins, and never waits for it.
//!   The first frame waits for it at most [`QUICK`]; past that the
//!   dashboard is drawn without it, the read goes on in the background
//!   with its progress on the status line, and deliveries that arrive
//!   meanwhile are shown as they come (the earlier ones go in before them).
//! - A start is known from the store's starts file (`store::starts`); this
//!   start is known here even when that file could not be written.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;

use super::app::{App, StatusKind};
use super::runs::Runs;
use crate::delivery::Delivery;
use crate::store::{self, Start, TailLimits};

/// How long the first frame waits for the history before it is drawn
/// without it.
pub(crate) const QUICK: Duration = Duration::from_millis(300);
/// How often a read still under way tells how far it has got.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// The status line's words while the read goes on.
const READING: &str = "reading the store's latest deliveries";

/// What to read: `--history N` and `--fresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlierPlan {
    /// Records to read at most (`--history N`); 0 reads none (`--fresh`).
    pub records: usize,
    /// The id of this start's first record: records from it on are this
    /// run's, which the store announces.
    pub first_id: u64,
}

/// What the read found: the deliveries, oldest first, and the starts.
#[derive(Debug)]
pub struct Earlier {
    pub(crate) deliveries: Vec<Arc<Delivery>>,
    pub(crate) runs: Runs,
}

impl Earlier {
    /// `deliveries` (oldest first) from before the start whose first
    /// record is `current`, among `starts`.
    pub(crate) fn new(deliveries: Vec<Arc<Delivery>>, starts: Vec<Start>, current: u64) -> Self {
        let loaded = deliveries.len();
        Self {
            deliveries,
            runs: Runs::new(starts, current, loaded),
        }
    }
}

/// Read the latest deliveries of the store file at `path` for `plan`,
/// within `budget` bytes; `progress` is told how many so far.
pub fn read(
    path: &Path,
    plan: EarlierPlan,
    budget: usize,
    progress: impl FnMut(usize),
) -> Result<Earlier, String> {
    read_at(
        &store::Location::File(path.to_path_buf()),
        plan,
        None,
        budget,
        progress,
    )
}

/// [`read`] from a store wherever it is; only `listener`'s deliveries when
/// given (a shared store holds every listener's).
pub(crate) fn read_at(
    at: &store::Location,
    plan: EarlierPlan,
    listener: Option<String>,
    budget: usize,
    progress: impl FnMut(usize),
) -> Result<Earlier, String> {
    let limits = TailLimits {
        records: plan.records,
        bytes: budget,
        below_id: plan.first_id,
        listener,
    };
    let tail = store::read_tail(at, limits, progress).map_err(|err| err.to_string())?;
    let mut starts = store::read_starts(at);
    if starts
        .last()
        .is_none_or(|last| last.first_id < plan.first_id)
    {
        starts.push(Start {
            first_id: plan.first_id,
            at: Utc::now(),
            listener: None,
        });
    }
    let deliveries = tail.records.into_iter().map(Arc::new).collect();
    Ok(Earlier::new(deliveries, starts, plan.first_id))
}

/// What the read tells the event loop.
#[derive(Debug)]
pub(crate) enum Loading {
    /// Deliveries read so far.
    Progress(usize),
    Done(Result<Earlier, String>),
}

/// The read while it is under way: what the event loop listens to
/// (none by default).
#[derive(Default)]
pub(crate) struct Reading(Option<mpsc::UnboundedReceiver<Loading>>);

impl Reading {
    /// Start the read off the event loop; none when there is nothing to
    /// read (`--fresh`, `--no-store`). Only `listener`'s deliveries when
    /// given, as [`read_at`] reads.
    pub(crate) fn start(
        at: Option<store::Location>,
        listener: Option<String>,
        plan: EarlierPlan,
        budget: usize,
    ) -> Self {
        let Some(at) = at.filter(|_| plan.records > 0) else {
            return Self(None);
        };
        let (loading_tx, loading_rx) = mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            let mut told = Instant::now();
            let result = read_at(&at, plan, listener, budget, |n| {
                if told.elapsed() >= PROGRESS_EVERY {
                    told = Instant::now();
                    let _ = loading_tx.send(Loading::Progress(n));
                }
            });
            let _ = loading_tx.send(Loading::Done(result));
        });
        Self(Some(loading_rx))
    }

    /// A history read already (`dashboard`, which reads it before its live
    /// feed starts, so that no delivery is shown twice): taken before the
    /// first frame.
    pub(crate) fn ready(earlier: Earlier) -> Self {
        let (loading_tx, loading_rx) = mpsc::unbounded_channel();
        let _ = loading_tx.send(Loading::Done(Ok(earlier)));
        Self(Some(loading_rx))
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The read's next word; never, once it is over.
    pub(crate) async fn next(&mut self) -> Loading {
        match self.0.as_mut() {
            Some(loading_rx) => loading_rx.recv().await.unwrap_or_else(|| {
                Loading::Done(Err("the read stopped before it was done".to_owned()))
            }),
            None => std::future::pending().await,
        }
    }

    /// Before the first frame: the read, if it ends within [`QUICK`]. An
    /// error to log, if it failed.
    pub(crate) async fn wait_briefly(&mut self, app: &mut App) -> Option<String> {
        let deadline = tokio::time::Instant::now() + QUICK;
        while self.is_on() {
            let loading = tokio::time::timeout_at(deadline, self.next()).await.ok()?;
            if let Some(error) = self.take(app, loading) {
                return Some(error);
            }
        }
        None
    }

    /// One word from the read, for `app`; an error to log, if it failed
    /// (the status line has said so).
    pub(crate) fn take(&mut self, app: &mut App, loading: Loading) -> Option<String> {
        if matches!(loading, Loading::Done(_)) {
            self.0 = None;
        }
        take(app, loading).err()
    }
}

/// One word from the read: its progress on the status line, or what it
/// read into the history; an error is given back for the log, after the
/// status line has said it.
fn take(app: &mut App, loading: Loading) -> Result<(), String> {
    let ours = app
        .status()
        .is_none_or(|status| status.text.starts_with(READING));
    match loading {
        Loading::Progress(n) => {
            if ours {
                app.set_status(
                    StatusKind::Info,
                    format!("{READING}… {n} so far (listening already)"),
                );
            }
            Ok(())
        }
        Loading::Done(Ok(earlier)) => {
            let n = earlier.deliveries.len();
            app.take_earlier(earlier);
            if ours && app.status().is_some() {
                app.set_status(
                    StatusKind::Info,
                    format!(
                        "read {n} earlier {} from the store",
                        if n == 1 { "delivery" } else { "deliveries" }
                    ),
                );
            }
            Ok(())
        }
        Loading::Done(Err(error)) => {
            let error = format!("could not read the store's earlier deliveries: {error}");
            app.set_status(StatusKind::Error, error.clone());
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sample, start};

    fn app() -> App {
        let policy = crate::policy::PolicyHandle::new(crate::policy::Policy::default_for(false));
        App::new(crate::test_support::app_config(), policy)
    }

    fn status(app: &App) -> Option<(StatusKind, &str)> {
        app.status().map(|s| (s.kind, s.text.as_str()))
    }

    #[test]
    fn a_slow_read_tells_its_progress_without_hiding_a_warning() {
        let earlier = || Earlier::new(vec![Arc::new(sample(1, b"{}"))], vec![start(1)], 2);
        let mut quiet = app();
        let mut reading = Reading::default();
        assert_eq!(reading.take(&mut quiet, Loading::Progress(40)), None);
        assert_eq!(
            status(&quiet),
            Some((
                StatusKind::Info,
                "reading the store's latest deliveries… 40 so far (listening already)"
            ))
        );
        assert_eq!(reading.take(&mut quiet, Loading::Done(Ok(earlier()))), None);
        assert_eq!(
            status(&quiet),
            Some((StatusKind::Info, "read 1 earlier delivery from the store"))
        );
        assert_eq!(quiet.history_len(), 1);

        let mut warned = app();
        warned.set_status(
            StatusKind::Error,
            "--insecure: certificates are not checked",
        );
        let _ = reading.take(&mut warned, Loading::Progress(40));
        let _ = reading.take(&mut warned, Loading::Done(Ok(earlier())));
        assert_eq!(
            status(&warned),
            Some((
                StatusKind::Error,
                "--insecure: certificates are not checked"
            )),
            "the start's warning stays"
        );

        let mut failed = app();
        let error = reading.take(&mut failed, Loading::Done(Err("disk on fire".into())));
        assert_eq!(
            error.as_deref(),
            Some("could not read the store's earlier deliveries: disk on fire")
        );
        assert_eq!(status(&failed).unwrap().0, StatusKind::Error);
    }
}
