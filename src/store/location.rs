//! Where a store is: a JSON-lines file (the default), or a PostgreSQL
//! database shared by a team (`--store postgres://…`, SPEC §14).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::postgres::Target;
use crate::store::postgres::target::{
    Given, is_mistaken_database, is_postgres_url, mistaken_database,
};

/// The environment variable `--store` falls back on: the one place a
/// PostgreSQL URL may carry its password.
pub(crate) const STORE_ENV: &str = "DANUBE_HOOKS_STORE";

/// A `--store` value (or `DANUBE_HOOKS_STORE`) that names no store this
/// tool can use: usage or configuration (exit 2), with what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadStore(pub(crate) String);

impl BadStore {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Location {
    File(PathBuf),
    Postgres(Arc<Target>),
}

impl Location {
    /// `--store`'s value (from the command line when `given` says so), else
    /// `$DANUBE_HOOKS_STORE`, else the default file.
    pub(crate) fn choose(given: Option<&str>) -> Result<Location, BadStore> {
        if let Some(value) = given {
            return Self::of(value, Given::CommandLine);
        }
        if let Some(value) = std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
            let value = value
                .into_string()
                .map_err(|_| BadStore::new(format!("{STORE_ENV} is not valid UTF-8")))?;
            return Self::of(&value, Given::Environment);
        }
        super::default_path().map(Location::File).ok_or_else(|| {
            BadStore::new(
                "no home directory for the default store: pass --store PATH or \
                 --store postgres://… (or --no-store to listen)",
            )
        })
    }

    fn of(value: &str, given: Given) -> Result<Location, BadStore> {
        if is_postgres_url(value) {
            Target::parse(value, given).map(|target| Location::Postgres(Arc::new(target)))
        } else if is_mistaken_database(value) {
            Err(mistaken_database())
        } else {
            Ok(Location::File(PathBuf::from(value)))
        }
    }

    /// The file, when the store is one.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

/// How the store is named on screen: a path, or the URL without its password.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(target) => write!(f, "{target}"),
        }
    }
}
