//! danube-hooks: receive, verify, break and replay Danube webhook deliveries.
//!
//! The map of the crate, and the one place that wires its parts together:
//!
//! - [`signature`]: sign, parse, verify and explain `X-Danube-Signature`; pure.
//! - [`delivery`]: the delivery record, grouping keys; pure data.
//! - [`json_style`]: JSON written the ways common stacks write it (forensics).
//! - [`curl`]: a curl command that reproduces a stored request byte for byte.
//! - [`display`]: untrusted bytes to terminal-safe text.
//! - [`server`]: the hyper listener, its limits, forwarding and one request's path.
//! - [`headless`]: human lines and JSON lines on stdout.
//! - [`tui`]: the dashboard: terminal guard and event loop; state and keys in
//!   `tui::app`, drawing in `tui::view`, the `/` filter in `tui::filter`.
//! - [`policy`]: the `--respond` grammar and the answer for an attempt; pure.
//! - [`store`]: the JSON-lines delivery log: one writer thread, recovery on
//!   open, readers for the commands and the dashboard's resync.
//! - [`cli`]: clap types and their validation.
//! - [`commands`]: one module per subcommand.

pub mod cli;
pub mod commands;
pub mod curl;
pub mod delivery;
pub mod display;
pub mod headless;
pub mod json_style;
pub mod policy;
pub mod server;
pub mod signature;
pub mod store;
pub mod tui;

use cli::{Cli, Command};
use commands::Outcome;

/// Run one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Listen(args) => commands::listen::run(&args),
        Command::Sign(args) => commands::sign::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
    }
}
