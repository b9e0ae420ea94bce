//! Danube's side of the conversation (SPEC §11): its REST client
//! ([`api`]), the credentials `login` keeps ([`credentials`]) and the
//! webhooks danube-hooks created with their secrets ([`saved_webhooks`]),
//! the tunnel's public URL ([`tunnel`]), `listen --register`
//! ([`register`]), Danube's delivery log joined with the store
//! ([`reconcile`], pure) and the dashboard's poll of it ([`poller`]); a
//! credential echoed in a server's text is hidden by `scrub` (pure).

pub mod api;
pub mod credentials;
pub mod poller;
pub mod reconcile;
pub mod register;
pub mod saved_webhooks;
mod scrub;
pub mod tunnel;
