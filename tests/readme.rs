//! The README's `console` examples are run here, so they stay true as printed.
//!
//! A `console` block holds `$ command` lines, each followed by the exact
//! stdout it prints. Commands run with `sh -c` in the repository, with the
//! built binary first on `PATH`. Blocks fenced as `sh` are not run.

mod common;

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
