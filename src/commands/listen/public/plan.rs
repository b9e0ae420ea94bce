//! What `listen`'s public side asks for, checked from the flags: the
//! tunnel program found (`--tunnel`, `--tunnel-bin`), the webhook to
//! register (`--register`, or `--tunnel` without `--no-register`), and
//! whether the URL is proved first.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{self, UsageError};
use crate::danube::register::OnExit;
use crate::danube::tunnel::program::{self, Program};
use crate::danube::tunnel::{self, Discovery};
use crate::display::escape_line;

/// What the public side asks for, checked.
#[derive(Debug, Clone)]
pub(crate) struct PublicPlan {
    /// `--tunnel`: the program to start and keep running.
    pub(crate) tunnel: Option<TunnelPlan>,
    /// The webhook to make or reuse: `--register`, or `--tunnel` without
    /// `--no-register`.
    pub(crate) register: Option<RegisterPlan>,
    /// `--register` by name: then a missing credential is an error, where
    /// `--tunnel` alone only says how to register.
    pub(crate) register_required: bool,
    /// Prove the URL reaches this listener before registering it (not
    /// with `--no-verify-url`).
    pub(crate) verify_url: bool,
}

/// `--tunnel`'s program, found.
#[derive(Debug, Clone)]
pub(crate) struct TunnelPlan {
    pub(crate) program: Program,
    pub(crate) bin: PathBuf,
    pub(crate) url_timeout: Duration,
}

/// What registering asks for, checked.
#[derive(Debug, Clone)]
pub(crate) struct RegisterPlan {
    /// Where `--register` alone finds the URL; `None` with `--tunnel`.
    pub(crate) discovery: Option<Discovery>,
    /// `--path`, checked.
    pub(crate) path: String,
    /// `--event`s, without repeats; `None` when none was given.
    pub(crate) events: Option<Vec<String>>,
    pub(crate) on_exit: OnExit,
    pub(crate) api_url: String,
    pub(crate) api_timeout: Duration,
    /// The API's own trust (the web's roots, `--api-cacert`): never the
    /// receivers' `--cacert` or `--insecure`.
    pub(crate) api_trust: crate::http::Trust,
}

impl PublicPlan {
    /// `None` when neither `--tunnel` nor `--register` is given.
    pub(crate) fn from_args(
        tunnel_args: &cli::TunnelArgs,
        args: &cli::RegisterArgs,
    ) -> Result<Option<Self>, UsageError> {
        let tunnel = tunnel_args
            .tunnel
            .map(|program| TunnelPlan::find(program, tunnel_args))
            .transpose()?;
        let registering = args.register || (tunnel.is_some() && !tunnel_args.no_register);
        if tunnel.is_none() && !registering {
            return Ok(None);
        }
        let register = registering
            .then(|| RegisterPlan::from_args(args, tunnel.is_none()))
            .transpose()?;
        Ok(Some(Self {
            tunnel,
            register,
            register_required: args.register,
            verify_url: !tunnel_args.no_verify_url,
        }))
    }

    /// The webhook URL's path: `--path`, or the default.
    pub(super) fn path(&self) -> &str {
        self.register
            .as_ref()
            .map_or(tunnel::DEFAULT_PATH, |register| register.path.as_str())
    }
}

impl TunnelPlan {
    /// The program's executable: `--tunnel-bin`, else on `PATH`; a usage
    /// error naming how to install it when there is none.
    fn find(program: Program, args: &cli::TunnelArgs) -> Result<Self, UsageError> {
        let path = std::env::var_os("PATH");
        let bin = program::find(program, args.tunnel_bin.as_deref(), path.as_deref()).ok_or_else(
            || {
                let name = program.name();
                let hint = program.install_hint();
                UsageError::new(match &args.tunnel_bin {
                    Some(given) => format!(
                        "--tunnel-bin {}: not an executable file; {hint}",
                        escape_line(&given.display().to_string())
                    ),
                    None => format!(
                        "--tunnel {name}: {name} is not installed (not found on PATH); {hint}"
                    ),
                })
            },
        )?;
        Ok(Self {
            program,
            bin,
            url_timeout: args.tunnel_timeout,
        })
    }
}

impl RegisterPlan {
    fn from_args(args: &cli::RegisterArgs, discover: bool) -> Result<Self, UsageError> {
        let usage = |err: tunnel::TunnelError| UsageError::new(err.to_string());
        let path = args.path.as_deref().unwrap_or(tunnel::DEFAULT_PATH);
        tunnel::check_path(path).map_err(usage)?;
        let discovery = if discover {
            Some(
                Discovery::new(
                    args.public_url.as_deref(),
                    args.ngrok_api.as_deref(),
                    args.cloudflared_metrics.as_deref(),
                    crate::danube::api::is_local_danube(args.api_url()),
                )
                .map_err(usage)?,
            )
        } else {
            None
        };
        let mut events: Vec<String> = Vec::new();
        for event in &args.events {
            if !events.contains(event) {
                events.push(event.clone());
            }
        }
        Ok(Self {
            discovery,
            path: path.to_owned(),
            events: (!events.is_empty()).then_some(events),
            on_exit: if args.unregister {
                OnExit::Unregister
            } else if args.keep_active {
                OnExit::KeepActive
            } else {
                OnExit::Pause
            },
            api_url: args.api_url().to_owned(),
            api_trust: args.api_cacert.trust()?,
            api_timeout: args.api_timeout,
        })
    }
}
