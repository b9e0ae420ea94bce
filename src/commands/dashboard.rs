//! `danube-hooks dashboard`: a team's shared store watched live, with no
//! listener of its own (SPEC §14). It opens with the store's latest
//! deliveries, then shows each batch as it is committed
//! (`postgres::live`), in `listen`'s own dashboard (fed through a store
//! that only announces, `DeliveryStore::bus`) or headless on stdout.
//!
//! What a dashboard may make happen: reads of the table, and replays to
//! its viewer's own target (`--to`, else the URL the delivery was
//! forwarded to), signed with its viewer's secret. Nothing it does reaches
//! a listener: it writes no row, sends no `NOTIFY`, and never sends to an
//! address a listener noted.

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::listen::Output;
use crate::cli::{DashboardArgs, UsageError};
use crate::commands::Outcome;
use crate::delivery::Delivery;
use crate::headless;
use crate::http::{self, Trust};
use crate::policy::{Policy, PolicyHandle};
use crate::signature::Secret;
use crate::store::postgres::Target;
use crate::store::postgres::live::{self, Feed, Seen};
use crate::store::{DeliveryStore, Location};
use crate::tui::{self, Replayer};

mod history;

/// Everything `dashboard` needs, checked.
struct Plan {
    target: Arc<Target>,
    /// `--to`, checked.
    to: Option<String>,
    secrets: Vec<Secret>,
    trust: Trust,
    output: Output,
    /// The store's latest deliveries to open with, at most.
    history: usize,
}

impl Plan {
    fn from_args(args: &DashboardArgs) -> anyhow::Result<Plan> {
        let target = match Location::choose(args.store.as_deref())? {
            Location::Postgres(target) => target,
            Location::File(path) => {
                return Err(UsageError::new(format!(
                    "the dashboard command is for a shared store: pass --store \
                     postgres://USER@HOST/DATABASE (or set DANUBE_HOOKS_STORE); {} is a file, \
                     whose deliveries `danube-hooks listen --store {}` shows",
                    crate::display::escape_line(&path.display().to_string()),
                    crate::display::escape_line(&path.display().to_string()),
                ))
                .into());
            }
        };
        let mut target = Target::clone(&target);
        // The one --cacert trusts the database too, over the URL's
        // sslrootcert and $PGSSLROOTCERT.
        if let Some(cacert) = &args.cacert {
            target.cacert = Some(cacert.clone());
        }
        let to = args
            .to
            .as_ref()
            .map(|url| {
                http::check_url(url)
                    .map(|_| url.clone())
                    .map_err(|err| UsageError::new(format!("--to: {err}")))
            })
            .transpose()?;
        Ok(Plan {
            target: Arc::new(target),
            to,
            secrets: args.secret.secrets()?,
            trust: args.trust()?,
            output: Output::of(&args.screen),
            history: args.screen.history_rows(),
        })
    }
}

pub(crate) fn run(args: &DashboardArgs) -> anyhow::Result<Outcome> {
    let plan = Plan::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(watch(plan))?;
    Ok(Outcome::Success)
}

