//! The signing secret: its key bytes, the fingerprint that stands for it in
//! every log line and verdict, and the HMAC-SHA256 digest it keys.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of every Danube signing secret.
pub(super) const SECRET_PREFIX: &str = "whsec_";
/// Length of a SHA-256 digest in bytes. Anything else never verifies.
pub(super) const DIGEST_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A signing secret. Its `Debug` and `Display` show only the fingerprint, so
/// it cannot leak through a log line or an error message.
#[derive(Clone)]
pub struct Secret {
    pub(super) text: String,
    /// Worked out once: every verdict names it, two or three times.
    pub(super) fingerprint: String,
    /// HMAC-SHA256 keyed with the secret, cloned for each digest: keying
    /// hashes two blocks, a tenth of the work for a 1 KiB body, and the
    /// listener would otherwise do it for every request.
    keyed: HmacSha256,
}

/// Secrets are the same when their text is.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        let text = secret.into();
        let fingerprint = fingerprint_of(&text);
        let keyed = keyed_hmac(text.as_bytes());
        Self {
            text,
            fingerprint,
            keyed,
        }
    }

    /// [`digest`] with this secret as the key.
    pub(crate) fn digest(&self, t: &str, body: &[u8]) -> [u8; DIGEST_LEN] {
        finish_hmac(self.keyed.clone(), &[t.as_bytes(), b".", body])
    }

    /// The key bytes exactly as Danube uses them: the whole string.
    pub(super) fn key(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// Whether it lacks the `whsec_` that every secret Danube shows starts
    /// with: Danube keys the HMAC with the whole string, so such a secret
    /// never verifies a real delivery.
    pub(crate) fn lacks_prefix(&self) -> bool {
        !self.text.starts_with(SECRET_PREFIX)
    }

    /// `whsec_…abcd`: the prefix and the last 4 characters, no more. A short
    /// secret shows no characters at all, since 4 of 8 would give half away.
    pub(crate) fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

fn fingerprint_of(secret: &str) -> String {
    let (prefix, rest) = match secret.strip_prefix(SECRET_PREFIX) {
        Some(rest) => (SECRET_PREFIX, rest),
        None => ("", secret),
    };
    let chars: Vec<char> = rest.chars().collect();
    if chars.len() < 12 {
        return format!("{prefix}…({} chars)", chars.len());
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    // A secret can come from Danube's answer (`--register`, `webhooks
    // create`): its tail is escaped like any text from the network.
    format!("{prefix}…{}", crate::display::escape_line(&tail))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

/// HMAC-SHA256 of `parts`, one after the other, keyed with `key`.
pub(super) fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    finish_hmac(keyed_hmac(key), parts)
}

fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn finish_hmac(mut mac: HmacSha256, parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The digest Danube computes for `t` and `body`.
pub(super) fn digest(key: &[u8], t: &str, body: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_parts(key, &[t.as_bytes(), b".", body])
}

/// Constant-time: every candidate is compared in full, whatever matched first.
pub(super) fn any_digest_matches(
    candidates: &[[u8; DIGEST_LEN]],
    expected: &[u8; DIGEST_LEN],
) -> bool {
    let word = |digest: &[u8; DIGEST_LEN], at: usize| {
        u64::from_ne_bytes(digest[at..at + 8].try_into().expect("eight bytes"))
    };
    candidates
        .iter()
        .fold(subtle::Choice::from(0), |found, candidate| {
            let differ = (0..DIGEST_LEN).step_by(8).fold(0, |differ, at| {
                differ | (word(candidate, at) ^ word(expected, at))
            });
            found | differ.ct_eq(&0)
        })
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::tests::{BODY, secret};

    #[test]
    fn a_secrets_keyed_digest_is_the_plain_hmac() {
        // One key shorter than SHA-256's 64-byte block, one longer (hashed
        // first by HMAC), one empty.
        let long = format!("whsec_{}", "k".repeat(100));
        for text in ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", long.as_str(), ""] {
            let secret = Secret::new(text);
            for (t, body) in [("1750000000", BODY), ("", b"".as_slice())] {
                assert_eq!(secret.digest(t, body), digest(text.as_bytes(), t, body));
                // Cloning the keyed state must not carry one digest into the next.
                assert_eq!(secret.digest(t, body), digest(text.as_bytes(), t, body));
            }
        }
    }

    #[test]
    fn fingerprint_shows_prefix_and_last_four_only() {
        assert_eq!(secret().fingerprint(), "whsec_…LaSw");
        assert_eq!(Secret::new("plainsecretvalue1234").fingerprint(), "…1234");
        assert_eq!(Secret::new("whsec_short").fingerprint(), "whsec_…(5 chars)");
        assert_eq!(format!("{:?}", secret()), "Secret(whsec_…LaSw)");
    }
}
