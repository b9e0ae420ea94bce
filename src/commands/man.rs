//! `man`: roff man pages, one per command, generated at run time from the
//! clap definition (so a new subcommand has its page the day it lands, and
//! the build needs no build script that would compile the CLI twice).
//!
//! `clap_mangen` writes the title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS and
//! SUBCOMMANDS sections; the EXAMPLES section is written here, unfilled, so
//! the examples of `--help` keep one command per line.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;
use roff::{Roff, roman};

use crate::cli::{Cli, EXIT_CODES, ManArgs, UsageError, examples};
use crate::display::escape_line;

use super::Outcome;

pub(crate) fn run(args: &ManArgs) -> anyhow::Result<Outcome> {
    let tool = tool();
    let cmd = find(&tool, &args.command)?;
    match &args.out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&page(cmd))
                .and_then(|()| stdout.flush())
                .map_err(|err| {
                    super::stdout_failed(err, "cannot write the man page to standard output")
                })?;
        }
        Some(dir) => {
            for path in write_pages(cmd, dir)? {
                crate::commands::out_line(&escape_line(&path.display().to_string()))?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// The whole command tree, built: each subcommand knows its display name
/// (`danube-hooks-listen`, its page's name) and bin name (`danube-hooks
/// listen`, its synopsis). The `help` subcommand has no page.
fn tool() -> clap::Command {
    let mut tool = Cli::command().disable_help_subcommand(true);
    tool.build();
    tool
}

/// The command that `path` (`[]`, `["listen"]`, …) names under `tool`.
fn find<'a>(tool: &'a clap::Command, path: &[String]) -> Result<&'a clap::Command, UsageError> {
    let mut cmd = tool;
    for word in path {
        cmd = cmd.find_subcommand(word).ok_or_else(|| {
            let names: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
            let within = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
            if names.is_empty() {
                UsageError::new(format!(
                    "man: {within} has no subcommands, so no page for {:?}",
                    escape_line(word)
                ))
            } else {
                UsageError::new(format!(
                    "man: {within} has no command {:?}; use one of: {}",
                    escape_line(word),
                    names.join(", ")
                ))
            }
        })?;
    }
    Ok(cmd)
}

/// The page's file name: `danube-hooks.1`, `danube-hooks-listen.1`, …
fn file_name(cmd: &clap::Command) -> String {
    clap_mangen::Man::new(cmd.clone()).get_filename()
}

/// One command's man page, as roff.
pub(crate) fn page(cmd: &clap::Command) -> Vec<u8> {
    // The source names the tool, not the subcommand ("listen 0.1.0").
    let man = clap_mangen::Man::new(cmd.clone()).source(format!(
        "danube-hooks {}",
        cmd.get_version().unwrap_or_default()
    ));
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    if cmd.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut out).unwrap();
    }
    if cmd.get_subcommands().any(|sub| !sub.is_hide_set()) {
        man.render_subcommands_section(&mut out).unwrap();
    }
    // The tool's own page says how its commands end, as its --help does.
    if cmd.get_name() == env!("CARGO_PKG_NAME") {
        exit_status_section().to_writer(&mut out).unwrap();
    }
    if let Some(after_help) = cmd.get_after_help() {
        examples_section(&after_help.to_string())
            .to_writer(&mut out)
            .unwrap();
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out).unwrap();
    }
    keep_first_preamble(&out)
}

/// Each section rendered on its own repeats roff's two-line apostrophe
/// preamble; a page needs it once, at the top.
fn keep_first_preamble(page: &[u8]) -> Vec<u8> {
    let preamble = Roff::new().render();
    let text = String::from_utf8_lossy(page);
    match text.split_once(preamble.as_str()) {
        Some((before, after)) => {
            format!("{before}{preamble}{}", after.replace(preamble.as_str(), "")).into_bytes()
        }
        None => page.to_vec(),
    }
}

/// The `--help` examples block as an EXAMPLES section, in no-fill mode so
/// that each command stays on its own line.
fn examples_section(after_help: &str) -> Roff {
    let body = after_help
        .strip_prefix(examples::HEADING)
        .unwrap_or(after_help);
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    roff.control("nf", []);
    for line in body.lines().filter(|line| !line.trim().is_empty()) {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff
}

/// The exit codes, one a line, as `--help` lists them.
fn exit_status_section() -> Roff {
    let body = EXIT_CODES
        .split_once('\n')
        .map_or(EXIT_CODES, |(_heading, body)| body);
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    roff.control("nf", []);
    for line in body.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff
}

/// Every page of `cmd` and the commands under it, written into `dir` (made
/// if missing). Returns the files written, parents before children.
fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let shown = || escape_line(&dir.display().to_string()).into_owned();
    std::fs::create_dir_all(dir)
        .map_err(|err| UsageError::new(format!("man --out {}: {err}", shown())))?;
    let mut written = Vec::new();
    write_tree(cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let path = dir.join(file_name(cmd));
    std::fs::write(&path, page(cmd))
        .with_context(|| format!("cannot write {}", escape_line(&path.display().to_string())))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(page: &[u8]) -> String {
        String::from_utf8(page.to_vec()).unwrap()
    }

    #[test]
    fn listen_page_is_roff_naming_its_options_and_examples() {
        let tool = tool();
        let page = text(&page(find(&tool, &["listen".to_owned()]).unwrap()));
        assert!(page.starts_with(".ie"), "roff preamble: {page:.80}");
        assert!(page.contains(".TH danube-hooks-listen 1"), "{page}");
        assert!(page.contains(".SH SYNOPSIS"));
        assert!(page.contains(r"\-\-forward\-to"), "{page}");
        assert!(page.contains(r"\-\-respond"));
        let examples = page.split(".SH EXAMPLES\n.nf\n").nth(1).expect("EXAMPLES");
        // One command per line, the heading gone (it is the section's).
        assert!(!examples.contains("Examples:"));
        assert!(examples.contains("\n  danube\\-hooks listen \\-\\-tunnel cloudflared\n"));
    }

    #[test]
    fn top_page_lists_every_command() {
        let tool = tool();
        let page = text(&page(&tool));
        assert!(page.contains(".TH danube-hooks 1"));
        for sub in tool.get_subcommands() {
            let reference = format!("danube\\-hooks\\-{}(1)", sub.get_name().replace('-', "\\-"));
            assert!(page.contains(&reference), "{reference} missing");
        }
        assert!(!page.contains("danube\\-hooks\\-help(1)"));
        let status = page
            .split(".SH \"EXIT STATUS\"\n.nf\n")
            .nth(1)
            .expect("EXIT STATUS");
        assert!(status.starts_with("  0  success"), "{status}");
        assert!(
            status.contains("\n  4  reading or writing a local file"),
            "{status}"
        );
        let listen = text(&super::page(find(&tool, &["listen".to_owned()]).unwrap()));
        assert!(
            !listen.contains("EXIT STATUS"),
            "the tool's page alone has them"
        );
    }

    #[test]
    fn an_unknown_command_names_the_known_ones() {
        let tool = tool();
        let err = find(&tool, &["lisen".to_owned()]).unwrap_err().to_string();
        assert!(err.contains("\"lisen\""), "{err}");
        assert!(err.contains("listen, sign, verify"), "{err}");
        let err = find(&tool, &["listen".to_owned(), "x".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("danube-hooks listen has no subcommands"),
            "{err}"
        );
    }
}
