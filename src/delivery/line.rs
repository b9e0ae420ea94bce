//! The record's JSON line, written by hand for the listener's hot path.
//!
//! Every delivery becomes one of these lines (in the store, and on stdout
//! with `--json`), and with serde's derive the line cost a fifth of the
//! listener's CPU: each string, the 1.4 KB of the body's base64 most of
//! all, went through `serde_json`'s escaping byte by byte, after the base64
//! had been made in a `String` of its own. Here the base64 is encoded
//! straight into the line (it never needs escaping), and a string that
//! holds only printable ASCII other than `"` and `\` is copied as it is.
//!
//! The output is byte for byte what `display::write_json_line` makes of
//! the same record with serde's derive: every value that is not plain
//! (a string that needs escaping, numbers, the rare nested parts) is handed
//! to that same serializer, and a property test holds the two together
//! over arbitrary records, so readers that parse with serde never see a
//! difference.

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

use super::Delivery;
use crate::display;
use crate::signature::SignatureCheck;

/// Bytes to reserve for `delivery`'s line, so it is written without the
/// buffer growing: the body's base64 and a little more than the rest of a
/// typical record (about 950 bytes). A line that outgrew its buffer was
/// copied whole by the reallocation, once for nearly every delivery.
pub(crate) fn capacity_for(delivery: &Delivery) -> usize {
    let headers: usize = delivery
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 8)
        .sum();
    delivery.body.len().div_ceil(3) * 4 + headers + 1536
}

/// `delivery` as one JSON line (no newline), appended to `out`.
pub(crate) fn write(delivery: &Delivery, out: &mut Vec<u8>) {
    write_up_to_id(delivery.id, out);
    write_after_id(delivery, out);
}

/// The line's start, `{"id":N`: what [`write_after_id`] follows.
pub(crate) fn write_up_to_id(id: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    unsigned(out, id);
}

/// Everything of the line after `{"id":N`: the store writes this before
/// the record has its id, and puts the id in front once it has.
pub(crate) fn write_after_id(d: &Delivery, out: &mut Vec<u8>) {
    // In serde's order, field by field: the tests compare the two lines.
    write_request(d, out);
    write_body(d, out);
    write_reading(d, out);
    write_answer(d, out);
    write_copy_marks(d, out);
    out.extend_from_slice(b",\"duration_ms\":");
    value(out, &d.duration_ms);
    out.push(b'}');
}

/// The request as it arrived, `received_at` through `raw_headers`.
#[inline]
fn write_request(d: &Delivery, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"received_at\":\"");
    rfc3339_millis(out, &d.received_at);
    out.extend_from_slice(b"\",\"remote_addr\":");
    string(out, &d.remote_addr);
    if let Some(local) = &d.local_addr {
        out.extend_from_slice(b",\"local_addr\":");
        string(out, local);
    }
    out.extend_from_slice(b",\"method\":");
    string(out, &d.method);
    out.extend_from_slice(b",\"path\":");
    string(out, &d.path);
    out.extend_from_slice(b",\"http_version\":");
    string(out, &d.http_version);
    out.extend_from_slice(b",\"headers\":[");
    for (index, (name, text)) in d.headers.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.push(b'[');
        string(out, name);
        out.push(b',');
        string(out, text);
        out.push(b']');
    }
    out.push(b']');
    if !d.raw_headers.is_empty() {
        out.extend_from_slice(b",\"raw_headers\":");
        value(out, &d.raw_headers);
    }
}

/// The body and what was read from it: `body_b64` through `event`. The
/// truncation flag and the next key are one literal, one copy fewer.
#[inline]
fn write_body(d: &Delivery, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"body_b64\":\"");
    super::base64_encode::encode_into(out, &d.body);
    out.extend_from_slice(b"\",\"body_size\":");
    unsigned(out, d.body_size);
    out.extend_from_slice(if d.body_truncated {
        b",\"body_truncated\":true,\"event\":"
    } else {
        b",\"body_truncated\":false,\"event\":"
    });
    optional_string(out, d.event.as_deref());
}

