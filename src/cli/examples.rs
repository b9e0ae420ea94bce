//! The "Examples" block that ends each command's `--help` (and its man
//! page's EXAMPLES section).
//!
//! Each block is a heading, then `# comment` lines and one-line
//! `danube-hooks …` commands. The tests parse every command here with the
//! real clap definition, and check that every subcommand has a block, so
//! a renamed flag or a new command without examples fails them. The files
//! they name are the reader's: `secret.txt` holds the webhook's signing
//! secret (one line, `chmod 600`), `body.json` a delivery's exact body.

/// The heading every block starts with; `man` turns it into its section.
pub(crate) const HEADING: &str = "Examples:";

pub(crate) const TOP: &str = "\
Examples:
  # From nothing to deliveries: a quick tunnel, proved, registered with Danube (after `login`)
  danube-hooks listen --tunnel cloudflared
  # Act as Danube: one signed delivery of each event type
  danube-hooks trigger --all --to http://localhost:4000/webhooks/danube --secret-file secret.txt
  # What arrived lately
  danube-hooks log --last 20";

pub(crate) const LISTEN: &str = "\
Examples:
  # The whole setup: start a cloudflared quick tunnel (or ngrok), prove it reaches this
  # listener, point a Danube webhook at it, verify with its secret; on exit end both
  danube-hooks listen --tunnel cloudflared
  # Verify with the webhook's secret, kept out of ps and shell history
  danube-hooks listen --secret-file secret.txt
  # Tool events to one receiver, the rest to another; fail two attempts so Danube retries
  danube-hooks listen --forward-to 'tool.*=http://localhost:3001/hooks' --forward-to http://localhost:3000/webhooks/danube --respond 500,500,forward";

pub(crate) const DASHBOARD: &str = "\
Examples:
  # Every teammate's deliveries, live, from the store their listeners share (password in PGPASSWORD)
  danube-hooks dashboard --store postgres://hooks@db.internal/hooks
  # Replays (r, R, e) to your own receiver, signed with your secret
  danube-hooks dashboard --store postgres://hooks@db.internal/hooks --to http://localhost:3000/webhooks/danube --secret-file secret.txt
  # Headless: one JSON record per line as each batch is committed
  danube-hooks dashboard --store postgres://hooks@db.internal/hooks --json";

pub(crate) const SIGN: &str = "\
Examples:
  danube-hooks sign --secret-file secret.txt body.json
  # A fixed t, for a reproducible test vector
  danube-hooks sign --secret-file secret.txt --timestamp 1795430047 body.json
  # The body on standard input
  danube-hooks sign --secret-file secret.txt - < body.json";

pub(crate) const VERIFY: &str = "\
Examples:
  # Exit 0 when valid, 1 when not, with the reason
  danube-hooks verify --secret-file secret.txt --header t=1795430047,sha256=f95356e13685559cb836d8a17a153ecc25c5cd484a1c841d85daa01c859d0b88 body.json
  # Judge t against a given time instead of now, as JSON
  danube-hooks verify --json --secret-file secret.txt --now 1795430050 --header t=1795430047,sha256=f95356e13685559cb836d8a17a153ecc25c5cd484a1c841d85daa01c859d0b88 body.json
  # A whole header line, pasted from a log, is accepted too
  danube-hooks verify --secret-file secret.txt --now 1795430050 --header 'X-Danube-Signature: t=1795430047,sha256=f95356e13685559cb836d8a17a153ecc25c5cd484a1c841d85daa01c859d0b88' body.json";

pub(crate) const TRIGGER: &str = "\
Examples:
  danube-hooks trigger tool.execution.failed --to http://localhost:3000/webhooks/danube --secret-file secret.txt --set data.error='quota exceeded'
  # Two attempts with a 2 s deadline and 250 ms between them
  danube-hooks trigger workflow.failed --to http://localhost:3000/webhooks/danube --secret-file secret.txt --attempts 2 --timeout 2s --backoff 250ms
  # Through a local Danube (danube-hooks emulate): it delivers to each webhook subscribed to the event
  danube-hooks trigger tool.execution.failed --emulator http://127.0.0.1:4200 --set data.error='quota exceeded'";

