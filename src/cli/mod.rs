//! The command line: clap types, and their checks into validated config.
//! The top level and the argument groups the commands share (`--store`, the
//! secrets, a body, the receivers' and the API's trust) are here; each
//! command group's arguments are in a file of their own.
//!
//! Nothing here does I/O beyond reading a body file, a secret file and a
//! `--cacert` file;
//! each command's module gets values it can trust.

// Doc comments on arguments are --help text for people, not rustdoc:
// backticks and <…> around URLs would show up as typed.
#![allow(clippy::doc_markdown)]

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::signature::Secret;

mod act;
mod danube;
mod dashboard;
mod emulate;
pub(crate) mod examples;
mod generate;
mod inspect;
mod listen;
mod parse;
mod screen;

pub(crate) use act::{CheckArgs, ReplayArgs, SignArgs, TriggerArgs, VerifyArgs};
pub(crate) use danube::{
    DeliveriesArgs, LoginArgs, LogoutArgs, RedeliverArgs, WebhooksCommand, WebhooksCreateArgs,
    WebhooksDeleteArgs, WebhooksListArgs, WebhooksUpdateArgs,
};
pub(crate) use dashboard::DashboardArgs;
pub(crate) use emulate::{EMULATOR_KEY_ENV, EmulateArgs, KeySource};
pub(crate) use generate::{CompletionShell, CompletionsArgs, ManArgs};
pub(crate) use inspect::{ExportArgs, LogArgs, ShowArgs};
pub(crate) use listen::{ListenArgs, RegisterArgs, TunnelArgs};
pub(crate) use screen::ScreenArgs;
// The deadline's fact is checked against the parser `--timeout` uses.
#[cfg(test)]
pub(crate) use parse::parse_duration;

/// A bad argument or configuration: exit 2, with a message that names the
/// input and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

impl UsageError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<crate::store::BadStore> for UsageError {
    fn from(bad: crate::store::BadStore) -> Self {
        Self(bad.0)
    }
}

/// SPEC §2's exit codes, as the top `--help` lists them (before the
/// examples, which end every command's help) and the top man page's EXIT
/// STATUS; `errors::ErrorClass` gives them.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success; also when whoever reads stdout stops early (`| head`)
  1  a negative result: verify found the signature not valid, check found failures,
     the last attempt of trigger or replay failed, a redelivery not answered 2xx
  2  bad usage or configuration: a flag or value, a path that cannot be used,
     a request Danube refused (its 4xx answers but 429)
  3  Danube's API or the network failed: no connection, a timeout, TLS, Danube's 5xx or 429
  4  reading or writing a local file failed while working: the store, the emulator's
     state, the credentials, the saved webhooks";

#[derive(Debug, Parser)]
#[command(
    name = "danube-hooks",
    version,
    about = "Receive, inspect, verify, break and replay Danube webhook deliveries on your machine.",
    long_about = None,
    propagate_version = true,
    after_help = examples::TOP,
    after_long_help = format!("{EXIT_CODES}\n\n{}", examples::TOP)
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Receive deliveries: verify, answer by the policy, forward, record, show.
    #[command(after_help = examples::LISTEN)]
    // Boxed: listen has by far the most flags.
    Listen(Box<ListenArgs>),
    /// Print the X-Danube-Signature value for a body, as Danube would send it.
    #[command(after_help = examples::SIGN)]
    Sign(SignArgs),
    /// Check an X-Danube-Signature value against a body, and say why it fails.
    #[command(after_help = examples::VERIFY)]
    Verify(VerifyArgs),
    /// Act as Danube: build, sign and post a delivery, retrying as Danube does.
    #[command(after_help = examples::TRIGGER)]
    Trigger(TriggerArgs),
    /// Resend a stored delivery, re-signed (default) or byte-identical (--as-is), or a changed copy of it (--set, --data-file, --header, --drop-header).
    #[command(after_help = examples::REPLAY)]
    Replay(ReplayArgs),
    /// Watch a team's shared store (PostgreSQL) live: every listener's deliveries, no listener of its own.
    #[command(after_help = examples::DASHBOARD)]
    Dashboard(DashboardArgs),
    /// List stored deliveries.
    #[command(after_help = examples::LOG)]
    Log(LogArgs),
    /// Show one stored delivery whole.
    #[command(after_help = examples::SHOW)]
    Show(ShowArgs),
    /// Print a stored delivery as a curl command that reproduces it.
    #[command(after_help = examples::EXPORT)]
    Export(ExportArgs),
    /// Grade your receiver: does it verify signatures the way it must?
    #[command(after_help = examples::CHECK)]
    Check(CheckArgs),
    /// Log in to Danube: approve this machine in a browser, or give a key (--with-key).
    #[command(after_help = examples::LOGIN)]
    Login(LoginArgs),
    /// Forget the Danube key `login` saved.
    #[command(after_help = examples::LOGOUT)]
    Logout(LogoutArgs),
    /// Danube's webhooks, as its SDKs have them.
    #[command(subcommand, after_help = examples::WEBHOOKS)]
    Webhooks(WebhooksCommand),
    /// Danube's delivery log for a webhook, beside what reached the listener, and what does not add up; --redeliver sends what never arrived.
    #[command(after_help = examples::DELIVERIES)]
    Deliveries(DeliveriesArgs),
    /// A local Danube: its webhook API, and deliveries of the events posted to it, offline.
    #[command(after_help = examples::EMULATE)]
    Emulate(EmulateArgs),
    /// Print a shell completion script on stdout.
    #[command(after_help = examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print a man page (roff) on stdout, or write one per command into a directory.
    #[command(after_help = examples::MAN)]
    Man(ManArgs),
}

