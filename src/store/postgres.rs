//! The shared store (SPEC §14, README "A shared history for a team"): the
//! delivery log in PostgreSQL, for a team that shares a staging tunnel.
//!
//! - [`target`]: the `postgres://` URL, where its password comes from (never
//!   the command line), TLS, and how it is shown (never with the password);
//! - [`connect`]: one connection, with TLS by rustls as the URL asks;
//! - [`pgpass`]: the password file, read as libpq reads it;
//! - [`read`]: the rows, for the store's readers, whatever thread calls them;
//! - [`schema`]: the versioned migrations, and the refusal of a schema newer
//!   than this binary knows;
//! - [`writer`]: `listen`'s rows, by group commit behind a bounded queue,
//!   answered only once committed; reconnects with backoff;
//! - [`retention`]: `--store-max-age`, old rows deleted in the background;
//! - [`late`]: a mirror's answer that came after its row, folded into it;
//! - [`live`]: `dashboard`'s live feed: `LISTEN`, each committed batch read
//!   and announced once, a lost connection made good.

pub(crate) mod connect;
pub(crate) mod late;
pub(crate) mod live;
mod pgpass;
pub(crate) mod read;
pub(crate) mod retention;
pub(crate) mod schema;
pub(crate) mod target;
pub(crate) mod writer;

pub(crate) use connect::{PgError, connect};
pub(crate) use target::Target;
pub(crate) use writer::{Config as WriterConfig, MOST_IN_FLIGHT, Writer};

/// Where a reader that fell behind a listener's announcements reads its
/// store again from, above the last id it showed. On a shared store the
/// listener's batches in flight commit in either order, so a row up to
/// [`MOST_IN_FLIGHT`] below that id may have been announced after it, in
/// what was missed: those are read again (the reader takes each once). A
/// file's ids only grow.
pub(crate) fn resync_after(last_id: u64, shared: bool) -> u64 {
    if shared {
        last_id.saturating_sub(MOST_IN_FLIGHT)
    } else {
        last_id
    }
}
