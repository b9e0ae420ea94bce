//! The one outbound client, `http://` and `https://` alike (SPEC §12), and
//! URL building and checking. Everything that reaches the network sends
//! through here: Danube's retries (`crate::sender`: trigger, check, replay,
//! the emulator's deliveries, the dashboard's replays), forwarding, the
//! Danube API and tunnel discovery. Its rooms:
//!
//! - `client`: the hyper client, and one exchange read within a bound;
//! - `tls`: which servers it believes (the web's roots, `--cacert`,
//!   `--insecure`), and a TLS failure told in one line;
//! - `url`: URLs checked, and built from parts, never joined as text;
//! - `headers`: which headers travel on (hop-by-hop ones stay behind);
//! - `message`: a request to send exactly, its answer, why none came;
//! - `send`: [`Sender`], one request within a deadline, failures by kind.

mod client;
mod headers;
mod message;
mod send;
mod tls;
mod url;

pub(crate) use client::{Client, ExchangeError, exchange};
pub(crate) use headers::{EndToEnd, headers_to_send, is_end_to_end};
// `pub` where a type is still named in a signature another module exports.
#[cfg(test)]
pub(crate) use message::Answer;
pub(crate) use message::Outgoing;
pub(crate) use message::{Attempt, SendError};
pub(crate) use send::MAX_ANSWER_BODY;
pub(crate) use send::Sender;
pub(crate) use tls::CaError;
pub(crate) use tls::Trust;
pub(crate) use tls::tls_problem;
pub(crate) use url::{check_url, origin, reachable_url, url_at, url_on};
