//! danube-hooks: receive, verify, break and replay Danube webhook deliveries.
//!
//! The map of the crate, and the one place that wires its parts together:
//!
//! - [`signature`]: sign, parse, verify and explain `X-Danube-Signature`; pure,
//!   in rooms for the secret, the header, the verdict and the forensics.
//! - [`delivery`]: the delivery record, grouping keys, and what a record costs in
//!   memory (`delivery::memory`, for every byte budget that holds records); pure data.
//! - [`events`]: Danube's event types and envelopes from `fixtures/events/`.
//! - [`json_style`]: JSON written the ways common stacks write it (forensics),
//!   and re-indented at a bounded cost for `show` and the dashboard.
//! - [`curl`]: a curl command that reproduces a stored request byte for byte.
//! - [`display`]: untrusted bytes to terminal-safe text.
//! - `fsutil`: private files (0700 folder, 0600 files) replaced whole and
//!   changed under a lock on their folder; the warning when one is open to others.
//! - [`http`]: the one outbound client, http and https (rustls, ring, the web's
//!   roots), `--cacert` and `--insecure`, and the one-line account of a TLS
//!   failure; URLs checked and built from parts; the headers that travel on;
//!   `http::Sender`, one request within a deadline, each failure by kind.
//! - [`danube`]: Danube's side (SPEC §11): `danube::model`, the wire types
//!   and the one delivery record (pure); `danube::api`, the REST client
//!   (base URL, credential headers, retries, the endpoints), its errors in
//!   `danube::api::error` (both error shapes as one line that says what to
//!   do); `danube::credentials`, who requests are made as and the key
//!   `login` keeps (0700 folder, 0600 file), only ever shown as a prefix;
//!   `danube::saved_webhooks`, the secrets Danube showed once,
//!   `danube::tunnel`, the tunnel's public URL (ngrok's agent API,
//!   cloudflared's quick tunnel), `danube::register`, `listen
//!   --register`'s webhook: reused or created, paused on exit;
//!   `danube::reconcile`, Danube's delivery log joined with the store (pure);
//!   `danube::poller`, the dashboard's poll of that log (newest answer only).
//! - [`emulator`]: a local Danube (SPEC §13): `emulator::api`, its webhook
//!   API and device flow over hyper, each request's body and fields read and
//!   checked by `emulator::input`; `emulator::state`, its webhooks and
//!   delivery records in a state file a crash cannot tear, within the byte
//!   budget of `emulator::records`, payloads kept as text (`emulator::payload`);
//!   `emulator::deliver`, an event's deliveries, signed, retried, logged, bounded;
//!   `emulator::answer`, lists written as they are read;
//!   `emulator::serve`, its connections under a cap ([`connections`]
//!   decides which give way); `emulator::guard`,
//!   which requests come from this machine's programs, not a web page.
//! - [`sender`]: what Danube does — sign, post, retry, through [`http`]'s
//!   client; Danube's record of a delivery it made.
//! - [`resend`]: a stored delivery sent again as a copy: the edits of
//!   `replay --set/--data-file/--header/--drop-header`, the two headers that
//!   mark a copy (the listener records what they claim), and what a copy
//!   changed against its original (`resend::diff`); pure.
//! - [`server`]: the hyper listener, its limits, forwarding and one request's
//!   path (`server::request`); `server::routes` which receiver a delivery is
//!   forwarded to (`--forward-to [PATTERN=]URL`, the patterns of `policy`),
//!   `server::mirror` the copies for `--mirror-to`, never waited for;
//!   `server::loops` a target that is the listener refused, a copy that
//!   came back answered 508; `server::head` the request head as recorded,
//!   `server::body` its body read within the limits, `server::answer` how
//!   an answer leaves, `server::recall` attempts and replays remembered;
//!   `server::body_memory` is the memory that bodies still arriving share.
//! - [`connections`]: each open connection's state, so that at the cap (the
//!   listener's and the emulator's) the one stalled longest gives way.
//! - [`headless`]: human lines and JSON lines on stdout.
//! - [`rare_wake`]: the waker for a task's rarely firing futures (a stop,
//!   a timer, an eviction), polled only when one of them woke it: the
//!   connection task and the printer wake once or more a delivery.
//! - [`tui`]: the dashboard: its event loop; the terminal lent to it and
//!   always given back (Drop guard, panic hook) in `tui::terminal`, the log
//!   file that stands in for stderr meanwhile in `tui::log_file`; state and
//!   keys in `tui::app` (its setup in `tui::config`, the `/` filter's keys in
//!   `tui::app::filtering`, a row committed out of id order put in its
//!   place by `tui::app::late`), drawing in `tui::view` (a file
//!   per pane), the history within its byte budget in `tui::history`, the
//!   policy picker in `tui::picker`, its text fields in `tui::line_input`,
//!   Danube's side in `tui::danube_side`, the `/` filter in `tui::filter`,
//!   the deliveries in flight (pinned under the list) in `tui::in_flight`,
//!   `e`'s editor (the terminal lent and taken back) in `tui::editor`;
//!   the store's deliveries from before this start, read as it opens, in
//!   `tui::earlier`, and the starts among them (the list's dividers) in
//!   `tui::runs`.
//! - [`policy`]: the `--respond` grammar and the answer for an attempt; pure.
//! - `query`: the query language (SPEC §15) of `log`, `export`,
//!   `deliveries` and the dashboard's `/` filter: parsed with a caret
//!   under what is wrong, evaluated against one record, cheap terms first,
//!   and the bytes a store line must hold before it is parsed; pure.
//! - [`store`]: the JSON-lines delivery log, its handle `DeliveryStore` and
//!   the broadcast (records, and the deliveries in flight: `store::in_flight`,
//!   arrived and not yet answered); `store::batch` (one writer at a time: the appends take
//!   turns, batching each other's lines), `store::file` (open, lock,
//!   recovery, rotation, the id file, whole-line writes, what the fsync
//!   thread is asked), `store::syncer` (the fsync thread), `store::broadcast` (the announcements, within a
//!   byte budget), `store::readers` and `store::lines` (streaming readers
//!   over every kept file, or the shared store's rows, for the commands and
//!   the dashboard's resync; `store::location`, which of the two),
//!   `store::tail` (the latest records read from the end, within a count
//!   and a byte budget: the dashboard's history at start), `store::starts`
//!   (the side file of the listener's starts on the store); `store::postgres`,
//!   the shared store's database (SPEC §14): the URL, its password
//!   (`pgpass`, libpq's password file) and its TLS, the connection, the
//!   versioned schema, `writer` (`listen`'s rows by group commit),
//!   `retention`, `late` (a mirror's late answer into its row), `read` (the
//!   rows for the store's readers, paged by id on a private runtime, from
//!   any thread) and `live` (`dashboard`'s feed: `LISTEN`, each committed
//!   batch shown once); `store::amend`
//!   (a mirror's answer that came after its record: a line of its own,
//!   folded into the record by every reader).
//! - [`cli`]: clap types and their validation: the top level and the shared
//!   argument groups in `cli`, one file per command group (`cli::listen`,
//!   `cli::act`, `cli::inspect`, `cli::danube`, `cli::emulate`,
//!   `cli::generate`), the value parsers in `cli::parse`; `cli::examples`,
//!   the examples that end each command's `--help`.
//! - [`commands`]: one module per subcommand (`completions` and `man`
//!   generate from the clap definition at run time); each writes stdout
//!   through `commands::out`, where a reader gone away ends it quietly.
//!   `commands::deliveries::redeliver` sends again, from Danube's log, what
//!   never arrived (`deliveries --redeliver`, and `listen --catch-up`
//!   through `commands::listen::catch_up`); `commands::listen::earlier`,
//!   the attempt numbers `listen` reads back from its store to go on from;
//!   `commands::listen::banner`, what `listen` says as it starts;
//!   `commands::dashboard`, a team's shared store watched with no listener
//!   (its history in `commands::dashboard::history`).
//! - [`errors`]: the class of each of the crate's error types (SPEC §2:
//!   usage 2, Danube or the network 3, a local file 4), read from the chain
//!   for the binary's exit code; `errors::chain`, an error's causes as text
//!   (imports nothing, so any module may use it); `errors::wrap`, the
//!   commands' wrappers (a closed stdout, an error told whole).
//! - `test_support` (tests only): fixtures the unit tests share (a
//!   delivery, an arrival in flight, a nested body, the dashboard's setup);
//!   `test_servers` (tests only): loopback servers for the unit tests.

