//! `dashboard`'s arguments: a team's shared store, watched with no listener.

use std::path::PathBuf;

use clap::Args;

use super::{ScreenArgs, SecretArgs, UsageError};

#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// The shared store: postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…], its password in PGPASSWORD or ~/.pgpass, or the whole URL in DANUBE_HOOKS_STORE. A file store is refused: `listen` shows a file's deliveries.
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// Where r, R and e send a delivery again [default: the URL the delivery was forwarded to; with neither, nothing is sent]. Never a listener's own address: a dashboard makes no listener send anything.
    #[arg(long, value_name = "URL")]
    pub(crate) to: Option<String>,
    /// Your own signing secret, for r and e (re-signed replays).
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Trust the CA certificate(s) in this PEM file, besides the web's roots, for https:// replay targets and for the database (sslmode=verify-full; over the URL's sslrootcert and $PGSSLROOTCERT).
    #[arg(long, value_name = "PEM")]
    pub(crate) cacert: Option<PathBuf>,
    /// Skip certificate checks for https:// replay targets (a warning says so); never for the database.
    #[arg(long)]
    pub(crate) insecure: bool,
    #[command(flatten)]
    pub(crate) screen: ScreenArgs,
}

impl DashboardArgs {
    /// How https:// replay targets are trusted.
    pub(crate) fn trust(&self) -> Result<crate::http::Trust, UsageError> {
        crate::http::Trust::load(self.cacert.as_deref(), self.insecure)
            .map_err(|err| UsageError::new(err.to_string()))
    }
}
