//! Black-box: what makes the tool discoverable from the shell, `completions`
//! and `man`, and the examples that end every command's `--help`. The
//! commands are read from the clap definition, so a command added later is
//! checked without a change here.

use crate::common;

use std::collections::BTreeSet;

use clap::CommandFactory as _;
use common::{TempDir, assert_exit, command, run, run_command, stderr, stdout};
use danube_hooks::cli::Cli;

/// Every command below the top, as its words (`["listen"]`, …), at every
/// depth; clap's own `help` aside.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: &[String], paths: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|sub| sub.get_name() != "help") {
            let mut path = path.to_vec();
            path.push(sub.get_name().to_owned());
            paths.push(path.clone());
            walk(sub, &path, paths);
        }
    }
    let mut paths = Vec::new();
    walk(&Cli::command(), &[], &mut paths);
    assert!(paths.len() >= 11, "found only {paths:?}");
    paths
}

#[test]
fn each_shells_script_names_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let output = run(&["completions", shell], b"");
        assert_exit(&output, 0);
        let script = stdout(&output);
        for path in command_paths() {
            let name = path.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "{shell} script lacks {name}"
            );
        }
        assert!(
            script.contains("forward-to"),
            "{shell} script lacks listen's flags"
        );
    }
}

/// The bash script parses, and completing in it offers a subcommand's own
/// flags and values: the part `clap_complete` breaks for a binary name with
/// a hyphen (`commands::completions`).
#[test]
fn the_bash_script_parses_and_completes_below_the_top() {
    let dir = TempDir::new("bash-completion");
    let script = dir.join("danube-hooks.bash");
    let output = run(&["completions", "bash"], b"");
    assert_exit(&output, 0);
    std::fs::write(&script, &output.stdout).unwrap();

    let syntax = run_command(
        std::process::Command::new("bash").arg("-n").arg(&script),
        b"",
    );
    assert_exit(&syntax, 0);

    // What bash does on TAB: the words so far, then the completion function
    // with the command, the word being completed and the one before it.
    let complete = |words: &[&str]| -> String {
        let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
        let current = words.last().unwrap();
        let previous = words[words.len() - 2];
        let program = format!(
            "source \"$1\"; COMP_WORDS=({}); COMP_CWORD={}; \
             _danube__hooks danube-hooks '{current}' '{previous}'; echo \"${{COMPREPLY[*]}}\"",
            quoted.join(" "),
            words.len() - 1
        );
        let output = run_command(
            std::process::Command::new("bash")
                .args(["-c", &program, "bash"])
                .arg(&script),
            b"",
        );
        assert_exit(&output, 0);
        stdout(&output).trim().to_owned()
    };
    assert_eq!(complete(&["danube-hooks", "lis"]), "listen");
    assert_eq!(
        complete(&["danube-hooks", "listen", "--forw"]),
        "--forward-to --forward-timeout"
    );
    assert!(
        complete(&["danube-hooks", "completions", ""]).contains("bash zsh fish powershell"),
        "completions' shells"
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error_naming_the_shells() {
    let output = run(&["completions", "tcsh"], b"");
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("'tcsh'"), "{err}");
    assert!(err.contains("bash, zsh, fish, powershell"), "{err}");
    assert!(output.stdout.is_empty());
}

#[test]
fn the_listen_page_is_roff_naming_its_options() {
    let output = run(&["man", "listen"], b"");
    assert_exit(&output, 0);
    let page = stdout(&output);
    assert!(page.contains("\n.TH danube-hooks-listen 1 "), "{page}");
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "EXAMPLES"] {
        assert!(page.contains(&format!("\n.SH {section}\n")), "no {section}");
    }
    // roff escapes hyphens: \-\-forward\-to is --forward-to.
    for option in [r"\-\-forward\-to", r"\-\-respond", r"\-\-secret\-file"] {
        assert!(page.contains(option), "{option} missing");
    }
    // Every line is text or a request; none is a stray control line.
    assert!(page.lines().all(|line| !line.starts_with('\'')));

    let top = run(&["man"], b"");
    assert_exit(&top, 0);
    assert!(stdout(&top).contains("\n.TH danube-hooks 1 "));
    assert!(stdout(&top).contains(r"danube\-hooks\-listen(1)"));
}

#[test]
fn man_out_writes_one_page_per_command() {
    let dir = TempDir::new("man-out");
    let out = dir.join("man1");
    let output = run(&["man", "--out", out.to_str().unwrap()], b"");
    assert_exit(&output, 0);

    let mut expected: BTreeSet<String> = command_paths()
        .iter()
        .map(|path| format!("danube-hooks-{}.1", path.join("-")))
        .collect();
    expected.insert("danube-hooks.1".to_owned());
    let written: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, expected);
    // stdout lists the files written, one per line.
    let listed: BTreeSet<String> = stdout(&output)
        .lines()
        .map(|line| {
            let path = std::path::Path::new(line);
            assert_eq!(path.parent(), Some(out.as_path()));
            path.file_name().unwrap().to_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, expected);
    for name in &expected {
        let page = std::fs::read_to_string(out.join(name)).unwrap();
        let title = format!("\n.TH {} 1 ", name.trim_end_matches(".1"));
        assert!(page.contains(&title), "{name} has no {title:?}");
    }

    // One command's page alone.
    let single = dir.join("single");
    let output = run(&["man", "show", "--out", single.to_str().unwrap()], b"");
    assert_exit(&output, 0);
    let written: Vec<_> = std::fs::read_dir(&single).unwrap().collect();
    assert_eq!(written.len(), 1);
    assert!(single.join("danube-hooks-show.1").is_file());
}

#[test]
fn man_for_an_unknown_command_is_a_usage_error_naming_the_commands() {
    let output = run(&["man", "lisen"], b"");
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("\"lisen\""), "{err}");
    assert!(err.contains("listen, sign, verify"), "{err}");
    assert!(output.stdout.is_empty());
}

#[test]
fn every_commands_help_ends_with_examples() {
    let mut paths = command_paths();
    paths.push(Vec::new());
    for path in paths {
        for flag in ["--help", "-h"] {
            let output = run_command(command().args(&path).arg(flag), b"");
            assert_exit(&output, 0);
            let help = stdout(&output);
            let (_, examples) = help
                .rsplit_once("\nExamples:\n")
                .unwrap_or_else(|| panic!("`{} {flag}` has no Examples block", path.join(" ")));
            let lines: Vec<&str> = examples.lines().collect();
            let invocation = format!("danube-hooks {}", path.join(" "));
            let commands = lines
                .iter()
                .filter(|line| line.trim_start().starts_with("danube-hooks"))
                .count();
            assert!(
                (2..=3).contains(&commands),
                "`{invocation}` shows {commands} examples"
            );
            for line in lines {
                let line = line.trim();
                assert!(
                    line.starts_with('#') || line.starts_with(invocation.trim_end()),
                    "`{invocation} {flag}` ends with something else than its examples: {line:?}"
                );
            }
        }
    }
}
