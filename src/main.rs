//! The binary: parse, run, map the outcome or the error's class to an exit
//! code (SPEC §2).

use std::process::ExitCode;

use clap::Parser as _;
use danube_hooks::cli::Cli;
use danube_hooks::commands::Outcome;
use danube_hooks::errors::class_of;

/// Faster than glibc malloc when memory is freed on another thread than the
/// one that allocated it, which the listener does for every record
/// (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap answers a bad command line itself, with 2.
    let cli = Cli::parse();
    match danube_hooks::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::from(1),
        Err(err) => {
            let class = class_of(&err);
            if class.is_told() {
                eprintln!("danube-hooks: {err:#}");
            }
            ExitCode::from(class.exit_code())
        }
    }
}
