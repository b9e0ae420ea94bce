//! A local Danube (SPEC §13): `api`, its hyper service of SPEC §11's
//! webhook API; `state`, its webhooks and delivery records, persisted so a
//! crash cannot tear them; `deliver`, the deliveries of an event to the
//! webhooks registered with it, signed, retried and logged.

pub mod api;
pub mod deliver;
pub mod state;