/// Attach, open with the history, follow until `q` or a signal.
async fn watch(plan: Plan) -> anyhow::Result<()> {
    let signals = super::listen::Signals::default();
    tokio::spawn(super::listen::stop_on_signal(signals.clone()));
    let shutdown = signals.shutdown;
    // LISTEN before the history is read: a batch committed in between is
    // both announced and read, and shown once ([`Seen`]).
    let listening = live::listen(&plan.target).await?;
    let newest = listening.newest_id(&plan.target).await?;
    let location = Location::Postgres(Arc::clone(&plan.target));
    let history = history::read(&location, plan.history).await?;
    let earlier = history.records;
    let low = earlier
        .first()
        .map_or(newest, |first| first.id.saturating_sub(1));
    let mut seen = Seen::new(earlier.iter().map(|d| d.id), low);
    for delivery in &earlier {
        seen.mirrors_in(delivery);
    }
    let bus = DeliveryStore::bus(location);
    // Subscribed before the feed starts, so its first record is seen too.
    let events = bus.subscribe();
    let feed = Feed::new(
        Arc::clone(&plan.target),
        bus.clone(),
        seen,
        crate::tui::app::HISTORY_CAP,
    );
    let left_out = match history.unparsable {
        0 => String::new(),
        n => format!(" ({n} rows among them not records, left out)"),
    };
    eprintln!(
        "danube-hooks: watching {} (no listener here: deliveries arrive as the listeners on \
         it commit them); {} earlier {}{left_out}; replays go to {}",
        plan.target,
        earlier.len(),
        if earlier.len() == 1 {
            "delivery"
        } else {
            "deliveries"
        },
        replay_target_line(plan.to.as_deref()),
    );
    if plan.trust.is_insecure() {
        eprintln!(
            "danube-hooks: warning: {}",
            crate::commands::INSECURE_WARNING
        );
    }
    let following = tokio::spawn(feed.follow(listening, shutdown.clone()));
    let shown = match plan.output {
        Output::Headless(format) => {
            let location = Location::Postgres(Arc::clone(&plan.target));
            show_headless(location, &earlier, events, format, &shutdown).await;
            Ok(None)
        }
        Output::Dashboard => {
            let setup = setup(&plan, bus, events, earlier, shutdown.clone());
            tui::run(setup).await
        }
    };
    shutdown.cancel();
    let _ = following.await;
    if let Ok(Some(log)) = &shown {
        eprintln!("danube-hooks: warnings were logged to {}", log.display());
    }
    shown.map(|_| ())
}

/// What the banner says of `r`, `R` and `e`.
fn replay_target_line(to: Option<&str>) -> String {
    match to {
        Some(to) => crate::display::escape_line(to).into_owned(),
        None => "the URL each delivery was forwarded to (--to URL chooses one)".to_owned(),
    }
}

/// The history, then each delivery as it is committed, on stdout, until a
/// signal.
async fn show_headless(
    location: Location,
    earlier: &[Arc<Delivery>],
    events: tokio::sync::broadcast::Receiver<crate::store::StoreEvent>,
    format: headless::Format,
    shutdown: &CancellationToken,
) {
    let mut text = String::new();
    for delivery in earlier {
        text.push_str(&headless::render(delivery, format));
        text.push('\n');
    }
    if super::out(&text).is_err() {
        return;
    }
    let done = CancellationToken::new();
    // Fallen behind, it reads the rows it missed back from the table, as
    // a body left out of an announcement.
    let printer = tokio::spawn(headless::print(
        events,
        Some(location),
        None,
        format,
        done.clone(),
    ));
    shutdown.cancelled().await;
    done.cancel();
    let _ = printer.await;
}

fn setup(
    plan: &Plan,
    bus: DeliveryStore,
    events: tokio::sync::broadcast::Receiver<crate::store::StoreEvent>,
    earlier: Vec<Arc<Delivery>>,
    shutdown: CancellationToken,
) -> tui::Setup {
    let first_id = earlier.last().map_or(1, |newest| newest.id + 1);
    let mut warnings = Vec::new();
    if plan.trust.is_insecure() {
        warnings.push(crate::commands::INSECURE_WARNING.to_string());
    }
    tui::Setup {
        listen_url: plan.target.shown.clone(),
        fingerprints: plan.secrets.iter().map(Secret::fingerprint).collect(),
        forward_url: plan.to.clone(),
        store: bus,
        events,
        // Never applied: a dashboard answers nothing.
        policy: PolicyHandle::new(Policy::default_for(false)),
        replayer: replayer(plan.secrets.first().cloned(), plan.to.clone(), &plan.trust),
        shutdown,
        warnings,
        danube_webhook: None,
        danube: None,
        public: None,
        // Live rows above the history's newest come in at the end; one
        // below it (committed late) goes in its place.
        earlier: tui::earlier::EarlierPlan {
            records: 0,
            first_id,
        },
        earlier_read: Some(tui::earlier::Earlier::new(earlier, Vec::new(), first_id)),
        viewer: Some(tui::Viewer {
            replay_to: plan.to.clone(),
        }),
        own_rows: None,
    }
}

