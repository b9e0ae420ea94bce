//! The request head as the record keeps it: the target (only a path, or
//! the path of an absolute URL, is ever joined to a forward URL), the
//! version, the headers and what the listener reads of them, and the
//! head's size as sent.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Uri, Version};

use super::loops;
use crate::delivery::{self, RawHeader};
use crate::{resend, signature};

/// A request's headers as the record keeps them, and what the listener
/// reads of them, in one pass over the header map: the record's pairs
/// were one pass, and each header read another lookup, hashing its name.
pub(super) struct Headers<'a> {
    /// `[name, text]` in arrival order.
    pub(super) pairs: Vec<(String, String)>,
    /// The exact bytes of the values that are not UTF-8.
    pub(super) raw: Vec<RawHeader>,
    /// The first `Content-Length`, when it is text.
    pub(super) declared_length: Option<&'a str>,
    /// The same as a number, when it is one (read once, for the three
    /// that ask).
    pub(super) declared: Option<u64>,
    /// Whether the client waits for `100 Continue` before it sends the body.
    pub(super) expects_continue: bool,
    /// Where the first two `X-Danube-Signature` headers are in `pairs`.
    signatures: [Option<usize>; 2],
    /// The first of each header that marks a copy this tool sent
    /// ([`crate::resend`]) or a redelivery from Danube's log.
    resent_from: Option<&'a HeaderValue>,
    edited: Option<&'a HeaderValue>,
    redelivery_of: Option<&'a HeaderValue>,
    /// Whether an `X-Danube-Hooks-Via` holds this run's nonce: the
    /// request is this listener's own forward or mirror come back.
    pub(super) looped: bool,
}

/// How the name of every header the listener reads by name beyond HTTP's
/// own begins (the signature, the marks of copies and redeliveries, and
/// the nonce of a loop),
/// as the map keeps names: lowercase. Other names are passed over with
/// this one test.
const OURS: &str = "x-danube-";

impl<'a> Headers<'a> {
    pub(super) fn of(map: &'a HeaderMap) -> Self {
        let mut content_length: Option<&HeaderValue> = None;
        let mut expect: Option<&HeaderValue> = None;
        let mut signatures = [None, None];
        let (mut resent_from, mut edited, mut redelivery_of) = (None, None, None);
        let mut looped = false;
        let (pairs, raw) =
            delivery::record_headers(map.iter().enumerate().map(|(index, (name, value))| {
                // The first of each, as `HeaderMap::get` gives it: the map
                // gives a name's values in order, the first first.
                let text = name.as_str();
                if *name == header::CONTENT_LENGTH {
                    content_length.get_or_insert(value);
                } else if *name == header::EXPECT {
                    expect.get_or_insert(value);
                } else if !text.starts_with(OURS) {
                } else if text.eq_ignore_ascii_case(signature::HEADER_NAME) {
                    if let Some(free) = signatures.iter_mut().find(|at| at.is_none()) {
                        *free = Some(index);
                    }
                } else if text.eq_ignore_ascii_case(resend::RESENT_FROM) {
                    resent_from.get_or_insert(value);
                } else if text.eq_ignore_ascii_case(resend::EDITED) {
                    edited.get_or_insert(value);
                } else if text.eq_ignore_ascii_case(delivery::REDELIVERY_HEADER) {
                    redelivery_of.get_or_insert(value);
                } else if text.eq_ignore_ascii_case(loops::VIA) && loops::is_ours(value.as_bytes())
                {
                    // Never written down: the record shows it was ours.
                    looped = true;
                    return (text, loops::SHOWN);
                }
                (text, value.as_bytes())
            }));
        let declared_length = content_length.and_then(|value| value.to_str().ok());
        Self {
            pairs,
            raw,
            declared_length,
            declared: declared_length.and_then(|d| d.trim().parse().ok()),
            expects_continue: expect
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue")),
            signatures,
            resent_from,
            edited,
            redelivery_of,
            looped,
        }
    }

    /// What the request claims of itself as a copy this tool sent: the
    /// original's id and whether it was changed ([`resend::claimed`]).
    pub(super) fn claimed_copy(&self) -> (Option<u64>, Option<bool>) {
        resend::claimed(
            self.resent_from.map(HeaderValue::as_bytes),
            self.edited.map(HeaderValue::as_bytes),
        )
    }

