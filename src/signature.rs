//! Danube's `X-Danube-Signature`: sign, parse, verify, and explain failures.
//!
//! Pure: no clock and no I/O. The caller passes `now`, so every verdict can be
//! reproduced in a test. The scheme (SPEC §1): the header is
//! `t=<unix seconds>,sha256=<hex>`, where the digest is HMAC-SHA256 keyed with
//! the whole secret string (`whsec_…` included) over `<t>.<raw body>`.
//!
//! When a digest does not match, [`verify`] tries the ways a sender or a
//! proxy commonly gets it wrong (SPEC §6) and names the one that matches, so
//! a developer learns *why* and not only *that*.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::json_style::{self, JsonStyle};

/// The header Danube signs with.
pub const HEADER_NAME: &str = "X-Danube-Signature";
/// The prefix of every Danube signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Danube's tolerance for `t`, in seconds (SPEC §1).
pub const DEFAULT_TOLERANCE_S: u64 = 300;
/// Length of a SHA-256 digest in bytes. Anything else never verifies.
const DIGEST_LEN: usize = 32;
/// Bodies up to this size also get the costlier combined forensics
/// (each key variant with each body variant). Larger bodies get single
/// alterations only, so a hostile sender cannot buy much CPU per request.
const COMBINED_FORENSICS_MAX_BODY: usize = 64 * 1024;
/// Timestamps above this are taken to be milliseconds (year 5138 in seconds).
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

type HmacSha256 = Hmac<Sha256>;

/// A signing secret. Its `Debug` and `Display` show only the fingerprint, so
/// it cannot leak through a log line or an error message.
#[derive(Clone)]
pub struct Secret {
    text: String,
    /// Worked out once: every verdict names it, two or three times.
    fingerprint: String,
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
    pub fn digest(&self, t: &str, body: &[u8]) -> [u8; DIGEST_LEN] {
        finish_hmac(self.keyed.clone(), &[t.as_bytes(), b".", body])
    }

    /// The key bytes exactly as Danube uses them: the whole string.
    pub fn key(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// Whether it lacks the `whsec_` that every secret Danube shows starts
    /// with: Danube keys the HMAC with the whole string, so such a secret
    /// never verifies a real delivery.
    pub fn lacks_prefix(&self) -> bool {
        !self.text.starts_with(SECRET_PREFIX)
    }

    /// `whsec_…abcd`: the prefix and the last 4 characters, no more. A short
    /// secret shows no characters at all, since 4 of 8 would give half away.
    pub fn fingerprint(&self) -> String {
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
fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
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
pub fn digest(key: &[u8], t: &str, body: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_parts(key, &[t.as_bytes(), b".", body])
}

/// The `X-Danube-Signature` value for `body` signed at `t`.
pub fn sign(secret: &Secret, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!("t={t},sha256={}", hex::encode(secret.digest(&t, body)))
}

/// What a header parse found wrong, each fault named (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderFault {
    #[error("the header is empty")]
    Empty,
    #[error("the header has no t= timestamp")]
    MissingTimestamp,
    #[error("the header has a v1= digest label (Stripe style); Danube labels its digest sha256=")]
    StripeLabel,
    #[error("the header has no sha256= digest")]
    MissingDigest,
    #[error("t is {0:?}, not a whole number of seconds")]
    NonNumericTimestamp(String),
    #[error("the header has t= more than once")]
    SeveralTimestamps,
    #[error("the sha256 digest is empty")]
    EmptyDigest,
    #[error("the sha256 digest has an odd number of hex characters ({0})")]
    OddLengthDigest(usize),
    #[error("the sha256 digest has a character that is not hex: {0:?}")]
    NonHexDigest(char),
    #[error("the sha256 digest is {0} bytes; HMAC-SHA256 gives 32 (64 hex characters)")]
    WrongDigestLength(usize),
    #[error("the part {0:?} is not of the form key=value")]
    NotKeyValue(String),
    #[error("the parts are separated by {0:?}; Danube separates them with \",\"")]
    WrongSeparator(char),
    /// Two headers, each shown escaped and cut to [`REPEATED_SHOWN`] characters.
    #[error("the request has two {HEADER_NAME} headers, {0:?} and {1:?}; Danube sends one")]
    Repeated(String, String),
}

/// Characters of each value a [`HeaderFault::Repeated`] shows: a whole
/// Danube header (about 80), and no more of a stranger's.
const REPEATED_SHOWN: usize = 100;

/// Things a parse tolerated but a strict receiver might not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderQuirk {
    /// Whitespace around the parts; Danube sends none.
    Spaces,
    /// Uppercase hex; Danube sends lowercase.
    UppercaseHex,
    /// More than one `sha256=` entry; valid if any matches.
    SeveralDigests(usize),
    /// A `v1=` entry beside `sha256=`; ignored.
    IgnoredStripeLabel,
    /// A key this tool does not know; ignored.
    UnknownKey(String),
}

impl HeaderQuirk {
    fn hint(&self) -> String {
        match self {
            Self::Spaces => {
                "the header has spaces around its parts; Danube sends none, and a strict \
                             parser that splits on \",\" and \"=\" would fail"
                    .into()
            }
            Self::UppercaseHex => {
                "the digest is uppercase hex; Danube sends lowercase, so a receiver \
                                   comparing hex strings would reject it"
                    .into()
            }
            Self::SeveralDigests(n) => format!(
                "the header carries {n} sha256= entries; it is valid if any one matches, so a \
                 receiver must try each"
            ),
            Self::IgnoredStripeLabel => {
                "the header has a v1= entry beside sha256=; the v1= entry is ignored".into()
            }
            Self::UnknownKey(key) => {
                format!("the header has an unknown part {key:?}; it is ignored")
            }
        }
    }
}

/// A parsed signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader {
    /// `t` exactly as written: the signed content uses these bytes.
    pub t_text: String,
    pub t: i64,
    /// Each `sha256=` entry, decoded; every one is exactly 32 bytes.
    pub digests: Vec<[u8; DIGEST_LEN]>,
    pub quirks: Vec<HeaderQuirk>,
}

/// Parse `t=<t>,sha256=<hex>[,sha256=<hex>…]`, naming the first fault.
pub fn parse_header(header: &str) -> Result<ParsedHeader, HeaderFault> {
    // Every delivery from Danube has the canonical shape, and the general
    // parse (splits, trims, a Vec of digest texts) cost about 4,000
    // instructions of a delivery; anything else takes the general path.
    if let Some(parsed) = parse_canonical(header) {
        return Ok(parsed);
    }
    parse_header_general(header)
}

/// Digits of `t` the canonical path takes: 18 cannot overflow an `i64`.
const CANONICAL_T_DIGITS: usize = 18;

/// The value of each lowercase hex digit; 0xff for every other byte.
const LOWER_HEX: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Exactly `t=<1 to 18 digits>,sha256=<64 lowercase hex>`, parsed to what
/// [`parse_header_general`] gives for it (no quirks); `None` for any other
/// header, even a valid one.
fn parse_canonical(header: &str) -> Option<ParsedHeader> {
    let rest = header.strip_prefix("t=")?;
    let comma = rest.bytes().position(|b| b == b',')?;
    let (t_text, rest) = (&rest[..comma], &rest[comma + 1..]);
    let hex = rest.strip_prefix("sha256=")?.as_bytes();
    if t_text.is_empty() || t_text.len() > CANONICAL_T_DIGITS || hex.len() != 2 * DIGEST_LEN {
        return None;
    }
    let mut t: i64 = 0;
    for b in t_text.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        t = t * 10 + i64::from(b - b'0');
    }
    let mut digest = [0u8; DIGEST_LEN];
    // Any byte that is not lowercase hex sets a high bit, checked once.
    let mut invalid = 0u8;
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (
            LOWER_HEX[usize::from(pair[0])],
            LOWER_HEX[usize::from(pair[1])],
        );
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    if invalid & 0xf0 != 0 {
        return None;
    }
    Some(ParsedHeader {
        t_text: t_text.to_string(),
        t,
        digests: vec![digest],
        quirks: Vec::new(),
    })
}

/// Any header: spaces, uppercase hex, several digests, unknown keys, and
/// every fault named.
fn parse_header_general(header: &str) -> Result<ParsedHeader, HeaderFault> {
    if header.trim().is_empty() {
        return Err(HeaderFault::Empty);
    }
    let mut quirks = Vec::new();
    let mut t_text: Option<&str> = None;
    let mut digest_texts: Vec<&str> = Vec::new();
    let mut saw_stripe_label = false;
    let mut saw_spaces = false;

    for raw_part in header.split(',') {
        let part = raw_part.trim();
        if part.len() != raw_part.len() {
            saw_spaces = true;
        }
        if part.is_empty() {
            continue;
        }
        let Some((raw_key, raw_value)) = part.split_once('=') else {
            return Err(HeaderFault::NotKeyValue(part.to_string()));
        };
        let (key, value) = (raw_key.trim(), raw_value.trim());
        if key.len() != raw_key.len() || value.len() != raw_value.len() {
            saw_spaces = true;
        }
        match key {
            "t" => {
                if t_text.replace(value).is_some() {
                    return Err(HeaderFault::SeveralTimestamps);
                }
            }
            "sha256" => digest_texts.push(value),
            "v1" => saw_stripe_label = true,
            other => quirks.push(HeaderQuirk::UnknownKey(other.to_string())),
        }
    }

    let t_text = t_text.ok_or(HeaderFault::MissingTimestamp)?;
    if digest_texts.is_empty() {
        if let Some(separator) = [';', ' ', '&'].into_iter().find(|c| t_text.contains(*c)) {
            return Err(HeaderFault::WrongSeparator(separator));
        }
        return Err(if saw_stripe_label {
            HeaderFault::StripeLabel
        } else {
            HeaderFault::MissingDigest
        });
    }
    if saw_stripe_label {
        quirks.push(HeaderQuirk::IgnoredStripeLabel);
    }
    let t = parse_timestamp(t_text)?;
    let mut digests = Vec::with_capacity(digest_texts.len());
    for text in &digest_texts {
        digests.push(decode_digest(text)?);
    }
    if digest_texts
        .iter()
        .any(|d| d.bytes().any(|b| b.is_ascii_uppercase()))
    {
        quirks.push(HeaderQuirk::UppercaseHex);
    }
    if digests.len() > 1 {
        quirks.push(HeaderQuirk::SeveralDigests(digests.len()));
    }
    if saw_spaces {
        quirks.insert(0, HeaderQuirk::Spaces);
    }
    Ok(ParsedHeader {
        t_text: t_text.to_string(),
        t,
        digests,
        quirks,
    })
}