/// The delivery log to read.
#[derive(Debug, Clone, Args)]
pub(crate) struct StoreArg {
    /// The delivery log: a file, or a team's shared store, postgres://USER@HOST[:PORT]/DATABASE [default: $DANUBE_HOOKS_STORE, else $XDG_DATA_HOME/danube-hooks/deliveries.jsonl].
    ///
    /// A URL here holds no password (it is refused): PGPASSWORD, PGPASSFILE or ~/.pgpass give it, or the whole URL in DANUBE_HOOKS_STORE. TLS by ?sslmode=: verify-full (the default, but disable for a loopback host) checks the certificate and the host name; require encrypts without checking the certificate; disable is plain TCP.
    #[arg(long, value_name = "PATH|URL")]
    pub(crate) store: Option<String>,
}

impl StoreArg {
    /// Where to read: `--store`, else `$DANUBE_HOOKS_STORE`, else the
    /// default file. A shared store's TLS trusts the URL's `sslrootcert`
    /// or `$PGSSLROOTCERT`, as libpq does.
    pub(crate) fn location(&self) -> Result<crate::store::Location, UsageError> {
        crate::store::Location::choose(self.store.as_deref()).map_err(UsageError::from)
    }
}

/// The store to read, for the commands that only read it (`log`, `show`,
/// `export`): their `--cacert` is the shared store's.
#[derive(Debug, Clone, Args)]
pub(crate) struct StoreReadArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// A PEM file of CA certificates (or the server's own) to trust beside the web's roots, for a postgres:// store with sslmode=verify-full (else the URL's sslrootcert, or $PGSSLROOTCERT).
    #[arg(long, value_name = "PEM")]
    pub(crate) cacert: Option<PathBuf>,
}

impl StoreReadArgs {
    /// [`StoreArg::location`], trusting `--cacert` when given.
    pub(crate) fn location(&self) -> Result<crate::store::Location, UsageError> {
        let mut at = self.store.location()?;
        if let (Some(cacert), crate::store::Location::Postgres(target)) = (&self.cacert, &mut at) {
            std::sync::Arc::make_mut(target).cacert = Some(cacert.clone());
        }
        Ok(at)
    }
}

/// The environment variable read for a secret when no flag gives one.
pub(crate) const SECRET_ENV: &str = "DANUBE_WEBHOOK_SECRET";

/// A secret file holds a few lines; the bound keeps a wrong path (a
/// device, a log) from being read whole.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The signing secrets: repeatable for rotation, from a file or the
/// environment rather than the command line, where `ps` and the shell's
/// history would show them.
#[derive(Debug, Clone, Args)]
pub(crate) struct SecretArgs {
    /// Signing secret (whsec_…); repeat it for rotation. Without --secret or --secret-file, $DANUBE_WEBHOOK_SECRET. Shown only as a fingerprint.
    #[arg(short = 's', long = "secret", value_name = "SECRET")]
    pub(crate) secrets: Vec<String>,
    /// A file of signing secrets, one per line (rotation); keeps them out of `ps` and shell history.
    #[arg(long, value_name = "PATH")]
    pub(crate) secret_file: Option<PathBuf>,
}

