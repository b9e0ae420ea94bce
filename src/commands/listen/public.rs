//! `listen`'s public side: the tunnel `--tunnel` starts and keeps running,
//! the public URL (the tunnel's, or the one `--register` finds) proved to
//! reach this listener, the webhook registered for it, and, while
//! listening, each start again of the tunnel followed: its new URL proved
//! and the webhook re-pointed, told on the status line. On the way out
//! the tunnel is ended and the webhook paused.
//!
//! The listener serves before any of this starts: the proof is a request
//! that must arrive at it.

mod follow;
pub(crate) mod plan;

pub(crate) use plan::{PublicPlan, RegisterPlan, TunnelPlan};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::UsageError;
use crate::danube::api::{Api, RETRY_WAITS};
use crate::danube::register::{self, OnExit, Registration, Target};
use crate::danube::tunnel::program::Program;
use crate::danube::tunnel::reach;
use crate::danube::tunnel::supervisor::{self, Supervised, TunnelEvent};
use crate::danube::tunnel::{self, PublicUrl, View};
use crate::display::escape_line;
use crate::http::{Sender, Trust};
use crate::progress::Progress;
use crate::server::reach::ReachProbes;

/// How much of the answer to a probe is read: its arrival is the proof,
/// not what the URL answers.
pub(crate) const PROBE_ANSWER_BYTES: usize = 4096;

/// Why the public side could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublicError {
    #[error("{program} gave no public URL: {why}{last_lines}\n  what to try: {advice}")]
    TunnelFailed {
        program: &'static str,
        why: String,
        /// Its last lines, escaped and indented, or nothing.
        last_lines: String,
        advice: &'static str,
    },
    #[error(
        "{url} ({source_text}) does not reach this listener, so nothing was registered with \
         Danube: {why}. If this network cannot reach its own tunnel, pass --no-verify-url"
    )]
    Unreached {
        url: String,
        source_text: String,
        why: String,
    },
}

/// Why no webhook was registered although the URL is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unregistered {
    /// `--no-register`.
    NotAsked,
    /// No `login` and no `DANUBE_API_KEY`.
    NoCredential,
}

/// The proof that the URL reaches this listener.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proof {
    Proved(Duration),
    /// `--no-verify-url`.
    Skipped,
    /// Proving failed, and nothing was to be registered: a warning.
    Failed(String),
}

/// The webhook registered, and what is needed to undo it on exit.
pub(crate) struct Registered {
    /// The webhook (`registration.webhook.id`) and what happens on exit.
    pub(crate) registration: Registration,
    /// The API it was registered with (`--api-url`, the credentials, the
    /// trust), for anything else that asks Danube about it.
    pub(crate) api: Api,
    /// The config folder its `webhooks.json` is in.
    dir: PathBuf,
}

impl Registered {
    /// Pause, delete or leave the webhook as the flags say; bounded in
    /// time, and a failure is said, not fatal.
    async fn finish(&self) {
        match register::finish(&self.api, &self.dir, &self.registration).await {
            Ok(done) => eprintln!("danube-hooks: {done}"),
            Err(failed) => eprintln!("danube-hooks: warning: {failed}"),
        }
    }

    /// The dashboard header's webhook line.
    pub(crate) fn header_line(&self) -> String {
        let webhook = &self.registration.webhook;
        let exit = match (self.registration.action, self.registration.on_exit) {
            (register::Action::Adopted, _) => "left as it is on exit",
            (_, OnExit::Pause) => "paused on exit",
            (_, OnExit::KeepActive) => "left active on exit",
            (_, OnExit::Unregister) => "deleted on exit",
        };
        // The id and the fingerprint first: at 80 columns the end is cut.
        format!(
            "{} ({}) → {} · {exit}",
            escape_line(&webhook.id),
            webhook.fingerprint(),
            escape_line(&webhook.url)
        )
    }
}

