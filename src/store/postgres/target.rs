//! `--store postgres://…`: the URL, checked; the password found the way
//! libpq finds it; TLS as `sslmode` asks; the form shown on screen, without
//! the password.
//!
//! `sslmode` is ours to read (tokio-postgres knows no `verify-full`):
//! `disable` (plain TCP), `require` (encrypted, the certificate not checked,
//! as libpq's `require`), `verify-full` (the chain to the web's roots or a
//! `--cacert` file, and the host name). Without it: `disable` for a loopback
//! host, where nothing crosses a network; `verify-full` for any other.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;

use super::pgpass;
use crate::store::BadStore;

/// How the connection is protected (`sslmode=` in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS, the server's certificate not checked: against someone
    /// listening, not against someone in the middle.
    Require,
    /// TLS, the certificate's chain and host name checked.
    VerifyFull,
}

/// The values `sslmode` may take, as the refusal of another names them.
const SSLMODES: &str = "disable, require, verify-full";

/// Whether `--store`'s value names PostgreSQL rather than a file.
pub(crate) fn is_postgres_url(value: &str) -> bool {
    value.starts_with("postgres://") || value.starts_with("postgresql://")
}

/// Whether `--store`'s value was meant for a database but is no URL this
/// takes: libpq's `key=value` connection string (`host=… dbname=…`), or a
/// `postgres:` URL without its `//`. Taken for a file's name, it would be
/// a file made of it, its password printed as the store's name.
pub(crate) fn is_mistaken_database(value: &str) -> bool {
    const KEYS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "service",
        "options",
        "application_name",
        "connect_timeout",
    ];
    let value = value.trim_start();
    let key_end = value
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(value.len());
    let (key, rest) = value.split_at(key_end);
    (KEYS.contains(&key) && rest.trim_start().starts_with('='))
        || (["postgres:", "postgresql:"]
            .iter()
            .any(|scheme| value.starts_with(scheme))
            && !is_postgres_url(value))
}

/// The refusal of a value [`is_mistaken_database`] catches; the value is
/// not repeated (it may hold a password).
pub(crate) fn mistaken_database() -> BadStore {
    BadStore::new(
        "--store: that is not a postgres:// URL but looks meant for a database (libpq's          key=value form, or a URL without its //), so it is not taken for a file's name: give          postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|require|verify-full], the          password in PGPASSWORD or ~/.pgpass (or the whole URL in DANUBE_HOOKS_STORE); a file          of such a name is ./NAME"
            .to_owned(),
    )
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
    pub(crate) ssl: SslMode,
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
    /// the environment, else `PGPASSWORD`, else the password file
    /// ([`pgpass`]).
    pub(crate) fn parse(url: &str, given: Given) -> Result<Target, BadStore> {
        let (url, ssl_params) = take_ssl_params(url)?;
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|err| {
            BadStore::new(format!(
                "--store: {} is not a PostgreSQL URL: {err} (allowed: \
                 postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|require|verify-full])",
                shown_of_text(&url)
            ))
        })?;
        let ssl = ssl_params.mode.unwrap_or(if is_loopback(&config) {
            SslMode::Disable
        } else {
            SslMode::VerifyFull
        });
        config.ssl_mode(match ssl {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        let mut target = Target {
            shown: shown(&config),
            config,
            // As libpq: the URL's `sslrootcert`, else `PGSSLROOTCERT`.
            cacert: ssl_params.rootcert.or_else(|| {
                std::env::var_os("PGSSLROOTCERT")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            }),
            ssl,
        };
        if target.config.get_password().is_some() {
            if given == Given::CommandLine {
                return Err(BadStore::new(format!(
                    "--store: the URL {} holds a password, which `ps` and the shell's history \
                     would show: put it in PGPASSWORD or ~/.pgpass (PGPASSFILE), or give the \
                     whole URL in DANUBE_HOOKS_STORE",
                    target.shown
                )));
            }
        } else if let Some(password) = std::env::var_os("PGPASSWORD") {
            target.config.password(password.as_encoded_bytes());
        } else if let Some(password) =
            pgpass::path().and_then(|path| pgpass::lookup(&path, &pgpass_wanted(&target.config)))
        {
            target.config.password(password);
        }
        Ok(target)
    }
}

impl Target {
    /// `text` without the password, were a server to echo it.
    pub(crate) fn without_password(&self, text: String) -> String {
        let password = self.config.get_password().map(String::from_utf8_lossy);
        match password {
            Some(password) if !password.is_empty() && text.contains(&*password) => {
                text.replace(&*password, "<password>")
            }
            _ => text,
        }
    }
}

/// The TLS parameters taken out of the URL's query (tokio-postgres would
/// refuse `verify-full`, and knows no `sslrootcert`).
#[derive(Debug, Default, PartialEq, Eq)]
struct SslParams {
    mode: Option<SslMode>,
    /// `sslrootcert=PATH`: libpq's name for a CA file to trust.
    rootcert: Option<PathBuf>,
}

/// `url` without its TLS parameters, and what they ask.
fn take_ssl_params(url: &str) -> Result<(String, SslParams), BadStore> {
    let mut params = SslParams::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), params));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", value)) => params.mode = Some(sslmode(value)?),
            Some(("sslrootcert", path)) if !path.is_empty() => {
                params.rootcert = Some(PathBuf::from(path));
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, params))
}