impl SecretArgs {
    /// `--secret` values, then the file's; the environment only when
    /// neither flag is given. A secret file that can't be read or holds
    /// no secret is an error; one open to others gets a warning on stderr.
    pub(crate) fn secrets(&self) -> Result<Vec<Secret>, UsageError> {
        let mut texts = self.secrets.clone();
        if let Some(path) = &self.secret_file {
            texts.extend(read_secret_file(path)?);
        }
        if self.secrets.is_empty() && self.secret_file.is_none() {
            texts.extend(std::env::var(SECRET_ENV).ok());
        }
        Ok(texts
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect())
    }

    /// The secrets, or a usage error when there are none.
    pub(crate) fn required(&self, command: &str) -> Result<Vec<Secret>, UsageError> {
        let secrets = self.secrets()?;
        if secrets.is_empty() {
            return Err(UsageError::new(format!(
                "{command} needs a signing secret: pass --secret-file PATH or --secret whsec_…, \
                 or set {SECRET_ENV}"
            )));
        }
        Ok(secrets)
    }
}

/// What a file of secrets or keys holds, for its messages.
struct PrivateLines {
    flag: &'static str,
    /// `secret`, `key`.
    what: &'static str,
    /// What a line holds: `one secret (whsec_…) per line`.
    per_line: &'static str,
}

const SECRET_FILE: PrivateLines = PrivateLines {
    flag: "--secret-file",
    what: "secret",
    per_line: "one secret (whsec_…) per line",
};

/// The secrets in `path`: one a line, surrounding whitespace and blank
/// lines ignored.
fn read_secret_file(path: &std::path::Path) -> Result<Vec<String>, UsageError> {
    read_private_lines(path, &SECRET_FILE)
}

/// The non-blank lines of `path`, trimmed. Warns, as ssh does for a key,
/// when the file is open to group or others, but reads it all the same.
/// Errors name the file and what it should hold, never its text.
fn read_private_lines(
    path: &std::path::Path,
    kind: &PrivateLines,
) -> Result<Vec<String>, UsageError> {
    use std::os::unix::fs::PermissionsExt as _;

    let PrivateLines {
        flag,
        what,
        per_line,
    } = kind;
    let shown = crate::display::escape_path(path);
    let fail = |why: String| UsageError::new(format!("{flag} {shown}: {why}"));
    let mut file = std::fs::File::open(path).map_err(|err| fail(err.to_string()))?;
    let mode = file
        .metadata()
        .map_err(|err| fail(err.to_string()))?
        .permissions()
        .mode();
    let mut text = String::new();
    (&mut file)
        .take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|err| {
            fail(if err.kind() == std::io::ErrorKind::InvalidData {
                format!("not UTF-8 text; put {per_line}")
            } else {
                err.to_string()
            })
        })?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(fail(format!(
            "larger than {} KiB; a {what} file holds {per_line}",
            MAX_SECRET_FILE / 1024
        )));
    }
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if lines.is_empty() {
        return Err(fail(format!("no {what} in it; put {per_line}")));
    }
    if mode & 0o077 != 0 {
        eprintln!(
            "danube-hooks: warning: {what} file {shown} can be read or written by group or \
             others (mode {:04o}); chmod 600 it",
            mode & 0o7777
        );
    }
    Ok(lines)
}

/// Where a body comes from: a file, or standard input for `-` or nothing.
#[derive(Debug, Clone, Args)]
pub(crate) struct BodyArg {
    /// File holding the exact body bytes; `-` or nothing reads standard input.
    #[arg(value_name = "BODY_FILE")]
    pub(crate) body_file: Option<PathBuf>,
}

impl BodyArg {
    pub(crate) fn read(&self) -> Result<Vec<u8>, UsageError> {
        match &self.body_file {
            Some(path) if path.as_os_str() != "-" => std::fs::read(path).map_err(|err| {
                UsageError::new(format!("cannot read body file {}: {err}", path.display()))
            }),
            _ => {
                let mut stdin = std::io::stdin();
                if stdin.is_terminal() {
                    return Err(UsageError::new(
                        "no body: give a BODY_FILE, or pipe the body on standard input (`-`)",
                    ));
                }
                let mut body = Vec::new();
                stdin.read_to_end(&mut body).map_err(|err| {
                    UsageError::new(format!("cannot read the body from standard input: {err}"))
                })?;
                Ok(body)
            }
        }
    }
}

