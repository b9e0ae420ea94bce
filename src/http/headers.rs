//! Which headers of a message travel on when it is forwarded, replayed or
//! exported (RFC 9110 §7.6.1), and a header map as the record keeps it.

use crate::delivery;

/// Headers that describe one connection, not the message (RFC 9110
/// §7.6.1), plus `Host` and `Content-Length`, which a client sets for its
/// own target and body.
const NOT_END_TO_END: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether a header travels on when a message is forwarded or resent, as
/// far as its name alone tells: see [`EndToEnd`] for the headers a message
/// names as its own connection's.
pub(crate) fn is_end_to_end(name: &str) -> bool {
    !NOT_END_TO_END.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The headers of one message that travel on: not hop-by-hop by name, and
/// not named in its `Connection` header (RFC 9110 §7.6.1: `Connection:
/// keep-alive, X-Secret-Thing` makes `X-Secret-Thing` this hop's only).
pub(crate) struct EndToEnd {
    /// The options of every `Connection` header, lowercase.
    connection_options: Vec<String>,
}

impl EndToEnd {
    pub(crate) fn of<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let connection_options = headers
            .into_iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, value)| value.split(','))
            .map(|option| option.trim().to_ascii_lowercase())
            .filter(|option| !option.is_empty())
            .collect();
        Self { connection_options }
    }

    pub(crate) fn allows(&self, name: &str) -> bool {
        is_end_to_end(name)
            && !self
                .connection_options
                .iter()
                .any(|option| option.eq_ignore_ascii_case(name))
    }
}

/// The headers of `delivery` that a forward, a replay or an export sends,
/// in order, each value's exact bytes as received.
pub(crate) fn headers_to_send(delivery: &delivery::Delivery) -> Vec<(String, Vec<u8>)> {
    let end_to_end = EndToEnd::of(
        delivery
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    delivery
        .header_bytes()
        .filter(|(name, _)| end_to_end.allows(name))
        .map(|(name, value)| (name.to_string(), value.into_owned()))
        .collect()
}

/// A header map as `[name, value]` pairs, repeats kept, values as
/// [`delivery::record_headers`] keeps them as text.
pub(crate) fn header_pairs(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    delivery::record_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        for name in [
            "Connection",
            "host",
            "Transfer-Encoding",
            "keep-alive",
            "content-length",
        ] {
            assert!(!is_end_to_end(name), "{name}");
        }
        for name in ["x-danube-signature", "content-type", "user-agent"] {
            assert!(is_end_to_end(name), "{name}");
        }
    }

    #[test]
    fn headers_named_in_connection_are_not_sent_on() {
        let mut stored = crate::test_support::sample(3, br#"{"event":"x"}"#);
        stored.headers.extend([
            ("connection".into(), "keep-alive, X-Secret-Thing".into()),
            ("x-secret-thing".into(), "for this hop".into()),
            ("connection".into(), " ,x-other ,".into()),
            ("X-Other".into(), "also".into()),
            ("x-kept".into(), "yes".into()),
        ]);
        let sent: Vec<String> = headers_to_send(&stored)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            sent,
            [
                "content-type",
                "x-danube-signature",
                "x-dup",
                "x-dup",
                "x-kept"
            ]
        );
    }
}