/// The tunnel started and kept running.
struct Tunnel {
    program: Program,
    /// The program's pid now.
    pid: u32,
    /// Starts so far (1 after the first).
    starts: u32,
    /// The supervisor's events, until the follower takes them.
    events: Option<mpsc::Receiver<TunnelEvent>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Tunnel {
    /// End the program (SIGTERM, then SIGKILL) and the supervision.
    async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    fn header(&self, url: &PublicUrl) -> String {
        let again = match self.starts {
            0 | 1 => String::new(),
            n => format!(", started {n}×"),
        };
        format!(
            "{} {} (pid {}{again}; started again if it exits)",
            self.program.name(),
            tunnel::shown_origin(&url.origin),
            self.pid
        )
    }
}

/// The public side, open: the URL, the tunnel, the webhook.
pub(crate) struct Public {
    pub(crate) url: PublicUrl,
    path: String,
    proof: Proof,
    tunnel: Option<Tunnel>,
    pub(crate) registered: Option<Registered>,
    unregistered: Option<Unregistered>,
}

/// Open the public side for the listener at `local`, whose probes are
/// `probes`: start the tunnel, prove its URL, register it. `None` when
/// `shutdown` came first (the tunnel is ended then, and nothing was
/// changed in Danube).
pub(crate) async fn open(
    plan: &PublicPlan,
    trust: &Trust,
    local: SocketAddr,
    probes: &ReachProbes,
    signals: &super::Signals,
) -> anyhow::Result<Option<Public>> {
    let shutdown = &signals.shutdown;
    let api = match &plan.register {
        Some(register) => Some(
            crate::commands::danube_api_at(&register.api_url, &register.api_trust)?
                .with_timing(RETRY_WAITS.to_vec(), register.api_timeout),
        ),
        None => None,
    };
    let (api, unregistered) = match api {
        Some(api) if api.has_credential() || plan.register_required => (Some(api), None),
        Some(_) => (None, Some(Unregistered::NoCredential)),
        None => (None, Some(Unregistered::NotAsked)),
    };
    let client = trust.client();
    let (url, tunnel) = if let Some(tunnel_plan) = &plan.tunnel {
        match start_tunnel(tunnel_plan, client, local, shutdown).await? {
            Some((url, tunnel)) => (url, Some(tunnel)),
            None => return Ok(None),
        }
    } else {
        let discovery = plan
            .register
            .as_ref()
            .and_then(|register| register.discovery.as_ref())
            .expect("--register without --tunnel has a discovery");
        let found = tokio::select! {
            found = discovery.discover(&client, local) => found,
            () = shutdown.cancelled() => return Ok(None),
        };
        (found.map_err(|err| UsageError::new(err.to_string()))?, None)
    };
    let mut public = Public {
        url,
        path: plan.path().to_owned(),
        proof: Proof::Skipped,
        tunnel,
        registered: None,
        unregistered,
    };
    let opened = prove_and_register(&mut public, plan, api, trust, probes, signals).await;
    match opened {
        Ok(true) => Ok(Some(public)),
        Ok(false) => {
            public.close().await;
            Ok(None)
        }
        Err(err) => {
            public.close().await;
            Err(err)
        }
    }
}

/// Prove the URL of `public` (unless `--no-verify-url`), then register
/// it with `api`; `Ok(false)` when `shutdown` came first. A URL that does
/// not reach this listener is an error when it was to be registered, and
/// a warning in the banner when not.
async fn prove_and_register(
    public: &mut Public,
    plan: &PublicPlan,
    api: Option<Api>,
    trust: &Trust,
    probes: &ReachProbes,
    signals: &super::Signals,
) -> anyhow::Result<bool> {
    let shutdown = &signals.shutdown;
    if plan.verify_url {
        let sender = Sender::new(trust, PROBE_ANSWER_BYTES);
        let proof = tokio::select! {
            proof = prove(&sender, probes, &public.url) => proof,
            () = shutdown.cancelled() => return Ok(false),
        };
        public.proof = match proof {
            Ok(took) => Proof::Proved(took),
            Err(why) if api.is_none() => Proof::Failed(why),
            Err(why) => {
                return Err(PublicError::Unreached {
                    url: tunnel::shown_origin(&public.url.origin),
                    source_text: public.url.source.describe(),
                    why,
                }
                .into());
            }
        };
    }
    if let (Some(api), Some(register)) = (api, &plan.register) {
        match register_webhook(register, api, &public.url, signals).await? {
            Some(registered) => public.registered = Some(registered),
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// Start the tunnel and wait for its first URL, showing how long it has
/// been waiting; `None` when `shutdown` came first.
async fn start_tunnel(
    plan: &TunnelPlan,
    client: crate::http::Client,
    local: SocketAddr,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<(PublicUrl, Tunnel)>> {
    let name = plan.program.name();
    let stop = CancellationToken::new();
    let (mut events, task) = supervisor::supervise(
        Supervised {
            program: plan.program,
            bin: plan.bin.clone(),
            local,
            url_timeout: plan.url_timeout,
        },
        client,
        stop.clone(),
    );
    let mut progress = Progress::new(format!("starting {name}"));
    let mut ticks = tokio::time::interval(crate::progress::TICK);
    let mut pid = 0;
    let failed = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(TunnelEvent::Started { pid: started, .. }) => {
                    pid = started;
                    progress.set(format!("{name} (pid {pid}) runs; waiting for its public URL"));
                }
                Some(TunnelEvent::Up { url, .. }) => {
                    progress.clear();
                    eprintln!(
                        "danube-hooks: {name} (pid {pid}) gave {} in {:.1} s",
                        tunnel::shown_origin(&url.origin),
                        progress.elapsed().as_secs_f64()
                    );
                    let tunnel = Tunnel { program: plan.program, pid, starts: 1, events: Some(events), stop, task };
                    return Ok(Some((url, tunnel)));
                }
                Some(TunnelEvent::Down { why, last_lines, .. }) => break (why, last_lines),
                None => break ("its supervision ended".to_owned(), Vec::new()),
            },
            _ = ticks.tick() => progress.tick(),
            () = shutdown.cancelled() => {
                progress.clear();
                stop.cancel();
                let _ = task.await;
                return Ok(None);
            }
        }
    };
    progress.clear();
    stop.cancel();
    let _ = task.await;
    let (why, last_lines) = failed;
    Err(PublicError::TunnelFailed {
        program: name,
        why,
        last_lines: indented_lines(&last_lines),
        advice: plan.program.advice(),
    }
    .into())
}

/// A program's last lines for an error: escaped, indented, after a heading.
fn indented_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return "\n  it printed nothing".to_owned();
    }
    let mut text = String::from("\n  its last lines:");
    for line in lines {
        text.push_str("\n    ");
        text.push_str(&escape_line(line));
    }
    text
}

