//! Danube's side of the conversation (SPEC §11): its REST client
//! ([`api`]), the credentials `login` keeps ([`credentials`]) and the
//! webhooks danube-hooks created with their secrets ([`saved_webhooks`]).

pub mod api;
pub mod credentials;
pub mod poller;
pub mod reconcile;
pub mod saved_webhooks;
