//! Fixtures the signature's tests share: a secret, a body, a clock, and
//! the deepest JSON a hostile sender might send.

use super::secret::digest;
use super::{Secret, SignatureCheck, verify};

pub(crate) const NOW: i64 = 1_750_000_000;
pub(crate) const BODY: &[u8] = br#"{"event":"tool.execution.completed","timestamp":"2025-06-15T15:06:40.000000Z","data":{"tool_id":"abc-123","url":"https://example.com/x","name":"caf\u00e9 \u00e9"}}"#;

pub(crate) fn secret() -> Secret {
    // base64 of 24 bytes after the prefix, so the Standard Webhooks case is exercised.
    Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
}

pub(crate) fn header_with(key: &[u8], t: &str, body: &[u8]) -> String {
    format!("t={t},sha256={}", hex::encode(digest(key, t, body)))
}

pub(crate) fn check(header: &str, body: &[u8]) -> SignatureCheck {
    verify(
        &[secret()],
        Some(header),
        body,
        NOW,
        crate::facts::TOLERANCE_S,
    )
}
