//! The arguments of the store's readers: `log`, `show`, `export`.

use clap::Args;

use super::StoreArg;
use super::parse::parse_verdict;
use crate::signature;

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// One JSON record per line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only the last N (after filtering).
    #[arg(long, value_name = "N")]
    pub(crate) last: Option<usize>,
    /// Only events matching: an event type, a prefix like tool.*, or *.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) event: Option<String>,
    /// Only this verdict: valid, mismatch, stale, missing, malformed, unchecked.
    #[arg(long, value_name = "VERDICT", value_parser = parse_verdict)]
    pub(crate) verdict: Option<signature::Verdict>,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    pub(crate) id: u64,
    /// The body as received (escaped), not pretty-printed.
    #[arg(long)]
    pub(crate) raw: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    pub(crate) id: u64,
    /// Print a curl command that reproduces the request byte for byte: the default, and the only format.
    #[arg(long)]
    pub(crate) curl: bool,
    /// Where the command sends it [default: the listener's address and path it arrived on].
    #[arg(long, value_name = "URL")]
    pub(crate) to: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}