pub mod cli;
pub mod commands;
pub(crate) mod connections;
pub(crate) mod curl;
pub(crate) mod danube;
pub mod delivery;
pub mod display;
pub(crate) mod emulator;
pub mod errors;
pub(crate) mod events;
pub(crate) mod facts;
mod fsutil;
pub(crate) mod headless;
pub(crate) mod http;
pub(crate) mod json_style;
mod paths;
pub mod policy;
pub(crate) mod progress;
pub(crate) mod query;
pub(crate) mod random;
pub(crate) mod rare_wake;
pub(crate) mod resend;
pub(crate) mod sender;
pub(crate) mod server;
pub mod signature;
pub(crate) mod store;
#[cfg(test)]
mod test_servers;
#[cfg(test)]
mod test_support;
pub mod tui;

use cli::{Cli, Command};
use commands::Outcome;

/// Run one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Listen(args) => commands::listen::run(&args),
        Command::Sign(args) => commands::sign::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Trigger(args) => commands::trigger::run(&args),
        Command::Replay(args) => commands::replay::run(&args),
        Command::Dashboard(args) => commands::dashboard::run(&args),
        Command::Log(args) => commands::inspect::log(&args),
        Command::Show(args) => commands::inspect::show(&args),
        Command::Export(args) => commands::inspect::export(&args),
        Command::Check(args) => commands::check::run(&args),
        Command::Login(args) => commands::login::login(&args),
        Command::Logout(args) => commands::login::logout(&args),
        Command::Webhooks(command) => commands::webhooks::run(&command),
        Command::Deliveries(args) => commands::deliveries::run(&args),
        Command::Emulate(args) => commands::emulate::run(&args),
        Command::Completions(args) => commands::completions::run(&args),
        Command::Man(args) => commands::man::run(&args),
    }
}
