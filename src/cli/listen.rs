//! `listen`'s arguments, with its tunnel and its Danube webhook.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{parse_duration, parse_event, parse_max_age, parse_size, parse_store_size};
use super::{ApiCacertArg, ScreenArgs, SecretArgs, TlsArgs};
use crate::danube::tunnel::program::Program;

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each bool is one documented flag
#[command(group(clap::ArgGroup::new(WEBHOOK_SETUP).args(["register", "tunnel"]).multiple(true)))]
pub(crate) struct ListenArgs {
    /// Port to listen on; 0 picks a free one (the banner says which).
    #[arg(short = 'p', long, env = "DANUBE_HOOKS_PORT", default_value_t = 4000)]
    pub(crate) port: u16,
    /// Address to bind. Anything but loopback is reachable from the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: std::net::IpAddr,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// How far t may be from now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::facts::TOLERANCE_S)]
    pub(crate) tolerance: u64,
    /// Response policy rule, e.g. 500,500,forward or 'workflow.*=timeout' or 12s+200; repeatable.
    #[arg(long = "respond", value_name = "RULE")]
    pub(crate) respond: Vec<String>,
    /// Answer 401 to any delivery whose signature is not valid, as a correct receiver would.
    #[arg(long)]
    pub(crate) reject_invalid: bool,
    /// Forward each delivery to your own receiver, e.g. http://localhost:3000/webhooks/danube
    /// (https:// too). Repeatable, with an event pattern as in --respond: 'tool.*=http://…'; the
    /// first rule whose pattern matches the event decides, one without a pattern is the default,
    /// and a delivery no rule matches is answered as without --forward-to. A pattern holds no / or :.
    /// A target that is this listener itself is refused; a copy that comes back through another
    /// hop (a tunnel, a proxy) is answered 508 Loop Detected and not sent on again.
    #[arg(long, value_name = "[PATTERN=]URL")]
    pub(crate) forward_to: Vec<String>,
    /// Also send a copy of each delivery here; its answer is recorded and shown, never sent back
    /// to Danube, and never waited for. Repeatable. Not this listener itself (as with
    /// --forward-to, a loop is refused at start or cut with 508).
    #[arg(long, value_name = "URL")]
    pub(crate) mirror_to: Vec<String>,
    /// How long the receiver (or a mirror) may take before the sender gets 504 (the default is Danube's deadline).
    #[arg(long, value_name = "DURATION", default_value = crate::facts::DEADLINE_ARG, value_parser = parse_duration)]
    pub(crate) forward_timeout: Duration,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    /// Group attempts by this delivery-id header instead of by the body.
    #[arg(long, value_name = "NAME")]
    pub(crate) group_header: Option<String>,
    /// The delivery log: a file [default: $DANUBE_HOOKS_STORE, else
    /// $XDG_DATA_HOME/danube-hooks/deliveries.jsonl], or postgres://USER@HOST[:PORT]/DATABASE to
    /// share it with a team (the password from PGPASSWORD, never on the command line; or the
    /// whole URL in DANUBE_HOOKS_STORE).
    #[arg(long, value_name = "PATH|URL", conflicts_with = "no_store")]
    pub(crate) store: Option<PathBuf>,
    /// With a PostgreSQL store: this listener's name on each of its rows, so a team tells whose
    /// delivery it was [default: $USER@hostname]. Up to 64 printable characters.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// With a PostgreSQL store: delete rows older than this, in the background (at start, then
    /// every minute), e.g. 7d, 12h, 2w.
    #[arg(long, value_name = "AGE", value_parser = parse_max_age)]
    pub(crate) store_max_age: Option<chrono::TimeDelta>,
    /// Keep deliveries in memory only.
    #[arg(long)]
    pub(crate) no_store: bool,
    /// fsync each record before its answer is sent (slower, loses nothing on power loss).
    #[arg(long)]
    pub(crate) durable: bool,
    /// Rotate the store (deliveries.jsonl → deliveries.1.jsonl → …) before it passes this size. Accepts 10MiB, 1GiB.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_store_size)]
    pub(crate) store_max: u64,
    /// Rotated store files kept; a rotation deletes the oldest beyond them (0 keeps none).
    #[arg(long, value_name = "N", default_value_t = crate::store::DEFAULT_KEEP, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(0..=1000), usize::from))]
    pub(crate) store_keep: usize,
    /// Largest body accepted; larger ones get 413. Accepts 1048576, 512KiB, 1MiB.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub(crate) max_body: usize,
    /// Memory that bodies still arriving may hold together, past the first 64 KiB of
    /// each; a body that finds it full gets 503. Accepts 134217728, 64MiB, 1GiB.
    #[arg(long, value_name = "BYTES", default_value = "128MiB", value_parser = parse_size)]
    pub(crate) max_body_memory: usize,
    /// Open connections at once; at the cap, the one stalled longest (silent, idle, or a
    /// request trickling in) is closed to admit a new one.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) max_connections: u32,
    /// Time a client has to send a request head; also the keep-alive idle timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) idle_timeout: Duration,
    /// Time a new connection has to send its first byte (at most --idle-timeout); at the
    /// connection cap, also how long a body that falls behind may go on before it gives way.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub(crate) first_byte_timeout: Duration,
    /// Time a client has to send a body.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) body_timeout: Duration,
    #[command(flatten)]
    pub(crate) screen: ScreenArgs,
    #[command(flatten)]
    pub(crate) tunnel: TunnelArgs,
    #[command(flatten)]
    pub(crate) register: RegisterArgs,
}