fn parse_timestamp(text: &str) -> Result<i64, HeaderFault> {
    let fault = || HeaderFault::NonNumericTimestamp(text.to_string());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fault());
    }
    text.parse().map_err(|_| fault())
}

fn decode_digest(text: &str) -> Result<[u8; DIGEST_LEN], HeaderFault> {
    if text.is_empty() {
        return Err(HeaderFault::EmptyDigest);
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(HeaderFault::NonHexDigest(bad));
    }
    if text.len() % 2 == 1 {
        return Err(HeaderFault::OddLengthDigest(text.len()));
    }
    if text.len() != 2 * DIGEST_LEN {
        return Err(HeaderFault::WrongDigestLength(text.len() / 2));
    }
    // Straight into the array: this runs for every delivery.
    let mut digest = [0u8; DIGEST_LEN];
    hex::decode_to_slice(text, &mut digest)
        .map_err(|_| HeaderFault::OddLengthDigest(text.len()))?;
    Ok(digest)
}

/// The verdict on one delivery's signature (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Mismatch,
    Stale,
    Missing,
    Malformed,
    Unchecked,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Self::Valid,
        Self::Mismatch,
        Self::Stale,
        Self::Missing,
        Self::Malformed,
        Self::Unchecked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Mismatch => "mismatch",
            Self::Stale => "stale",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unchecked => "unchecked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The `signature` object of a delivery record (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCheck {
    pub verdict: Verdict,
    /// `t` from the header, when it parsed.
    pub timestamp: Option<i64>,
    /// `now − t` in seconds: positive is in the past.
    pub skew_s: Option<i64>,
    /// Fingerprint of the secret that matched.
    pub secret: Option<String>,
    /// One sentence.
    pub detail: String,
    pub hints: Vec<String>,
}

/// Verify `header` over `body` against any of `secrets` (rotation), at `now`.
///
/// A stale or future `t` is reported only once a secret matches: a digest
/// that matches nothing is a mismatch, whatever its age.
pub fn verify(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: u64,
) -> SignatureCheck {
    verify_parsing(secrets, header, body, now, tolerance_s).0
}

/// [`verify`], also handing back the header as parsed (when it parsed).
/// The listener calls [`verify_unexplained`] instead, to explain a
/// mismatch where and when it chooses.
///
/// A mismatch is explained within [`ForensicsBudget::DEFAULT`]'s sizes;
/// with no clock here, its time is not checked (see [`verify_unexplained`]
/// for a caller that has one).
fn verify_parsing(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: u64,
) -> (SignatureCheck, Option<ParsedHeader>) {
    match verify_unexplained(secrets, header, body, now, tolerance_s) {
        Checked::Done(check, parsed) => (check, parsed),
        Checked::Mismatch(mismatch) => {
            let (check, parsed) =
                mismatch.explain(secrets, body, &ForensicsBudget::DEFAULT, &mut || false);
            (check, Some(parsed))
        }
    }
}

/// A verdict, or a mismatch still to be explained.
#[derive(Debug)]
pub enum Checked {
    Done(SignatureCheck, Option<ParsedHeader>),
    Mismatch(Mismatch),
}

/// A mismatch whose forensics have not run yet: explaining one costs far
/// more than verifying, so [`verify_unexplained`] leaves the caller to
/// choose where and within what budget (the listener runs it off its
/// async workers, a few at a time).
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The verdict, detail and every hint but the explanation's.
    check: SignatureCheck,
    parsed: ParsedHeader,
    /// Where in `check.hints` the explanation's hints go.
    explain_at: usize,
}

impl Mismatch {
    pub fn parsed(&self) -> &ParsedHeader {
        &self.parsed
    }

    /// Try the known alterations within `budget`, asking `out_of_time`
    /// between them; a cut explanation says so in a hint.
    pub fn explain(
        self,
        secrets: &[Secret],
        body: &[u8],
        budget: &ForensicsBudget,
        out_of_time: &mut dyn FnMut() -> bool,
    ) -> (SignatureCheck, ParsedHeader) {
        let explanation = explain_mismatch(secrets, &self.parsed, body, budget, out_of_time);
        let mut hints = explanation.hints;
        if hints.is_empty() {
            hints.push(if explanation.cut.is_empty() {
                "no common alteration explains it: check that the secret is the signing \
                 secret shown for this webhook in Danube, and that you sign the raw body \
                 bytes, not a parsed and re-serialized copy"
                    .into()
            } else {
                "none of the alterations tried explains it: check that the secret is the \
                 signing secret shown for this webhook in Danube, and that you sign the raw \
                 body bytes"
                    .into()
            });
        }
        hints.extend(explanation.cut);
        Self::finish(self, hints)
    }

    /// Leave it unexplained; `why` is said in a hint.
    pub fn unexplained(self, why: &str) -> (SignatureCheck, ParsedHeader) {
        Self::finish(self, vec![format!("forensics skipped: {why}")])
    }

    fn finish(mut self, hints: Vec<String>) -> (SignatureCheck, ParsedHeader) {
        let at = self.explain_at.min(self.check.hints.len());
        self.check.hints.splice(at..at, hints);
        (self.check, self.parsed)
    }
}

/// What explaining one mismatch may cost, whatever the body: a stranger
/// on the tunnel chooses the body, and once a 1 MB body nested 126 levels
/// deep cost 3 s and 690 MB (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForensicsBudget {
    /// Bodies larger than this get only the alterations that copy nothing
    /// (other keys, no `t.` prefix, `t` in milliseconds).
    pub max_body: usize,
    /// JSON is re-serialized only when its bytes nest at most this deep…
    pub max_json_depth: usize,
    /// …and hold at most this many values: checked on the bytes, before a
    /// `serde_json::Value` is built.
    pub max_json_values: usize,
    /// Each altered body is at most this many bytes; a re-serialization
    /// that grows past it is abandoned.
    pub max_variant_bytes: usize,
    /// Wall time, checked between alterations by the caller's clock.
    pub time: Duration,
}

impl ForensicsBudget {
    pub const DEFAULT: Self = Self {
        max_body: 1024 * 1024,
        max_json_depth: 64,
        max_json_values: 100_000,
        max_variant_bytes: 4 * 1024 * 1024,
        time: Duration::from_millis(500),
    };
}

/// What the forensics of one mismatch found, and what they cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// The alterations whose digest matches, one sentence each.
    pub hints: Vec<String>,
    /// Why the explanation stopped short, when it did: hints.
    pub cut: Vec<String>,
    /// The largest altered body built, in bytes.
    pub largest_variant: usize,
    /// Altered bodies built and hashed.
    pub variants_tried: usize,
}

/// Verify `header` over `body` as [`verify`] does, but hand a
/// mismatch back unexplained.
pub fn verify_unexplained(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: u64,
) -> Checked {
    let Some(header) = header else {
        let check = SignatureCheck {
            verdict: Verdict::Missing,
            timestamp: None,
            skew_s: None,
            secret: None,
            detail: format!("The request has no {HEADER_NAME} header."),
            hints: vec![format!(
                "Danube signs every delivery; if this came through a proxy, check that it passes \
                 {HEADER_NAME} on"
            )],
        };
        return Checked::Done(check, None);
    };
    let parsed = match parse_header(header) {
        Ok(parsed) => parsed,
        Err(fault) => return Checked::Done(malformed(header, &fault), None),
    };
    let skew = now.saturating_sub(parsed.t);
    let mut hints: Vec<String> = parsed.quirks.iter().map(HeaderQuirk::hint).collect();
    let mut check = SignatureCheck {
        verdict: Verdict::Unchecked,
        timestamp: Some(parsed.t),
        skew_s: Some(skew),
        secret: None,
        detail: String::new(),
        hints: Vec::new(),
    };

    if secrets.is_empty() {
        check.detail = "No secret is configured, so the signature was not checked.".into();
        hints.push(
            "pass --secret whsec_… or set DANUBE_WEBHOOK_SECRET to the webhook's signing secret"
                .into(),
        );
        check.hints = hints;
        return Checked::Done(check, Some(parsed));
    }

    let matched = secrets.iter().position(|secret| {
        let expected = secret.digest(&parsed.t_text, body);
        any_digest_matches(&parsed.digests, &expected)
    });

    if let Some(index) = matched {
        let secret = &secrets[index];
        check.secret = Some(secret.fingerprint.clone());
        if index > 0 {
            hints.push(format!(
                "matched configured secret #{} ({}), not the first one; the sender still \
                 signs with it",
                index + 1,
                secret.fingerprint()
            ));
        }
        hints.extend(timestamp_unit_hint(parsed.t));
        match staleness(skew, tolerance_s) {
            None => {
                check.verdict = Verdict::Valid;
                check.detail = valid_detail(&secret.fingerprint, skew, tolerance_s);
            }
            Some(sentence) => {
                check.verdict = Verdict::Stale;
                check.detail = format!(
                    "The signature matches secret {}, but {sentence}.",
                    secret.fingerprint()
                );
                hints.push(
                    "a receiver must reject it: check this machine's clock, or whether the \
                     delivery was held up or replayed"
                        .into(),
                );
            }
        }
    } else {
        check.verdict = Verdict::Mismatch;
        check.detail = format!(
            "No configured secret ({}) gives this digest for this body and t.",
            fingerprints(secrets)
        );
        let explain_at = hints.len();
        hints.extend(timestamp_unit_hint(parsed.t));
        if let Some(sentence) = staleness(skew, tolerance_s) {
            hints.push(format!("also, {sentence}"));
        }
        check.hints = hints;
        return Checked::Mismatch(Mismatch {
            check,
            parsed,
            explain_at,
        });
    }
    check.hints = hints;
    Checked::Done(check, Some(parsed))
}

