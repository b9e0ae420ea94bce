//! What a stranger on the tunnel can try, run as an attacker would run it:
//! over raw sockets, against the real binary, asserting what must not
//! happen (SPEC §9, issue 12). One binary, one module per kind of attack.

#[path = "../common/mod.rs"]
mod common;

mod bounded;
mod connections;
mod danube;
mod emulator;
mod export;
mod forensics;
mod key_echo;
mod review;
mod saved;
mod store;
mod targets;
