//! What a delivery record costs in memory, near enough: the one estimate
//! behind every byte budget that holds records (the store's broadcast, the
//! dashboard's history), so the two count a record alike.

use super::Delivery;

/// The record's own fields and its short strings (addresses, method,
/// version, the secret's fingerprint), whatever the request: a fixed share.
const FIXED: usize = 512;
/// A header's `(String, String)` slot in its `Vec`, beside the two texts.
const PER_HEADER: usize = 48;

/// A mirror's entry apart from its URL and error text.
const MIRROR: usize = 64;

/// The bytes `delivery` holds, near enough: [`FIXED`] for the record, and
/// the parts whose size follows the request: the body's allocation (its
/// capacity, not its length, since that is what is held), each header's
/// name and value and its slot, the exact bytes of headers that are not
/// UTF-8, the path, the group key, the event, the verdict's detail and
/// hints, the rule that answered, and the forward's URL, headers, error
/// and body preview. Not counted: what is shared with other holders (the
/// record is behind an `Arc`, counted once by each budget that holds it),
/// and the JSON line the store writes, which its holders count themselves.
pub(crate) fn estimate(delivery: &Delivery) -> usize {
    let headers = headers_size(&delivery.headers);
    let raw_headers: usize = delivery.raw_headers.iter().map(|raw| raw.value.len()).sum();
    let hints: usize = delivery.signature.hints.iter().map(String::len).sum();
    let forward = delivery.forward.as_ref().map_or(0, |f| {
        f.url.len()
            + headers_size(&f.headers)
            + f.error.as_ref().map_or(0, String::len)
            + f.body_preview.as_ref().map_or(0, String::len)
    });
    let mirrors: usize = delivery
        .mirrors
        .iter()
        .map(|m| MIRROR + m.url.len() + m.error.as_ref().map_or(0, String::len))
        .sum();
    FIXED
        + delivery.body.capacity()
        + headers
        + raw_headers
        + delivery.path.len()
        + delivery.group.len()
        + delivery.event.as_ref().map_or(0, String::len)
        + delivery.signature.detail.len()
        + hints
        + delivery.response.rule.len()
        + forward
        + mirrors
        + delivery.listener.as_ref().map_or(0, String::len)
}

fn headers_size(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + PER_HEADER)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{ForwardRecord, MirrorRecord, RawHeader};
    use crate::test_support::sample;

    /// A part, how to grow it, and the bytes it then adds.
    type Case = (&'static str, fn(&mut Delivery), usize);

    #[test]
    fn each_part_that_follows_the_request_counts_its_bytes() {
        let base = sample(1, b"");
        let cases: [Case; 11] = [
            ("body", |d| d.body = Vec::with_capacity(4096), 4096),
            (
                "header",
                |d| d.headers.push(("x-name".into(), "value".into())),
                6 + 5 + PER_HEADER,
            ),
            (
                "raw header",
                |d| {
                    d.raw_headers.push(RawHeader {
                        index: 0,
                        value: vec![0xff; 10],
                    });
                },
                10,
            ),
            ("path", |d| d.path.push_str("/0123456789"), 11),
            ("event", |d| d.event = Some("workflow.failed".into()), 15),
            ("hint", |d| d.signature.hints.push("1234".into()), 4),
            ("detail", |d| d.signature.detail.push_str("12345"), 5),
            ("rule", |d| d.response.rule.push_str("123"), 3),
            (
                "listener",
                |d| d.listener.get_or_insert_default().push_str("ann@laptop"),
                10,
            ),
            (
                "forward",
                |d| {
                    d.forward = Some(ForwardRecord {
                        url: "http://x/".into(),
                        status: Some(200),
                        headers: vec![("a".into(), "b".into())],
                        error: Some("oops".into()),
                        duration_ms: 1,
                        body_preview: Some("ok".into()),
                    });
                },
                9 + (1 + 1 + PER_HEADER) + 4 + 2,
            ),
            (
                "mirror",
                |d| {
                    d.mirrors.push(MirrorRecord {
                        url: "http://m/".into(),
                        status: None,
                        error: Some("refused".into()),
                        duration_ms: 1,
                    });
                },
                MIRROR + 9 + 7,
            ),
        ];
        for (part, grow, bytes) in cases {
            let mut grown = base.clone();
            grow(&mut grown);
            assert_eq!(estimate(&grown), estimate(&base) + bytes, "{part}");
        }
    }

    #[test]
    fn a_record_without_its_body_costs_the_body_less() {
        let whole = sample(1, &[b'x'; 1000]);
        let summary = whole.without_body();
        assert_eq!(estimate(&whole) - estimate(&summary), whole.body.capacity());
        assert!(estimate(&summary) >= FIXED);
        // The share of a plain record besides its body stays under 2 KiB:
        // the budgets' tests lean on it.
        assert!(estimate(&summary) < 2048, "{}", estimate(&summary));
    }
}