/// The verdict on a request with two signature headers: `malformed`,
/// naming both. Which one a receiver reads depends on its framework (the
/// first, the last, or both joined with ","), so neither is checked.
pub fn repeated_header(first: &str, second: &str) -> SignatureCheck {
    let shown = |value: &str| crate::display::truncate(value, REPEATED_SHOWN).into_owned();
    let fault = HeaderFault::Repeated(shown(first), shown(second));
    SignatureCheck {
        verdict: Verdict::Malformed,
        timestamp: None,
        skew_s: None,
        secret: None,
        detail: format!("The {HEADER_NAME} header is malformed: {fault}."),
        hints: vec![format!(
            "send {HEADER_NAME} once; a proxy that adds its own copy, or a retry that appends \
             a header instead of replacing it, makes two"
        )],
    }
}

fn malformed(header: &str, fault: &HeaderFault) -> SignatureCheck {
    let mut hints = vec![format!(
        "Danube's form is t=<unix seconds>,sha256=<64 lowercase hex characters>; got {} characters",
        header.chars().count()
    )];
    if let HeaderFault::NonNumericTimestamp(t) = fault {
        if t.contains('.') {
            hints.push("t has a fraction; Danube sends whole unix seconds".into());
        } else if t.chars().any(|c| c == '-' || c == ':') {
            hints.push("t looks like a date; Danube sends unix seconds".into());
        }
    }
    SignatureCheck {
        verdict: Verdict::Malformed,
        timestamp: None,
        skew_s: None,
        secret: None,
        detail: format!("The {HEADER_NAME} header is malformed: {fault}."),
        hints,
    }
}

/// Constant-time: every candidate is compared in full, whatever matched first.
fn any_digest_matches(candidates: &[[u8; DIGEST_LEN]], expected: &[u8; DIGEST_LEN]) -> bool {
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

fn staleness(skew: i64, tolerance_s: u64) -> Option<String> {
    let tolerance = i64::try_from(tolerance_s).unwrap_or(i64::MAX);
    if skew > tolerance {
        Some(format!(
            "t is {skew} s old, beyond the {tolerance_s} s tolerance"
        ))
    } else if skew < -tolerance {
        Some(format!(
            "t is {} s in the future, beyond the {tolerance_s} s tolerance",
            skew.unsigned_abs()
        ))
    } else {
        None
    }
}

/// "The signature matches secret … and t is … (tolerance … s).", built in
/// one allocation: every valid delivery gets one, and `format!` with a
/// nested `format!` for the skew cost three.
fn valid_detail(fingerprint: &str, skew: i64, tolerance_s: u64) -> String {
    // The fixed text is 56 bytes, the skew at most 36, each number at most 20.
    let mut detail = String::with_capacity(fingerprint.len() + 56 + 36 + 20);
    detail.push_str("The signature matches secret ");
    detail.push_str(fingerprint);
    detail.push_str(" and t is ");
    push_skew(&mut detail, skew);
    detail.push_str(" (tolerance ");
    push_decimal(&mut detail, tolerance_s);
    detail.push_str(" s).");
    detail
}

/// `current`, `12 s old` or `3 s in the future`.
fn push_skew(out: &mut String, skew: i64) {
    match skew {
        0 => out.push_str("current"),
        s if s > 0 => {
            push_decimal(out, s.unsigned_abs());
            out.push_str(" s old");
        }
        s => {
            push_decimal(out, s.unsigned_abs());
            out.push_str(" s in the future");
        }
    }
}

/// `n` in decimal, without the formatting machinery.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast keeps every bit.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        digits[at] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

fn timestamp_unit_hint(t: i64) -> Option<String> {
    (t > MILLIS_THRESHOLD).then(|| {
        "t looks like milliseconds; Danube sends unix seconds, so the age check fails".to_string()
    })
}

fn fingerprints(secrets: &[Secret]) -> String {
    secrets
        .iter()
        .map(Secret::fingerprint)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A way the key may have been used instead of the whole secret string.
struct KeyVariant {
    key: Vec<u8>,
    /// Completes "the digest matches if the secret is used …".
    how: &'static str,
    /// What to do about it.
    advice: &'static str,
}

fn key_variants(secret: &Secret) -> Vec<KeyVariant> {
    use base64::Engine as _;
    let mut variants = Vec::new();
    let base64_part = if let Some(rest) = secret.text.strip_prefix(SECRET_PREFIX) {
        variants.push(KeyVariant {
            key: rest.as_bytes().to_vec(),
            how: "without its whsec_ prefix",
            advice: "the sender must key HMAC with the whole secret string, prefix included",
        });
        rest
    } else {
        variants.push(KeyVariant {
            key: format!("{SECRET_PREFIX}{}", secret.text).into_bytes(),
            how: "with the whsec_ prefix in front",
            advice: "the secret configured here lacks it; configure the whole whsec_… string",
        });
        secret.text.as_str()
    };
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(base64_part) {
        variants.push(KeyVariant {
            key: decoded,
            how: "base64-decoded after whsec_ (the Standard Webhooks way)",
            advice: "Danube keys HMAC with the whole secret string as UTF-8 bytes, not decoded",
        });
    }
    variants
}

/// A way the body may have changed between the signer and here, built
/// one at a time so an explanation holds at most two altered bodies (a
/// pair's first step and its second).
#[derive(Debug, Clone, Copy)]
enum BodyAlteration {
    NewlineAdded,
    NewlineRemoved,
    CrlfToLf,
    LfToCrlf,
    BomAdded,
    BomStripped,
    Reserialized(JsonStyle),
}

impl BodyAlteration {
    const BYTES: [Self; 6] = [
        Self::NewlineAdded,
        Self::NewlineRemoved,
        Self::CrlfToLf,
        Self::LfToCrlf,
        Self::BomAdded,
        Self::BomStripped,
    ];

    /// Completes "the digest matches if the body …".
    fn how(self) -> String {
        match self {
            Self::NewlineAdded => "had no trailing newline: one was added after signing".into(),
            Self::NewlineRemoved => {
                "ended with a newline: the trailing newline was removed after signing".into()
            }
            Self::CrlfToLf => "had LF line ends: they were turned into CRLF after signing".into(),
            Self::LfToCrlf => "had CRLF line ends: they were turned into LF after signing".into(),
            Self::BomAdded => "had no byte-order mark: a BOM was added in front after signing; \
                               strip it only if the sender never signed it"
                .into(),
            Self::BomStripped => {
                "started with a byte-order mark (BOM) that was stripped after signing".into()
            }
            Self::Reserialized(style) => format!(
                "is re-serialized as {}: a proxy or body parser changed the bytes; verify the \
                 raw body exactly as received, before any JSON parsing",
                style.describe()
            ),
        }
    }

    /// Which change it is: a pair never holds two of one kind (a newline
    /// added and one removed undo each other).
    fn kind(self) -> u8 {
        match self {
            Self::NewlineAdded | Self::NewlineRemoved => 0,
            Self::CrlfToLf | Self::LfToCrlf => 1,
            Self::BomAdded | Self::BomStripped => 2,
            Self::Reserialized(_) => 3,
        }
    }

    /// What was done to the body after signing, to follow "was".
    fn done(self) -> &'static str {
        match self {
            Self::NewlineAdded => "given a trailing newline",
            Self::NewlineRemoved => "stripped of its trailing newline",
            Self::CrlfToLf => "given CRLF line ends",
            Self::LfToCrlf => "given LF line ends",
            Self::BomAdded => "given a byte-order mark (BOM) in front",
            Self::BomStripped => "stripped of its byte-order mark (BOM)",
            Self::Reserialized(_) => "re-serialized",
        }
    }

    /// How the signed body differed from a serializer's output, when this
    /// is undone on a re-serialized body: what the re-serialization lost.
    /// `None` for what no serializer's output has to undo.
    fn signed_with(self) -> Option<&'static str> {
        match self {
            Self::NewlineRemoved => Some("ending in a newline"),
            Self::LfToCrlf => Some("with CRLF line ends"),
            Self::BomStripped => Some("starting with a byte-order mark (BOM)"),
            _ => None,
        }
    }

    /// At most how long [`Self::undo`] makes `body`, for a byte change:
    /// known before it is built.
    fn undone_len(self, body: &[u8]) -> usize {
        match self {
            Self::NewlineRemoved => body.len() + 1,
            Self::LfToCrlf if !has_crlf(body) => {
                // One CR for each LF: as many as the pieces between them, less one.
                body.len() + body.split(|&b| b == b'\n').count() - 1
            }
            Self::BomStripped => body.len() + 3,
            _ => body.len(),
        }
    }

    /// The body as the signer would have had it, or `None` when the
    /// alteration does not apply. A re-serialization that would grow past
    /// `max_bytes` gives an empty body.
    fn undo(
        self,
        body: &[u8],
        json: Option<&serde_json::Value>,
        max_bytes: usize,
    ) -> Option<Vec<u8>> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        match self {
            Self::NewlineAdded => body
                .strip_suffix(b"\r\n")
                .or_else(|| body.strip_suffix(b"\n"))
                .map(<[u8]>::to_vec),
            Self::NewlineRemoved => Some([body, b"\n"].concat()),
            Self::CrlfToLf => has_crlf(body).then(|| replace_bytes(body, b"\r\n", b"\n")),
            Self::LfToCrlf => (!has_crlf(body) && body.contains(&b'\n'))
                .then(|| replace_bytes(body, b"\n", b"\r\n")),
            Self::BomAdded => body.strip_prefix(BOM).map(<[u8]>::to_vec),
            Self::BomStripped => (!body.starts_with(BOM)).then(|| [BOM, body].concat()),
            Self::Reserialized(style) => {
                let (text, cut) = json_style::render_capped(json?, style, max_bytes);
                // Cut text is a prefix, which matches nothing: an empty
                // body stands for "too large" (it is never the body tried).
                Some(if cut { Vec::new() } else { text.into_bytes() })
            }
        }
    }
}

/// Whether `body` has a CRLF; a body without CR (most) is told by memchr.
fn has_crlf(body: &[u8]) -> bool {
    body.contains(&b'\r') && body.windows(2).any(|w| w == b"\r\n")
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + haystack.len() / 16);
    let mut rest = haystack;
    while let Some(pos) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(to);
        rest = &rest[pos + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The alterations worth trying on `body`, and the body as JSON when the
/// re-serializations are among them: only when its bytes show it nests
/// and spreads within `budget`, since the `Value` costs many times the
/// bytes. Why they are not is pushed onto `cut`.
fn alterations_for(
    body: &[u8],
    budget: &ForensicsBudget,
    cut: &mut Vec<String>,
) -> (Vec<BodyAlteration>, Option<serde_json::Value>) {
    let mut alterations: Vec<BodyAlteration> = BodyAlteration::BYTES.to_vec();
    // A BOM in front is no part of the JSON: a body given one after it was
    // re-serialized still parses past it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let looks_like_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    if !looks_like_json {
        return (alterations, None);
    }
    match json_style::check_shape(body, budget.max_json_depth, budget.max_json_values) {
        Ok(()) => {
            let json = serde_json::from_slice::<serde_json::Value>(body).ok();
            if json.is_some() {
                alterations.extend(JsonStyle::ALL.map(BodyAlteration::Reserialized));
            }
            (alterations, json)
        }
        Err(exceeded) => {
            cut.push(format!(
                "forensics stopped short: {exceeded} (the budget), so re-serialized JSON was \
                 not tried"
            ));
            (alterations, None)
        }
    }
}

