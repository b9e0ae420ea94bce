//! `danube-hooks listen`: the main job. Checks the configuration, binds,
//! opens the store and serves; with `--tunnel` or `--register` it then
//! opens its public side ([`public`]: the tunnel started, its URL proved to
//! reach this listener, the webhook registered and verified with first);
//! prints the banner, shows deliveries until SIGINT, SIGTERM or SIGHUP (or
//! `q` in the dashboard), and shuts down gracefully (answers in flight
//! finish, the store is synced and closed, the tunnel ended, the webhook
//! paused) on every way out.

mod banner;
mod catch_up;
mod earlier;
pub(crate) mod public;
mod shared;

use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;

use crate::cli::{ListenArgs, UsageError};
use crate::commands::Outcome;
use crate::danube::api::Api;
use crate::danube::tunnel::View;
use crate::delivery::Grouping;
use crate::display::escape_line;
use crate::headless;
use crate::http::{self, Trust};
use crate::policy::{Policy, PolicyHandle};
use crate::server::loops;
use crate::server::mirror::Mirrors;
use crate::server::routes::Routes;
use crate::server::{self, Intake, IntakeConfig, Limits};
use crate::signature::Secret;
use crate::store::{self, DeliveryStore, OpenReport, StoreConfig};
use crate::tui::{self, Replayer};
use public::{Public, PublicPlan, Registered};

/// Everything `listen` needs, checked.
pub(crate) struct ListenPlan {
    pub(crate) address: SocketAddr,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) policy: Policy,
    /// `--forward-to`'s rules.
    pub(crate) forward: Option<Routes>,
    /// `--mirror-to`'s targets, checked; their workers start with the listener.
    pub(crate) mirrors: Vec<hyper::Uri>,
    /// How long a mirror may take (`--forward-timeout`).
    pub(crate) mirror_timeout: std::time::Duration,
    /// How `https://` targets are trusted: forwarding and the dashboard's replays.
    pub(crate) trust: Trust,
    pub(crate) store: StoreConfig,
    /// `--store postgres://…`: the shared store, which then takes the
    /// deliveries instead of `store`'s file.
    pub(crate) database: Option<crate::store::postgres::WriterConfig>,
    pub(crate) intake: IntakeConfig,
    pub(crate) output: Output,
    /// `--tunnel` and `--register`: the public side, opened once listening.
    pub(crate) public: Option<PublicPlan>,
    /// Danube's API, when a webhook's side is to be shown.
    pub(crate) danube_api: Option<crate::danube::api::Api>,
    /// The webhook whose delivery log the dashboard polls (`--webhook`).
    pub(crate) webhook: Option<String>,
    /// `--catch-up`: redeliver, once registered, what never arrived.
    pub(crate) catch_up: bool,
    /// The store's latest deliveries the dashboard opens with, at most
    /// (`--history`; 0 with `--fresh`).
    pub(crate) history: usize,
}

/// Where deliveries are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Headless(headless::Format),
    /// The terminal dashboard.
    Dashboard,
}

impl Output {
    /// What `--json` and `--no-tui` ask for, with this process's stdout.
    pub(crate) fn of(screen: &crate::cli::ScreenArgs) -> Output {
        Output::choose(screen.json, screen.no_tui, std::io::stdout().is_terminal())
    }

    /// `--json` and `--no-tui` ask for headless output, and so does a
    /// stdout that is not a terminal (a pipe, a file, a test).
    pub(crate) fn choose(json: bool, no_tui: bool, stdout_is_terminal: bool) -> Output {
        if json {
            Output::Headless(headless::Format::Json)
        } else if no_tui || !stdout_is_terminal {
            Output::Headless(headless::Format::Human)
        } else {
            Output::Dashboard
        }
    }
}

