//! Danube's `X-Danube-Signature`: sign, parse, verify, and explain failures.
//!
//! Pure: no clock and no I/O. The caller passes `now`, so every verdict can be
//! reproduced in a test. The scheme (SPEC §1): the header is
//! `t=<unix seconds>,sha256=<hex>`, where the digest is HMAC-SHA256 keyed with
//! the whole secret string (`whsec_…` included) over `<t>.<raw body>`.
//!
//! When a digest does not match, [`verify()`] tries the ways a sender or a
//! proxy commonly gets it wrong (SPEC §6) and names the one that matches, so
//! a developer learns *why* and not only *that*.
//!
//! Its rooms, each importing only those listed before it:
//! - `secret`: the signing secret, the fingerprint that stands for it, and
//!   the digest it keys;
//! - `header`: the header's text, built by [`sign`] and parsed, every fault
//!   and quirk named;
//! - `forensics`: what explains a mismatch, within a `ForensicsBudget`;
//! - `verify`: the [`Verdict`] and its [`SignatureCheck`], a mismatch left
//!   for the caller to explain when it chooses (`verify_unexplained`).

mod forensics;
mod header;
mod secret;
mod verify;

pub(crate) use forensics::{ForensicsBudget, content_length_hint};
pub use header::sign;
pub(crate) use header::{HEADER_NAME, ParsedHeader};
pub use secret::Secret;
pub(crate) use verify::{Checked, Mismatch, repeated_header, verify_unexplained};
pub use verify::{SignatureCheck, Verdict, verify};

#[cfg(test)]
pub(crate) mod tests;
