//! Danube's side of the conversation (SPEC §11): its REST client
//! ([`api`]), the credentials `login` keeps ([`credentials`]) and the
//! webhooks danube-hooks created with their secrets ([`saved_webhooks`]),
//! the tunnel's public URL ([`tunnel`]) and `listen --register`
//! ([`register`]).

pub mod api;
pub mod credentials;
pub mod register;
pub mod saved_webhooks;
pub mod tunnel;