impl ListenPlan {
    pub(crate) fn from_args(args: &ListenArgs) -> anyhow::Result<Self> {
        let secrets = args.secret.secrets()?;
        // Both the forwarding and the dashboard's replays send with it;
        // --insecure's warning is among the setup warnings, shown once.
        let trust = args.tls.trust()?;
        let forward = Routes::parse(
            &args.forward_to,
            args.forward_timeout,
            args.max_body,
            &trust,
        )
        .map_err(UsageError::new)?;
        let mirrors = args
            .mirror_to
            .iter()
            .map(|url| {
                http::check_url(url).map_err(|err| UsageError::new(format!("--mirror-to: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policy = Policy::parse(&args.respond, forward.is_some())
            .map_err(|err| UsageError::new(err.to_string()))?;
        let (path, database) = shared::choose(args)?;
        let grouping = grouping(args.group_header.as_deref())?;
        let limits = limits(args);
        let danube_api = args
            .register
            .webhook
            .as_ref()
            .map(|_| {
                crate::commands::danube_api_at(
                    args.register.api_url(),
                    &args.register.api_cacert.trust()?,
                )
                .context("--webhook")
            })
            .transpose()?;
        Ok(Self {
            address: SocketAddr::new(args.host, args.port),
            intake: IntakeConfig {
                secrets: secrets.clone(),
                tolerance_s: args.tolerance,
                reject_invalid: args.reject_invalid,
                grouping,
                limits,
            },
            secrets,
            policy,
            forward,
            mirrors,
            mirror_timeout: args.forward_timeout,
            trust,
            store: StoreConfig {
                path,
                durable: args.durable,
                fsync_interval: store::DEFAULT_FSYNC_INTERVAL,
                max_bytes: args.store_max,
                keep: args.store_keep,
                // Known once bound: set as the store opens.
                listener: None,
            },
            database,
            output: Output::of(&args.screen),
            public: PublicPlan::from_args(&args.tunnel, &args.register)?,
            danube_api,
            webhook: args.register.webhook.clone(),
            catch_up: args.register.catch_up,
            history: args.screen.history_rows(),
        })
    }
}

/// How attempts are grouped: by `--group-header`'s value, or by the body.
fn grouping(header: Option<&str>) -> Result<Grouping, UsageError> {
    match header {
        Some(name) if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
            Ok(Grouping::Header(name.to_ascii_lowercase()))
        }
        Some(name) => Err(UsageError::new(format!(
            "--group-header {:?} is not a header name (letters, digits and -)",
            escape_line(name)
        ))),
        None => Ok(Grouping::BodyHash),
    }
}

/// What one connection and one request may cost, from the flags.
fn limits(args: &ListenArgs) -> Limits {
    Limits {
        max_body: args.max_body,
        header_read_timeout: args.idle_timeout,
        // Never longer than the head's own timeout, which covers it.
        first_byte_timeout: args.first_byte_timeout.min(args.idle_timeout),
        body_read_timeout: args.body_timeout,
        max_connections: args.max_connections as usize,
        max_body_memory: args.max_body_memory,
        ..Limits::default()
    }
}

pub(crate) fn run(args: &ListenArgs) -> anyhow::Result<Outcome> {
    let plan = ListenPlan::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(plan))?;
    Ok(Outcome::Success)
}

/// Bind, or say plainly why not.
pub(crate) fn bind(address: SocketAddr) -> Result<std::net::TcpListener, UsageError> {
    std::net::TcpListener::bind(address)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AddrInUse => UsageError::new(format!(
                "port {} is already in use on {}: stop what holds it, or pick another with --port (0 picks a free one)",
                address.port(),
                address.ip()
            )),
            std::io::ErrorKind::PermissionDenied => UsageError::new(format!(
                "no permission to listen on port {}: ports below 1024 need privileges; use --port 4000",
                address.port()
            )),
            _ => UsageError::new(format!("cannot listen on {address}: {err}")),
        })
}

/// Refuse a `--forward-to` or `--mirror-to` target that is the listener
/// itself, bound at `local`: known only once bound (`--port 0`), and
/// checked before anything is served.
fn refuse_self_targets(plan: &ListenPlan, local: SocketAddr) -> Result<(), UsageError> {
    let forwards = plan.forward.iter().flat_map(Routes::targets);
    let targets = (forwards.map(|target| ("--forward-to", target)))
        .chain(plan.mirrors.iter().map(|target| ("--mirror-to", target)));
    for (flag, target) in targets {
        if loops::self_target(target, local, loops::is_local) {
            return Err(UsageError::new(loops::refusal(flag, target, local)));
        }
    }
    Ok(())
}

async fn serve(mut plan: ListenPlan) -> anyhow::Result<()> {
    // Signals are caught from here on, before the public side opens, so
    // that a signal is never the default death that would leave the
    // tunnel running or the webhook active.
    let (listener, local, signals) = serve_from(bind(plan.address)?)?;
    refuse_self_targets(&plan, local)?;
    let shutdown = signals.shutdown.clone();
    // Read before the listener serves, so that no new record hides it.
    let last_stop = last_stop(&plan);
    // The listener serves before the public side opens, since proving the
    // tunnel's URL takes a request that must arrive here.
    let (listening, intake) = Listening::start(&plan, listener, local, shutdown).await?;
    let public = match &plan.public {
        None => None,
        Some(public_plan) => {
            if plan.trust.is_insecure() {
                // Before the first probe of the tunnel's URL, which it
                // applies to (SPEC §12); never to Danube's API.
                eprintln!(
                    "danube-hooks: warning: {}",
                    crate::commands::INSECURE_WARNING
                );
            }
            let opened =
                public::open(public_plan, &plan.trust, local, intake.reach(), &signals).await;
            match opened {
                Ok(Some(public)) => Some(public),
                Ok(None) => {
                    listening.stop().await;
                    eprintln!(
                        "danube-hooks: stopped before the tunnel and the webhook were set up; \
                         nothing was registered with Danube."
                    );
                    return Ok(());
                }
                Err(err) => {
                    listening.stop().await;
                    return Err(err);
                }
            }
        }
    };
    if let Some(registered) = public
        .as_ref()
        .and_then(|public| public.registered.as_ref())
    {
        let store = &listening.store;
        adopt_webhook(
            &mut plan,
            &intake,
            registered,
            (local, store),
            last_stop,
            &signals,
        );
    }
    let public_lines = public.as_ref().map(Public::banner_lines);
    let following = public.map(|public| public.follow(&plan.trust, intake.reach().clone()));
    let shown = Shown {
        public_lines,
        view: following.as_ref().map(|following| following.view.clone()),
        danube: match &following {
            Some(following) => following.webhook().await,
            None => None,
        },
    };
    // Every way out (a signal, `q`, an error, a panic) ends the tunnel and
    // pauses the webhook: left active, Danube would go on sending to a
    // tunnel nobody answers.
    let finish = async {
        if let Some(following) = following {
            following.close().await;
        }
    };
    finally(serve_with(&plan, listening, shown), finish).await
}

/// With `--catch-up`, the file store and when this listener last stopped
/// by its newest record (a shared store has no one listener's last stop:
/// `--catch-up` is refused with one).
fn last_stop(plan: &ListenPlan) -> Option<(store::Location, Option<DateTime<Utc>>)> {
    let path = plan.store.path.as_ref().filter(|_| plan.catch_up)?;
    let at = store::Location::File(path.clone());
    let since = catch_up::last_stop(&at);
    Some((at, since))
}

/// The registered webhook's secret verifies first from now on; and with
/// `--catch-up`, what Danube made since `last_stop` that never arrived is
/// redelivered, in a task of its own.
fn adopt_webhook(
    plan: &mut ListenPlan,
    intake: &Intake,
    registered: &Registered,
    (local, store): (SocketAddr, &DeliveryStore),
    last_stop: Option<(store::Location, Option<DateTime<Utc>>)>,
    signals: &Signals,
) {
    // First, so that its deliveries match secret #1 and a --secret of
    // another webhook is no rotation.
    let secret = registered.registration.webhook.signing_secret();
    intake.verify_first_with(secret.clone());
    plan.secrets.insert(0, secret);
    if let Some((path, since)) = last_stop {
        let headless = matches!(plan.output, Output::Headless(_));
        catch_up::start(
            registered,
            local,
            path,
            since,
            store,
            headless,
            signals.shutdown.clone(),
        );
    }
}

/// The listener, serving, and what it needs to stop.
struct Listening {
    local: SocketAddr,
    store: DeliveryStore,
    report: OpenReport,
    policy: PolicyHandle,
    /// The store's announcements, subscribed before the listener started;
    /// taken by whatever shows the deliveries.
    events: Option<tokio::sync::broadcast::Receiver<store::StoreEvent>>,
    server: tokio::task::JoinHandle<()>,
    /// Cancelled on SIGINT, SIGTERM and SIGHUP (and by the dashboard's `q`).
    shutdown: CancellationToken,
}

impl Listening {
    /// Open the store and serve on `listener` until `shutdown`.
    async fn start(
        plan: &ListenPlan,
        listener: tokio::net::TcpListener,
        local: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Self, Arc<Intake>)> {
        let (store, report) = if let Some(database) = &plan.database {
            DeliveryStore::open_database(database)
                .await
                .map_err(crate::errors::wrap::Whole::new)?
        } else {
            let config = StoreConfig {
                listener: Some(local),
                ..plan.store.clone()
            };
            DeliveryStore::open(config).map_err(crate::errors::wrap::Whole::new)?
        };
        let policy = PolicyHandle::new(plan.policy.clone());
        let intake = Arc::new(Intake::new(
            plan.intake.clone(),
            policy.clone(),
            store.clone(),
            plan.forward.clone(),
            (!plan.mirrors.is_empty())
                .then(|| Mirrors::start(plan.mirrors.clone(), plan.mirror_timeout, &plan.trust)),
        ));
        if let Some(at) = store.location() {
            intake.seed_attempts(earlier::attempts(&at));
        }
        // Subscribed before the listener starts, so the screen sees the
        // first delivery too.
        let events = store.subscribe();
        let server = tokio::spawn(server::run(listener, Arc::clone(&intake), shutdown.clone()));
        let listening = Self {
            local,
            store,
            report,
            policy,
            events: Some(events),
            server,
            shutdown,
        };
        Ok((listening, intake))
    }