/// What the listener made of the delivery: `group` through `replay_of`.
#[inline]
fn write_reading(d: &Delivery, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"group\":");
    string(out, &d.group);
    out.extend_from_slice(b",\"attempt\":");
    unsigned(out, u64::from(d.attempt));
    out.extend_from_slice(b",\"signature\":");
    signature(out, &d.signature);
    if let Some(first) = d.replay_of {
        out.extend_from_slice(b",\"replay_of\":");
        unsigned(out, first);
    }
}

/// What was answered and passed on: `response`, `forward`, `mirrors`.
#[inline]
fn write_answer(d: &Delivery, out: &mut Vec<u8>) {
    let response = &d.response;
    out.extend_from_slice(b",\"response\":{\"action\":");
    string(out, &response.action);
    out.extend_from_slice(b",\"status\":");
    match response.status {
        Some(status) => unsigned(out, u64::from(status)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"delay_ms\":");
    unsigned(out, response.delay_ms);
    out.extend_from_slice(b",\"rule\":");
    string(out, &response.rule);
    out.extend_from_slice(b"},\"forward\":");
    value(out, &d.forward);
    if !d.mirrors.is_empty() {
        out.extend_from_slice(b",\"mirrors\":");
        value(out, &d.mirrors);
    }
}

/// The marks of a repetition, each only when present: `redelivery_of`,
/// `resent_from`, `edited`; and, with a shared store, the `listener`.
#[inline]
fn write_copy_marks(d: &Delivery, out: &mut Vec<u8>) {
    if let Some(id) = &d.redelivery_of {
        out.extend_from_slice(b",\"redelivery_of\":");
        string(out, id);
    }
    if let Some(original) = d.resent_from {
        out.extend_from_slice(b",\"resent_from\":");
        unsigned(out, original);
    }
    if let Some(edited) = d.edited {
        out.extend_from_slice(if edited {
            b",\"edited\":true"
        } else {
            b",\"edited\":false"
        });
    }
    if let Some(listener) = &d.listener {
        out.extend_from_slice(b",\"listener\":");
        string(out, listener);
    }
}

fn signature(out: &mut Vec<u8>, check: &SignatureCheck) {
    out.extend_from_slice(b"{\"verdict\":\"");
    out.extend_from_slice(check.verdict.as_str().as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":");
    optional_signed(out, check.timestamp);
    out.extend_from_slice(b",\"skew_s\":");
    optional_signed(out, check.skew_s);
    out.extend_from_slice(b",\"secret\":");
    optional_string(out, check.secret.as_deref());
    out.extend_from_slice(b",\"detail\":");
    string(out, &check.detail);
    out.extend_from_slice(b",\"hints\":[");
    for (index, hint) in check.hints.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, hint);
    }
    out.extend_from_slice(b"]}");
}

/// `received_at` as [`super::format_time`] writes it
/// (`2026-11-30T18:51:43.278Z`), digit by digit: chrono's formatter took
/// 700 instructions a record for these 24 bytes. Years outside 0..=9999
/// and leap seconds (which `Utc::now` never gives) go to chrono itself.
fn rfc3339_millis(out: &mut Vec<u8>, time: &DateTime<Utc>) {
    let year = time.year();
    if !(0..=9999).contains(&year) || time.nanosecond() >= 1_000_000_000 {
        out.extend_from_slice(super::format_time(time).as_bytes());
        return;
    }
    let millis = time.timestamp_subsec_millis();
    let fields = [
        (year as u32, 4, b'-'),
        (time.month(), 2, b'-'),
        (time.day(), 2, b'T'),
        (time.hour(), 2, b':'),
        (time.minute(), 2, b':'),
        (time.second(), 2, b'.'),
        (millis, 3, b'Z'),
    ];
    for (value, digits, after) in fields {
        let mut place = 10u32.pow(digits - 1);
        while place > 0 {
            out.push(b'0' + (value / place % 10) as u8);
            place /= 10;
        }
        out.push(after);
    }
}