/// "the secret", or "the secret whsec_…abcd" when there are several.
fn secret_name(secret: &Secret, count: usize) -> String {
    if count > 1 {
        format!("the secret {}", secret.fingerprint())
    } else {
        "the secret".to_string()
    }
}

/// The alterations of key and `t` that leave the body as it is.
fn unaltered_body_hints(
    secrets: &[Secret],
    keys: &[Vec<KeyVariant>],
    parsed: &ParsedHeader,
    body: &[u8],
) -> Vec<String> {
    let matches = |expected: [u8; DIGEST_LEN]| any_digest_matches(&parsed.digests, &expected);
    let t = parsed.t_text.as_str();
    let mut hints = Vec::new();
    for (secret, keys) in secrets.iter().zip(keys) {
        for key in keys {
            if matches(digest(&key.key, t, body)) {
                hints.push(format!(
                    "the digest matches if {} is used {}: {}",
                    secret_name(secret, secrets.len()),
                    key.how,
                    key.advice
                ));
            }
        }
        if matches(hmac_parts(secret.key(), &[body])) {
            hints.push(
                "the digest matches the body signed without the \"<t>.\" prefix: the signed \
                 content must be t, a dot, then the raw body"
                    .into(),
            );
        }
        for (alt_t, how) in timestamp_unit_variants(parsed.t) {
            if matches(secret.digest(&alt_t, body)) {
                hints.push(format!("the digest matches if t is {how}"));
            }
        }
    }
    hints
}

/// Try each known alteration, cheapest first, and name those whose digest
/// matches the header; when none does, try them in pairs. Stop where
/// `budget` says, and say why.
///
/// Two byte changes are tried before the re-serializations: parsing
/// skips whitespace and a BOM, so re-serializing a body given a newline
/// and a BOM can give back the bytes signed, and would name the wrong
/// cause.
fn explain_mismatch(
    secrets: &[Secret],
    parsed: &ParsedHeader,
    body: &[u8],
    budget: &ForensicsBudget,
    out_of_time: &mut dyn FnMut() -> bool,
) -> Explanation {
    let keys: Vec<Vec<KeyVariant>> = secrets.iter().map(key_variants).collect();
    let mut found = Explanation {
        // First what copies nothing: each costs one HMAC of the body.
        hints: unaltered_body_hints(secrets, &keys, parsed, body),
        ..Explanation::default()
    };

    // Then the altered bodies, one at a time.
    if body.len() > budget.max_body {
        found.cut.push(format!(
            "forensics stopped short: the body is {} bytes, over the {}-byte budget for \
             altering it, so line ends, BOM and re-serialized JSON were not tried",
            body.len(),
            budget.max_body
        ));
        return found;
    }
    let (alterations, json) = alterations_for(body, budget, &mut found.cut);
    let combine = body.len() <= COMBINED_FORENSICS_MAX_BODY;
    let (byte_pairs, json_pairs) = if combine {
        pairs_of(&alterations)
    } else {
        (Vec::new(), Vec::new())
    };
    let (bytes, styles): (Vec<_>, Vec<_>) = alterations
        .into_iter()
        .partition(|alteration| !matches!(alteration, BodyAlteration::Reserialized(_)));
    let mut trial = Trial {
        secrets,
        keys: &keys,
        parsed,
        body,
        json: json.as_ref(),
        budget,
        combine,
        seen: Vec::new(),
        found,
        tried: 0,
        total: bytes.len() + styles.len() + byte_pairs.len() + json_pairs.len(),
    };
    let explained = |trial: &Trial| !trial.found.hints.is_empty();
    if !trial.singles(&bytes, out_of_time) {
        return trial.found;
    }
    if !explained(&trial) && !trial.pairs(&byte_pairs, out_of_time) {
        return trial.found;
    }
    if !trial.singles(&styles, out_of_time) || explained(&trial) {
        return trial.found;
    }
    if !combine {
        trial.found.cut.push(format!(
            "forensics stopped short: the body is {} bytes, over the {}-byte limit for \
             trying alterations in pairs or with another key, so each was tried alone",
            body.len(),
            COMBINED_FORENSICS_MAX_BODY
        ));
    }
    trial.pairs(&json_pairs, out_of_time);
    trial.found
}

/// An alteration undone on a body already undone of another.
type Pair = (BodyAlteration, BodyAlteration);

/// The pairs worth trying when no single alteration explains a body,
/// each as (later, earlier): the later one is undone first. First two
/// byte changes of different kinds (a newline added and one removed undo
/// each other), in both orders; then a re-serialization of a body signed
/// with what no serializer writes (a trailing newline, CRLF, a BOM). A
/// byte change made after the re-serialization needs no pair: the JSON is
/// parsed past it, and [`received_form`] names it. Never two
/// re-serializations: the second would hide the first.
fn pairs_of(singles: &[BodyAlteration]) -> (Vec<Pair>, Vec<Pair>) {
    let bytes = BodyAlteration::BYTES;
    let mut byte_pairs = Vec::new();
    for later in bytes {
        for earlier in bytes {
            if later.kind() != earlier.kind() {
                byte_pairs.push((later, earlier));
            }
        }
    }
    let mut json_pairs = Vec::new();
    for &later in singles {
        if matches!(later, BodyAlteration::Reserialized(_)) {
            for earlier in bytes {
                if earlier.signed_with().is_some() {
                    json_pairs.push((later, earlier));
                }
            }
        }
    }
    (byte_pairs, json_pairs)
}

/// One explanation under way: what the altered bodies are compared with,
/// and what was found so far.
struct Trial<'a> {
    secrets: &'a [Secret],
    keys: &'a [Vec<KeyVariant>],
    parsed: &'a ParsedHeader,
    body: &'a [u8],
    json: Option<&'a serde_json::Value>,
    budget: &'a ForensicsBudget,
    /// Whether the body is small enough for each key variant with each
    /// altered body.
    combine: bool,
    /// Digests (with the first secret) of the bodies tried, so two ways
    /// to the same bytes are named once.
    seen: Vec<[u8; DIGEST_LEN]>,
    found: Explanation,
    /// Altered bodies tried (or found not to apply) so far, of `total`.
    tried: usize,
    total: usize,
}

impl Trial<'_> {
    fn matches(&self, expected: &[u8; DIGEST_LEN]) -> bool {
        any_digest_matches(&self.parsed.digests, expected)
    }

    /// Each of `alterations` alone; `false` when time ran out (said in
    /// the cut).
    fn singles(
        &mut self,
        alterations: &[BodyAlteration],
        out_of_time: &mut dyn FnMut() -> bool,
    ) -> bool {
        for &alteration in alterations {
            if self.stop(out_of_time) {
                return false;
            }
            self.single(alteration);
        }
        true
    }

    /// Each of `pairs`; `false` when time ran out (said in the cut).
    fn pairs(&mut self, pairs: &[Pair], out_of_time: &mut dyn FnMut() -> bool) -> bool {
        for &(later, earlier) in pairs {
            if self.stop(out_of_time) {
                return false;
            }
            self.pair(later, earlier);
        }
        true
    }

    /// Whether time is up before the next attempt; says so.
    fn stop(&mut self, out_of_time: &mut dyn FnMut() -> bool) -> bool {
        if out_of_time() {
            self.found.cut.push(format!(
                "forensics stopped after {} ms (the time budget): {} of {} altered bodies \
                 tried",
                self.budget.time.as_millis(),
                self.tried,
                self.total
            ));
            return true;
        }
        self.tried += 1;
        false
    }

    /// `alteration` undone on `input`, when it applies and stays within the
    /// budget; a body over it is noted in the cut, once for each wording.
    fn undo(&mut self, alteration: BodyAlteration, input: &[u8]) -> Option<Vec<u8>> {
        let max = self.budget.max_variant_bytes;
        let variant = match alteration {
            // An empty render stands for one cut at the budget.
            BodyAlteration::Reserialized(_) => {
                Some(alteration.undo(input, self.json, max)?).filter(|text| !text.is_empty())
            }
            _ if alteration.undone_len(input) > max => None,
            _ => return alteration.undo(input, None, max),
        };
        if variant.is_none() {
            let note = format!(
                "forensics stopped short: the body that {} would be over the {max}-byte budget \
                 for an altered body, so it was not tried",
                alteration.how().split(':').next().unwrap_or_default(),
            );
            if !self.found.cut.contains(&note) {
                self.found.cut.push(note);
            }
        }
        variant
    }

    /// The first secret's digest of `variant` when it is a body not tried
    /// yet, counted as tried.
    fn fresh(&mut self, variant: &[u8]) -> Option<[u8; DIGEST_LEN]> {
        if variant == self.body {
            return None;
        }
        let digest = self.secrets[0].digest(&self.parsed.t_text, variant);
        if self.seen.contains(&digest) {
            return None;
        }
        self.seen.push(digest);
        self.found.variants_tried += 1;
        self.found.largest_variant = self.found.largest_variant.max(variant.len());
        Some(digest)
    }

    /// Each secret's digest of `variant` (the first one's is `first`).
    fn secrets_matching(&self, variant: &[u8], first: [u8; DIGEST_LEN]) -> Vec<usize> {
        let t = self.parsed.t_text.as_str();
        (0..self.secrets.len())
            .filter(|&index| {
                let plain = if index == 0 {
                    first
                } else {
                    self.secrets[index].digest(t, variant)
                };
                self.matches(&plain)
            })
            .collect()
    }

    fn single(&mut self, alteration: BodyAlteration) {
        let Some(variant) = self.undo(alteration, self.body) else {
            return;
        };
        let Some(first) = self.fresh(&variant) else {
            return;
        };
        let how = alteration.how();
        if !self.secrets_matching(&variant, first).is_empty() {
            let hint = match alteration {
                BodyAlteration::Reserialized(style) => self.reserialized_hint(style, None),
                _ => format!("the digest matches if the body {how}"),
            };
            self.found.hints.push(hint);
        }
        if !self.combine {
            return;
        }
        let t = self.parsed.t_text.as_str();
        for (secret, keys) in self.secrets.iter().zip(self.keys) {
            for key in keys {
                if self.matches(&digest(&key.key, t, &variant)) {
                    self.found.hints.push(format!(
                        "the digest matches if {} is used {} and the body {how}",
                        secret_name(secret, self.secrets.len()),
                        key.how,
                    ));
                }
            }
        }
    }

    /// Two alterations, each of the configured secrets as they are: a key
    /// variant on top of two body changes is one guess too many.
    fn pair(&mut self, later: BodyAlteration, earlier: BodyAlteration) {
        let Some(middle) = self.undo(later, self.body) else {
            return;
        };
        let Some(variant) = self.undo(earlier, &middle) else {
            return;
        };
        drop(middle);
        let Some(first) = self.fresh(&variant) else {
            return;
        };
        if self.secrets_matching(&variant, first).is_empty() {
            return;
        }
        let hint = match later {
            BodyAlteration::Reserialized(style) => self.reserialized_hint(style, Some(earlier)),
            _ => format!(
                "the digest matches if the body was {} and {} after signing: something \
                 between the sender and here changed the bytes twice; verify the raw body \
                 exactly as received",
                earlier.done(),
                later.done()
            ),
        };
        self.found.hints.push(hint);
    }

    /// The hint for a body signed as `signed` JSON (with what `earlier`
    /// undid, when it is a pair) and received re-serialized: it names how
    /// the body arrived when [`received_form`] can tell.
    fn reserialized_hint(&self, signed: JsonStyle, earlier: Option<BodyAlteration>) -> String {
        let received = self
            .json
            .filter(|_| self.combine)
            .and_then(|json| received_form(self.body, json));
        let later = received.and_then(|(_, change)| change);
        let signed_with = earlier.and_then(BodyAlteration::signed_with);
        if signed_with.is_none() && later.is_none() {
            return format!(
                "the digest matches if the body {}",
                BodyAlteration::Reserialized(signed).how()
            );
        }
        let mut hint = format!(
            "the digest matches if the body, signed as {}",
            signed.describe()
        );
        for part in [
            signed_with.map(|with| format!(" {with}")),
            Some(", was re-serialized".to_string()),
            received.map(|(style, _)| format!(" as {}", style.describe())),
            later.map(|change| format!(" and {}", change.done())),
        ]
        .into_iter()
        .flatten()
        {
            hint.push_str(&part);
        }
        hint.push_str(
            " after signing: a proxy or body parser changed the bytes; verify the raw body \
             exactly as received, before any JSON parsing",
        );
        hint
    }
}

