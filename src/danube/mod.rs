//! Danube's side of the conversation (SPEC §11): the wire types of its API
//! and its delivery record ([`model`], pure), its REST client ([`api`]),
//! the credentials requests are made as and the key `login` keeps
//! ([`credentials`]) and the webhooks danube-hooks created with their
//! secrets ([`saved_webhooks`]), the tunnel's public URL ([`tunnel`]),
//! `listen --register` ([`register`]), Danube's delivery log joined with
//! the store ([`reconcile`], pure) and the dashboard's poll of it
//! ([`poller`]); a credential's fingerprint, and the credential hidden
//! wherever a server's text echoes it, are `scrub`'s (pure).

pub(crate) mod api;
pub(crate) mod credentials;
pub(crate) mod model;
pub(crate) mod poller;
pub(crate) mod reconcile;
pub(crate) mod register;
pub(crate) mod saved_webhooks;
pub(crate) mod scrub;
pub(crate) mod tunnel;
