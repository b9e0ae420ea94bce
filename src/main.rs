//! The binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser as _;
use danube_hooks::cli::Cli;
use danube_hooks::commands::Outcome;

/// Faster than glibc malloc when memory is freed on another thread than the
/// one that allocated it, which the listener does for every record
/// (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match danube_hooks::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::from(1),
        Err(err) => {
            eprintln!("danube-hooks: {err:#}");
            ExitCode::from(2)
        }
    }
}