/// `n` in decimal, as serde writes an integer, without its machinery
/// (eight numbers a line, and the id again for `--json`).
fn unsigned(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// `n`'s decimal digits, written at the end of `digits`: integers without
/// the formatting machinery, for the record's line and the listener's
/// answer alike.
pub(crate) fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
}

fn optional_signed(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => {
            if n < 0 {
                out.push(b'-');
            }
            unsigned(out, n.unsigned_abs());
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn optional_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string: copied as it is when nothing in it needs escaping, else
/// escaped by the serializer every other line goes through.
fn string(out: &mut Vec<u8>, text: &str) {
    if is_verbatim(text) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        value(out, text);
    }
}

/// Whether the serializer would write `text` as it is: no control
/// character, `"` or `\\` for JSON to escape, and nothing a terminal would
/// act on ([`display::is_dangerous`]).
///
/// Eight bytes at a time, without a branch per byte: a record's 21
/// strings cost 4,200 instructions a delivery checked byte by byte (and
/// twice over for the verdict's detail, whose fingerprint holds a `…`).
/// Only chars that are not ASCII can be ones a terminal acts on, and each
/// of those starts at a lead byte (`0b11xx_xxxx`): only those are decoded.
fn is_verbatim(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 8 {
        // A method, a header's name, a status: a look at each byte.
        return bytes.iter().all(|&b| PLAIN[usize::from(b)]) || verbatim_by_char(text);
    }
    let mut escape = 0;
    let mut words = bytes.chunks_exact(8);
    for (index, word) in words.by_ref().enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("a chunk of eight"));
        escape |= to_escape(word);
        if word & HIGH != 0 && dangerous_in(text, index * 8, word) {
            return false;
        }
    }
    if !words.remainder().is_empty() {
        // The last eight bytes, some of them again: looking twice at a
        // byte changes nothing.
        let at = bytes.len() - 8;
        let word = u64::from_le_bytes(bytes[at..].try_into().expect("eight bytes"));
        escape |= to_escape(word);
        if word & HIGH != 0 && dangerous_in(text, at, word) {
            return false;
        }
    }
    escape == 0
}

/// Whether `text` holds no char JSON escapes and none a terminal acts on,
/// char by char: what [`is_verbatim`] decides a word at a time.
fn verbatim_by_char(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c < ' ' || c == '"' || c == '\\' || display::is_dangerous(c))
}

/// Printable ASCII but `"` and `\\`: the bytes that need no look.
static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        table[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    table
};

/// Each byte's lowest bit set: a byte's value times this fills a word with it.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Each byte's highest bit set.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Non-zero when one of the eight bytes of `word` is one JSON escapes: a
/// control byte (below 0x20), `"`, `\\`, or DEL, which the terminal-safe
/// formatter escapes. Each test is exact about whether such a byte is
/// there (the borrow of a subtraction only reaches bytes above one that is).
const fn to_escape(word: u64) -> u64 {
    const fn has_zero(word: u64) -> u64 {
        word.wrapping_sub(ONES) & !word & HIGH
    }
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    below_space
        | has_zero(word ^ (ONES * b'"' as u64))
        | has_zero(word ^ (ONES * b'\\' as u64))
        | has_zero(word ^ (ONES * 0x7f))
}

/// Whether a char that starts among the eight bytes of `word`, which are
/// `text`'s from `at`, is one a terminal would act on.
fn dangerous_in(text: &str, at: usize, word: u64) -> bool {
    // A lead byte has its two highest bits set; `<< 1` brings each byte's
    // second bit under its first (what crosses into the next byte is
    // masked away).
    let mut leads = word & (word << 1) & HIGH;
    while leads != 0 {
        let lane = leads.trailing_zeros() as usize / 8;
        if text[at + lane..]
            .chars()
            .next()
            .is_some_and(display::is_dangerous)
        {
            return true;
        }
        leads &= leads - 1;
    }
    false
}