    /// Stop listening: answers in flight finish, then the store closes.
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.store.close().await;
    }
}

/// What the banner and the screen show of the public side.
struct Shown {
    /// The banner's lines for the tunnel and the webhook.
    public_lines: Option<Vec<String>>,
    /// The tunnel and webhook as they change while listening.
    view: Option<tokio::sync::watch::Receiver<View>>,
    /// The webhook registered, with the API to ask about it.
    danube: Option<(Api, String)>,
}

/// `work`, then `finish`, even when `work` panics: the panic then goes on
/// once `finish` is done, as it would have without it (the dashboard's
/// panic hook has given the terminal back and said what happened by then).
async fn finally<T>(work: impl Future<Output = T>, finish: impl Future<Output = ()>) -> T {
    let outcome = AssertUnwindSafe(work).catch_unwind().await;
    finish.await;
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The webhook whose Danube side the dashboard shows, with the API to ask:
/// the one registered, else `--webhook`'s.
fn danube_side(plan: &ListenPlan, shown: &Shown) -> Option<(Api, String)> {
    shown
        .danube
        .clone()
        .or_else(|| Some((plan.danube_api.clone()?, plan.webhook.clone()?)))
}

/// Tell each notice of the public side on stderr (headless: the banner's
/// stream), as it comes.
fn tell_notices(mut view: tokio::sync::watch::Receiver<View>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while view.changed().await.is_ok() {
            let notice = view.borrow_and_update().notice.clone();
            if let Some(notice) = notice {
                let warning = if notice.is_error { "warning: " } else { "" };
                eprintln!("danube-hooks: {warning}{}", notice.text);
            }
        }
    })
}