    /// The Danube delivery id the request names as the one it redelivers,
    /// when it reads as one; the caller vouches for it only under a valid
    /// signature.
    pub(super) fn redelivery_of(&self) -> Option<String> {
        let text = self.redelivery_of?.to_str().ok()?;
        delivery::redelivery_id(text).map(str::to_owned)
    }

    /// The first `X-Danube-Signature` header's text, and the second's if
    /// there is one, as the record keeps them.
    pub(super) fn signatures(&self) -> (Option<&str>, Option<&str>) {
        let text = |at: Option<usize>| at.map(|at| self.pairs[at].1.as_str());
        (text(self.signatures[0]), text(self.signatures[1]))
    }
}

/// The size of the request head as sent, near enough: request line and
/// header lines with their separators.
pub(super) fn head_size<B>(req: &Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    req.method().as_str().len() + target + " HTTP/1.1\r\n".len() + headers + 2
}

/// The request target as recorded: path and query, as `Uri`'s `Display`
/// writes them. Every origin-form target (what senders send) is written
/// as-is, so it is copied without going through the formatter.
pub(super) fn request_target(uri: &Uri) -> String {
    match uri.path_and_query() {
        Some(target) if target.as_str().starts_with(['/', '*']) => target.as_str().to_owned(),
        Some(target) => target.to_string(),
        None => uri.to_string(),
    }
}

/// The path and query a request target contributes: all of an origin-form
/// target (`/…`), the path and query of an absolute-form one (its host is
/// not ours to follow). `None` for every other form hyper accepts: `*`,
/// `host:port`, and `@host:port` (which it reads as a host with an empty
/// user name), any of which joined to a forward target would change where
/// it connects.
pub(super) fn origin_form(uri: &Uri) -> Option<String> {
    let absolute = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        && uri.authority().is_some();
    let origin = uri.scheme().is_none() && uri.authority().is_none();
    ((origin || absolute) && uri.path().starts_with('/')).then(|| request_target(uri))
}

