//! What a stranger on the tunnel can try, run as an attacker would run it:
//! over raw sockets, against the real binary, asserting what must not
//! happen (SPEC §9). One module per kind of attack.

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
