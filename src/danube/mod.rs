//! Danube's side of the conversation (SPEC §11): its REST client
//! ([`api`]) and the credentials `login` keeps ([`credentials`]).

pub mod api;
pub mod credentials;
