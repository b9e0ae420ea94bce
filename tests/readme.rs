//! The README's `console` examples are run here, so they stay true as printed.
//!
//! A `console` block holds `$ command` lines, each followed by the exact
//! stdout it prints. Commands run with `sh -c` in the repository, with the
//! built binary first on `PATH`. Blocks fenced as `sh` are not run.

use crate::common;

use std::path::Path;

struct Example {
    command: String,
    expected: String,
}

fn console_examples(readme: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut in_console = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_console = line.trim() == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            examples.push(Example {
                command: command.to_string(),
                expected: String::new(),
            });
        } else if let Some(example) = examples.last_mut() {
            example.expected.push_str(line);
            example.expected.push('\n');
        }
    }
    examples
}

#[test]
fn readme_console_examples_are_true() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = console_examples(&readme);
    assert!(
        examples.len() >= 5,
        "found only {} examples",
        examples.len()
    );
    let bin_dir = Path::new(common::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for example in examples {
        let mut sh = std::process::Command::new("sh");
        sh.current_dir(root)
            .env("PATH", &path)
            .env_remove("DANUBE_WEBHOOK_SECRET")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .args(["-c", &example.command]);
        let output = common::run_command(&mut sh, b"");
        assert_eq!(
            common::stdout(&output),
            example.expected,
            "README example `{}` printed something else; stderr:\n{}",
            example.command,
            common::stderr(&output)
        );
    }
}

/// Every command in the README's `sh` and `console` blocks runs the tool
/// as a new user has it: installed (`danube-hooks …`, after the install
/// section) or from the clone (`cargo run --release -- …`), never a path
/// into `target/` or a debug build; and the install section comes right
/// after the two set-up commands, before any `danube-hooks` example.
#[test]
fn readme_examples_run_the_tool_as_installed_or_with_cargo_run_release() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut in_block = false;
    let mut first_installed_example = None;
    for (number, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            let lang = line.trim_start_matches('`').trim();
            in_block = !in_block && matches!(lang, "sh" | "console" | "bash");
            continue;
        }
        if !in_block {
            continue;
        }
        let command = line.strip_prefix("$ ").unwrap_or(line);
        let command = command.split(" #").next().unwrap_or("").trim();
        if command.starts_with('#') || command.is_empty() {
            continue;
        }
        let at = number + 1;
        assert!(
            !command.contains("target/release/danube-hooks")
                && !command.contains("target/debug/danube-hooks"),
            "README line {at} runs a build's path: {command}"
        );
        if command.contains("cargo run") {
            assert!(
                command.contains("cargo run --release -- "),
                "README line {at}: `cargo run` without `--release --`: {command}"
            );
        }
        if command
            .split_whitespace()
            .any(|word| word == "danube-hooks")
            && first_installed_example.is_none()
            && !command.starts_with("cargo ")
        {
            first_installed_example = Some(at);
        }
    }
    let install = readme
        .find("cargo install --path .")
        .expect("the README says how to install the binary");
    let install_line = readme[..install].lines().count();
    let two_commands = readme
        .find("## The two commands you need")
        .expect("the two commands");
    assert!(readme[..install].contains("## The two commands you need"));
    // Right after them: no other section between.
    let between = &readme[two_commands + 3..install];
    assert_eq!(
        between.matches("\n## ").count(),
        1,
        "the install section is the next one after the two commands"
    );
    let first = first_installed_example.expect("examples that run danube-hooks");
    assert!(
        first >= install_line,
        "README line {first} runs danube-hooks before the install section (line {install_line})"
    );
}