/// Prove `url` reaches this listener, showing the wait on a terminal.
async fn prove(sender: &Sender, probes: &ReachProbes, url: &PublicUrl) -> Result<Duration, String> {
    let shown = tunnel::shown_origin(&url.origin);
    let mut progress = Progress::new(format!("proving {shown} reaches this listener"));
    let mut ticks = tokio::time::interval(crate::progress::TICK);
    let proving = reach::prove(sender, probes, &url.origin, reach::window());
    tokio::pin!(proving);
    loop {
        tokio::select! {
            proved = &mut proving => {
                progress.clear();
                if let Ok(took) = &proved {
                    eprintln!(
                        "danube-hooks: {shown} reaches this listener (a probe arrived in {:.1} s)",
                        took.as_secs_f64()
                    );
                }
                return proved;
            }
            _ = ticks.tick() => progress.tick(),
        }
    }
}

/// Make or reuse the webhook for `url`; `None` when a signal came while
/// Danube's webhooks were being listed (before anything was changed).
async fn register_webhook(
    register: &RegisterPlan,
    api: Api,
    url: &PublicUrl,
    signals: &super::Signals,
) -> anyhow::Result<Option<Registered>> {
    let dir = crate::danube::credentials::config_dir()?;
    let webhook_url = url
        .webhook_url(&register.path)
        .map_err(|err| UsageError::new(err.to_string()))?;
    eprintln!(
        "danube-hooks: registering {} (public URL from {}) with Danube at {}…",
        escape_line(&webhook_url.to_string()),
        url.source.describe(),
        api.origin()
    );
    // A signal stops it only during the first list: a create or update
    // cut off half-way would leave a webhook we could not pause. The API's
    // timeouts bound the rest.
    let registration = match register::register(
        &api,
        &dir,
        &Target {
            url: webhook_url.to_string(),
            events: register.events.clone(),
            on_exit: register.on_exit,
        },
        &signals.shutdown,
        &signals.hurry,
    )
    .await
    {
        Err(register::RegisterError::Stopped) => return Ok(None),
        done => done?,
    };
    Ok(Some(Registered {
        registration,
        api,
        dir,
    }))
}

impl Public {
    /// The banner's lines (after `  `), each already escaped.
    pub(crate) fn banner_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(tunnel) = &self.tunnel {
            lines.push(format!("tunnel:   {}", tunnel.header(&self.url)));
        }
        match &self.proof {
            Proof::Proved(_) => {}
            Proof::Skipped => lines.push(format!(
                "warning:  --no-verify-url: {} was not proved to reach this listener",
                tunnel::shown_origin(&self.url.origin)
            )),
            Proof::Failed(why) => lines.push(format!(
                "warning:  {} does not reach this listener yet: {}",
                tunnel::shown_origin(&self.url.origin),
                escape_line(why)
            )),
        }
        if let Some(registered) = &self.registered {
            let registration = &registered.registration;
            lines.push(format!("danube:   {}", registration.describe()));
            lines.push(format!(
                "          public URL from {}",
                self.url.source.describe()
            ));
            lines.push(format!("          {}", registration.exit_plan()));
        } else if let Some(why) = self.unregistered {
            let url = self.webhook_url_text();
            let (because, how) = match why {
                Unregistered::NotAsked => (
                    "--no-register",
                    "leave out --no-register to have it registered (with `danube-hooks login` or \
                     DANUBE_API_KEY)",
                ),
                Unregistered::NoCredential => (
                    "no Danube credential",
                    "or run `danube-hooks login` (or set DANUBE_API_KEY) and start again: the \
                     webhook is then registered, and verified with its secret, by itself",
                ),
            };
            lines.push(format!("webhook:  not registered ({because}): paste {url}"));
            lines.push(format!(
                "          as the webhook URL in Danube, and pass its secret with --secret; {how}"
            ));
        }
        lines
    }

    fn webhook_url_text(&self) -> String {
        self.url.webhook_url(&self.path).map_or_else(
            |_| tunnel::shown_origin(&self.url.origin),
            |url| escape_line(&url.to_string()).into_owned(),
        )
    }

    fn view(&self) -> View {
        View {
            tunnel: self.tunnel.as_ref().map(|tunnel| tunnel.header(&self.url)),
            webhook: self.registered.as_ref().map(Registered::header_line),
            notice: None,
        }
    }

    /// End the tunnel and do what the flags say with the webhook.
    async fn close(self) {
        if let Some(tunnel) = self.tunnel {
            tunnel.close().await;
        }
        if let Some(registered) = &self.registered {
            registered.finish().await;
        }
    }
}