/// How a re-serializer wrote `body`: the style whose output it is, and
/// the byte change made to that output afterwards (a trailing newline, a
/// BOM, CRLF), when one of the known ones makes it so. Each style is
/// rendered once, cut just past the body's size: a longer text cannot be it.
fn received_form(
    body: &[u8],
    json: &serde_json::Value,
) -> Option<(JsonStyle, Option<BodyAlteration>)> {
    use BodyAlteration::{BomAdded, CrlfToLf, NewlineAdded};
    let undone: Vec<(BodyAlteration, Vec<u8>)> = [NewlineAdded, BomAdded, CrlfToLf]
        .into_iter()
        .filter_map(|change| Some((change, change.undo(body, None, body.len())?)))
        .collect();
    JsonStyle::ALL.into_iter().find_map(|style| {
        let (text, cut) = json_style::render_capped(json, style, body.len());
        if cut {
            return None;
        }
        if text.as_bytes() == body {
            return Some((style, None));
        }
        undone
            .iter()
            .find(|(_, bytes)| bytes == text.as_bytes())
            .map(|(change, _)| (style, Some(*change)))
    })
}

fn timestamp_unit_variants(t: i64) -> Vec<(String, &'static str)> {
    let mut variants = Vec::new();
    if let Some(millis) = t.checked_mul(1000) {
        variants.push((
            millis.to_string(),
            "taken in milliseconds for signing while the header carries seconds",
        ));
    }
    if t > MILLIS_THRESHOLD {
        variants.push((
            (t / 1000).to_string(),
            "taken in seconds for signing while the header carries milliseconds",
        ));
    }
    variants
}