/// `listen --tunnel`: the tunnel program started and kept running by the
/// listener, its URL proved and registered.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tunnel (--tunnel)")]
pub(crate) struct TunnelArgs {
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
    pub(crate) tunnel: Option<Program>,
    /// The tunnel program's executable [default: cloudflared or ngrok, found on PATH].
    #[arg(long, value_name = "PATH", requires = "tunnel")]
    pub(crate) tunnel_bin: Option<PathBuf>,
    /// How long the tunnel program may take to give its public URL.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, requires = "tunnel")]
    pub(crate) tunnel_timeout: Duration,
    /// Open the tunnel but register nothing with Danube (print the URL to paste).
    #[arg(long, requires = "tunnel", conflicts_with = "register")]
    pub(crate) no_register: bool,
    /// Register the URL without first proving that it reaches this listener (for networks that
    /// cannot reach their own tunnel).
    #[arg(long, requires = WEBHOOK_SETUP)]
    pub(crate) no_verify_url: bool,
}

/// The flags that set up a webhook's URL, `--register` or `--tunnel`:
/// what the flags of the webhook require one of.
const WEBHOOK_SETUP: &str = "webhook_setup";

/// `listen --register` and `--webhook`: the webhook in Danube, made or
/// reused for the tunnel, and Danube's side of it in the dashboard.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Danube webhook (--register, --webhook)")]
#[allow(clippy::struct_excessive_bools)] // each bool is one documented flag
pub(crate) struct RegisterArgs {
    /// Create (or reuse) a Danube webhook for the tunnel's public URL and verify with its secret; paused on exit.
    #[arg(long)]
    pub(crate) register: bool,
    /// The tunnel's public https:// URL [default: found from a running ngrok, else cloudflared].
    #[arg(long, value_name = "URL", requires = "register")]
    pub(crate) public_url: Option<String>,
    /// The ngrok agent's API, asked for the tunnel to this port [default: http://127.0.0.1:4040].
    #[arg(long, value_name = "URL", requires = "register")]
    pub(crate) ngrok_api: Option<String>,
    /// cloudflared's metrics address, asked for its quick tunnel [default: 127.0.0.1:20241 to 20245].
    #[arg(long, value_name = "HOST:PORT", requires = "register")]
    pub(crate) cloudflared_metrics: Option<String>,
    /// The path of the webhook URL on the tunnel [default: /webhooks/danube].
    #[arg(long, value_name = "PATH", requires = WEBHOOK_SETUP)]
    pub(crate) path: Option<String>,
    /// An event type the webhook gets; repeatable [default: all five; a reused webhook keeps its own].
    #[arg(long = "event", value_name = "EVENT", requires = WEBHOOK_SETUP, value_parser = parse_event)]
    pub(crate) events: Vec<String>,
    /// Leave the webhook active on exit instead of pausing it.
    #[arg(long, requires = WEBHOOK_SETUP, conflicts_with_all = ["unregister", "no_register"])]
    pub(crate) keep_active: bool,
    /// Delete the webhook on exit (and forget its secret) instead of pausing it.
    #[arg(long, requires = WEBHOOK_SETUP, conflicts_with = "no_register")]
    pub(crate) unregister: bool,
    /// Once the webhook is active again, redeliver in the background what Danube sent since this
    /// listener last stopped (after the store's newest record) that never arrived or lost
    /// attempts, from Danube's log, signed with the webhook's secret (as `deliveries
    /// --redeliver`). Progress on stderr when it is a terminal and the output headless.
    #[arg(long, requires = WEBHOOK_SETUP, conflicts_with_all = ["no_store", "no_register"])]
    pub(crate) catch_up: bool,
    /// Show Danube's side in the dashboard: poll this webhook's delivery log every 5 s (and on
    /// D) with the key of `login` or DANUBE_API_KEY, and mark each delivery with what Danube
    /// recorded. With --register, the registered webhook is shown without it.
    #[arg(long, value_name = "ID", conflicts_with = "register")]
    pub(crate) webhook: Option<String>,
    /// Danube's API, for --register and --webhook (https://, or http:// to this machine) [default: https://api.danubeai.com].
    #[arg(long, value_name = "URL", env = "DANUBE_API_URL")]
    pub(crate) api_url: Option<String>,
    /// How long one request to Danube's API may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, requires = WEBHOOK_SETUP)]
    pub(crate) api_timeout: Duration,
    /// Danube's API is trusted by the web's roots and this alone: --cacert and --insecure are for
    /// --forward-to, --mirror-to, replays and the tunnel's URL, never for the API.
    #[command(flatten)]
    pub(crate) api_cacert: ApiCacertArg,
}

impl RegisterArgs {
    /// `--api-url`, `DANUBE_API_URL`, or Danube's own.
    pub(crate) fn api_url(&self) -> &str {
        self.api_url
            .as_deref()
            .unwrap_or(crate::danube::api::DEFAULT_API_URL)
    }
}
