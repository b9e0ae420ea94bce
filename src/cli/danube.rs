//! The arguments of the commands that talk to Danube's API: `login`,
//! `logout`, `webhooks`, `deliveries`.

use clap::{Args, Subcommand};

use super::parse::parse_age;
use super::{ApiArgs, SecretArgs, StoreArg, examples};

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Read an API key from standard input instead of the browser flow.
    #[arg(long)]
    pub(crate) with_key: bool,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
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
pub(crate) struct WebhooksListArgs {
    /// Danube's JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WebhooksCreateArgs {
    /// Where Danube posts the deliveries; it must start with https:// (a tunnel's URL, e.g. https://abc.ngrok.app/webhooks/danube). A local Danube (an http:// API such as `emulate`) applies its own rule: `emulate --allow-http` takes an http:// receiver.
    #[arg(long, value_name = "URL")]
    pub(crate) url: String,
    /// An event type to deliver; repeat for more. Without --event, all five: tool.execution.completed, tool.execution.failed, workflow.completed, workflow.failed, agent.spend.limit_approaching. A type not among these is sent with a warning (Danube may have added it).
    #[arg(long = "event", value_name = "EVENT")]
    pub(crate) events: Vec<String>,
    /// A note for people reading the webhook list.
    #[arg(long, value_name = "TEXT")]
    pub(crate) description: Option<String>,
    /// Keep the webhook's signing secret in $XDG_CONFIG_HOME/danube-hooks/webhooks.json (mode 0600) for listen and deliveries.
    #[arg(long)]
    pub(crate) save: bool,
    /// Print Danube's JSON answer (with the secret) instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WebhooksUpdateArgs {
    /// The webhook's id (see `webhooks list`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// A new target URL; it must start with https:// (a local Danube, an http:// API such as `emulate`, applies its own rule).
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// The event types to deliver, replacing the current ones; repeat for more.
    #[arg(long = "event", value_name = "EVENT")]
    pub(crate) events: Vec<String>,
    /// false pauses deliveries without deleting the webhook; true resumes them.
    #[arg(long, value_name = "true|false")]
    pub(crate) active: Option<bool>,
    /// A new note for people reading the webhook list.
    #[arg(long, value_name = "TEXT")]
    pub(crate) description: Option<String>,
    /// Print Danube's JSON answer instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WebhooksDeleteArgs {
    /// The webhook's id (see `webhooks list`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DeliveriesArgs {
    /// The webhook whose deliveries to show [default: the one `listen --register` made for this
    /// API, else the only one saved by `webhooks create --save`].
    #[arg(value_name = "WEBHOOK_ID")]
    pub(crate) webhook_id: Option<String>,
    /// How many of Danube's newest deliveries to read, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::facts::DELIVERIES_PAGE_MAX)))]
    pub(crate) limit: u32,
    /// One JSON object per row and line: danube, local, findings.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only the rows with a request here that matches the query (rows of deliveries that never
    /// arrived are left out).
    #[arg(long, value_name = "QUERY", allow_hyphen_values = true, long_help = super::inspect::query_help("Only the rows with a request in the store that matches the query: what arrived is filtered, not Danube's side, so the rows of deliveries that never arrived are left out."))]
    pub(crate) query: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) redeliver: RedeliverArgs,
}

/// `deliveries --redeliver`: what never arrived, sent again from Danube's
/// log, signed anew.
#[derive(Debug, Args)]
#[command(next_help_heading = "Redelivery (--redeliver)")]
pub(crate) struct RedeliverArgs {
    /// Send each delivery Danube made that never reached the listener or lost attempts (never_arrived, missing_attempts) again: its payload from Danube's log, signed anew with the webhook's saved secret, with the header X-Danube-Hooks-Redelivery-Of naming Danube's delivery id. A webhook whose secret is not saved (made outside danube-hooks) needs --secret or --secret-file (or DANUBE_WEBHOOK_SECRET); nothing is sent unsigned. The listener records it with redelivery_of (when its signature is valid), so a second run sends nothing twice and the table shows it as redelivered. Deliveries Danube still retries (pending) are left to Danube.
    #[arg(long, conflicts_with = "json")]
    pub(crate) redeliver: bool,
    /// Where to redeliver [default: the listener running on --store, at the address its own deliveries arrived on, on the path of the webhook's URL in Danube; refused (exit 2) when no listener runs on the store, and a redelivery it answers but does not record is a failure (exit 1)]. Only a danube-hooks listener on the same store records redeliveries: sent elsewhere, a second run sends them again.
    #[arg(long, value_name = "URL", requires = "redeliver")]
    pub(crate) to: Option<String>,
    /// Only deliveries Danube made in this time before now: 30m, 2h, 3d (at most 30d).
    #[arg(long, value_name = "DURATION", requires = "redeliver", value_parser = parse_age)]
    pub(crate) since: Option<chrono::TimeDelta>,
    // The webhook's secret when it is not saved: --secret or --secret-file
    // win over the saved one, DANUBE_WEBHOOK_SECRET does not.
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
}
