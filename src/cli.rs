//! The command line: clap types, and their checks into validated config.
//!
//! Nothing here does I/O beyond reading a body file, a secret file and a
//! `--cacert` file;
//! each command's module gets values it can trust.

// Doc comments on arguments are --help text for people, not rustdoc:
// backticks and <…> around URLs would show up as typed.
#![allow(clippy::doc_markdown)]

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::danube::tunnel::program::Program;
use crate::signature::{self, Secret};

pub mod examples;

/// A bad argument or configuration: exit 2, with a message that names the
/// input and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "danube-hooks",
    version,
    about = "Receive, inspect, verify, break and replay Danube webhook deliveries on your machine.",
    long_about = None,
    propagate_version = true,
    after_help = examples::TOP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Resend a stored delivery, re-signed (default) or byte-identical (--as-is).
    #[command(after_help = examples::REPLAY)]
    Replay(ReplayArgs),
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
    /// Danube's delivery log for a webhook, beside what reached the listener, and what does not add up.
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
pub struct StoreArg {
    /// The delivery log [default: $XDG_DATA_HOME/danube-hooks/deliveries.jsonl].
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
}

impl StoreArg {
    pub fn path(&self) -> Result<PathBuf, UsageError> {
        store_path(self.store.as_ref())
    }
}

/// `--store PATH`, or the default store when it is absent.
pub fn store_path(given: Option<&PathBuf>) -> Result<PathBuf, UsageError> {
    match given {
        Some(path) => Ok(path.clone()),
        None => crate::store::default_path().ok_or_else(|| {
            UsageError::new(
                "no home directory for the default store: pass --store PATH (or --no-store to listen)",
            )
        }),
    }
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The event type to send, unless --all: tool.execution.completed, tool.execution.failed, workflow.completed, workflow.failed, agent.spend.limit_approaching.
    #[arg(
        value_name = "EVENT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub event: Option<String>,
    /// Send one delivery of each Danube event type.
    #[arg(long)]
    pub all: bool,
    /// Your receiver's URL (http:// or https://).
    #[arg(long, value_name = "URL", required_unless_present = "emulator")]
    pub to: Option<String>,
    /// Instead of posting it yourself, send the event to a local Danube (`danube-hooks emulate`, e.g. http://127.0.0.1:4200), which delivers it to each active webhook subscribed to it, signed with that webhook's secret; prints the deliveries it made. Uses DANUBE_API_KEY or the key `login` saved.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with_all = ["to", "secrets", "secret_file", "attempts", "timeout", "backoff", "same_signature"]
    )]
    pub emulator: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Set a field of the envelope, typed: data.status=failed, data.execution_time=2.5, data.error=null. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// A JSON file whose contents replace `data`.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
    /// Attempts at most (the default is as many as Danube makes).
    #[arg(long, value_name = "N", default_value_t = crate::facts::ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: u32,
    /// How long one attempt may take before it counts as failed (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Waits between failed attempts, the last repeating (Danube's schedule is not published).
    #[arg(long, value_name = "LIST", default_value = DEFAULT_BACKOFF, value_parser = parse_backoff)]
    pub backoff: Backoff,
    /// Keep the first attempt's signature on retries instead of signing each anew.
    #[arg(long)]
    pub same_signature: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `--backoff`'s default, for `trigger` and `emulate` alike.
pub const DEFAULT_BACKOFF: &str = "1s,5s";

/// `--backoff 1s,5s`: the waits before attempt 2, 3, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff(pub Vec<Duration>);

pub fn parse_backoff(text: &str) -> Result<Backoff, String> {
    text.split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()
        .map(Backoff)
}