async fn serve_with(plan: &ListenPlan, listening: Listening, shown: Shown) -> anyhow::Result<()> {
    eprint!(
        "{}",
        banner::banner(
            plan,
            listening.local,
            &listening.report,
            shown.public_lines.as_deref()
        )
    );
    #[cfg(debug_assertions)]
    panic_when_asked();
    let stopped = stopped_line(plan);
    let shown_result = match plan.output {
        Output::Headless(format) => {
            let own_rows = plan.database.as_ref().map(|db| db.name.clone());
            show_headless(listening, format, &shown, own_rows).await;
            Ok(None)
        }
        Output::Dashboard => show_dashboard(plan, listening, &shown).await,
    };
    match shown_result {
        Ok(Some(log)) => eprintln!("danube-hooks: warnings were logged to {}", log.display()),
        Ok(None) => {}
        Err(err) => {
            eprintln!("danube-hooks: {stopped}");
            return Err(err);
        }
    }
    eprintln!("danube-hooks: {stopped}");
    Ok(())
}

/// Print each delivery on stdout (and the public side's notices on
/// stderr) until a signal; then stop listening.
/// `own_rows`: on a shared store, this listener's name, whose rows alone a
/// catch-up prints.
async fn show_headless(
    mut listening: Listening,
    format: headless::Format,
    shown: &Shown,
    own_rows: Option<String>,
) {
    let printer_done = CancellationToken::new();
    let printer = tokio::spawn(headless::print(
        listening
            .events
            .take()
            .expect("the announcements are taken once"),
        listening.store.location(),
        own_rows,
        format,
        printer_done.clone(),
    ));
    let notices = shown.view.clone().map(tell_notices);
    listening.shutdown.cancelled().await;
    listening.stop().await;
    printer_done.cancel();
    let _ = printer.await;
    if let Some(notices) = notices {
        notices.abort();
    }
}

