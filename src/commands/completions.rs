//! `completions SHELL`: a completion script, generated at run time from the
//! clap definition, so every subcommand and flag the binary has is in it.

use std::io::Write as _;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell, CompletionsArgs};

use super::Outcome;

pub(crate) fn run(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let script = script(args.shell);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(|err| {
            super::stdout_failed(err, "cannot write the completion script to standard output")
        })?;
    Ok(Outcome::Success)
}

/// The completion script for `shell`, for the binary named `danube-hooks`.
pub(crate) fn script(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name.as_str(), &mut script);
    if shell == Shell::Bash {
        script = fix_bash_subcommand_states(&script, &name).into_bytes();
    }
    script
}

/// `clap_complete`'s bash script (4.6.12 and before) completes nothing past a
/// subcommand when the binary's name has a hyphen (clap-rs/clap#6421): its
/// loop spells the state for `danube-hooks listen` `danube__hooks__subcmd__listen`,
/// but the `case` arms spell it `danube__subcmd__hooks__subcmd__listen`, so no
/// arm matches. Spell the arms the way the loop does; once `clap_complete`
/// does that itself, this changes nothing.
fn fix_bash_subcommand_states(script: &[u8], name: &str) -> String {
    const SEP: &str = "__subcmd__";
    let script = String::from_utf8_lossy(script);
    let wrong = format!("{}{SEP}", name.replace('-', SEP));
    let right = format!("{}{SEP}", name.replace('-', "__"));
    script.replace(&wrong, &right)
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    /// Every command name at every depth, as the scripts must offer them.
    fn command_names(cmd: &clap::Command, names: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            names.push(sub.get_name().to_owned());
            command_names(sub, names);
        }
    }

    #[test]
    fn every_shell_script_names_every_command() {
        let mut names = Vec::new();
        command_names(&Cli::command(), &mut names);
        assert!(names.iter().any(|name| name == "listen"));
        assert!(names.iter().any(|name| name == "man"));
        for &shell in CompletionShell::value_variants() {
            let script = String::from_utf8(script(shell)).unwrap();
            assert!(script.contains("danube-hooks"), "{shell:?}");
            for name in &names {
                assert!(script.contains(name.as_str()), "{shell:?} lacks {name}");
            }
            // A flag of a subcommand, so the scripts go below the top level.
            assert!(
                script.contains("forward-to"),
                "{shell:?} lacks --forward-to"
            );
        }
    }
}
