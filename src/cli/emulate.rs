//! `emulate`'s arguments, and the API keys it accepts.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{Backoff, DEFAULT_BACKOFF, parse_api_key, parse_backoff, parse_duration};
use super::{PrivateLines, TlsArgs, UsageError, read_private_lines};

#[derive(Debug, Args)]
pub(crate) struct EmulateArgs {
    /// Port to serve on; 0 picks a free one (the banner says which).
    #[arg(short = 'p', long, default_value_t = 4200)]
    pub(crate) port: u16,
    /// Address to bind. Anything but loopback is reachable from the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: std::net::IpAddr,
    /// The emulator's webhooks, secrets and delivery log [default: $XDG_DATA_HOME/danube-hooks/emulator.json].
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,
    /// Start empty: forget the webhooks and deliveries of the state file.
    #[arg(long)]
    pub(crate) reset: bool,
    /// Accept http:// webhook URLs too (Danube takes only https://), for a receiver on this machine.
    #[arg(long)]
    pub(crate) allow_http: bool,
    /// Accept only this API key (repeatable) [default: any non-empty key]. It shows in `ps`: prefer --api-key-file or $DANUBE_EMULATOR_API_KEY.
    #[arg(long = "api-key", value_name = "KEY", value_parser = parse_api_key)]
    pub(crate) api_keys: Vec<String>,
    /// A file of the only API keys to accept, one per line; keeps them out of `ps` and shell history. Without --api-key or --api-key-file, $DANUBE_EMULATOR_API_KEY.
    #[arg(long, value_name = "PATH")]
    pub(crate) api_key_file: Option<PathBuf>,
    /// Delivery records kept per webhook; older ones are dropped.
    #[arg(long, value_name = "N", default_value_t = crate::emulator::state::DEFAULT_KEEP, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=1_000_000), |n| n as usize))]
    pub(crate) keep: usize,
    /// How long one delivery attempt may take before it counts as failed (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Waits between failed attempts, the last repeating (Danube's schedule is not published).
    #[arg(long, value_name = "LIST", default_value = DEFAULT_BACKOFF, value_parser = parse_backoff)]
    pub(crate) backoff: Backoff,
    /// One JSON object per delivery attempt on stdout instead of a line for people.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

/// The environment variable `emulate` takes its one key from when neither
/// `--api-key` nor `--api-key-file` names any.
pub(crate) const EMULATOR_KEY_ENV: &str = "DANUBE_EMULATOR_API_KEY";

/// Where the keys `emulate` accepts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// None named: any non-empty key is accepted.
    Any,
    /// `--api-key` (and `--api-key-file`, when both are given).
    Flag,
    File,
    Environment,
}

impl EmulateArgs {
    /// The only keys to accept, and where they came from: `--api-key`
    /// values, then the file's; the environment only when neither flag is
    /// given. No key at all means any key. A key file that can't be read
    /// or holds no key is an error; one open to others gets a warning.
    pub(crate) fn accepted_keys(&self) -> Result<(Vec<String>, KeySource), UsageError> {
        let mut keys = self.api_keys.clone();
        let mut source = if keys.is_empty() {
            KeySource::Any
        } else {
            KeySource::Flag
        };
        if let Some(path) = &self.api_key_file {
            let shown = crate::display::escape_path(path);
            for (n, line) in read_private_lines(path, &KEY_FILE)?.into_iter().enumerate() {
                let key = parse_api_key(&line).map_err(|why| {
                    UsageError::new(format!("--api-key-file {shown}: line {}: {why}", n + 1))
                })?;
                keys.push(key);
            }
            if source == KeySource::Any {
                source = KeySource::File;
            }
        }
        if source == KeySource::Any
            && let Some(key) = std::env::var(EMULATOR_KEY_ENV)
                .ok()
                .filter(|k| !k.is_empty())
        {
            let key = parse_api_key(&key)
                .map_err(|why| UsageError::new(format!("{EMULATOR_KEY_ENV}: {why}")))?;
            keys.push(key);
            source = KeySource::Environment;
        }
        Ok((keys, source))
    }
}

const KEY_FILE: PrivateLines = PrivateLines {
    flag: "--api-key-file",
    what: "key",
    per_line: "one API key per line",
};