pub(crate) const REPLAY: &str = "\
Examples:
  # Re-signed with a fresh t, to your receiver
  danube-hooks replay 42 --to http://localhost:3000/webhooks/danube --secret-file secret.txt
  # Byte-identical, old signature: does your receiver's replay protection hold?
  danube-hooks replay 42 --as-is --to http://localhost:3000/webhooks/danube
  # A changed copy, signed anew: what does your receiver do with a failure?
  danube-hooks replay 42 --set data.status=failed --header 'X-Test: 1' --to http://localhost:3000/webhooks/danube --secret-file secret.txt";

pub(crate) const LOG: &str = "\
Examples:
  danube-hooks log --last 20
  # Workflow deliveries whose signature did not match
  danube-hooks log --event 'workflow.*' --verdict mismatch
  # Gmail's failures of the last hour that were answered with a 5xx
  danube-hooks log --query 'event:tool.execution.failed data.tool_name=\"Gmail - Send Email\" status:5xx since:1h'";

pub(crate) const SHOW: &str = "\
Examples:
  danube-hooks show 42
  # The body as received, escaped, not pretty-printed
  danube-hooks show 42 --raw";

pub(crate) const EXPORT: &str = "\
Examples:
  danube-hooks export 42
  # Send it again now
  danube-hooks export 42 | sh
  # Send every failed workflow of the last day again
  danube-hooks export --query 'event:workflow.failed since:1d' | sh";

pub(crate) const CHECK: &str = "\
Examples:
  danube-hooks check http://localhost:3000/webhooks/danube --secret-file secret.txt
  # The report as JSON, with a tighter deadline than Danube's 10 s
  danube-hooks check http://localhost:3000/webhooks/danube --secret-file secret.txt --json --timeout 5s";

pub(crate) const LOGIN: &str = "\
Examples:
  # Approve this machine in a browser; the key is saved with mode 0600
  danube-hooks login
  # A key you already have, kept out of ps and shell history
  danube-hooks login --with-key < danube-key.txt
  # Against a staging API whose CA is private
  danube-hooks login --api-url https://api.staging.example --cacert staging-ca.pem";

pub(crate) const LOGOUT: &str = "\
Examples:
  danube-hooks logout
  # Log out, then log in with another key
  danube-hooks logout --api-url https://api.danubeai.com";

pub(crate) const WEBHOOKS: &str = "\
Examples:
  danube-hooks webhooks list
  # A webhook for a tunnel, its secret kept (0600) for listen and deliveries
  danube-hooks webhooks create --url https://abc.ngrok.app/webhooks/danube --save
  # Pause one without deleting it
  danube-hooks webhooks update wh_8f3a --active false";

pub(crate) const WEBHOOKS_LIST: &str = "\
Examples:
  danube-hooks webhooks list
  # Danube's JSON: the ids of the paused ones
  danube-hooks webhooks list --json | jq -r '.[] | select(.is_active | not) | .id'";

pub(crate) const WEBHOOKS_CREATE: &str = "\
Examples:
  # All five event types; the secret is shown once: copy it now
  danube-hooks webhooks create --url https://abc.ngrok.app/webhooks/danube
  # Two event types, a note, and the secret kept (0600) for listen and deliveries
  danube-hooks webhooks create --url https://abc.ngrok.app/webhooks/danube --event workflow.completed --event workflow.failed --description 'laptop tunnel' --save
  # Danube's JSON answer, for a script (it holds the secret)
  danube-hooks webhooks create --url https://abc.ngrok.app/webhooks/danube --json";

pub(crate) const WEBHOOKS_UPDATE: &str = "\
Examples:
  # Point it at a new tunnel
  danube-hooks webhooks update wh_8f3a --url https://def.trycloudflare.com/webhooks/danube
  # Pause deliveries without deleting the webhook
  danube-hooks webhooks update wh_8f3a --active false
  # Only tool events from now on
  danube-hooks webhooks update wh_8f3a --event tool.execution.completed --event tool.execution.failed";

pub(crate) const WEBHOOKS_DELETE: &str = "\
Examples:
  danube-hooks webhooks delete wh_8f3a
  # Against a staging API whose CA is private
  danube-hooks webhooks delete wh_8f3a --api-url https://api.staging.example --cacert staging-ca.pem";
pub(crate) const DELIVERIES: &str = "\
Examples:
  # What Danube says happened to the registered webhook's last 20 deliveries
  danube-hooks deliveries
  # A given webhook, its last 100, one JSON object per row: only the rows with findings
  danube-hooks deliveries wh_8f3a --limit 100 --json | jq -c 'select(.findings != [])'
  # Send the listener what never reached it in the last 2 hours, signed anew (never twice)
  danube-hooks deliveries --redeliver --since 2h";

