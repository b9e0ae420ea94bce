//! One test per forensic alternative of SPEC §6, and the budget that bounds
//! what explaining a hostile body may cost.

use base64::Engine as _;

use super::*;
use crate::signature::header::{parse_header, sign};
use crate::signature::tests::{BODY, NOW, check, header_with, secret};
use crate::signature::verify::{Checked, Mismatch, Verdict, verify, verify_unexplained};
use crate::test_support::nested;

fn assert_mismatch_hint(header: &str, body: &[u8], needle: &str) {
    let result = check(header, body);
    assert_eq!(result.verdict, Verdict::Mismatch, "{result:?}");
    assert!(
        result.hints.iter().any(|h| h.contains(needle)),
        "no hint containing {needle:?} in {:#?}",
        result.hints
    );
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

#[test]
fn a_deep_body_is_not_reserialized_and_the_hint_says_why() {
    // A hostile sender's costliest body: 1 MiB nested 126 levels deep.
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
    let (check, _) = mismatch.explain(&[secret()], BODY, &ForensicsBudget::DEFAULT, &mut || {
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

mod properties {
    use super::*;
    use proptest::prelude::*;

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