/// The dashboard until `q` or a signal; then stop listening. The log file
/// of its warnings, if any were written.
async fn show_dashboard(
    plan: &ListenPlan,
    mut listening: Listening,
    shown: &Shown,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let local = listening.local;
    let shutdown = listening.shutdown.clone();
    let shown_result = tui::run(tui::Setup {
        listen_url: http::reachable_url(local),
        fingerprints: plan.secrets.iter().map(Secret::fingerprint).collect(),
        forward_url: plan.forward.as_ref().map(Routes::describe),
        store: listening.store.clone(),
        events: listening
            .events
            .take()
            .expect("the announcements are taken once"),
        policy: listening.policy.clone(),
        replayer: replayer(
            plan.secrets.first().cloned(),
            plan.forward.clone(),
            local,
            &plan.trust,
        ),
        shutdown: shutdown.clone(),
        warnings: start_warnings(plan, &listening.report),
        danube_webhook: shown
            .view
            .as_ref()
            .and_then(|view| view.borrow().webhook.clone()),
        danube: danube_side(plan, shown)
            .map(|(api, id)| crate::danube::poller::spawn(api, id, shutdown.clone())),
        public: shown.view.clone(),
        earlier: tui::earlier::EarlierPlan {
            records: plan.history,
            first_id: listening.report.next_id,
        },
        earlier_read: None,
        viewer: None,
        // A shared store holds the team's rows: this dashboard shows its own.
        own_rows: plan.database.as_ref().map(|database| database.name.clone()),
    })
    .await;
    // Whatever ended the dashboard (q, a signal, an error) ends listening:
    // answers in flight finish, then the store closes.
    listening.stop().await;
    shown_result
}

/// The last line: where the deliveries are.
fn stopped_line(plan: &ListenPlan) -> &'static str {
    if plan.database.is_some() {
        "stopped; every delivery answered 2xx is committed to the database."
    } else if plan.store.path.is_some() {
        "stopped; the store is synced."
    } else {
        "stopped; the deliveries were kept in memory only (--no-store) and are gone now."
    }
}

/// A way to make the listener panic once it serves, for the tests that
/// check what a panic leaves behind (the tunnel ended, the webhook
/// paused); only in debug builds, never in the one users run.
#[cfg(debug_assertions)]
fn panic_when_asked() {
    assert!(
        std::env::var_os("DANUBE_HOOKS_TEST_PANIC").is_none(),
        "DANUBE_HOOKS_TEST_PANIC is set: panicking as asked"
    );
}

/// The banner's warnings, for the dashboard's status line.
fn start_warnings(plan: &ListenPlan, report: &OpenReport) -> Vec<String> {
    let mut warnings = setup_warnings(plan);
    warnings.extend(report.torn_message());
    warnings
}

/// What in the options the user should hear about before the first
/// delivery: in the banner, and on the dashboard's status line.
fn setup_warnings(plan: &ListenPlan) -> Vec<String> {
    let mut warnings = Vec::new();
    for secret in plan.secrets.iter().filter(|secret| secret.lacks_prefix()) {
        warnings.push(format!(
            "the secret {} has no whsec_ prefix: Danube signs with the whole whsec_… string it \
             showed, so deliveries will not verify with this one; pass the secret whole",
            secret.fingerprint()
        ));
    }
    if plan.trust.is_insecure() {
        warnings.push(crate::commands::INSECURE_WARNING.to_string());
    }
    if !is_loopback(plan.address.ip()) {
        warnings.push(format!(
            "bound to {}: reachable from the network, not only through your tunnel",
            plan.address.ip()
        ));
    }
    // A record is its body in base64 (4/3) and the rest of the record; one
    // larger than --store-max goes whole into a file of its own, so the
    // files can pass the bound the user chose.
    let largest_record = plan.intake.limits.max_body as u64 / 3 * 4 + 64 * 1024;
    if plan.store.path.is_some() && plan.store.max_bytes < largest_record {
        warnings.push(format!(
            "--store-max {} is smaller than a record with a --max-body body (about {}): such a \
             record gets a file of its own, so the store can take up to --store-keep + 1 of \
             those; raise --store-max or lower --max-body",
            plan.store.max_bytes, largest_record
        ));
    }
    if let (Some(webhook), Output::Headless(_)) = (&plan.webhook, plan.output) {
        warnings.push(format!(
            "--webhook {}: Danube's side shows in the dashboard only; headless, ask with              `danube-hooks deliveries {}`",
            escape_line(webhook),
            escape_line(webhook)
        ));
    }
    warnings
}

