//! The arguments of the store's readers: `log`, `show`, `export`.

use clap::Args;

use super::StoreReadArgs;
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
    /// Only deliveries that match the query (with --event, --verdict and --last, all must hold).
    #[arg(long, value_name = "QUERY", allow_hyphen_values = true, long_help = query_help("Only deliveries that match the query; --event, --verdict and --last combine with it."))]
    pub(crate) query: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreReadArgs,
}

/// The query language, for the `--help` of every command that takes
/// `--query`, after what the option does there.
pub(crate) fn query_help(what: &str) -> String {
    format!("{what}\n\n{QUERY_LANGUAGE}")
}

const QUERY_LANGUAGE: &str = "\
Terms separated by spaces, all of which must hold; -TERM negates one; \"double quotes\" keep spaces.
  event:PATTERN        tool.execution.failed, tool.*, * (as --respond matches events)
  verdict:V            valid, mismatch, stale, missing, malformed, unchecked, invalid
  status:S             the status this listener answered: 500, 5xx, !2xx
  attempt:N  id:N      3, >1, <3, >=2, <=5, !=1, 2..5
  path:P               /webhooks/danube (its query aside), /webhooks/* (a prefix)
  header:NAME[=VALUE]  the name in any case; VALUE exact, or a prefix ending in *
  since:T  until:T     30s, 10m, 2h, 7d, 1w ago, or 2026-12-06T10:00:00Z, or 2026-12-06
  FIELD OP VALUE       a body field by JSON path: data.tool_name=Gmail, data.execution_time>1;
                       OP is = != > < >= <=; numbers compare as numbers
  WORD                 found in the event, the path or the body, in any ASCII case
A bad term is refused (exit 2) with a caret under it and what is allowed.";

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    pub(crate) id: u64,
    /// The body as received (escaped), not pretty-printed.
    #[arg(long)]
    pub(crate) raw: bool,
    #[command(flatten)]
    pub(crate) store: StoreReadArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The delivery to export (or --query for every one that matches).
    #[arg(required_unless_present = "query", conflicts_with = "query")]
    pub(crate) id: Option<u64>,
    /// A curl command for each delivery that matches the query, oldest first.
    #[arg(long, value_name = "QUERY", allow_hyphen_values = true, long_help = query_help("A curl command for each delivery that matches the query, oldest first, each after a comment line with its id."))]
    pub(crate) query: Option<String>,
    /// Print a curl command that reproduces the request byte for byte: the default, and the only format.
    #[arg(long)]
    pub(crate) curl: bool,
    /// Where the command sends it [default: the listener's address and path it arrived on].
    #[arg(long, value_name = "URL")]
    pub(crate) to: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreReadArgs,
}