pub(crate) const EMULATE: &str = "\
Examples:
  # A local Danube on 127.0.0.1:4200; point an SDK at it with DANUBE_API_URL
  danube-hooks emulate
  # Deliver to a receiver on this machine, quick retries, the state of this project only
  danube-hooks emulate --allow-http --backoff 200ms --state ./.danube/emulator.json
  # For CI: a free port, empty, only one key accepted, attempts as JSON lines
  danube-hooks emulate --port 0 --reset --api-key dk_test_ci --json";

pub(crate) const COMPLETIONS: &str = "\
Examples:
  danube-hooks completions bash > ~/.local/share/bash-completion/completions/danube-hooks
  # zsh: a directory on $fpath, before compinit runs
  danube-hooks completions zsh > ~/.zfunc/_danube-hooks
  danube-hooks completions fish > ~/.config/fish/completions/danube-hooks.fish";

pub(crate) const MAN: &str = "\
Examples:
  # Read listen's page now
  danube-hooks man listen | man -l -
  # Install every page where man looks, then: man danube-hooks-listen
  danube-hooks man --out ~/.local/share/man/man1";

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::HEADING;
    use crate::cli::Cli;

    /// A command line split as `sh` would split it, up to the first
    /// unquoted pipe or redirection: quotes ('…', "…") and backslashes.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '|' | '<' | '>' | ';' | '&' => break,
                ' ' | '\t' => words.extend(word.take()),
                '\'' => word
                    .get_or_insert_default()
                    .extend(chars.by_ref().take_while(|&c| c != '\'')),
                '"' => {
                    let quoted = word.get_or_insert_default();
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => quoted.extend(chars.next()),
                            c => quoted.push(c),
                        }
                    }
                }
                '\\' => word.get_or_insert_default().extend(chars.next()),
                c => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        words
    }

    /// The command lines of an examples block; anything but a heading,
    /// a comment or a command fails.
    fn example_commands(block: &str) -> Vec<&str> {
        let mut lines = block.lines();
        assert_eq!(lines.next(), Some(HEADING), "block starts with its heading");
        lines
            .filter(|line| !line.trim_start().starts_with('#'))
            .map(|line| {
                let command = line.strip_prefix("  ").unwrap_or_else(|| {
                    panic!("example lines are indented by two spaces: {line:?}")
                });
                assert!(
                    command.starts_with("danube-hooks "),
                    "an example line is a comment or a danube-hooks command: {line:?}"
                );
                command
            })
            .collect()
    }

    #[test]
    fn shell_words_split_like_sh() {
        assert_eq!(
            shell_words(r#"a 'b c' d="e f"g h\ i | sort > out"#),
            ["a", "b c", "d=e fg", "h i"]
        );
        assert_eq!(shell_words("x ''"), ["x", ""]);
    }

    /// Every command at every depth (not `help`, which clap writes) ends its
    /// --help with two or three examples of itself, each of which parses.
    #[test]
    fn every_command_help_ends_with_examples_that_parse() {
        fn check(cmd: &mut clap::Command, path: &[String]) {
            let help = cmd.render_long_help().to_string();
            let block = cmd
                .get_after_help()
                .unwrap_or_else(|| panic!("`{}` has no examples", path.join(" ")))
                .to_string();
            assert!(
                help.trim_end().ends_with(block.trim_end()),
                "`{}` --help does not end with its examples",
                path.join(" ")
            );
            let commands = example_commands(&block);
            assert!(
                (2..=3).contains(&commands.len()),
                "`{}` has {} examples; give two or three",
                path.join(" "),
                commands.len()
            );
            for command in commands {
                let words = shell_words(command);
                assert_eq!(
                    &words[1..path.len()],
                    &path[1..],
                    "an example of `{}` runs another command: {command}",
                    path.join(" ")
                );
                if let Err(err) = Cli::try_parse_from(&words) {
                    panic!("example `{command}` does not parse:\n{err}");
                }
            }
            for sub in cmd.get_subcommands_mut() {
                if sub.get_name() == "help" {
                    continue;
                }
                let mut path = path.to_vec();
                path.push(sub.get_name().to_owned());
                check(sub, &path);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        check(&mut cli, &["danube-hooks".to_owned()]);
    }
}
