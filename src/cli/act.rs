//! The arguments of the commands that act as Danube or check its
//! signatures: `trigger`, `replay`, `check`, `sign`, `verify`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{Backoff, DEFAULT_BACKOFF, parse_backoff, parse_duration};
use super::{BodyArg, SecretArgs, StoreArg, TlsArgs};
use crate::signature;

#[derive(Debug, Args)]
pub(crate) struct TriggerArgs {
    /// The event type to send, unless --all: tool.execution.completed, tool.execution.failed, workflow.completed, workflow.failed, agent.spend.limit_approaching.
    #[arg(
        value_name = "EVENT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) event: Option<String>,
    /// Send one delivery of each Danube event type.
    #[arg(long)]
    pub(crate) all: bool,
    /// Your receiver's URL (http:// or https://).
    #[arg(long, value_name = "URL", required_unless_present = "emulator")]
    pub(crate) to: Option<String>,
    /// Instead of posting it yourself, send the event to a local Danube (`danube-hooks emulate`, e.g. http://127.0.0.1:4200), which delivers it to each active webhook subscribed to it, signed with that webhook's secret; prints the deliveries it made. Uses DANUBE_API_KEY or the key `login` saved.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with_all = ["to", "secrets", "secret_file", "attempts", "timeout", "backoff", "same_signature"]
    )]
    pub(crate) emulator: Option<String>,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Set a field of the envelope, as JSON when the value reads as JSON (data.status=failed, data.execution_time=2.5, data.error=null, data.tags=[1,2]), else as a string. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub(crate) sets: Vec<String>,
    /// A JSON file whose contents replace `data`.
    #[arg(long, value_name = "FILE")]
    pub(crate) data_file: Option<PathBuf>,
    /// Attempts at most (the default is as many as Danube makes).
    #[arg(long, value_name = "N", default_value_t = crate::facts::ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub(crate) attempts: u32,
    /// How long one attempt may take before it counts as failed (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Waits between failed attempts, the last repeating (Danube's schedule is not published).
    #[arg(long, value_name = "LIST", default_value = DEFAULT_BACKOFF, value_parser = parse_backoff)]
    pub(crate) backoff: Backoff,
    /// Keep the first attempt's signature on retries instead of signing each anew.
    #[arg(long)]
    pub(crate) same_signature: bool,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The id of the stored delivery.
    pub(crate) id: u64,
    /// Where to send it [default: the --forward-to it was recorded with, or,
    /// when it was not forwarded, the listener running on the store].
    #[arg(long, value_name = "URL")]
    pub(crate) to: Option<String>,
    /// Keep the original signature instead of signing anew: byte-identical (tests replay protection), or with an edit the old signature over the changed body (tests that a change is rejected).
    #[arg(long)]
    pub(crate) as_is: bool,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Send a changed copy: set a field of the body, as JSON when the value reads as JSON (data.status=failed, data.execution_time=2.5, data.tags=[1,2], data.error=null), else as a string. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub(crate) sets: Vec<String>,
    /// Send a changed copy: a JSON file whose contents replace the body's `data` (before any --set).
    #[arg(long, value_name = "FILE")]
    pub(crate) data_file: Option<PathBuf>,
    /// Send a changed copy: add a header, or replace every header of its name, e.g. 'X-Test: 1'. Repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Send a changed copy: remove every header of this name, e.g. X-Danube-Signature. Repeatable.
    #[arg(long = "drop-header", value_name = "NAME")]
    pub(crate) drop_headers: Vec<String>,
    /// How long the target may take (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Your receiver's URL (http:// or https://).
    pub(crate) url: String,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// The report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Danube's deadline for an answer.
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Unix seconds to sign at; default now.
    #[arg(short = 't', long, value_name = "UNIX_SECONDS")]
    pub(crate) timestamp: Option<i64>,
    #[command(flatten)]
    pub(crate) body: BodyArg,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// The X-Danube-Signature value (a whole "X-Danube-Signature: …" line is accepted too).
    #[arg(short = 'H', long, value_name = "HEADER")]
    pub(crate) header: String,
    /// Unix seconds to check t against; default now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) now: Option<i64>,
    /// How far t may be from now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::facts::TOLERANCE_S)]
    pub(crate) tolerance: u64,
    /// Print the signature object as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) body: BodyArg,
}

impl VerifyArgs {
    /// The header value, without a pasted `X-Danube-Signature:` name.
    pub(crate) fn header_value(&self) -> &str {
        let header = self.header.trim();
        match header.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case(signature::HEADER_NAME) => {
                value.trim()
            }
            _ => header,
        }
    }
}