/// Where Danube's API is, and how it is trusted: the web's roots, plus
/// `--api-cacert`; never `--insecure`, and never a receiver's `--cacert`
/// (SPEC §12: the API key rides no weakened connection).
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiArgs {
    /// Danube's API (https://, or http:// to this machine) [default: https://api.danubeai.com].
    #[arg(long, value_name = "URL", env = "DANUBE_API_URL")]
    pub(crate) api_url: Option<String>,
    #[command(flatten)]
    pub(crate) api_cacert: ApiCacertArg,
    /// Refused: Danube's API is never trusted without checks (kept so that the refusal says why).
    #[arg(long, hide = true)]
    pub(crate) insecure: bool,
    /// Refused: use --api-cacert for Danube's API (kept so that the refusal says so).
    #[arg(long, hide = true, value_name = "PEM")]
    pub(crate) cacert: Option<PathBuf>,
}

/// `--api-cacert`: a CA that Danube's API (a private or test one) may be
/// signed by, besides the web's roots.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiCacertArg {
    /// Trust the CA certificate(s) in this PEM file for Danube's API too, besides the web's roots (for a private or test API; there is no way to switch its checks off).
    #[arg(long, value_name = "PEM")]
    pub(crate) api_cacert: Option<PathBuf>,
}

impl ApiCacertArg {
    /// The API's own trust.
    pub(crate) fn trust(&self) -> Result<crate::http::Trust, UsageError> {
        crate::http::Trust::load(self.api_cacert.as_deref(), false)
            .map_err(|err| UsageError::new(format!("--api-cacert: {err}")))
    }
}

impl ApiArgs {
    /// `--api-url`, `DANUBE_API_URL`, or Danube's own.
    pub(crate) fn url(&self) -> &str {
        self.api_url
            .as_deref()
            .unwrap_or(crate::danube::api::DEFAULT_API_URL)
    }

    /// The API's trust; `--insecure` and `--cacert`, which are for
    /// receivers, are refused here with what to use instead.
    pub(crate) fn trust(&self) -> Result<crate::http::Trust, UsageError> {
        if self.insecure {
            return Err(UsageError::new(
                "--insecure does not apply to Danube's API: the API key never rides a connection \
                 whose certificate is not checked; for a private or test API give its CA with \
                 --api-cacert PEM",
            ));
        }
        if self.cacert.is_some() {
            return Err(UsageError::new(
                "--cacert is for receivers; for Danube's API give the CA with --api-cacert PEM",
            ));
        }
        self.api_cacert.trust()
    }
}

/// How `https://` receivers are trusted (SPEC §12), as curl has it; never
/// Danube's API, whose trust is its own ([`ApiArgs`]).
#[derive(Debug, Clone, Args)]
pub(crate) struct TlsArgs {
    /// Trust the CA certificate(s) in this PEM file for https:// receivers, besides the web's roots; a server's own self-signed certificate in it is trusted as itself (as curl does). Never for Danube's API (--api-cacert).
    #[arg(long, value_name = "PEM")]
    pub(crate) cacert: Option<PathBuf>,
    /// Skip certificate checks for https:// receivers (a warning says so). Wins over --cacert. Never for Danube's API.
    #[arg(long)]
    pub(crate) insecure: bool,
}

impl TlsArgs {
    /// The trust these flags ask for; a `--cacert` that cannot be used is
    /// a usage error.
    pub(crate) fn trust(&self) -> Result<crate::http::Trust, UsageError> {
        crate::http::Trust::load(self.cacert.as_deref(), self.insecure)
            .map_err(|err| UsageError::new(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trigger_help_lists_every_event_type() {
        let help = Cli::command()
            .find_subcommand_mut("trigger")
            .unwrap()
            .render_help()
            .to_string();
        for event in crate::events::EVENT_TYPES {
            assert!(help.contains(event), "{event} missing from trigger --help");
        }
    }

    #[test]
    fn a_pasted_header_line_is_accepted() {
        let cli = Cli::try_parse_from([
            "danube-hooks",
            "verify",
            "--secret",
            "whsec_x",
            "--header",
            "x-danube-signature: t=1,sha256=ab",
        ])
        .unwrap();
        let Command::Verify(args) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(args.header_value(), "t=1,sha256=ab");
    }
}
