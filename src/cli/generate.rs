//! The arguments of `completions` and `man`, which are generated from
//! this very definition.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL", value_enum)]
    pub(crate) shell: CompletionShell,
}

/// The shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// The command whose page to print, e.g. listen [default: the top-level page].
    #[arg(value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
    /// Write the pages of COMMAND and every command under it (all of them by
    /// default) into DIR, one file each (danube-hooks.1, danube-hooks-listen.1, …).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}
