//! `emulate`: a local Danube (SPEC §13). Opens the state, binds, prints
//! the banner (the URL, the environment for an SDK, the state file), then
//! serves the API until SIGINT or SIGTERM, and writes the state whole
//! before it exits.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::Outcome;
use super::listen::{bind, serve_from};
use crate::cli::{EMULATOR_KEY_ENV, EmulateArgs, KeySource};
use crate::danube::scrub::redact;
use crate::display::escape_line;
use crate::emulator::api::{Config, Emulator, Keys};
use crate::emulator::deliver::{AttemptOutput, Deliverer, DeliveryLog, DeliveryOptions};
use crate::emulator::state::{self, State};
use crate::http::reachable_url;

/// The key the banner suggests when any key is accepted: shown whole, as
/// it is no secret (any non-empty key works), and the same every run, so
/// it can stay in a CI file or a `.env`.
pub(crate) const ANY_KEY_HINT: &str = "dk_emu_local";

pub(crate) fn run(args: &EmulateArgs) -> anyhow::Result<Outcome> {
    let path = match &args.state {
        Some(path) => path.clone(),
        None => state::default_path()?,
    };
    let (accepted, source) = args.accepted_keys()?;
    let keys = if accepted.is_empty() {
        Keys::Any
    } else {
        Keys::Only(accepted.clone())
    };
    let options = DeliveryOptions {
        timeout: args.timeout,
        backoff: args.backoff.0.clone(),
        attempts: DeliveryOptions::default().attempts,
        trust: super::trust(&args.tls)?,
    };
    let output = if args.json {
        AttemptOutput::Json
    } else {
        AttemptOutput::Human
    };
    let address = SocketAddr::new(args.host, args.port);
    let listener = bind(address)?;
    let state = State::open(&path, args.reset, args.keep)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let (listener, local, signals) = serve_from(listener)?;
        let shutdown = signals.shutdown;
        let named = NamedKeys {
            first: accepted.first().map(String::as_str),
            source,
        };
        eprint!("{}", banner(args, named, local, &path, &state));
        let config = Config {
            keys,
            allow_http: args.allow_http,
            base_url: reachable_url(local),
        };
        let log: Arc<dyn DeliveryLog> = Arc::new(state.clone());
        let emulator = Emulator::new(state.clone(), config, Deliverer::new(log, options, output));
        crate::emulator::serve::run(listener, emulator, shutdown).await;
        anyhow::Ok(())
    });
    // Deliveries still in flight stop with the runtime; their records
    // are written as they stand (and read back as failed).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    state.close();
    eprintln!("danube-hooks: stopped; the emulator's state is written.");
    served.map(|()| Outcome::Success)
}

/// The keys the emulator accepts, as the banner tells them.
#[derive(Clone, Copy)]
pub(crate) struct NamedKeys<'a> {
    /// The first key named; `None` when any key is accepted.
    pub(crate) first: Option<&'a str>,
    pub(crate) source: KeySource,
}

/// Where it serves, what to point an SDK at, where the state is, and the
/// rules it keeps.
pub(crate) fn banner(
    args: &EmulateArgs,
    keys: NamedKeys<'_>,
    local: SocketAddr,
    path: &Path,
    state: &State,
) -> String {
    let url = reachable_url(local);
    let mut out = String::new();
    let _ = writeln!(out, "danube-hooks emulating Danube on {url}");
    if !local.ip().is_loopback() {
        let _ = writeln!(
            out,
            "  warning:  bound to {}: reachable from the network; any key it accepts is a key to it",
            local.ip()
        );
    }
    let key = match keys.first {
        // The user's own key: only its start, like every key shown.
        Some(key) => format!(
            "{} (your {})",
            redact(key),
            match keys.source {
                KeySource::File => "--api-key-file".to_owned(),
                KeySource::Environment => format!("${EMULATOR_KEY_ENV}"),
                KeySource::Flag | KeySource::Any => "--api-key".to_owned(),
            }
        ),
        None => format!("{ANY_KEY_HINT} (any non-empty key is accepted)"),
    };
    let _ = writeln!(out, "  env:      DANUBE_API_URL={url}");
    let _ = writeln!(out, "            DANUBE_API_KEY={key}");
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let (webhooks, records) = (state.list().len(), state.record_count());
    let _ = writeln!(
        out,
        "  state:    {} ({webhooks} webhook{}, {records} delivery record{}{})",
        escape_line(&path.display().to_string()),
        plural(webhooks),
        plural(records),
        if args.reset {
            ", started empty: --reset"
        } else {
            ""
        }
    );
    let urls = if args.allow_http {
        "https:// and http:// webhook URLs (--allow-http)"
    } else {
        "https:// webhook URLs only, as Danube (--allow-http lets an http:// receiver in)"
    };
    let _ = writeln!(out, "  rules:    {urls}");
    // With keys named, the device flow wants one of them, which `login`
    // (a key-less device flow) does not send.
    let login = if keys.first.is_none() {
        format!("danube-hooks login --api-url {url}   (approved at the first poll)")
    } else {
        format!("danube-hooks login --with-key --api-url {url}   (one of its keys, on stdin)")
    };
    let _ = writeln!(out, "  login:    {login}");
    out
}