fn value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    display::write_json_line(out, value);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::delivery::{ForwardRecord, MirrorRecord, RawHeader};
    use crate::signature::Verdict;
    use crate::test_support::sample;

    /// The line serde's derive makes of the record: what this module must match.
    fn by_serde(delivery: &Delivery) -> String {
        let mut out = Vec::new();
        display::write_json_line(&mut out, delivery);
        String::from_utf8(out).unwrap()
    }

    fn by_hand(delivery: &Delivery) -> String {
        let mut out = Vec::new();
        write(delivery, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_plain_record_is_written_as_serde_writes_it() {
        let record = sample(7, br#"{"event":"workflow.failed","data":{}}"#);
        assert_eq!(by_hand(&record), by_serde(&record));
    }

    #[test]
    fn every_optional_part_is_written_as_serde_writes_it() {
        let mut record = sample(u64::MAX, b"\x00\xff not json \x1b[31m");
        record.local_addr = Some("127.0.0.1:4000".into());
        record.raw_headers = vec![RawHeader {
            index: 1,
            value: b"\xff\xfe".to_vec(),
        }];
        record.event = None;
        record.body_truncated = true;
        record.replay_of = Some(3);
        record.signature.hints = vec!["one".into(), "two \"quoted\"".into()];
        record.signature.secret = None;
        record.signature.timestamp = None;
        record.signature.skew_s = Some(-12);
        record.signature.verdict = Verdict::Stale;
        record.response.status = None;
        record.forward = Some(ForwardRecord {
            url: "http://127.0.0.1:3000/hook".into(),
            status: Some(201),
            headers: vec![("x".into(), "\u{202e}y".into())],
            error: None,
            duration_ms: 4,
            body_preview: Some("ok\n".into()),
        });
        record.mirrors = vec![
            MirrorRecord {
                url: "http://127.0.0.1:3001/".into(),
                status: Some(500),
                error: None,
                duration_ms: 2,
            },
            MirrorRecord {
                url: "http://127.0.0.1:3002/".into(),
                status: None,
                error: Some("refused \u{1b}[2J".into()),
                duration_ms: 0,
            },
        ];
        record.redelivery_of = Some("dlv_\u{1b}1".into());
        record.resent_from = Some(5);
        record.edited = Some(true);
        record.listener = Some("ann@laptop\u{1b}".into());
        record.duration_ms = 1.0e-7;
        assert_eq!(by_hand(&record), by_serde(&record));
    }

    #[test]
    fn a_typical_line_fits_the_capacity_reserved_for_it() {
        let body = vec![b'x'; 1024];
        let mut record = sample(u64::MAX, &body);
        record.local_addr = Some("127.0.0.1:4000".into());
        record.signature.detail =
            "The signature matches secret whsec_…abcd and t is 4 s old (tolerance 300 s).".into();
        let line = by_hand(&record);
        assert!(line.len() <= capacity_for(&record), "{} bytes", line.len());
    }

    proptest! {
        #[test]
        fn a_time_is_written_as_chrono_writes_it(millis in -62_000_000_000_000i64..300_000_000_000_000) {
            let time = chrono::DateTime::from_timestamp_millis(millis).unwrap();
            let mut out = Vec::new();
            rfc3339_millis(&mut out, &time);
            prop_assert_eq!(String::from_utf8(out).unwrap(), crate::delivery::format_time(&time));
        }
    }

    #[test]
    fn a_leap_second_and_a_far_year_are_written_as_chrono_writes_them() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_milli_opt(23, 59, 59, 1_500))
            .unwrap()
            .and_utc();
        let far = chrono::DateTime::from_timestamp_millis(400_000_000_000_000).unwrap();
        for time in [leap, far] {
            let mut out = Vec::new();
            rfc3339_millis(&mut out, &time);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                crate::delivery::format_time(&time)
            );
        }
    }

    #[test]
    fn strings_with_nothing_to_escape_are_verbatim() {
        for verbatim in [
            "application/json t=1,sha256=ab ~",
            "",
            "whsec_…0000",
            "café 😀",
        ] {
            assert!(is_verbatim(verbatim), "{verbatim:?}");
        }
        for escaped in [
            "a\"b",
            "a\\b",
            "\x1b[31m",
            "\x7f",
            "\t",
            "\u{9b}",
            "x\u{202e}y",
        ] {
            assert!(!is_verbatim(escaped), "{escaped:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Every length around the eight-byte words, every kind of char at
        /// every offset of one (a dangerous char's lead byte in the last
        /// bytes, read twice, among them).
        #[test]
        fn verbatim_a_word_at_a_time_is_verbatim_char_by_char(text in prop_oneof![
            text(),
            "[a-z]{0,17}[\u{0}-\u{a0}\u{202e}\u{2066}\u{200e}\u{61c}…é😀\"\\\\][a-z]{0,17}",
            proptest::collection::vec(any::<char>(), 0..24)
                .prop_map(|chars| chars.into_iter().collect::<String>()),
        ]) {
            prop_assert_eq!(is_verbatim(&text), verbatim_by_char(&text), "{:?}", text);
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,40}",
            any::<String>(),
            "[a\"\\\\\u{1b}\u{7f}\u{9b}\u{202e}\u{2066}\n\t é😀]{0,20}",
        ]
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        proptest::sample::select(Verdict::ALL.to_vec())
    }

    prop_compose! {
        fn record()(
            id in any::<u64>(),
            millis in 0i64..4_102_444_800_000,
            strings in proptest::collection::vec(text(), 10),
            headers in proptest::collection::vec((text(), text()), 0..6),
            raw in proptest::collection::vec(any::<u8>(), 0..4),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            body_size in any::<u64>(),
            truncated in any::<bool>(),
            has in proptest::collection::vec(any::<bool>(), 6),
            attempt in any::<u32>(),
            verdict in verdict(),
            numbers in (any::<i64>(), any::<i64>(), any::<u64>(), any::<u16>()),
            hints in proptest::collection::vec(text(), 0..3),
            duration_ms in prop_oneof![any::<f64>(), 0.0..10_000.0f64],
        ) -> Delivery {
            let mut record = sample(id, &body);
            let [remote, local, method, path, event, group, detail, action, rule, redelivery] =
                <[String; 10]>::try_from(strings).unwrap();
            record.received_at =
                chrono::DateTime::from_timestamp_millis(millis).unwrap();
            record.remote_addr = remote;
            record.local_addr = has[0].then_some(local);
            record.method = method;
            record.path = path;
            record.headers = headers;
            record.raw_headers = if has[1] {
                vec![RawHeader { index: raw.len(), value: raw }]
            } else {
                vec![]
            };
            record.body_size = body_size;
            record.body_truncated = truncated;
            record.event = has[2].then_some(event);
            record.group = group;
            record.attempt = attempt;
            record.signature = SignatureCheck {
                verdict,
                timestamp: has[3].then_some(numbers.0),
                skew_s: has[4].then_some(numbers.1),
                secret: has[5].then(|| "whsec_…abcd".to_string()),
                detail,
                hints,
            };
            record.replay_of = has[1].then_some(numbers.2);
            record.resent_from = has[3].then_some(numbers.2);
            record.edited = has[4].then_some(has[5]);
            record.response.action = action;
            record.response.status = has[2].then_some(numbers.3);
            record.response.delay_ms = numbers.2;
            record.response.rule = rule;
            record.listener = has[1].then(|| "ann@host".to_string());
            record.redelivery_of = has[3].then_some(redelivery);
            record.duration_ms = duration_ms;
            record
        }
    }

    proptest! {
        #[test]
        fn any_record_is_written_byte_for_byte_as_serde_writes_it(record in record()) {
            prop_assert_eq!(by_hand(&record), by_serde(&record));
        }
    }
}
