//! The verdict on one delivery's signature (SPEC §5): which secret
//! matched, how old `t` is, and what to do about it; a mismatch is handed
//! to the forensics to explain.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::forensics::{ForensicsBudget, explain_mismatch};
use super::header::{
    HEADER_NAME, HeaderFault, HeaderQuirk, MILLIS_THRESHOLD, ParsedHeader, REPEATED_SHOWN,
    parse_header,
};
use super::secret::{Secret, any_digest_matches};

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
    pub(crate) const ALL: [Verdict; 6] = [
        Self::Valid,
        Self::Mismatch,
        Self::Stale,
        Self::Missing,
        Self::Malformed,
        Self::Unchecked,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Mismatch => "mismatch",
            Self::Stale => "stale",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unchecked => "unchecked",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
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
    pub(crate) timestamp: Option<i64>,
    /// `now − t` in seconds: positive is in the past.
    pub(crate) skew_s: Option<i64>,
    /// Fingerprint of the secret that matched.
    pub(crate) secret: Option<String>,
    /// One sentence.
    pub detail: String,
    pub(crate) hints: Vec<String>,
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
pub(crate) enum Checked {
    Done(SignatureCheck, Option<ParsedHeader>),
    Mismatch(Mismatch),
}

/// A mismatch whose forensics have not run yet: explaining one costs far
/// more than verifying, so [`verify_unexplained`] leaves the caller to
/// choose where and within what budget (the listener runs it off its
/// async workers, a few at a time).
#[derive(Debug, Clone)]
pub(crate) struct Mismatch {
    /// The verdict, detail and every hint but the explanation's.
    check: SignatureCheck,
    parsed: ParsedHeader,
    /// Where in `check.hints` the explanation's hints go.
    explain_at: usize,
}

impl Mismatch {
    /// The forensics' tests explain a mismatch piece by piece; the crate
    /// only ever explains it whole.
    #[cfg(test)]
    pub(super) fn parsed(&self) -> &ParsedHeader {
        &self.parsed
    }

    /// Try the known alterations within `budget`, asking `out_of_time`
    /// between them; a cut explanation says so in a hint.
    pub(crate) fn explain(
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
    pub(crate) fn unexplained(self, why: &str) -> (SignatureCheck, ParsedHeader) {
        Self::finish(self, vec![format!("forensics skipped: {why}")])
    }

    fn finish(mut self, hints: Vec<String>) -> (SignatureCheck, ParsedHeader) {
        let at = self.explain_at.min(self.check.hints.len());
        self.check.hints.splice(at..at, hints);
        (self.check, self.parsed)
    }
}

/// Verify `header` over `body` as [`verify`] does, but hand a
/// mismatch back unexplained.
pub(crate) fn verify_unexplained(
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
        (check.verdict, check.detail) =
            judge_match(secret, index, parsed.t, skew, tolerance_s, &mut hints);
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

/// Valid or stale, and the sentence that says so, for a digest that
/// `secret` (the `index`th configured, from 0) gives; its hints go onto
/// `hints`.
fn judge_match(
    secret: &Secret,
    index: usize,
    t: i64,
    skew: i64,
    tolerance_s: u64,
    hints: &mut Vec<String>,
) -> (Verdict, String) {
    if index > 0 {
        hints.push(format!(
            "matched configured secret #{} ({}), not the first one; the sender still \
             signs with it",
            index + 1,
            secret.fingerprint()
        ));
    }
    hints.extend(timestamp_unit_hint(t));
    match staleness(skew, tolerance_s) {
        None => (
            Verdict::Valid,
            valid_detail(&secret.fingerprint, skew, tolerance_s),
        ),
        Some(sentence) => {
            hints.push(
                "a receiver must reject it: check this machine's clock, or whether the \
                 delivery was held up or replayed"
                    .into(),
            );
            (
                Verdict::Stale,
                format!(
                    "The signature matches secret {}, but {sentence}.",
                    secret.fingerprint()
                ),
            )
        }
    }
}

/// The verdict on a request with two signature headers: `malformed`,
/// naming both. Which one a receiver reads depends on its framework (the
/// first, the last, or both joined with ","), so neither is checked.
pub(crate) fn repeated_header(first: &str, second: &str) -> SignatureCheck {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::header::sign;
    use crate::signature::secret::DIGEST_LEN;
    use crate::signature::tests::{BODY, NOW, check, header_with, secret};

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
    fn verify_parsing_hands_back_the_header_it_parsed() {
        let good = header_with(secret().key(), &NOW.to_string(), BODY);
        let wrong = format!("t={NOW},sha256={}", "ab".repeat(DIGEST_LEN));
        for header in [good.as_str(), wrong.as_str()] {
            let (check, parsed) = verify_parsing(
                &[secret()],
                Some(header),
                BODY,
                NOW,
                crate::facts::TOLERANCE_S,
            );
            assert_eq!(check, self::check(header, BODY));
            assert_eq!(parsed, Some(parse_header(header).unwrap()), "{header}");
        }
        for header in [None, Some("t=abc,sha256=00"), Some(""), Some("sha256=00")] {
            let (check, parsed) = verify_parsing(&[secret()], header, BODY, NOW, 300);
            assert_eq!(parsed, None, "{header:?}");
            assert_eq!(check, verify(&[secret()], header, BODY, NOW, 300));
        }
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

    #[test]
    fn verdict_names_round_trip() {
        for verdict in Verdict::ALL {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
            let json = serde_json::to_string(&verdict).unwrap();
            assert_eq!(json, format!("\"{verdict}\""));
        }
    }

    #[test]
    fn valid_detail_reads_as_format_would_write_it() {
        let formatted = |fingerprint: &str, skew: i64, tolerance_s: u64| {
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
                        formatted(fingerprint, skew, tolerance)
                    );
                }
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::fmt::Write as _;
        use std::time::Duration;
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

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
    }
}
