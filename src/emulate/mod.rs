//! A local Danube (SPEC §13): `deliver`, the deliveries of an event to the
//! webhooks registered with the emulator, signed, retried and logged.

pub mod deliver;
