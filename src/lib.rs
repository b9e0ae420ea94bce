//! danube-hooks: receive, verify, break and replay Danube webhook deliveries.
//!
//! The map of the crate, and the one place that wires its parts together:
//!
//! - [`signature`]: sign, parse, verify and explain `X-Danube-Signature`; pure.
//! - [`delivery`]: the delivery record, grouping keys; pure data.
//! - [`json_style`]: JSON written the ways common stacks write it (forensics).
//! - [`display`]: untrusted bytes to terminal-safe text.
//! - [`cli`]: clap types and their validation.
//! - [`commands`]: one module per subcommand.

pub mod cli;
pub mod commands;
pub mod delivery;
pub mod display;
pub mod json_style;
pub mod signature;

use cli::{Cli, Command};
use commands::Outcome;

/// Run one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Sign(args) => commands::sign::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
    }
}
