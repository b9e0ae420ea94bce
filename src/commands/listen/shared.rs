//! `listen`'s store, file or shared: `--store PATH|URL` (or
//! `DANUBE_HOOKS_STORE`), and the flags that belong to one kind of store
//! only, checked against the kind chosen.
//!
//! The file store's flags (`--durable`, `--store-max`, `--store-keep`) are
//! refused with a PostgreSQL store rather than ignored: each asks for
//! something a database does its own way (a row is committed before its
//! answer, whatever `--durable` says; a table does not rotate), and a flag
//! that silently does nothing would mislead. The shared store's flags
//! (`--name`, `--store-max-age`) are refused with a file for the same reason.

use std::path::PathBuf;

use crate::cli::{ListenArgs, UsageError};
use crate::display::escape_line;
use crate::store::postgres::WriterConfig as Config;
use crate::store::{self, Location};

/// The longest `--name`, in characters: a column of the dashboard, a word
/// in the banner.
pub(crate) const MAX_NAME: usize = 64;
/// `--store-max`'s default, to tell it from a value given.
const DEFAULT_STORE_MAX: u64 = 1024 * 1024 * 1024;

/// The store `args` ask for: a file (`None` with `--no-store`), or the
/// shared database's writer's configuration.
pub(crate) fn choose(args: &ListenArgs) -> Result<(Option<PathBuf>, Option<Config>), UsageError> {
    if args.no_store {
        refuse_shared_flags(args, "--no-store")?;
        return Ok((None, None));
    }
    let location = match args.store.as_deref().map(std::path::Path::to_str) {
        Some(Some(text)) => Location::choose(Some(text))?,
        // Not UTF-8, so not a URL: a file, as before URLs were taken.
        Some(None) => Location::File(args.store.clone().unwrap_or_default()),
        None => Location::choose(None)?,
    };
    match location {
        Location::File(path) => {
            refuse_shared_flags(args, "a file store")?;
            Ok((Some(path), None))
        }
        Location::Postgres(target) => {
            refuse_file_flags(args)?;
            let name = match &args.name {
                Some(name) => check_name(name)?,
                None => default_name(),
            };
            let config = Config {
                target,
                name,
                max_age: args.store_max_age,
            };
            Ok((None, Some(config)))
        }
    }
}

fn refuse_shared_flags(args: &ListenArgs, store: &str) -> Result<(), UsageError> {
    let given = [
        ("--name", args.name.is_some()),
        ("--store-max-age", args.store_max_age.is_some()),
    ];
    match given.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(UsageError::new(format!(
            "{flag} is for a shared store (--store postgres://…), not {store}"
        ))),
        None => Ok(()),
    }
}

fn refuse_file_flags(args: &ListenArgs) -> Result<(), UsageError> {
    let given = [
        (
            "--durable",
            args.durable,
            "each row is committed before its answer already",
        ),
        (
            "--store-max",
            args.store_max != DEFAULT_STORE_MAX,
            "a table does not rotate: use --store-max-age to delete old rows",
        ),
        (
            "--store-keep",
            args.store_keep != store::DEFAULT_KEEP,
            "a table does not rotate: use --store-max-age to delete old rows",
        ),
        (
            "--catch-up",
            args.register.catch_up,
            "it finds the last stop in a store file",
        ),
    ];
    match given.iter().find(|(_, given, _)| *given) {
        Some((flag, _, why)) => Err(UsageError::new(format!(
            "{flag} is for a file store, not a PostgreSQL one: {why}"
        ))),
        None => Ok(()),
    }
}

/// `--name`: printable, 1 to [`MAX_NAME`] characters.
fn check_name(name: &str) -> Result<String, UsageError> {
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME || name.chars().any(char::is_control) {
        return Err(UsageError::new(format!(
            "--name {:?}: a listener's name is 1 to {MAX_NAME} printable characters, e.g. \
             ann@laptop",
            escape_line(&crate::display::truncate(name, MAX_NAME + 8))
        )));
    }
    Ok(name.to_owned())
}

/// `$USER@hostname`, made printable and cut to [`MAX_NAME`].
pub(crate) fn default_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "listener".to_owned());
    let host = nix::unistd::gethostname().map_or_else(
        |_| "localhost".to_owned(),
        |host| host.to_string_lossy().into_owned(),
    );
    let name = escape_line(&format!("{user}@{host}")).into_owned();
    crate::display::truncate(&name, MAX_NAME).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_printable_and_bounded() {
        assert_eq!(check_name("ann@laptop").unwrap(), "ann@laptop");
        assert!(check_name("").is_err());
        assert!(check_name("ann\u{1b}[2J").is_err());
        let long = "x".repeat(MAX_NAME + 1);
        let err = check_name(&long).unwrap_err();
        assert!(err.0.contains("1 to 64"), "{}", err.0);
        let name = default_name();
        assert!(
            name.contains('@') && name.chars().count() <= MAX_NAME,
            "{name}"
        );
        assert!(!name.chars().any(char::is_control), "{name}");
    }
}
