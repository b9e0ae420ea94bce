//! The `X-Danube-Signature` header's text: built by [`sign`], read by
//! [`parse_header`], which names the first fault of a header it cannot read
//! and the quirks of one it can.

use super::secret::{DIGEST_LEN, Secret};

/// The header Danube signs with.
pub(crate) const HEADER_NAME: &str = "X-Danube-Signature";

/// Timestamps above this are taken to be milliseconds (year 5138 in seconds).
pub(super) const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// The `X-Danube-Signature` value for `body` signed at `t`.
pub fn sign(secret: &Secret, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!("t={t},sha256={}", hex::encode(secret.digest(&t, body)))
}

/// What a header parse found wrong, each fault named (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum HeaderFault {
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
pub(super) const REPEATED_SHOWN: usize = 100;

/// Things a parse tolerated but a strict receiver might not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderQuirk {
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
    pub(super) fn hint(&self) -> String {
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
pub(crate) struct ParsedHeader {
    /// `t` exactly as written: the signed content uses these bytes.
    pub(crate) t_text: String,
    pub(crate) t: i64,
    /// Each `sha256=` entry, decoded; every one is exactly 32 bytes.
    pub(crate) digests: Vec<[u8; DIGEST_LEN]>,
    pub(crate) quirks: Vec<HeaderQuirk>,
}

/// Parse `t=<t>,sha256=<hex>[,sha256=<hex>…]`, naming the first fault.
pub(super) fn parse_header(header: &str) -> Result<ParsedHeader, HeaderFault> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::secret::digest;
    use crate::signature::tests::{BODY, NOW, check, secret};
    use crate::signature::verify::Verdict;

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

    mod properties {
        use super::*;
        use proptest::prelude::*;

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

            /// The fast path gives what the general parse (which reads
            /// every header) gives, for every header.
            #[test]
            fn the_fast_path_agrees_with_the_general_parse(header in header()) {
                prop_assert_eq!(parse_header(&header), parse_header_general(&header), "{:?}", header);
            }
        }
    }
}