#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Port to serve on; 0 picks a free one (the banner says which).
    #[arg(short = 'p', long, default_value_t = 4200)]
    pub port: u16,
    /// Address to bind. Anything but loopback is reachable from the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// The emulator's webhooks, secrets and delivery log [default: $XDG_DATA_HOME/danube-hooks/emulator.json].
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Start empty: forget the webhooks and deliveries of the state file.
    #[arg(long)]
    pub reset: bool,
    /// Accept http:// webhook URLs too (Danube takes only https://), for a receiver on this machine.
    #[arg(long)]
    pub allow_http: bool,
    /// Accept only this API key (repeatable) [default: any non-empty key]. It shows in `ps`: prefer --api-key-file or $DANUBE_EMULATOR_API_KEY.
    #[arg(long = "api-key", value_name = "KEY", value_parser = parse_api_key)]
    pub api_keys: Vec<String>,
    /// A file of the only API keys to accept, one per line; keeps them out of `ps` and shell history. Without --api-key or --api-key-file, $DANUBE_EMULATOR_API_KEY.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// Delivery records kept per webhook; older ones are dropped.
    #[arg(long, value_name = "N", default_value_t = crate::emulator::state::DEFAULT_KEEP, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=1_000_000), |n| n as usize))]
    pub keep: usize,
    /// How long one delivery attempt may take before it counts as failed (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Waits between failed attempts, the last repeating (Danube's schedule is not published).
    #[arg(long, value_name = "LIST", default_value = DEFAULT_BACKOFF, value_parser = parse_backoff)]
    pub backoff: Backoff,
    /// One JSON object per delivery attempt on stdout instead of a line for people.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The environment variable `emulate` takes its one key from when neither
/// `--api-key` nor `--api-key-file` names any.
pub const EMULATOR_KEY_ENV: &str = "DANUBE_EMULATOR_API_KEY";

/// Where the keys `emulate` accepts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// None named: any non-empty key is accepted.
    Any,
    /// `--api-key` (and `--api-key-file`, when both are given).
    Flag,
    File,
    Environment,
}

impl EmulateArgs {
    /// The only keys to accept, and where they came from: `--api-key`
    /// values, then the file's; the environment only when neither flag is
    /// given. No key at all means any key. A key file that can't be read
    /// or holds no key is an error; one open to others gets a warning.
    pub fn accepted_keys(&self) -> Result<(Vec<String>, KeySource), UsageError> {
        let mut keys = self.api_keys.clone();
        let mut source = if keys.is_empty() {
            KeySource::Any
        } else {
            KeySource::Flag
        };
        if let Some(path) = &self.api_key_file {
            let shown = crate::display::escape_line(&path.display().to_string()).into_owned();
            for (n, line) in read_private_lines(path, &KEY_FILE)?.into_iter().enumerate() {
                let key = parse_api_key(&line).map_err(|why| {
                    UsageError::new(format!("--api-key-file {shown}: line {}: {why}", n + 1))
                })?;
                keys.push(key);
            }
            if source == KeySource::Any {
                source = KeySource::File;
            }
        }
        if source == KeySource::Any
            && let Some(key) = std::env::var(EMULATOR_KEY_ENV)
                .ok()
                .filter(|k| !k.is_empty())
        {
            let key = parse_api_key(&key)
                .map_err(|why| UsageError::new(format!("{EMULATOR_KEY_ENV}: {why}")))?;
            keys.push(key);
            source = KeySource::Environment;
        }
        Ok((keys, source))
    }
}

/// An `--api-key`: one header value, no spaces.
pub fn parse_api_key(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("an API key cannot be empty".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an API key cannot hold spaces or control characters".into());
    }
    Ok(text.to_owned())
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The id of the stored delivery.
    pub id: u64,
    /// Where to send it [default: the --forward-to it was recorded with].
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Byte-identical, original signature included (tests replay protection).
    #[arg(long)]
    pub as_is: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub store: StoreArg,
    /// How long the target may take (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// One JSON record per line.
    #[arg(long)]
    pub json: bool,
    /// Only the last N (after filtering).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Only events matching: an event type, a prefix like tool.*, or *.
    #[arg(long, value_name = "PATTERN")]
    pub event: Option<String>,
    /// Only this verdict: valid, mismatch, stale, missing, malformed, unchecked.
    #[arg(long, value_name = "VERDICT", value_parser = parse_verdict)]
    pub verdict: Option<signature::Verdict>,
    #[command(flatten)]
    pub store: StoreArg,
}