/// The version as recorded: what `http::Version`'s `Debug` writes, without
/// going through a formatter on every request.
pub(super) fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_read_by_name_begins_as_the_walk_expects() {
        for name in [
            signature::HEADER_NAME,
            resend::RESENT_FROM,
            resend::EDITED,
            delivery::REDELIVERY_HEADER,
            loops::VIA,
        ] {
            assert!(name.to_ascii_lowercase().starts_with(OURS), "{name}");
        }
    }

    #[test]
    fn the_marks_are_read_in_the_one_walk() {
        let mut map = HeaderMap::new();
        map.insert("x-danube-hooks-resent-from", HeaderValue::from_static("12"));
        map.insert("x-danube-hooks-edited", HeaderValue::from_static("true"));
        map.insert(
            "x-danube-hooks-redelivery-of",
            HeaderValue::from_static("dlv_1"),
        );
        map.insert(
            "x-danube-signature",
            HeaderValue::from_static("t=1,sha256=00"),
        );
        let headers = Headers::of(&map);
        assert_eq!(headers.claimed_copy(), (Some(12), Some(true)));
        assert_eq!(headers.redelivery_of().as_deref(), Some("dlv_1"));
        assert_eq!(headers.signatures(), (Some("t=1,sha256=00"), None));
        let none = HeaderMap::new();
        let headers = Headers::of(&none);
        assert_eq!(headers.claimed_copy(), (None, None));
        assert_eq!(headers.redelivery_of(), None);
        assert!(!headers.looped);
    }

    #[test]
    fn only_this_runs_nonce_marks_a_loop_and_it_is_never_recorded() {
        let sent = loops::headers_to_send_on(&crate::test_support::sample(1, b"{}"));
        let (_, nonce) = sent.last().unwrap();
        let mut map = HeaderMap::new();
        map.append(
            "x-danube-hooks-via",
            HeaderValue::from_static("another-run"),
        );
        let headers = Headers::of(&map);
        assert!(!headers.looped, "a stranger's value changes nothing");
        assert_eq!(headers.pairs[0].1, "another-run");
        map.append(
            "x-danube-hooks-via",
            HeaderValue::from_bytes(nonce).unwrap(),
        );
        let headers = Headers::of(&map);
        assert!(headers.looped);
        let shown = String::from_utf8(loops::SHOWN.to_vec()).unwrap();
        assert_eq!(headers.pairs[1], ("x-danube-hooks-via".into(), shown));
        assert!(headers.raw.is_empty());
    }

    #[test]
    fn versions_are_recorded_as_http_writes_them() {
        for version in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            assert_eq!(version_text(version), format!("{version:?}"));
        }
    }

    /// Scheme, authority and path, as the `http` crate parses a target.
    type Parsed<'a> = (Option<&'a str>, Option<&'a str>, &'a str);

    /// What hyper hands the service for each target (the `http` crate's
    /// parse), and what the listener makes of it.
    #[test]
    fn only_origin_and_absolute_form_targets_are_taken() {
        // (target, what `Uri` parses it as, what is recorded or None: 400)
        let table: [(&str, Option<Parsed>, Option<&str>); 12] = [
            // hyper reads `@h:1` as a host with an empty user name.
            ("@h:1", Some((None, Some("@h:1"), "")), None),
            ("h:1", Some((None, Some("h:1"), "")), None),
            ("*", Some((None, None, "*")), None),
            // An origin-form path whose first segment is empty: a path.
            ("//h/", Some((None, None, "//h/")), Some("//h/")),
            (
                "http://other/x?y",
                Some((Some("http"), Some("other"), "/x")),
                Some("/x?y"),
            ),
            (
                "http://other",
                Some((Some("http"), Some("other"), "/")),
                Some("/"),
            ),
            (
                "ftp://other/x",
                Some((Some("ftp"), Some("other"), "/x")),
                None,
            ),
            // A backslash is taken in a path, and stays one.
            ("/a\\b", Some((None, None, "/a\\b")), Some("/a\\b")),
            // Not a URI at all: hyper answers 400 itself.
            ("/a b", None, None),
            ("/%40h:1", Some((None, None, "/%40h:1")), Some("/%40h:1")),
            ("/ok?q", Some((None, None, "/ok")), Some("/ok?q")),
            ("/a{1}[2]", Some((None, None, "/a{1}[2]")), Some("/a{1}[2]")),
        ];
        for (target, parsed, recorded) in table {
            let uri = target.parse::<Uri>();
            assert_eq!(
                uri.as_ref().ok().map(|u| (
                    u.scheme_str(),
                    u.authority().map(hyper::http::uri::Authority::as_str),
                    u.path()
                )),
                parsed,
                "{target}"
            );
            let Ok(uri) = uri else { continue };
            assert_eq!(origin_form(&uri).as_deref(), recorded, "{target}");
        }
    }

    mod prop {
        use proptest::prelude::*;

        use super::super::origin_form;

        fn target() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[@:/?#*%.a-z0-9\\\\\\[\\]{}-]{0,24}",
                "(https?://)?[a-z0-9.@:]{0,12}(/[@:/?%.a-z0-9-]{0,12})?",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            /// Whatever a stranger sends as the target, the check does not
            /// panic, and what it takes only ever goes to the forward
            /// target's scheme and host.
            #[test]
            fn an_accepted_target_never_moves_the_forward_url(target in target()) {
                let Ok(uri) = target.parse::<hyper::Uri>() else {
                    return Ok(()); // hyper refuses it with 400 itself
                };
                let Some(path) = origin_form(&uri) else {
                    return Ok(());
                };
                for base in ["http://127.0.0.1:47201", "http://localhost:3000/"] {
                    let base: hyper::Uri = base.parse().unwrap();
                    let url = crate::http::url_at(&base, &path)
                        .map_err(|e| TestCaseError::fail(format!("{target:?} -> {path:?}: {e}")))?;
                    prop_assert_eq!(url.scheme(), base.scheme());
                    prop_assert_eq!(url.authority(), base.authority());
                    let reread: hyper::Uri = url.to_string().parse().unwrap();
                    prop_assert_eq!(reread.authority(), base.authority());
                    prop_assert_eq!(reread.path_and_query().map(hyper::http::uri::PathAndQuery::as_str), Some(path.as_str()));
                }
            }
        }
    }

    #[test]
    fn request_targets_are_what_display_writes() {
        for target in [
            "/",
            "/webhooks/danube",
            "/webhooks/danube?x=1&y=%20",
            "*",
            "http://example.com",
            "http://example.com/a?b",
            "http://example.com?b",
            "example.com:443",
        ] {
            let uri: Uri = target.parse().unwrap();
            let before = uri
                .path_and_query()
                .map_or_else(|| uri.to_string(), ToString::to_string);
            assert_eq!(request_target(&uri), before, "target {target:?}");
        }
    }
}