/// The dashboard's `r`, `R` and `e`: resend a delivery, or a changed copy
/// of it, to the viewer's `--to`, else to the URL it was forwarded to (read
/// back into its parts, as `replay` does), re-signed with the viewer's
/// first secret or as it was; with neither target, nothing is sent. Never
/// back to a listener: its address is another machine's, and a row's
/// bytes are anyone's who can write the table.
fn replayer(secret: Option<Secret>, to: Option<String>, trust: &Trust) -> Replayer {
    super::replayer::replayer(secret, trust, move |delivery| {
        target(to.as_deref(), delivery)
    })
}

/// Where a replay of `delivery` goes: `--to`, else where it was forwarded.
fn target(to: Option<&str>, delivery: &Delivery) -> Result<String, String> {
    match (to, &delivery.forward) {
        (Some(to), _) => Ok(to.to_owned()),
        (None, Some(forward)) => {
            super::replay::recorded_target(delivery, &forward.url).map_err(|err| err.0)
        }
        (None, None) => Err(format!(
            "nothing sent: #{} was not forwarded, and this dashboard has no --to URL of \
             yours to send it to (a dashboard never makes a listener send anything)",
            delivery.id
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::delivery::{ForwardRecord, ReplayMode};

    fn parse(args: &[&str]) -> Result<DashboardArgs, String> {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["danube-hooks", "dashboard"].iter().chain(args))
            .map_err(|err| err.to_string())?;
        let crate::cli::Command::Dashboard(args) = cli.command else {
            unreachable!("parsed as dashboard")
        };
        Ok(args)
    }

    #[test]
    fn a_file_store_is_refused_with_what_to_use() {
        let args = parse(&["--store", "/tmp/deliveries.jsonl"]).unwrap();
        let err = Plan::from_args(&args).err().unwrap();
        assert_eq!(crate::errors::class_of(&err).exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("for a shared store") && text.contains("danube-hooks listen --store"),
            "{text}"
        );
        let args = parse(&["--store", "postgres://ann:hunter2@db/hooks"]).unwrap();
        let err = Plan::from_args(&args).err().unwrap().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let args = parse(&["--store", "postgres://ann@db/hooks", "--to", "nowhere"]).unwrap();
        let err = Plan::from_args(&args).err().unwrap().to_string();
        assert!(err.starts_with("--to:"), "{err}");
    }

    /// A dashboard's replay goes to the viewer's --to, else where the
    /// delivery was forwarded; with neither, nowhere; never to the
    /// listener the record names.
    #[tokio::test]
    async fn a_replay_goes_to_the_viewers_target_only() {
        let (mine, mine_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let (forwarded, forwarded_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let (listener, listener_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let secret = Secret::new("whsec_abcdefghijklmnop1234");
        let mut delivery = crate::test_support::sample(7, b"{}");
        delivery.local_addr = Some(listener.to_string());
        let alone = Arc::new(delivery.clone());
        delivery.forward = Some(ForwardRecord {
            url: format!("http://{forwarded}/hooks"),
            status: Some(200),
            headers: Vec::new(),
            error: None,
            duration_ms: 1,
            body_preview: None,
        });
        let forwarded_one = Arc::new(delivery);
        let to = replayer(
            Some(secret.clone()),
            Some(format!("http://{mine}/mine")),
            &Trust::default(),
        );
        let no_to = replayer(Some(secret), None, &Trust::default());
        for (replay, delivery) in [(&to, &alone), (&to, &forwarded_one)] {
            let done = replay(Arc::clone(delivery), ReplayMode::Resigned, None)
                .await
                .unwrap();
            assert!(done.starts_with(&format!("http://{mine}/mine")), "{done}");
        }
        let done = no_to(Arc::clone(&forwarded_one), ReplayMode::AsIs, None)
            .await
            .unwrap();
        assert!(
            done.starts_with(&format!("http://{forwarded}/hooks")),
            "{done}"
        );
        let err = no_to(alone, ReplayMode::Resigned, None).await.unwrap_err();
        assert!(err.starts_with("nothing sent"), "{err}");
        assert_eq!(mine_seen.load(Ordering::SeqCst), 2);
        assert_eq!(forwarded_seen.load(Ordering::SeqCst), 1);
        assert_eq!(
            listener_seen.load(Ordering::SeqCst),
            0,
            "a listener was sent to"
        );
    }
}
