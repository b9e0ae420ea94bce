//! The arguments of the commands that act as Danube or check its
//! signatures: `trigger`, `replay`, `check`, `sign`, `verify`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{Backoff, DEFAULT_BACKOFF, parse_backoff, parse_duration};
use super::{BodyArg, SecretArgs, StoreArg, TlsArgs};
use crate::signature;

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The event type to send, unless --all: tool.execution.completed, tool.execution.failed, workflow.completed, workflow.failed, agent.spend.limit_approaching.
    #[arg(
        value_name = "EVENT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub event: Option<String>,
    /// Send one delivery of each Danube event type.
    #[arg(long)]
    pub all: bool,
    /// Your receiver's URL (http:// or https://).
    #[arg(long, value_name = "URL", required_unless_present = "emulator")]
    pub to: Option<String>,
    /// Instead of posting it yourself, send the event to a local Danube (`danube-hooks emulate`, e.g. http://127.0.0.1:4200), which delivers it to each active webhook subscribed to it, signed with that webhook's secret; prints the deliveries it made. Uses DANUBE_API_KEY or the key `login` saved.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with_all = ["to", "secrets", "secret_file", "attempts", "timeout", "backoff", "same_signature"]
    )]
    pub emulator: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Set a field of the envelope, typed: data.status=failed, data.execution_time=2.5, data.error=null. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// A JSON file whose contents replace `data`.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
    /// Attempts at most (the default is as many as Danube makes).
    #[arg(long, value_name = "N", default_value_t = crate::facts::ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: u32,
    /// How long one attempt may take before it counts as failed (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Waits between failed attempts, the last repeating (Danube's schedule is not published).
    #[arg(long, value_name = "LIST", default_value = DEFAULT_BACKOFF, value_parser = parse_backoff)]
    pub backoff: Backoff,
    /// Keep the first attempt's signature on retries instead of signing each anew.
    #[arg(long)]
    pub same_signature: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The id of the stored delivery.
    pub id: u64,
    /// Where to send it [default: the --forward-to it was recorded with].
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Byte-identical, original signature included (tests replay protection).
    #[arg(long)]
    pub as_is: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub store: StoreArg,
    /// How long the target may take (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Your receiver's URL (http:// or https://).
    pub url: String,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Danube's deadline for an answer.
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub tls: TlsArgs,
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
    #[arg(long, value_name = "SECONDS", default_value_t = crate::facts::TOLERANCE_S)]
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
