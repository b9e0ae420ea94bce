//! What the dashboard is told of its setup at start: where it listens,
//! the secrets, the store, the forward, who was asked to post here, and the
//! history's limits. Fixed but for the header rows that follow the public
//! side ([`App::apply_public`](super::app::App::apply_public)).

use std::path::PathBuf;

use chrono::FixedOffset;

/// Deliveries kept in memory: the newest this many.
pub const HISTORY_CAP: usize = 10_000;
/// Bytes of deliveries kept in memory (SPEC §9: every in-memory history
/// has a byte budget). Past it, the oldest deliveries keep their summary
/// and drop their body, which is read back from the store when shown; if
/// the summaries alone pass it, the oldest go. Kept by count alone, 10,000
/// bodies of 1 MiB take the dashboard to 1.66 GB.
pub const HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// What the dashboard shows about its own setup; fixed at start.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Where deliveries are received, e.g. `http://127.0.0.1:4000`.
    pub listen_url: String,
    /// The secrets' fingerprints (`whsec_…abcd`); empty when none is set.
    pub fingerprints: Vec<String>,
    /// The store file; `None` with `--no-store` or a shared store.
    pub store_path: Option<PathBuf>,
    /// The shared store's URL, without its password (`--store postgres://…`).
    pub shared_store: Option<String>,
    /// The `--forward-to` target, or its rules (`PATTERN=URL · …`), when set.
    pub forward_url: Option<String>,
    /// `listen --register`'s webhook (id → URL · secret fingerprint · what
    /// happens on exit): a header row when set; re-pointed, it changes.
    pub danube_webhook: Option<String>,
    /// The tunnel `listen --tunnel` runs (program, URL, pid, starts): a
    /// header row when set; it changes when the tunnel starts again.
    pub tunnel: Option<String>,
    /// Who was asked to post here, for the empty list's hint on how to
    /// get a first delivery.
    pub registered_with: RegisteredWith,
    /// Where warnings and errors go while the dashboard is up.
    pub log_path: PathBuf,
    /// False when `NO_COLOR` is set: no colours at all, only text and
    /// modifiers.
    pub color: bool,
    /// Times are shown at this offset (the local one, fixed at start, so a
    /// render depends on nothing but the state).
    pub utc_offset: FixedOffset,
    /// The most deliveries kept in memory.
    pub history_cap: usize,
    /// The most bytes of deliveries kept in memory ([`HISTORY_BYTES`]).
    pub history_bytes: usize,
    /// A viewer of a shared store (`dashboard`), with no listener of its
    /// own: `listen_url` is the store's URL, and there is no policy to set.
    pub viewer: bool,
}

impl AppConfig {
    /// Records are kept somewhere a body or a missed delivery can be read
    /// back from: a file, or the shared store.
    pub(crate) fn keeps_records(&self) -> bool {
        self.store_path.is_some() || self.shared_store.is_some()
    }
}

/// Where `listen` registered the webhook that posts to this listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RegisteredWith {
    /// Nothing was registered: deliveries come from wherever the developer
    /// points a webhook (through a tunnel) or `trigger --to`.
    #[default]
    Nothing,
    /// Danube itself: a real event (a workflow or a tool run) delivers
    /// here, signed with a secret Danube made.
    Danube,
    /// The emulator (`danube-hooks emulate`) with its API at `api_url`:
    /// `trigger EVENT --emulator API_URL` has it deliver.
    Emulator { api_url: String },
}

impl RegisteredWith {
    /// Registered through the API at `origin` (`scheme://authority`): one
    /// on this machine is taken for the emulator, as Danube is never there.
    pub(crate) fn api(origin: &str) -> RegisteredWith {
        if crate::danube::api::is_local_danube(origin) {
            RegisteredWith::Emulator {
                api_url: origin.to_owned(),
            }
        } else {
            RegisteredWith::Danube
        }
    }
}