fn sslmode(value: &str) -> Result<SslMode, BadStore> {
    match value {
        "disable" => Ok(SslMode::Disable),
        "require" => Ok(SslMode::Require),
        "verify-full" => Ok(SslMode::VerifyFull),
        other => Err(BadStore::new(format!(
            "--store: sslmode={} is not supported (allowed: {SSLMODES}; verify-full checks the \
             certificate and the host name, require encrypts without checking)",
            crate::display::escape_line(other)
        ))),
    }
}

/// Whether every host the URL names is this machine: a Unix socket,
/// `localhost`, or a loopback address.
fn is_loopback(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    })
}

/// What a password file's line must match for `config`: its first host
/// (`localhost` for a Unix socket, as libpq has it), its port, the
/// database (the user's name when none is given) and the user.
fn pgpass_wanted(config: &tokio_postgres::Config) -> pgpass::Wanted {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(_)) | None => "localhost".to_owned(),
    };
    let user = config.get_user().unwrap_or_default().to_owned();
    pgpass::Wanted {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or(&user).to_owned(),
        user,
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

/// A URL that did not parse, shown with what lies between the user's name
/// and the last `@` cut, and without its query, so a mistyped URL's
/// password is not printed either. The driver takes the credentials up to
/// an `@` wherever it is (a password may hold `/`, `?`, `:`), so the last
/// `@` is where they surely end.
fn shown_of_text(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split([':', '/', '?']).next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => rest.to_owned(),
    };
    let rest = rest.split('?').next().unwrap_or_default();
    crate::display::escape_line(&format!("{scheme}://{rest}")).into_owned()
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
    fn no_mistyped_url_shows_its_password() {
        for url in [
            "postgres://ann:hunter2@db.example:5433:extra/hooks",
            "postgresql://ann:hunter2@[::1",
            "postgres://ann:hun/ter2@db.example:x/hooks",
            "postgres://ann:hun?ter2@db.example:x/hooks",
            "postgres://ann:hunter2@db@example:x/hooks",
            "postgres://ann:hunter2@db.example/hooks?sslmode=bogus",
            "postgres://ann@db.example:x/hooks?password=hunter2",
            "postgres://db.example/hooks?password=hunter2&port=x",
            "postgres://db.example/hooks?password=hunter2&hunter2",
            "postgres://ann:hunter2@db.example/hooks?options=-c%20x&bogus=1",
            "postgres://ann:hunter2@db.example/hooks?application_name=a@b&port=x",
        ] {
            for given in [Given::CommandLine, Given::Environment] {
                let shown = match Target::parse(url, given) {
                    Ok(target) => format!("{target} {target:?}"),
                    Err(err) => err.0,
                };
                assert!(!shown.contains("hunter2"), "{url}: {shown}");
                assert!(!shown.contains("ter2"), "{url}: {shown}");
            }
        }
    }

    #[test]
    fn sslmode_is_read_defaulted_by_host_and_other_values_refused() {
        let ssl = |url: &str| Target::parse(url, Given::CommandLine).map(|t| t.ssl);
        assert_eq!(ssl("postgres://ann@127.0.0.1/h").unwrap(), SslMode::Disable);
        assert_eq!(ssl("postgres://ann@localhost/h").unwrap(), SslMode::Disable);
        assert_eq!(
            ssl("postgres://ann@[::1]:5433/h").unwrap(),
            SslMode::Disable
        );
        assert_eq!(
            ssl("postgres://ann@db.example/h").unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!(
            ssl("postgres://ann@db.example/h?sslmode=require").unwrap(),
            SslMode::Require
        );
        assert_eq!(
            ssl("postgres://ann@127.0.0.1/h?connect_timeout=3&sslmode=verify-full").unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!(
            ssl("postgres://ann@db.example/h?sslmode=disable").unwrap(),
            SslMode::Disable
        );
        for refused in ["prefer", "allow", "verify-ca", ""] {
            let err = ssl(&format!("postgres://ann@db.example/h?sslmode={refused}")).unwrap_err();
            assert!(
                err.0.contains(&format!("sslmode={refused} "))
                    && err.0.contains("disable, require, verify-full"),
                "{}",
                err.0
            );
        }
        // The other parameters stay for tokio-postgres.
        let (url, params) = take_ssl_params(
            "postgres://a@h/d?sslmode=require&application_name=x&sslrootcert=ca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://a@h/d?application_name=x");
        assert_eq!(
            params,
            SslParams {
                mode: Some(SslMode::Require),
                rootcert: Some(PathBuf::from("ca.pem")),
            }
        );
    }

    #[test]
    fn the_password_file_is_matched_by_host_port_database_and_user() {
        let config =
            tokio_postgres::Config::from_str("postgres://ann@db.example:5433/hooks").unwrap();
        assert_eq!(
            pgpass_wanted(&config),
            pgpass::Wanted {
                host: "db.example".into(),
                port: 5433,
                database: "hooks".into(),
                user: "ann".into(),
            }
        );
        let config = tokio_postgres::Config::from_str("postgres://ann@db.example").unwrap();
        let wanted = pgpass_wanted(&config);
        assert_eq!((wanted.port, wanted.database.as_str()), (5432, "ann"));
    }

    #[test]
    fn a_connection_string_or_a_url_without_its_slashes_is_no_file() {
        for meant in [
            "host=db.example password=hunter2 dbname=hooks",
            "  dbname = hooks",
            "password=hunter2",
            "postgres:/ann@db.example/hooks",
            "postgresql:ann:hunter2@db.example",
        ] {
            assert!(is_mistaken_database(meant), "{meant}");
        }
        for file in [
            "deliveries.jsonl",
            "./host=x",
            "hostname=x",
            "postgres://ann@db/h",
            "hooks/host=x",
        ] {
            assert!(!is_mistaken_database(file), "{file}");
        }
        assert!(!mistaken_database().0.contains("hunter2"));
    }

    #[test]
    fn a_server_that_echoes_the_password_does_not_show_it() {
        let target = Target::parse("postgres://ann:hunter2@db/h", Given::Environment).unwrap();
        assert_eq!(
            target.without_password("you sent hunter2, hunter2!".into()),
            "you sent <password>, <password>!"
        );
        assert_eq!(target.without_password("fine".into()), "fine");
    }

    #[test]
    fn only_postgres_schemes_name_postgres() {
        assert!(is_postgres_url("postgres://x/y"));
        assert!(is_postgres_url("postgresql://x/y"));
        assert!(!is_postgres_url("./postgres://x"));
        assert!(!is_postgres_url("deliveries.jsonl"));
    }
}