/// A hint when `Content-Length` disagrees with the bytes received: a proxy
/// or client changed the body, or the request was cut short.
pub fn content_length_hint(declared: Option<&str>, received: usize) -> Option<String> {
    let declared = declared?.trim();
    match declared.parse::<u64>() {
        Ok(n) if n == received as u64 => None,
        Ok(n) => Some(format!(
            "Content-Length says {n} bytes but {received} arrived: something changed or cut the body"
        )),
        Err(_) => Some(format!(
            "Content-Length is {declared:?}, not a number of bytes"
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine as _;

    const NOW: i64 = 1_750_000_000;
    const BODY: &[u8] = br#"{"event":"tool.execution.completed","timestamp":"2025-06-15T15:06:40.000000Z","data":{"tool_id":"abc-123","url":"https://example.com/x","name":"caf\u00e9 \u00e9"}}"#;

    fn secret() -> Secret {
        // base64 of 24 bytes after the prefix, so the Standard Webhooks case is exercised.
        Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    }

    fn header_with(key: &[u8], t: &str, body: &[u8]) -> String {
        format!("t={t},sha256={}", hex::encode(digest(key, t, body)))
    }

    fn check(header: &str, body: &[u8]) -> SignatureCheck {
        verify(&[secret()], Some(header), body, NOW, DEFAULT_TOLERANCE_S)
    }

    #[test]
    fn two_headers_are_malformed_and_both_are_named_escaped_and_cut() {
        let first = "t=1,sha256=aa";
        let second = format!("t=2\u{1b}[2J\u{202e}{}", "x".repeat(500));
        let check = repeated_header(first, &second);
        assert_eq!(check.verdict, Verdict::Malformed);
        assert!(
            check.detail.contains("\"t=1,sha256=aa\""),
            "{}",
            check.detail
        );
        assert!(check.detail.contains("t=2\\u{1b}[2J"), "{}", check.detail);
        assert!(!check.detail.contains('\u{1b}'), "{}", check.detail);
        assert!(!check.detail.contains('\u{202e}'), "{}", check.detail);
        assert!(check.detail.contains('…'), "the long value is cut");
        assert!(check.detail.len() < 400, "{}", check.detail.len());
    }

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
    fn verify_parsing_hands_back_the_header_it_parsed() {
        let good = header_with(secret().key(), &NOW.to_string(), BODY);
        let wrong = format!("t={NOW},sha256={}", "ab".repeat(DIGEST_LEN));
        for header in [good.as_str(), wrong.as_str()] {
            let (check, parsed) =
                verify_parsing(&[secret()], Some(header), BODY, NOW, DEFAULT_TOLERANCE_S);
            assert_eq!(check, self::check(header, BODY));
            assert_eq!(parsed, Some(parse_header(header).unwrap()), "{header}");
        }
        for header in [None, Some("t=abc,sha256=00"), Some(""), Some("sha256=00")] {
            let (check, parsed) = verify_parsing(&[secret()], header, BODY, NOW, 300);
            assert_eq!(parsed, None, "{header:?}");
            assert_eq!(check, verify(&[secret()], header, BODY, NOW, 300));
        }
    }

    fn assert_mismatch_hint(header: &str, body: &[u8], needle: &str) {
        let result = check(header, body);
        assert_eq!(result.verdict, Verdict::Mismatch, "{result:?}");
        assert!(
            result.hints.iter().any(|h| h.contains(needle)),
            "no hint containing {needle:?} in {:#?}",
            result.hints
        );
    }

    #[test]
    fn signs_and_verifies_a_fresh_delivery() {
        let header = sign(&secret(), NOW - 3, BODY);
        let result = check(&header, BODY);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
        assert_eq!(result.timestamp, Some(NOW - 3));
        assert_eq!(result.skew_s, Some(3));
        assert_eq!(result.secret.as_deref(), Some("whsec_…LaSw"));
        assert!(result.detail.contains("3 s old"));
    }

    #[test]
    fn signature_vectors_from_openssl() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signatures");
        let vectors = std::fs::read_to_string(dir.join("vectors.tsv")).unwrap();
        let mut count = 0;
        for line in vectors.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [secret, t, body_file, expected] = fields[..] else {
                panic!("bad vector line {line:?}")
            };
            let secret = Secret::new(secret);
            let t: i64 = t.parse().unwrap();
            let body = std::fs::read(dir.join("bodies").join(body_file)).unwrap();
            assert_eq!(
                sign(&secret, t, &body),
                format!("t={t},sha256={expected}"),
                "vector {line}"
            );
            let check = verify(
                &[secret],
                Some(&format!("t={t},sha256={expected}")),
                &body,
                t,
                300,
            );
            assert_eq!(check.verdict, Verdict::Valid, "vector {line}");
            count += 1;
        }
        assert!(count >= 80, "only {count} vectors");
    }

    #[test]
    fn fingerprint_shows_prefix_and_last_four_only() {
        assert_eq!(secret().fingerprint(), "whsec_…LaSw");
        assert_eq!(Secret::new("plainsecretvalue1234").fingerprint(), "…1234");
        assert_eq!(Secret::new("whsec_short").fingerprint(), "whsec_…(5 chars)");
        assert_eq!(format!("{:?}", secret()), "Secret(whsec_…LaSw)");
    }

    #[test]
    fn stale_and_future_timestamps() {
        let old = check(&sign(&secret(), NOW - 301, BODY), BODY);
        assert_eq!(old.verdict, Verdict::Stale);
        assert_eq!(old.skew_s, Some(301));
        assert!(
            old.detail.contains("301 s old, beyond the 300 s tolerance"),
            "{old:?}"
        );

        let future = check(&sign(&secret(), NOW + 400, BODY), BODY);
        assert_eq!(future.verdict, Verdict::Stale);
        assert_eq!(future.skew_s, Some(-400));
        assert!(future.detail.contains("400 s in the future"), "{future:?}");

        let edge = check(&sign(&secret(), NOW - 300, BODY), BODY);
        assert_eq!(edge.verdict, Verdict::Valid);
        let wide = verify(
            &[secret()],
            Some(&sign(&secret(), NOW - 301, BODY)),
            BODY,
            NOW,
            600,
        );
        assert_eq!(wide.verdict, Verdict::Valid);
    }

    #[test]
    fn missing_and_unchecked() {
        let missing = verify(&[secret()], None, BODY, NOW, 300);
        assert_eq!(missing.verdict, Verdict::Missing);
        let unchecked = verify(&[], Some(&sign(&secret(), NOW, BODY)), BODY, NOW, 300);
        assert_eq!(unchecked.verdict, Verdict::Unchecked);
        assert_eq!(unchecked.timestamp, Some(NOW));
        assert!(
            unchecked
                .hints
                .iter()
                .any(|h| h.contains("DANUBE_WEBHOOK_SECRET"))
        );
    }

    #[test]
    fn header_faults_are_named() {
        let good = hex::encode([7u8; 32]);
        let cases: Vec<(String, HeaderFault)> = vec![
            (String::new(), HeaderFault::Empty),
            (format!("sha256={good}"), HeaderFault::MissingTimestamp),
            ("t=1".into(), HeaderFault::MissingDigest),
            (format!("t=1,v1={good}"), HeaderFault::StripeLabel),
            (
                format!("t=abc,sha256={good}"),
                HeaderFault::NonNumericTimestamp("abc".into()),
            ),
            (
                format!("t=-5,sha256={good}"),
                HeaderFault::NonNumericTimestamp("-5".into()),
            ),
            (
                format!("t=1.5,sha256={good}"),
                HeaderFault::NonNumericTimestamp("1.5".into()),
            ),
            (
                format!("t=99999999999999999999,sha256={good}"),
                HeaderFault::NonNumericTimestamp("99999999999999999999".into()),
            ),
            (
                format!("t=1,t=2,sha256={good}"),
                HeaderFault::SeveralTimestamps,
            ),
            ("t=1,sha256=".into(), HeaderFault::EmptyDigest),
            ("t=1,sha256=abc".into(), HeaderFault::OddLengthDigest(3)),
            (
                format!("t=1,sha256={}zz", &good[2..]),
                HeaderFault::NonHexDigest('z'),
            ),
            ("t=1,sha256=abcd".into(), HeaderFault::WrongDigestLength(2)),
            (
                format!("t=1,sha256={good}00"),
                HeaderFault::WrongDigestLength(33),
            ),
            (
                format!("t=1;sha256={good}"),
                HeaderFault::WrongSeparator(';'),
            ),
            (
                format!("t=1,garbage,sha256={good}"),
                HeaderFault::NotKeyValue("garbage".into()),
            ),
        ];
        for (header, fault) in cases {
            assert_eq!(
                parse_header(&header),
                Err(fault.clone()),
                "header {header:?}"
            );
            let result = check(&header, BODY);
            assert_eq!(result.verdict, Verdict::Malformed, "header {header:?}");
            assert!(result.detail.contains(&fault.to_string()), "{result:?}");
        }
    }

    #[test]
    fn quirks_are_tolerated_and_named() {
        let header = sign(&secret(), NOW, BODY);
        let spaced = header.replace(',', ", ").replace("t=", " t = ");
        let result = check(&spaced, BODY);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
        assert!(result.hints.iter().any(|h| h.contains("spaces")));

        let upper = format!(
            "t={NOW},sha256={}",
            hex::encode_upper(digest(secret().key(), &NOW.to_string(), BODY))
        );
        let result = check(&upper, BODY);
        assert_eq!(result.verdict, Verdict::Valid);
        assert!(result.hints.iter().any(|h| h.contains("uppercase")));

        let stripe_beside = format!("{header},v1=00");
        let result = check(&stripe_beside, BODY);
        assert_eq!(result.verdict, Verdict::Valid);
        assert!(result.hints.iter().any(|h| h.contains("v1=")));
    }

    #[test]
    fn several_digests_are_valid_if_any_matches() {
        let right = hex::encode(digest(secret().key(), &NOW.to_string(), BODY));
        let wrong = hex::encode([0u8; 32]);
        for header in [
            format!("t={NOW},sha256={wrong},sha256={right}"),
            format!("t={NOW},sha256={right},sha256={wrong}"),
        ] {
            let result = check(&header, BODY);
            assert_eq!(result.verdict, Verdict::Valid, "{header}");
            assert!(result.hints.iter().any(|h| h.contains("2 sha256= entries")));
        }
        let both_wrong = format!("t={NOW},sha256={wrong},sha256={wrong}");
        assert_eq!(check(&both_wrong, BODY).verdict, Verdict::Mismatch);
    }

    #[test]
    fn empty_short_and_prefix_digests_never_verify() {
        let right = hex::encode(digest(secret().key(), &NOW.to_string(), BODY));
        let empty = format!("t={NOW},sha256=");
        let short = format!("t={NOW},sha256={}", &right[..2]);
        let prefix = format!("t={NOW},sha256={}", &right[..62]);
        let bare = format!("t={NOW},sha256");
        for header in [empty, short, prefix, bare] {
            let result = check(&header, BODY);
            assert_ne!(result.verdict, Verdict::Valid, "{header} verified");
            assert_eq!(result.verdict, Verdict::Malformed, "{header}");
        }
    }

    #[test]
    fn rotation_names_the_secret_that_matched() {
        let old = Secret::new("whsec_oldsecretoldsecret0001");
        let new = Secret::new("whsec_newsecretnewsecret0002");
        let header = sign(&old, NOW, BODY);
        let result = verify(&[new.clone(), old.clone()], Some(&header), BODY, NOW, 300);
        assert_eq!(result.verdict, Verdict::Valid);
        assert_eq!(result.secret.as_deref(), Some("whsec_…0001"));
        assert!(result.hints.iter().any(|h| h.contains("#2")));
        let only_new = verify(&[new], Some(&header), BODY, NOW, 300);
        assert_eq!(only_new.verdict, Verdict::Mismatch);
    }

    // One test per forensic alternative of SPEC §6: build the altered case,
    // assert its hint.

    #[test]
    fn forensic_secret_without_prefix() {
        let key = secret()
            .text
            .strip_prefix(SECRET_PREFIX)
            .unwrap()
            .to_string();
        let header = header_with(key.as_bytes(), &NOW.to_string(), BODY);
        assert_mismatch_hint(
            &header,
            BODY,
            "the secret is used without its whsec_ prefix",
        );
    }

    #[test]
    fn forensic_secret_configured_without_prefix() {
        let header = sign(&secret(), NOW, BODY);
        let bare = Secret::new(secret().text.strip_prefix(SECRET_PREFIX).unwrap());
        let result = verify(&[bare], Some(&header), BODY, NOW, 300);
        assert_eq!(result.verdict, Verdict::Mismatch);
        assert!(
            result
                .hints
                .iter()
                .any(|h| h.contains("with the whsec_ prefix in front")),
            "{:#?}",
            result.hints
        );
    }

    #[test]
    fn forensic_secret_base64_decoded() {
        let rest = secret()
            .text
            .strip_prefix(SECRET_PREFIX)
            .unwrap()
            .to_string();
        let key = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .unwrap();
        let header = header_with(&key, &NOW.to_string(), BODY);
        assert_mismatch_hint(&header, BODY, "base64-decoded after whsec_");
    }

    #[test]
    fn forensic_another_configured_secret_with_alteration() {
        let other = Secret::new("whsec_othersecretother9999");
        let key = other.text.strip_prefix(SECRET_PREFIX).unwrap().to_string();
        let header = header_with(key.as_bytes(), &NOW.to_string(), BODY);
        let result = verify(&[secret(), other], Some(&header), BODY, NOW, 300);
        assert_eq!(result.verdict, Verdict::Mismatch);
        assert!(
            result
                .hints
                .iter()
                .any(|h| h.contains("the secret whsec_…9999 is used without")),
            "{:#?}",
            result.hints
        );
    }

    #[test]
    fn forensic_trailing_newline_added() {
        let header = header_with(secret().key(), &NOW.to_string(), BODY);
        let received = [BODY, b"\n"].concat();
        assert_mismatch_hint(&header, &received, "one was added after signing");
    }

    #[test]
    fn forensic_trailing_newline_removed() {
        let signed = [BODY, b"\n"].concat();
        let header = header_with(secret().key(), &NOW.to_string(), &signed);
        assert_mismatch_hint(&header, BODY, "the trailing newline was removed");
    }

    #[test]
    fn forensic_crlf_turned_into_lf() {
        let signed = b"{\r\n  \"event\": \"workflow.completed\"\r\n}".to_vec();
        let received = replace_bytes(&signed, b"\r\n", b"\n");
        let header = header_with(secret().key(), &NOW.to_string(), &signed);
        assert_mismatch_hint(&header, &received, "turned into LF");
    }

    #[test]
    fn forensic_bom_stripped() {
        let signed = [b"\xEF\xBB\xBF".as_slice(), BODY].concat();
        let header = header_with(secret().key(), &NOW.to_string(), &signed);
        assert_mismatch_hint(&header, BODY, "byte-order mark (BOM) that was stripped");
    }

    #[test]
    fn forensic_json_reserialized() {
        let value: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        for style in JsonStyle::ALL {
            let received = json_style::render(&value, style);
            if received.as_bytes() == BODY {
                continue;
            }
            let header = header_with(secret().key(), &NOW.to_string(), BODY);
            // Signed as sent; received re-serialized: the hint names the style.
            let result = check(&header, received.as_bytes());
            assert_eq!(result.verdict, Verdict::Mismatch);
            assert!(
                result
                    .hints
                    .iter()
                    .any(|h| h.contains("re-serialized") && h.contains("proxy")),
                "style {style:?}: {:#?}",
                result.hints
            );
        }
        // And the direction a developer hits most: the sender signed compact
        // JSON, a framework handed the receiver pretty JSON.
        let pretty = json_style::render(&value, JsonStyle::Pretty);
        let header = header_with(secret().key(), &NOW.to_string(), pretty.as_bytes());
        assert_mismatch_hint(&header, BODY, "re-serialized as pretty JSON");
    }

    #[test]
    fn forensic_escaped_slashes() {
        let value: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let escaped = json_style::render(&value, JsonStyle::EscapedSlashes);
        assert!(escaped.contains(r"https:\/\/"));
        let header = header_with(secret().key(), &NOW.to_string(), escaped.as_bytes());
        assert_mismatch_hint(&header, BODY, r"\/");
    }

    #[test]
    fn forensic_signed_without_t_prefix() {
        let header = format!(
            "t={NOW},sha256={}",
            hex::encode(hmac_parts(secret().key(), &[BODY]))
        );
        assert_mismatch_hint(&header, BODY, "without the \"<t>.\" prefix");
    }

    #[test]
    fn forensic_t_in_milliseconds() {
        let millis = (NOW * 1000).to_string();
        let header = format!(
            "t={NOW},sha256={}",
            hex::encode(digest(secret().key(), &millis, BODY))
        );
        assert_mismatch_hint(&header, BODY, "milliseconds for signing");

        let header_in_ms = header_with(secret().key(), &millis, BODY);
        let result = check(&header_in_ms, BODY);
        assert_eq!(result.verdict, Verdict::Stale);
        assert!(
            result
                .hints
                .iter()
                .any(|h| h.contains("looks like milliseconds"))
        );
    }

    #[test]
    fn forensic_prefix_and_newline_combined() {
        let key = secret()
            .text
            .strip_prefix(SECRET_PREFIX)
            .unwrap()
            .to_string();
        let header = header_with(key.as_bytes(), &NOW.to_string(), BODY);
        let received = [BODY, b"\n"].concat();
        assert_mismatch_hint(&header, &received, "without its whsec_ prefix and the body");
    }

    /// What a body signed as `signed` and received as `received` is
    /// explained by.
    fn hints_for(signed: &[u8], received: &[u8]) -> Vec<String> {
        let header = header_with(secret().key(), &NOW.to_string(), signed);
        let result = check(&header, received);
        assert_eq!(result.verdict, Verdict::Mismatch);
        result.hints
    }

    #[test]
    fn forensic_pairs_of_alterations_are_named_both() {
        let value: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let render = |style| json_style::render(&value, style).into_bytes();
        let (compact, python) = (render(JsonStyle::Compact), render(JsonStyle::Python));
        let bom = |body: &[u8]| [b"\xEF\xBB\xBF", body].concat();
        let newline = |body: &[u8]| [body, b"\n"].concat();
        let windows = replace_bytes(&render(JsonStyle::Pretty), b"\n", b"\r\n");
        let text = b"line one\r\nline two\r\n".to_vec();
        let python_said = "JSON with \", \" and \": \" separators (Python's json.dumps)";
        // (the case, the body signed, the body received, the hint).
        let cases = [
            (
                "Python's json.dumps, then a newline",
                compact.clone(),
                newline(&python),
                format!(
                    "the body, signed as compact JSON (JSON.stringify), was re-serialized as \
                     {python_said} and given a trailing newline after signing"
                ),
            ),
            (
                "a body signed with a newline (a file), then json.dumps",
                newline(&compact),
                python.clone(),
                format!(
                    "the body, signed as compact JSON (JSON.stringify) ending in a newline, was \
                     re-serialized as {python_said} after signing"
                ),
            ),
            (
                "signed with a newline, json.dumps, then a newline",
                newline(&compact),
                newline(&python),
                format!(
                    "signed as compact JSON (JSON.stringify) ending in a newline, was \
                     re-serialized as {python_said} and given a trailing newline after signing"
                ),
            ),
            (
                "signed with a BOM, then json.dumps",
                bom(&compact),
                python.clone(),
                "signed as compact JSON (JSON.stringify) starting with a byte-order mark (BOM), \
                 was re-serialized as JSON"
                    .to_string(),
            ),
            (
                "json.dumps, then a BOM",
                compact.clone(),
                bom(&python),
                format!(
                    "was re-serialized as {python_said} and given a byte-order mark (BOM) in \
                     front after signing"
                ),
            ),
            (
                "pretty with CRLF (Windows), then compacted",
                windows,
                compact.clone(),
                "signed as pretty JSON (2-space indent) with CRLF line ends, was re-serialized \
                 as compact JSON (JSON.stringify) after signing"
                    .to_string(),
            ),
            (
                "a BOM and a newline, not a re-serialization",
                compact.clone(),
                newline(&bom(&compact)),
                "the body was given a byte-order mark (BOM) in front and given a trailing \
                 newline after signing"
                    .to_string(),
            ),
            (
                "CRLF turned into LF, and the last line end dropped",
                text.clone(),
                b"line one\nline two".to_vec(),
                "the body was given LF line ends and stripped of its trailing newline after \
                 signing"
                    .to_string(),
            ),
        ];
        for (case, signed, received, want) in cases {
            let hints = hints_for(&signed, &received);
            let named: Vec<&String> = hints
                .iter()
                .filter(|h| h.starts_with("the digest matches if"))
                .collect();
            assert!(
                named.len() == 1 && named[0].contains(&want),
                "{case}: want {want:?} in one hint, got {hints:#?}"
            );
        }
    }

    #[test]
    fn a_single_alteration_is_named_alone_and_pairs_come_after() {
        let value: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let compact = json_style::render(&value, JsonStyle::Compact).into_bytes();
        let received = [compact.as_slice(), b"\n"].concat();
        assert_eq!(
            hints_for(&compact, &received),
            ["the digest matches if the body had no trailing newline: one was added after signing"]
        );
        let python = json_style::render(&value, JsonStyle::Python);
        assert_eq!(
            hints_for(&compact, python.as_bytes()),
            [format!(
                "the digest matches if the body {}",
                BodyAlteration::Reserialized(JsonStyle::Compact).how()
            )]
        );
    }

    #[test]
    fn pairs_are_not_tried_on_a_large_body_and_the_hint_says_so() {
        let line = "a line of a log file, long enough to make a large body\r\n";
        let signed = line.repeat(COMBINED_FORENSICS_MAX_BODY / (line.len() - 1) + 1);
        let received = signed.replace("\r\n", "\n");
        let received = received.strip_suffix('\n').unwrap();
        let hints = hints_for(signed.as_bytes(), received.as_bytes()).join("\n");
        assert!(
            hints.contains("none of the alterations tried explains it"),
            "{hints}"
        );
        assert!(
            hints.contains(&format!(
                "over the {COMBINED_FORENSICS_MAX_BODY}-byte limit for trying alterations in pairs"
            )),
            "{hints}"
        );
        // The same change to a small body is explained.
        let small = line.repeat(3);
        let received = small.replace("\r\n", "\n");
        let received = received.strip_suffix('\n').unwrap();
        let hints = hints_for(small.as_bytes(), received.as_bytes()).join("\n");
        assert!(hints.contains("given LF line ends and stripped"), "{hints}");
    }

    /// The most altered bodies one explanation tries: each alteration
    /// alone, then the pairs.
    fn most_attempts() -> usize {
        let singles: Vec<BodyAlteration> = BodyAlteration::BYTES
            .into_iter()
            .chain(JsonStyle::ALL.map(BodyAlteration::Reserialized))
            .collect();
        let (byte_pairs, json_pairs) = pairs_of(&singles);
        singles.len() + byte_pairs.len() + json_pairs.len()
    }

    #[test]
    fn pairs_never_repeat_a_kind_nor_reserialize_twice() {
        let singles: Vec<BodyAlteration> = BodyAlteration::BYTES
            .into_iter()
            .chain(JsonStyle::ALL.map(BodyAlteration::Reserialized))
            .collect();
        let (byte_pairs, json_pairs) = pairs_of(&singles);
        for (later, earlier) in byte_pairs.iter().chain(&json_pairs) {
            assert_ne!(later.kind(), earlier.kind(), "{later:?} after {earlier:?}");
            assert!(!matches!(earlier, BodyAlteration::Reserialized(_)));
        }
        assert_eq!(most_attempts(), 54);
    }

    #[test]
    fn unexplained_mismatch_says_what_to_check() {
        let header = header_with(b"some other key entirely", &NOW.to_string(), BODY);
        let result = check(&header, BODY);
        assert_eq!(result.verdict, Verdict::Mismatch);
        assert!(
            result
                .hints
                .iter()
                .any(|h| h.contains("no common alteration"))
        );
    }

    #[test]
    fn content_length_disagreement() {
        assert_eq!(content_length_hint(Some("10"), 10), None);
        assert_eq!(content_length_hint(None, 10), None);
        assert!(
            content_length_hint(Some("12"), 10)
                .unwrap()
                .contains("12 bytes but 10")
        );
        assert!(
            content_length_hint(Some("x"), 10)
                .unwrap()
                .contains("not a number")
        );
    }

    #[test]
    fn verdict_names_round_trip() {
        for verdict in Verdict::ALL {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
            let json = serde_json::to_string(&verdict).unwrap();
            assert_eq!(json, format!("\"{verdict}\""));
        }
    }

    /// The body signed, and a header signed over `signed` with a key no
    /// alteration explains: every alteration is tried, none matches.
    fn unexplainable(body: &[u8]) -> (String, Mismatch) {
        let header = header_with(b"another key", &NOW.to_string(), body);
        match verify_unexplained(&[secret()], Some(&header), body, NOW, 300) {
            Checked::Mismatch(mismatch) => (header, mismatch),
            Checked::Done(check, _) => panic!("not a mismatch: {check:?}"),
        }
    }

    fn explained(body: &[u8], budget: &ForensicsBudget) -> Explanation {
        let (_, mismatch) = unexplainable(body);
        explain_mismatch(&[secret()], mismatch.parsed(), body, budget, &mut || false)
    }

    /// `depth` levels of JSON arrays around `1,1,1,…`: about `size` bytes,
    /// the costliest shape to parse or re-indent (also the dashboard's tests).
    pub(crate) fn nested(depth: usize, size: usize) -> Vec<u8> {
        let mut body = "[".repeat(depth).into_bytes();
        while body.len() + depth + 2 < size {
            body.extend_from_slice(b"1,");
        }
        body.push(b'1');
        body.extend(std::iter::repeat_n(b']', depth));
        body
    }

    #[test]
    fn a_deep_body_is_not_reserialized_and_the_hint_says_why() {
        // The attack of issue 12: 1 MiB nested 126 levels deep.
        let body = nested(126, 1024 * 1024);
        let found = explained(&body, &ForensicsBudget::DEFAULT);
        assert!(
            found
                .cut
                .iter()
                .any(|c| c.contains("nested more than 64 levels")),
            "{found:?}"
        );
        assert!(found.largest_variant <= body.len() + 3, "{found:?}");
        // Only the byte alterations: no JSON style was built.
        assert!(found.variants_tried <= BodyAlteration::BYTES.len());
    }

    #[test]
    fn a_wide_body_is_not_reserialized_and_the_hint_says_why() {
        let body = nested(1, 512 * 1024);
        let found = explained(&body, &ForensicsBudget::DEFAULT);
        assert!(
            found
                .cut
                .iter()
                .any(|c| c.contains("more than 100000 values")),
            "{found:?}"
        );
    }

    #[test]
    fn a_body_over_the_budget_gets_only_the_key_alterations() {
        let budget = ForensicsBudget {
            max_body: 1024,
            ..ForensicsBudget::DEFAULT
        };
        let body = vec![b'x'; 4096];
        let key = secret()
            .text
            .strip_prefix(SECRET_PREFIX)
            .unwrap()
            .to_string();
        let header = header_with(key.as_bytes(), &NOW.to_string(), &body);
        let Checked::Mismatch(mismatch) =
            verify_unexplained(&[secret()], Some(&header), &body, NOW, 300)
        else {
            panic!("a mismatch")
        };
        let (check, _) = mismatch.explain(&[secret()], &body, &budget, &mut || false);
        let hints = check.hints.join("\n");
        assert!(hints.contains("without its whsec_ prefix"), "{hints}");
        assert!(
            hints.contains("the body is 4096 bytes, over the 1024-byte budget"),
            "{hints}"
        );
    }

    #[test]
    fn a_pretty_form_over_the_budget_is_not_built() {
        let budget = ForensicsBudget {
            max_variant_bytes: 200,
            ..ForensicsBudget::DEFAULT
        };
        let found = explained(BODY, &budget);
        assert!(found.largest_variant <= 200, "{found:?}");
        assert!(
            found
                .cut
                .iter()
                .any(|c| c.contains("pretty JSON") && c.contains("200-byte budget")),
            "{found:?}"
        );
    }

    #[test]
    fn out_of_time_stops_between_alterations_and_says_so() {
        let (header, mismatch) = unexplainable(BODY);
        let mut asked = 0;
        let (check, _) =
            mismatch.explain(&[secret()], BODY, &ForensicsBudget::DEFAULT, &mut || {
                asked += 1;
                asked > 2
            });
        assert_eq!(check.verdict, Verdict::Mismatch);
        let hints = check.hints.join("\n");
        assert!(
            hints.contains("forensics stopped after 500 ms (the time budget): 2 of 54"),
            "{hints}"
        );
        assert!(hints.contains("none of the alterations tried"), "{hints}");
        // Unexplained, it says that too; the rest of the verdict is the same.
        let (_, mismatch) = unexplainable(BODY);
        let (skipped, parsed) = mismatch.unexplained("3 explanations already running");
        assert_eq!(parsed, parse_header(&header).unwrap());
        assert_eq!(skipped.detail, check.detail);
        assert!(
            skipped
                .hints
                .contains(&"forensics skipped: 3 explanations already running".to_string())
        );
    }

    #[test]
    fn valid_detail_reads_as_the_format_it_replaced() {
        let old = |fingerprint: &str, skew: i64, tolerance_s: u64| {
            let described = match skew {
                0 => "current".to_string(),
                s if s > 0 => format!("{s} s old"),
                s => format!("{} s in the future", s.unsigned_abs()),
            };
            format!(
                "The signature matches secret {fingerprint} and t is {described} (tolerance {tolerance_s} s)."
            )
        };
        let fingerprints = [
            secret().fingerprint(),
            "…(3 chars)".to_string(),
            String::new(),
        ];
        let skews = [
            0,
            1,
            -1,
            9,
            10,
            -10,
            299,
            300,
            -300,
            12_345,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let tolerances = [0, 1, 300, 1_000_000, u64::MAX];
        for fingerprint in &fingerprints {
            for &skew in &skews {
                for &tolerance in &tolerances {
                    assert_eq!(
                        valid_detail(fingerprint, skew, tolerance),
                        old(fingerprint, skew, tolerance)
                    );
                }
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::fmt::Write as _;

        /// One part of a header: mostly the canonical `t=` and `sha256=`,
        /// and every deviation the general parse knows about.
        fn header_part() -> impl Strategy<Value = String> {
            let space = || prop::sample::select(vec!["", "", "", " ", "\t", "\u{a0}"]);
            let key = prop::sample::select(vec![
                "t", "t", "t", "sha256", "sha256", "sha256", "v1", "T", "SHA256", "x", "", "t ",
            ]);
            let value = prop_oneof![
                4 => "[0-9]{1,20}",
                4 => "[0-9a-f]{64}",
                1 => "[0-9a-fA-F]{64}",
                1 => "[0-9a-fA-F]{0,70}",
                1 => "[0-9]{1,10}[.:;& -][0-9a-z]{0,4}",
                1 => "[ -~]{0,12}",
                1 => any::<String>(),
            ];
            prop_oneof![
                8 => (space(), key, space(), value, space())
                    .prop_map(|(a, k, b, v, c)| format!("{a}{k}{b}={v}{c}")),
                1 => "[ -~]{0,10}",
            ]
        }

        /// Headers: canonical ones, canonical ones with one byte changed,
        /// parts joined with "," (or another separator), and junk.
        fn header() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => ("[0-9]{1,20}", "[0-9a-f]{64}")
                    .prop_map(|(t, hex)| format!("t={t},sha256={hex}")),
                3 => ("[0-9]{1,19}", "[0-9a-f]{64}", any::<prop::sample::Index>(), any::<char>())
                    .prop_map(|(t, hex, at, c)| {
                        let mut chars: Vec<char> = format!("t={t},sha256={hex}").chars().collect();
                        let at = at.index(chars.len());
                        chars[at] = c;
                        chars.into_iter().collect()
                    }),
                4 => (
                    proptest::collection::vec(header_part(), 0..5),
                    prop::sample::select(vec![",", ",", ",", ", ", ";", "&", " "]),
                )
                    .prop_map(|(parts, separator)| parts.join(separator)),
                1 => any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            /// The fast path gives what the general parse (the one that was
            /// the only parse before it) gives, for every header.
            #[test]
            fn the_fast_path_agrees_with_the_general_parse(header in header()) {
                prop_assert_eq!(parse_header(&header), parse_header_general(&header), "{:?}", header);
            }

            #[test]
            fn arbitrary_headers_never_panic(header in any::<String>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse_header(&header);
                let result = verify(&[secret()], Some(&header), &body, NOW, 300);
                prop_assert_ne!(result.verdict, Verdict::Valid);
            }

            #[test]
            fn header_shaped_strings_never_panic(
                t in "[0-9a-zA-Z .-]{0,24}",
                digests in proptest::collection::vec("[0-9a-fA-Fg ]{0,70}", 0..4),
                label in prop::sample::select(vec!["sha256", "v1", "SHA256", " sha256", "x"]),
                body in proptest::collection::vec(any::<u8>(), 0..128),
            ) {
                let mut header = format!("t={t}");
                for digest in &digests {
                    let _ = write!(header, ",{label}={digest}");
                }
                let _ = verify(&[secret()], Some(&header), &body, NOW, 300);
            }

            #[test]
            fn signing_round_trips(t in 0i64..4_000_000_000, body in proptest::collection::vec(any::<u8>(), 0..512)) {
                let header = sign(&secret(), t, &body);
                let result = verify(&[secret()], Some(&header), &body, t, 300);
                prop_assert_eq!(result.verdict, Verdict::Valid);
            }
        }

        proptest! {
            // Each case builds a header of up to 64 KiB: fewer cases.
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Headers up to the listener's 64 KiB head cap, with up to
            /// thousands of entries: the verdict's text stays bounded (it
            /// quotes the header cut short, never whole) and the time too.
            #[test]
            fn long_headers_cost_a_bounded_verdict(
                entries in proptest::collection::vec(
                    (prop::sample::select(vec!["t", "sha256", "v1", " sha256", "t "]), "[0-9a-f]{0,70}"),
                    1..8,
                ),
                repeat in 1usize..200,
                body in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let one: Vec<String> = entries.iter().map(|(label, value)| format!("{label}={value}")).collect();
                let header = vec![one.join(","); repeat].join(",");
                let started = std::time::Instant::now();
                let result = verify(&[secret()], Some(&header), &body, NOW, 300);
                let text: usize = result.detail.len() + result.hints.iter().map(String::len).sum::<usize>();
                prop_assert!(text <= 4096, "{} bytes of verdict for a {}-byte header", text, header.len());
                prop_assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
            }
        }

        proptest! {
            // Each case explains a body of up to 40 KB: fewer cases, same reach.
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn forensics_stay_within_the_budget(
                body in prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..4096),
                    (1usize..300, 0usize..20_000).prop_map(|(depth, size)| nested(depth, size)),
                    (0usize..40_000).prop_map(|n| format!("[{}0]", "0,".repeat(n)).into_bytes()),
                    proptest::collection::vec(
                        prop::sample::select(vec![b'[', b']', b'{', b'}', b'"', b'\\', b',', b':', b'\n', b'\r', b'1']),
                        0..4096,
                    ),
                ],
            ) {
                let budget = ForensicsBudget {
                    max_body: 16 * 1024,
                    max_json_depth: 32,
                    max_json_values: 5_000,
                    max_variant_bytes: 24 * 1024,
                    time: Duration::from_secs(1),
                };
                let started = std::time::Instant::now();
                let deadline = started + budget.time;
                let found = {
                    let (_, mismatch) = unexplainable(&body);
                    explain_mismatch(&[secret()], mismatch.parsed(), &body, &budget, &mut || {
                        std::time::Instant::now() >= deadline
                    })
                };
                prop_assert!(found.largest_variant <= budget.max_variant_bytes, "{:?}", found);
                prop_assert!(found.variants_tried <= most_attempts(), "{:?}", found);
                // The time budget is checked between alterations, and each
                // costs little at these sizes: well within a few seconds.
                prop_assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
                if body.len() > budget.max_body {
                    prop_assert_eq!(found.variants_tried, 0);
                    prop_assert!(!found.cut.is_empty());
                }
            }
        }
    }
}