pub fn parse_verdict(text: &str) -> Result<signature::Verdict, String> {
    signature::Verdict::parse(text).ok_or_else(|| {
        let names: Vec<&str> = signature::Verdict::ALL.iter().map(|v| v.as_str()).collect();
        format!("{text:?} is not a verdict; use one of {}", names.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub id: u64,
    /// The body as received (escaped), not pretty-printed.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    pub id: u64,
    /// Print a curl command that reproduces the request byte for byte: the default, and the only format.
    #[arg(long)]
    pub curl: bool,
    /// Where the command sends it [default: the listener's address and path it arrived on].
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[command(flatten)]
    pub store: StoreArg,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Your receiver's URL (http:// or https://).
    pub url: String,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Danube's deadline for an answer.
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The environment variable read for a secret when no flag gives one.
pub const SECRET_ENV: &str = "DANUBE_WEBHOOK_SECRET";

/// A secret file holds a few lines; the bound keeps a wrong path (a
/// device, a log) from being read whole.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The signing secrets: repeatable for rotation, from a file or the
/// environment rather than the command line, where `ps` and the shell's
/// history would show them.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Signing secret (whsec_…); repeat it for rotation. Without --secret or --secret-file, $DANUBE_WEBHOOK_SECRET. Shown only as a fingerprint.
    #[arg(short = 's', long = "secret", value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// A file of signing secrets, one per line (rotation); keeps them out of `ps` and shell history.
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
}

impl SecretArgs {
    /// `--secret` values, then the file's; the environment only when
    /// neither flag is given. A secret file that can't be read or holds
    /// no secret is an error; one open to others gets a warning on stderr.
    pub fn secrets(&self) -> Result<Vec<Secret>, UsageError> {
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
    pub fn required(&self, command: &str) -> Result<Vec<Secret>, UsageError> {
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

const KEY_FILE: PrivateLines = PrivateLines {
    flag: "--api-key-file",
    what: "key",
    per_line: "one API key per line",
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
    let shown = crate::display::escape_line(&path.display().to_string()).into_owned();
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
pub struct BodyArg {
    /// File holding the exact body bytes; `-` or nothing reads standard input.
    #[arg(value_name = "BODY_FILE")]
    pub body_file: Option<PathBuf>,
}

impl BodyArg {
    pub fn read(&self) -> Result<Vec<u8>, UsageError> {
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

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each bool is one documented flag
#[command(group(clap::ArgGroup::new(WEBHOOK_SETUP).args(["register", "tunnel"]).multiple(true)))]
pub struct ListenArgs {
    /// Port to listen on; 0 picks a free one (the banner says which).
    #[arg(short = 'p', long, env = "DANUBE_HOOKS_PORT", default_value_t = 4000)]
    pub port: u16,
    /// Address to bind. Anything but loopback is reachable from the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// How far t may be from now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::facts::TOLERANCE_S)]
    pub tolerance: u64,
    /// Response policy rule, e.g. 500,500,forward or 'workflow.*=timeout' or 12s+200; repeatable.
    #[arg(long = "respond", value_name = "RULE")]
    pub respond: Vec<String>,
    /// Answer 401 to any delivery whose signature is not valid, as a correct receiver would.
    #[arg(long)]
    pub reject_invalid: bool,
    /// Forward each delivery to your own receiver, e.g. http://localhost:3000/webhooks/danube (https:// too).
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// How long the receiver may take before the sender gets 504 (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub forward_timeout: Duration,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Group attempts by this delivery-id header instead of by the body.
    #[arg(long, value_name = "NAME")]
    pub group_header: Option<String>,
    /// The delivery log [default: $XDG_DATA_HOME/danube-hooks/deliveries.jsonl].
    #[arg(long, value_name = "PATH", conflicts_with = "no_store")]
    pub store: Option<PathBuf>,
    /// Keep deliveries in memory only.
    #[arg(long)]
    pub no_store: bool,
    /// fsync each record before its answer is sent (slower, loses nothing on power loss).
    #[arg(long)]
    pub durable: bool,
    /// Rotate the store (deliveries.jsonl → deliveries.1.jsonl → …) before it passes this size. Accepts 10MiB, 1GiB.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_store_size)]
    pub store_max: u64,
    /// Rotated store files kept; a rotation deletes the oldest beyond them (0 keeps none).
    #[arg(long, value_name = "N", default_value_t = crate::store::DEFAULT_KEEP, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(0..=1000), usize::from))]
    pub store_keep: usize,
    /// Largest body accepted; larger ones get 413. Accepts 1048576, 512KiB, 1MiB.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Memory that bodies still arriving may hold together, past the first 64 KiB of
    /// each; a body that finds it full gets 503. Accepts 134217728, 64MiB, 1GiB.
    #[arg(long, value_name = "BYTES", default_value = "128MiB", value_parser = parse_size)]
    pub max_body_memory: usize,
    /// Open connections at once; at the cap, the one stalled longest (silent, idle, or a
    /// request trickling in) is closed to admit a new one.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connections: u32,
    /// Time a client has to send a request head; also the keep-alive idle timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Time a new connection has to send its first byte (at most --idle-timeout); at the
    /// connection cap, also how long a body that falls behind may go on before it gives way.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub first_byte_timeout: Duration,
    /// Time a client has to send a body.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Headless: one human line per delivery on stdout.
    #[arg(long)]
    pub no_tui: bool,
    /// Headless: one JSON record per line on stdout, and nothing else.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    #[command(flatten)]
    pub register: RegisterArgs,
}

/// `listen --tunnel`: the tunnel program started and kept running by the
/// listener, its URL proved and registered.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tunnel (--tunnel)")]
pub struct TunnelArgs {
    /// Start this tunnel program for the listener's port and keep it running (started again if
    /// it exits), prove its public URL reaches this listener, and register that URL with Danube
    /// when a credential is set (`login` or DANUBE_API_KEY); without one, print the URL to paste.
    #[arg(
        long,
        value_name = "PROGRAM",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(Program::NAMES),
            |name| Program::from_name(&name).expect("one of Program::NAMES"),
        ),
        conflicts_with_all = ["public_url", "ngrok_api", "cloudflared_metrics"]
    )]
    pub tunnel: Option<Program>,
    /// The tunnel program's executable [default: cloudflared or ngrok, found on PATH].
    #[arg(long, value_name = "PATH", requires = "tunnel")]
    pub tunnel_bin: Option<PathBuf>,
    /// How long the tunnel program may take to give its public URL.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, requires = "tunnel")]
    pub tunnel_timeout: Duration,
    /// Open the tunnel but register nothing with Danube (print the URL to paste).
    #[arg(long, requires = "tunnel", conflicts_with = "register")]
    pub no_register: bool,
    /// Register the URL without first proving that it reaches this listener (for networks that
    /// cannot reach their own tunnel).
    #[arg(long, requires = WEBHOOK_SETUP)]
    pub no_verify_url: bool,
}

/// The flags that set up a webhook's URL, `--register` or `--tunnel`:
/// what the flags of the webhook require one of.
const WEBHOOK_SETUP: &str = "webhook_setup";

/// `listen --register` and `--webhook`: the webhook in Danube, made or
/// reused for the tunnel, and Danube's side of it in the dashboard.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Danube webhook (--register, --webhook)")]
pub struct RegisterArgs {
    /// Create (or reuse) a Danube webhook for the tunnel's public URL and verify with its secret; paused on exit.
    #[arg(long)]
    pub register: bool,
    /// The tunnel's public https:// URL [default: found from a running ngrok, else cloudflared].
    #[arg(long, value_name = "URL", requires = "register")]
    pub public_url: Option<String>,
    /// The ngrok agent's API, asked for the tunnel to this port [default: http://127.0.0.1:4040].
    #[arg(long, value_name = "URL", requires = "register")]
    pub ngrok_api: Option<String>,
    /// cloudflared's metrics address, asked for its quick tunnel [default: 127.0.0.1:20241 to 20245].
    #[arg(long, value_name = "HOST:PORT", requires = "register")]
    pub cloudflared_metrics: Option<String>,
    /// The path of the webhook URL on the tunnel [default: /webhooks/danube].
    #[arg(long, value_name = "PATH", requires = WEBHOOK_SETUP)]
    pub path: Option<String>,
    /// An event type the webhook gets; repeatable [default: all five; a reused webhook keeps its own].
    #[arg(long = "event", value_name = "EVENT", requires = WEBHOOK_SETUP, value_parser = parse_event)]
    pub events: Vec<String>,
    /// Leave the webhook active on exit instead of pausing it.
    #[arg(long, requires = WEBHOOK_SETUP, conflicts_with_all = ["unregister", "no_register"])]
    pub keep_active: bool,
    /// Delete the webhook on exit (and forget its secret) instead of pausing it.
    #[arg(long, requires = WEBHOOK_SETUP, conflicts_with = "no_register")]
    pub unregister: bool,
    /// Show Danube's side in the dashboard: poll this webhook's delivery log every 5 s (and on
    /// D) with the key of `login` or DANUBE_API_KEY, and mark each delivery with what Danube
    /// recorded. With --register, the registered webhook is shown without it.
    #[arg(long, value_name = "ID", conflicts_with = "register")]
    pub webhook: Option<String>,
    /// Danube's API, for --register and --webhook (https://, or http:// to this machine) [default: https://api.danubeai.com].
    #[arg(long, value_name = "URL", env = "DANUBE_API_URL")]
    pub api_url: Option<String>,
    /// How long one request to Danube's API may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, requires = WEBHOOK_SETUP)]
    pub api_timeout: Duration,
    /// Danube's API is trusted by the web's roots and this alone: --cacert and --insecure are for
    /// --forward-to, replays and the tunnel's URL, never for the API.
    #[command(flatten)]
    pub api_cacert: ApiCacertArg,
}

impl RegisterArgs {
    /// `--api-url`, `DANUBE_API_URL`, or Danube's own.
    pub fn api_url(&self) -> &str {
        self.api_url
            .as_deref()
            .unwrap_or(crate::danube::api::DEFAULT_API_URL)
    }
}

/// One of Danube's event types (SPEC §1).
pub fn parse_event(text: &str) -> Result<String, String> {
    if crate::events::EVENT_TYPES.contains(&text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not one of Danube's event types: {}",
            crate::events::EVENT_TYPES.join(", ")
        ))
    }
}

/// `10s`, `250ms`, `2m`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 10s, 250ms, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range: at most 24h"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `1048576`, `512KiB`, `1MiB`, `64KB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    parse_size_up_to(text, 1024 * 1024 * 1024, "1GiB")
        .map(|size| usize::try_from(size).unwrap_or(usize::MAX))
}

/// A store size: `100MiB`, `1GiB`, up to 1TiB.
pub fn parse_store_size(text: &str) -> Result<u64, String> {
    parse_size_up_to(text, 1024 * 1024 * 1024 * 1024, "1TiB")
}

fn parse_size_up_to(text: &str, max: u64, max_text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: use e.g. 1048576, 512KiB, 1MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    number
        .checked_mul(factor)
        .filter(|&size| size > 0 && size <= max)
        .ok_or_else(|| format!("{text:?} is out of range: 1 byte to {max_text}"))
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Unix seconds to sign at; default now.
    #[arg(short = 't', long, value_name = "UNIX_SECONDS")]
    pub timestamp: Option<i64>,
    #[command(flatten)]
    pub body: BodyArg,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    /// The X-Danube-Signature value (a whole "X-Danube-Signature: …" line is accepted too).
    #[arg(short = 'H', long, value_name = "HEADER")]
    pub header: String,
    /// Unix seconds to check t against; default now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<i64>,
    /// How far t may be from now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::facts::TOLERANCE_S)]
    pub tolerance: u64,
    /// Print the signature object as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub body: BodyArg,
}

impl VerifyArgs {
    /// The header value, without a pasted `X-Danube-Signature:` name.
    pub fn header_value(&self) -> &str {
        let header = self.header.trim();
        match header.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case(signature::HEADER_NAME) => {
                value.trim()
            }
            _ => header,
        }
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: CompletionShell,
}

/// The shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print, e.g. listen [default: the top-level page].
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write the pages of COMMAND and every command under it (all of them by
    /// default) into DIR, one file each (danube-hooks.1, danube-hooks-listen.1, …).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Where Danube's API is, and how it is trusted: the web's roots, plus
/// `--api-cacert`; never `--insecure`, and never a receiver's `--cacert`
/// (SPEC §12: the API key rides no weakened connection).
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Danube's API (https://, or http:// to this machine) [default: https://api.danubeai.com].
    #[arg(long, value_name = "URL", env = "DANUBE_API_URL")]
    pub api_url: Option<String>,
    #[command(flatten)]
    pub api_cacert: ApiCacertArg,
    /// Refused: Danube's API is never trusted without checks (kept so that the refusal says why).
    #[arg(long, hide = true)]
    pub insecure: bool,
    /// Refused: use --api-cacert for Danube's API (kept so that the refusal says so).
    #[arg(long, hide = true, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}

/// `--api-cacert`: a CA that Danube's API (a private or test one) may be
/// signed by, besides the web's roots.
#[derive(Debug, Clone, Args)]
pub struct ApiCacertArg {
    /// Trust the CA certificate(s) in this PEM file for Danube's API too, besides the web's roots (for a private or test API; there is no way to switch its checks off).
    #[arg(long, value_name = "PEM")]
    pub api_cacert: Option<PathBuf>,
}

impl ApiCacertArg {
    /// The API's own trust.
    pub fn trust(&self) -> Result<crate::http::Trust, UsageError> {
        crate::http::Trust::load(self.api_cacert.as_deref(), false)
            .map_err(|err| UsageError::new(format!("--api-cacert: {err}")))
    }
}

impl ApiArgs {
    /// `--api-url`, `DANUBE_API_URL`, or Danube's own.
    pub fn url(&self) -> &str {
        self.api_url
            .as_deref()
            .unwrap_or(crate::danube::api::DEFAULT_API_URL)
    }

    /// The API's trust; `--insecure` and `--cacert`, which are for
    /// receivers, are refused here with what to use instead.
    pub fn trust(&self) -> Result<crate::http::Trust, UsageError> {
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

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read an API key from standard input instead of the browser flow.
    #[arg(long)]
    pub with_key: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List the webhooks: a table, or Danube's JSON with --json.
    #[command(after_help = examples::WEBHOOKS_LIST)]
    List(WebhooksListArgs),
    /// Create a webhook; its signing secret is shown once (--save keeps it).
    #[command(after_help = examples::WEBHOOKS_CREATE)]
    Create(WebhooksCreateArgs),
    /// Change a webhook: only the fields given are sent.
    #[command(after_help = examples::WEBHOOKS_UPDATE)]
    Update(WebhooksUpdateArgs),
    /// Delete a webhook (and its saved secret, if --save kept one).
    #[command(after_help = examples::WEBHOOKS_DELETE)]
    Delete(WebhooksDeleteArgs),
}

#[derive(Debug, Args)]
pub struct WebhooksListArgs {
    /// Danube's JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct WebhooksCreateArgs {
    /// Where Danube posts the deliveries; it must start with https:// (a tunnel's URL, e.g. https://abc.ngrok.app/webhooks/danube). A local Danube (an http:// API such as `emulate`) applies its own rule: `emulate --allow-http` takes an http:// receiver.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// An event type to deliver; repeat for more. Without --event, all five: tool.execution.completed, tool.execution.failed, workflow.completed, workflow.failed, agent.spend.limit_approaching. A type not among these is sent with a warning (Danube may have added it).
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// A note for people reading the webhook list.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Keep the webhook's signing secret in $XDG_CONFIG_HOME/danube-hooks/webhooks.json (mode 0600) for listen and deliveries.
    #[arg(long)]
    pub save: bool,
    /// Print Danube's JSON answer (with the secret) instead of the summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct WebhooksUpdateArgs {
    /// The webhook's id (see `webhooks list`).
    #[arg(value_name = "ID")]
    pub id: String,
    /// A new target URL; it must start with https:// (a local Danube, an http:// API such as `emulate`, applies its own rule).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The event types to deliver, replacing the current ones; repeat for more.
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// false pauses deliveries without deleting the webhook; true resumes them.
    #[arg(long, value_name = "true|false")]
    pub active: Option<bool>,
    /// A new note for people reading the webhook list.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Print Danube's JSON answer instead of the summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct WebhooksDeleteArgs {
    /// The webhook's id (see `webhooks list`).
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// The webhook whose deliveries to show [default: the one `listen --register` made for this
    /// API, else the only one saved by `webhooks create --save`].
    #[arg(value_name = "WEBHOOK_ID")]
    pub webhook_id: Option<String>,
    /// How many of Danube's newest deliveries to read, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::facts::DELIVERIES_PAGE_MAX)))]
    pub limit: u32,
    /// One JSON object per row and line: danube, local, findings.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// How `https://` receivers are trusted (SPEC §12), as curl has it; never
/// Danube's API, whose trust is its own ([`ApiArgs`]).
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Trust the CA certificate(s) in this PEM file for https:// receivers, besides the web's roots; a server's own self-signed certificate in it is trusted as itself (as curl does). Never for Danube's API (--api-cacert).
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// Skip certificate checks for https:// receivers (a warning says so). Wins over --cacert. Never for Danube's API.
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// The trust these flags ask for; a `--cacert` that cannot be used is
    /// a usage error.
    pub fn trust(&self) -> Result<crate::http::Trust, UsageError> {
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
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1TB").is_err());
        assert_eq!(parse_size("1GiB"), Ok(1024 * 1024 * 1024));
        assert!(parse_size("2GiB").is_err());
        assert_eq!(parse_store_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_store_size("4GiB"), Ok(4 * 1024 * 1024 * 1024));
        assert!(parse_store_size("0").is_err());
        assert!(parse_store_size("2048GiB").is_err());
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