/// The dashboard's `r`, `R` and `e`: resend a delivery, or a changed copy
/// of it, where it would be forwarded now (the first `--forward-to` rule
/// that matches its event), or back to this listener when no rule does,
/// through the crate's one sender; re-signed with the first secret, or
/// with its own signature.
fn replayer(
    secret: Option<Secret>,
    forward: Option<Routes>,
    local: SocketAddr,
    trust: &Trust,
) -> Replayer {
    // A listener bound to every interface is still reached on loopback.
    let own = if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    super::replayer::replayer(secret, trust, move |delivery| {
        // Built from parts: a path a stranger sent never changes the host.
        let route = forward
            .as_ref()
            .and_then(|routes| routes.choose(delivery.event.as_deref()));
        match route {
            Some(forward) => forward.url_for(&delivery.path),
            None => http::url_on(own, &delivery.path),
        }
        .map(|url| url.to_string())
        .map_err(|err| err.to_string())
    })
}

/// Hand a bound listener to tokio, read the address it got (port 0 picks
/// one), and catch SIGINT, SIGTERM and SIGHUP from now on into the token
/// returned.
/// Inside the runtime: `listen` and `emulate` both serve this way.
pub(crate) fn serve_from(
    listener: std::net::TcpListener,
) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr, Signals)> {
    let listener =
        tokio::net::TcpListener::from_std(listener).context("cannot register the listener")?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let signals = Signals::default();
    tokio::spawn(stop_on_signal(signals.clone()));
    Ok((listener, local, signals))
}

/// What the signals say: the first asks to stop, in order; a second asks
/// not to wait any longer for what the first let finish (Danube's answer
/// to a change already sent).
#[derive(Clone, Default)]
pub(crate) struct Signals {
    pub(crate) shutdown: CancellationToken,
    pub(crate) hurry: CancellationToken,
}

