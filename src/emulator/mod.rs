//! A local Danube (SPEC §13): `api`, its hyper service of SPEC §11's
//! webhook API, and `answer`, its answers as bodies; `state`, its webhooks
//! and delivery records, persisted so a crash cannot tear them, `records`,
//! those records within their bounds, and `payload`, an event's payload as
//! the JSON text it is sent as; `deliver`, the deliveries of an event to the
//! webhooks registered with it, signed, retried and logged; `serve`, its
//! connections under a cap; `guard`, which requests are from this
//! machine's own programs rather than a web page; `input`, a request's
//! body and fields read and checked.

mod answer;
pub(crate) mod api;
pub(crate) mod deliver;
mod guard;
mod input;
pub(crate) mod payload;
pub(crate) mod records;
pub(crate) mod serve;
pub(crate) mod state;
