//! The black-box tests: the real binary over real sockets, one module per
//! area, all in one test binary (each binary links the whole crate again),
//! with one support module, `common`. Two tests need a binary of their own
//! and have one (Cargo.toml says why): `tests/flood.rs` and
//! `tests/store_memory.rs`.

mod common;

mod act_as_danube;
mod danube_api;
mod danube_deliveries;
mod danube_redeliver;
mod danube_register;
mod danube_webhooks;
mod dashboard;
mod edit_replay;
mod emulate_api;
mod emulate_deliver;
mod emulate_load;
mod emulate_loop;
mod emulate_sdk;
mod hostile;
mod https;
mod in_flight;
mod listen;
mod loops;
mod readme;
mod reliability;
mod routes;
mod shared_store;
mod shell;
mod sign_verify;
mod store;

use std::path::Path;

/// Cargo.toml turns off the discovery of test binaries, so a file under
/// `tests/` runs only if a `mod` line or a `[[test]]` names it; one that
/// neither names would compile nowhere and pass by never running.
#[test]
fn every_file_under_tests_is_in_a_test_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut dirs = vec![root.join("tests")];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().to_str().unwrap();
            if manifest.contains(&format!("path = \"{relative}\"")) {
                seen += 1;
                continue;
            }
            // A module's parent: `mod.rs` beside it, or the suite for the
            // files directly under tests/; a folder's `mod.rs` is named
            // by the parent of its folder.
            let (module, parent) = if path.file_name().unwrap() == "mod.rs" {
                (dir.file_name().unwrap(), dir.parent().unwrap())
            } else {
                (path.file_stem().unwrap(), dir.as_path())
            };
            let module = module.to_str().unwrap();
            let parent = if parent == root.join("tests") {
                parent.join("suite.rs")
            } else {
                parent.join("mod.rs")
            };
            let text = std::fs::read_to_string(&parent).unwrap_or_default();
            assert!(
                text.lines()
                    .any(|line| line.trim().trim_start_matches("pub ") == format!("mod {module};")),
                "{relative} is in no test binary: name it with `mod {module};` in {}, \
                 or with a [[test]] in Cargo.toml",
                parent.strip_prefix(root).unwrap().display()
            );
            seen += 1;
        }
    }
    assert!(seen > 20, "only {seen} files found under tests/");
}
