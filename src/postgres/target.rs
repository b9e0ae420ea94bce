//! `--store postgres://…`: the URL, checked; the password found the way
//! libpq finds it; the form shown on screen, without the password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;

use crate::cli::UsageError;

/// Whether `--store`'s value names PostgreSQL rather than a file.
pub(crate) fn is_postgres_url(value: &str) -> bool {
    value.starts_with("postgres://") || value.starts_with("postgresql://")
}

/// Where a URL came from: a password is refused on the command line, where
/// `ps` and the shell's history show it, and taken from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Given {
    CommandLine,
    Environment,
}

/// A PostgreSQL database to keep deliveries in.
#[derive(Clone)]
pub(crate) struct Target {
    /// What `tokio-postgres` connects with, the password filled in.
    pub(crate) config: tokio_postgres::Config,
    /// The URL without its password: what banners and errors show.
    pub(crate) shown: String,
    /// PEM roots to trust beside the web's (`--cacert`).
    pub(crate) cacert: Option<PathBuf>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Check `url` and find its password: the URL's own when it came from
    /// the environment, else `PGPASSWORD`.
    pub(crate) fn parse(url: &str, given: Given) -> Result<Target, UsageError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|err| {
            UsageError::new(format!(
                "--store: {} is not a PostgreSQL URL: {err} (allowed: \
                 postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|require|verify-full])",
                shown_of_text(url)
            ))
        })?;
        let mut target = Target {
            shown: shown(&config),
            config,
            cacert: None,
        };
        if target.config.get_password().is_some() {
            if given == Given::CommandLine {
                return Err(UsageError::new(format!(
                    "--store: the URL {} holds a password, which `ps` and the shell's history \
                     would show: put it in PGPASSWORD or ~/.pgpass (PGPASSFILE), or give the \
                     whole URL in DANUBE_HOOKS_STORE",
                    target.shown
                )));
            }
        } else if let Some(password) = std::env::var_os("PGPASSWORD") {
            target.config.password(password.as_encoded_bytes());
        }
        Ok(target)
    }
}

/// The URL as shown: user, hosts, ports and database, never the password.
fn shown(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let db = config.get_dbname().unwrap_or_default();
    crate::display::escape_line(&format!("postgres://{user}{}/{db}", hosts.join(","))).into_owned()
}

/// A URL that did not parse, shown with anything between `:` and `@` of its
/// authority cut, so a mistyped URL's password is not printed either.
fn shown_of_text(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let path = path.split('?').next().unwrap_or_default();
    crate::display::escape_line(&format!("{scheme}://{authority}{path}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_on_the_command_line_is_refused_and_never_shown() {
        let err = Target::parse(
            "postgres://ann:hunter2@db.example:5433/hooks",
            Given::CommandLine,
        )
        .unwrap_err();
        assert!(err.0.contains("PGPASSWORD"), "{}", err.0);
        assert!(!err.0.contains("hunter2"), "{}", err.0);
        let target = Target::parse(
            "postgres://ann:hunter2@db.example:5433/hooks",
            Given::Environment,
        )
        .unwrap();
        assert_eq!(target.shown, "postgres://ann@db.example:5433/hooks");
        assert!(!format!("{target:?} {target}").contains("hunter2"));
    }

    #[test]
    fn a_url_that_does_not_parse_is_shown_without_its_password() {
        let err = Target::parse(
            "postgres://ann:hunter2@db.example:notaport/hooks",
            Given::Environment,
        )
        .unwrap_err();
        assert!(!err.0.contains("hunter2"), "{}", err.0);
        assert!(
            err.0.contains("postgres://ann@db.example:notaport/hooks"),
            "{}",
            err.0
        );
    }

    #[test]
    fn only_postgres_schemes_name_postgres() {
        assert!(is_postgres_url("postgres://x/y"));
        assert!(is_postgres_url("postgresql://x/y"));
        assert!(!is_postgres_url("./postgres://x"));
        assert!(!is_postgres_url("deliveries.jsonl"));
    }
}