/// Cancel `shutdown` on SIGINT, SIGTERM or SIGHUP (the terminal closed).
/// The handlers are installed when this is called, not when the future is
/// first polled, so a signal sent as soon as the banner or the dashboard
/// shows is never met by the default action (death, with the store
/// unsynced, the terminal left raw, the tunnel running and the webhook
/// active).
pub(crate) fn stop_on_signal(signals: Signals) -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn next(signal: Option<&mut Signal>) {
        match signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    // A Ctrl-C typed in the dashboard's editor (`e`) reaches this process
    // too, and is the editor's.
    async fn next_interrupt(mut signal: Option<&mut Signal>) {
        loop {
            next(signal.as_deref_mut()).await;
            if !tui::editor_has_terminal() {
                return;
            }
        }
    }
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    async move {
        for token in [signals.shutdown, signals.hurry] {
            tokio::select! {
                () = next_interrupt(interrupt.as_mut()) => {}
                () = next(terminate.as_mut()) => {}
                () = next(hangup.as_mut()) => {}
            }
            token.cancel();
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danube::register::OnExit;
    use crate::danube::tunnel;

    #[tokio::test]
    async fn finally_finishes_after_the_work_and_gives_its_outcome() {
        let finished = std::sync::atomic::AtomicBool::new(false);
        let outcome = finally(async { 7 }, async {
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .await;
        assert_eq!(outcome, 7);
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// A panic in the dashboard still pauses the webhook: `finally` runs
    /// its finish, then the panic goes on as it was.
    #[tokio::test]
    async fn finally_finishes_when_the_work_panics_and_the_panic_goes_on() {
        let finished = std::sync::atomic::AtomicBool::new(false);
        let work = async { panic!("the dashboard broke") };
        let finish = async {
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
        };
        let outcome = AssertUnwindSafe(finally(work, finish)).catch_unwind().await;
        assert!(
            finished.load(std::sync::atomic::Ordering::SeqCst),
            "the webhook would be left active"
        );
        let panic = outcome.expect_err("the panic goes on");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the dashboard broke"));
    }

    /// The dashboard's `r` and `R` on a record whose target a stranger
    /// chose: the replayer `listen` hands the dashboard, run as the
    /// dashboard runs it, with and without --forward-to. (A unit test: the
    /// tmux end-to-end test of the dashboard covers the key itself.)
    #[tokio::test]
    async fn the_dashboards_replay_goes_only_where_the_user_said() {
        use std::sync::atomic::Ordering;

        use crate::delivery::ReplayMode;
        let (evil, evil_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let (receiver, receiver_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let secret = Secret::new("whsec_abcdefghijklmnop1234");
        let forward = Routes::parse(
            &[format!("http://{receiver}")],
            crate::commands::replayer::REPLAY_TIMEOUT,
            1024,
            &Trust::default(),
        )
        .unwrap()
        .unwrap();
        // With --forward-to the listener's own address is never used: give
        // it the stranger's, so a fall-back to it would show.
        let with_forward = replayer(Some(secret.clone()), Some(forward), evil, &Trust::default());
        // Without --forward-to a replay goes back to the listener itself:
        // here `receiver` stands in for it.
        let to_self = replayer(Some(secret), None, receiver, &Trust::default());
        let mut delivery = crate::test_support::sample(7, b"{}");
        for replay in [&with_forward, &to_self] {
            for mode in [ReplayMode::Resigned, ReplayMode::AsIs] {
                for hostile in [format!("@{evil}"), evil.to_string(), "0/".into()] {
                    delivery.path = hostile.clone();
                    let err = replay(Arc::new(delivery.clone()), mode, None)
                        .await
                        .unwrap_err();
                    assert!(err.contains("must start with '/'"), "{hostile}: {err}");
                }
                delivery.path = format!("//{evil}/x");
                let done = replay(Arc::new(delivery.clone()), mode, None)
                    .await
                    .unwrap();
                assert!(done.starts_with(&format!("http://{receiver}//")), "{done}");
            }
        }
        assert_eq!(receiver_seen.load(Ordering::SeqCst), 4);
        assert_eq!(
            evil_seen.load(Ordering::SeqCst),
            0,
            "a stranger's target was followed"
        );
    }

    /// The dashboard's replay follows the routes: the rule that matches
    /// the delivery's event, else (no rule matches) this listener.
    #[tokio::test]
    async fn the_dashboards_replay_follows_the_routes() {
        use std::sync::atomic::Ordering;

        use crate::delivery::ReplayMode;
        let (tools, tools_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let (own, own_seen) =
            crate::test_servers::serve(Some(crate::test_servers::OK_EMPTY.to_vec()));
        let routes = Routes::parse(
            &[format!("tool.*=http://{tools}/tools")],
            crate::commands::replayer::REPLAY_TIMEOUT,
            1024,
            &Trust::default(),
        )
        .unwrap();
        let replay = replayer(None, routes, own, &Trust::default());
        let mut delivery = crate::test_support::sample(7, b"{}");
        delivery.event = Some("tool.execution.failed".into());
        let done = replay(Arc::new(delivery.clone()), ReplayMode::AsIs, None)
            .await
            .unwrap();
        assert!(done.starts_with(&format!("http://{tools}/tools")), "{done}");
        delivery.event = Some("workflow.failed".into());
        let done = replay(Arc::new(delivery), ReplayMode::AsIs, None)
            .await
            .unwrap();
        assert!(done.starts_with(&format!("http://{own}/")), "{done}");
        assert_eq!(tools_seen.load(Ordering::SeqCst), 1);
        assert_eq!(own_seen.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_dashboard_only_on_a_terminal_and_without_a_headless_flag() {
        use headless::Format::{Human, Json};
        // (--json, --no-tui, stdout is a terminal, output)
        let cases = [
            (false, false, true, Output::Dashboard),
            (false, false, false, Output::Headless(Human)),
            (false, true, true, Output::Headless(Human)),
            (true, false, true, Output::Headless(Json)),
            (true, true, true, Output::Headless(Json)),
            (true, false, false, Output::Headless(Json)),
        ];
        for (json, no_tui, terminal, expected) in cases {
            assert_eq!(
                Output::choose(json, no_tui, terminal),
                expected,
                "--json {json}, --no-tui {no_tui}, terminal {terminal}"
            );
        }
    }

    fn plan_for(args: &[&str]) -> ListenPlan {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(
            [
                "danube-hooks",
                "listen",
                "--store",
                "/tmp/never-opened.jsonl",
            ]
            .iter()
            .chain(args),
        )
        .unwrap();
        let crate::cli::Command::Listen(args) = cli.command else {
            unreachable!("parsed as listen")
        };
        ListenPlan::from_args(&args).unwrap()
    }

    #[test]
    fn a_store_max_below_one_record_is_a_start_warning() {
        let small = setup_warnings(&plan_for(&["--store-max", "64KiB"]));
        assert!(
            small
                .iter()
                .any(|w| w.contains("--store-max 65536 is smaller than a record")),
            "{small:?}"
        );
        let fits = setup_warnings(&plan_for(&["--store-max", "128KiB", "--max-body", "16KiB"]));
        assert!(fits.is_empty(), "{fits:?}");
        assert!(setup_warnings(&plan_for(&[])).is_empty());
    }

    fn parse_listen(args: &[&str]) -> Result<Box<ListenArgs>, String> {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["danube-hooks", "listen"].iter().chain(args))
            .map_err(|err| err.to_string())?;
        let crate::cli::Command::Listen(args) = cli.command else {
            unreachable!("parsed as listen")
        };
        Ok(args)
    }

    #[test]
    fn history_and_fresh_choose_what_the_dashboard_opens_with() {
        assert_eq!(plan_for(&[]).history, tui::app::HISTORY_CAP);
        assert_eq!(plan_for(&["--history", "25"]).history, 25);
        assert_eq!(plan_for(&["--history", "0"]).history, 0);
        assert_eq!(plan_for(&["--fresh"]).history, 0);
        let err = parse_listen(&["--history", "10001"]).unwrap_err();
        assert!(err.contains("10001") && err.contains("0..=10000"), "{err}");
        let err = parse_listen(&["--history", "many"]).unwrap_err();
        assert!(err.contains("--history"), "{err}");
        let err = parse_listen(&["--fresh", "--history", "5"]).unwrap_err();
        assert!(err.contains("cannot be used with"), "{err}");
    }

    #[test]
    fn register_flags_need_register() {
        for flags in [
            &["--keep-active"][..],
            &["--unregister"],
            &["--public-url", "https://abc.ngrok.app"],
            &["--ngrok-api", "http://127.0.0.1:4040"],
            &["--cloudflared-metrics", "127.0.0.1:20241"],
            &["--path", "/hooks"],
            &["--event", "workflow.failed"],
            &["--api-timeout", "5s"],
        ] {
            let err = parse_listen(flags).unwrap_err();
            assert!(err.contains("--register"), "{flags:?}: {err}");
        }
        let err = parse_listen(&["--register", "--keep-active", "--unregister"]).unwrap_err();
        assert!(err.contains("cannot be used with"), "{err}");
        let err = parse_listen(&["--register", "--event", "tool.executed"]).unwrap_err();
        assert!(err.contains("workflow.completed"), "{err}");
        // Without --register nothing is asked of Danube, DANUBE_API_URL or not.
        assert!(
            plan_for(&["--api-url", "http://127.0.0.1:9"])
                .public
                .is_none()
        );
    }

    #[test]
    fn register_plan_from_the_flags() {
        let plan = plan_for(&[
            "--register",
            "--public-url",
            "https://abc.ngrok.app",
            "--event",
            "workflow.failed",
            "--event",
            "workflow.failed",
            "--event",
            "tool.execution.failed",
            "--unregister",
        ])
        .public
        .unwrap()
        .register
        .unwrap();
        assert_eq!(
            plan.events.as_deref(),
            Some(
                &[
                    "workflow.failed".to_owned(),
                    "tool.execution.failed".to_owned()
                ][..]
            )
        );
        assert_eq!(plan.on_exit, OnExit::Unregister);
        assert_eq!(plan.path, tunnel::DEFAULT_PATH);
        assert_eq!(plan.api_timeout, std::time::Duration::from_secs(30));
        let plan = plan_for(&["--register", "--keep-active"])
            .public
            .unwrap()
            .register
            .unwrap();
        assert_eq!((plan.on_exit, plan.events), (OnExit::KeepActive, None));
        assert_eq!(
            plan_for(&["--register"])
                .public
                .unwrap()
                .register
                .unwrap()
                .on_exit,
            OnExit::Pause
        );
        for (flags, why) in [
            (
                &["--register", "--public-url", "http://abc.ngrok.app"][..],
                "https://",
            ),
            (&["--register", "--path", "hooks"], "must start with '/'"),
            (
                &["--register", "--cloudflared-metrics", "nowhere"],
                "HOST:PORT",
            ),
        ] {
            let args = parse_listen(flags).unwrap();
            let err = ListenPlan::from_args(&args).err().unwrap().to_string();
            assert!(err.contains(why), "{flags:?}: {err}");
        }
    }

    #[test]
    fn a_secret_without_its_prefix_is_a_start_warning() {
        let warnings = setup_warnings(&plan_for(&[
            "--secret",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("the secret …LaSw has no whsec_ prefix"),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("MfKQ"), "never the secret whole");
    }

    #[test]
    fn insecure_is_a_start_warning() {
        let insecure = setup_warnings(&plan_for(&["--insecure"]));
        assert_eq!(insecure, [crate::commands::INSECURE_WARNING]);
    }
}
