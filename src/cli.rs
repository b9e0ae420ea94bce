//! The command line: clap types, and their checks into validated config.
//!
//! Nothing here does I/O beyond reading a body file; each command's module
//! gets values it can trust.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::signature::{self, Secret};

/// A bad argument or configuration: exit 2, with a message that names the
/// input and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "danube-hooks",
    version,
    about = "Receive, inspect, verify, break and replay Danube webhook deliveries on your machine.",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the X-Danube-Signature value for a body, as Danube would send it.
    Sign(SignArgs),
    /// Check an X-Danube-Signature value against a body, and say why it fails.
    Verify(VerifyArgs),
}

/// The signing secrets: repeatable for rotation, from the environment when absent.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Signing secret (whsec_…); repeat it for rotation. Shown only as a fingerprint.
    #[arg(
        short = 's',
        long = "secret",
        value_name = "SECRET",
        env = "DANUBE_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<String>,
}

impl SecretArgs {
    pub fn secrets(&self) -> Vec<Secret> {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| Secret::new(s.clone()))
            .collect()
    }

    /// The secrets, or a usage error when there are none.
    pub fn required(&self, command: &str) -> Result<Vec<Secret>, UsageError> {
        let secrets = self.secrets();
        if secrets.is_empty() {
            return Err(UsageError::new(format!(
                "{command} needs a signing secret: pass --secret whsec_… or set DANUBE_WEBHOOK_SECRET"
            )));
        }
        Ok(secrets)
    }
}

/// Where a body comes from: a file, or standard input for `-` or nothing.
#[derive(Debug, Clone, Args)]
pub struct BodyArg {
    /// File holding the exact body bytes; `-` or nothing reads standard input.
    #[arg(value_name = "BODY_FILE")]
    pub body_file: Option<PathBuf>,
}

impl BodyArg {
    pub fn read(&self) -> Result<Vec<u8>, UsageError> {
        match &self.body_file {
            Some(path) if path.as_os_str() != "-" => std::fs::read(path).map_err(|err| {
                UsageError::new(format!("cannot read body file {}: {err}", path.display()))
            }),
            _ => {
                let mut stdin = std::io::stdin();
                if stdin.is_terminal() {
                    return Err(UsageError::new(
                        "no body: give a BODY_FILE, or pipe the body on standard input (`-`)",
                    ));
                }
                let mut body = Vec::new();
                stdin.read_to_end(&mut body).map_err(|err| {
                    UsageError::new(format!("cannot read the body from standard input: {err}"))
                })?;
                Ok(body)
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Unix seconds to sign at; default now.
    #[arg(short = 't', long, value_name = "UNIX_SECONDS")]
    pub timestamp: Option<i64>,
    #[command(flatten)]
    pub body: BodyArg,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    /// The X-Danube-Signature value (a whole "X-Danube-Signature: …" line is accepted too).
    #[arg(short = 'H', long, value_name = "HEADER")]
    pub header: String,
    /// Unix seconds to check t against; default now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<i64>,
    /// How far t may be from now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = signature::DEFAULT_TOLERANCE_S)]
    pub tolerance: u64,
    /// Print the signature object as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub body: BodyArg,
}

impl VerifyArgs {
    /// The header value, without a pasted `X-Danube-Signature:` name.
    pub fn header_value(&self) -> &str {
        let header = self.header.trim();
        match header.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case(signature::HEADER_NAME) => {
                value.trim()
            }
            _ => header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_pasted_header_line_is_accepted() {
        let cli = Cli::try_parse_from([
            "danube-hooks",
            "verify",
            "--secret",
            "whsec_x",
            "--header",
            "x-danube-signature: t=1,sha256=ab",
        ])
        .unwrap();
        let Command::Verify(args) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(args.header_value(), "t=1,sha256=ab");
    }
}
