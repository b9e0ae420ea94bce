//! The delivery record (SPEC §5): one per request that reaches the listener,
//! the same JSON in the store, in `--json` output and in every reader.
//!
//! Pure data: no I/O. The server fills it in, the store gives it its id.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::signature::SignatureCheck;

mod base64_encode;
pub(crate) mod line;
pub(crate) mod memory;

/// One request, as received and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique in the store and rising across restarts; 0 until the store
    /// assigns it.
    pub id: u64,
    #[serde(with = "rfc3339_millis")]
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) remote_addr: String,
    /// The listener's own address the request arrived on (`ip:port`), so an
    /// export can send it back to the same port; absent in records written
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) local_addr: Option<String>,
    pub(crate) method: String,
    /// The request target: path and query, as received.
    pub(crate) path: String,
    pub(crate) http_version: String,
    /// `[name, value]` in arrival order, duplicates kept. A value that is
    /// not UTF-8 is kept here as Latin-1, one char per byte, for reading,
    /// and its exact bytes in `raw_headers`.
    pub(crate) headers: Vec<(String, String)>,
    /// The exact bytes of each header value that is not UTF-8, by its index
    /// in `headers`: what forward, replay and export send. Empty (and not
    /// written) for ordinary records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) raw_headers: Vec<RawHeader>,
    /// The exact body bytes (only the first `--max-body` when truncated).
    #[serde(rename = "body_b64", with = "base64_bytes")]
    pub body: Vec<u8>,
    /// Bytes that arrived (or were announced, when the body was cut short).
    pub(crate) body_size: u64,
    pub(crate) body_truncated: bool,
    /// The body's `event` string, when it is JSON with one.
    pub(crate) event: Option<String>,
    /// Attempts of one delivery share a group: see [`group_key`].
    pub(crate) group: String,
    /// Counts from 1 within the group.
    pub(crate) attempt: u32,
    pub(crate) signature: SignatureCheck,
    /// Set when the same `t` and digest arrived before within the tolerance
    /// window: the id of that first arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replay_of: Option<u64>,
    pub(crate) response: ResponseRecord,
    pub(crate) forward: Option<ForwardRecord>,
    /// What each `--mirror-to` answered, as known when the record was
    /// written (see `server::mirror`); empty, and not written, without one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) mirrors: Vec<MirrorRecord>,
    /// Danube's id of the delivery this request redelivers from Danube's
    /// log (`deliveries --redeliver`, `listen --catch-up`): read from
    /// [`REDELIVERY_HEADER`], and kept only on a request whose signature
    /// is valid, so a stranger's header cannot hide a missing delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redelivery_of: Option<String>,
    /// On a copy this tool resent to this listener (`replay`, the
    /// dashboard's `r`, `R` and `e`): the original's id. Only what the
    /// copy's [`crate::resend::RESENT_FROM`] header claims: anyone can send
    /// that header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resent_from: Option<u64>,
    /// With `resent_from`: whether the copy was changed, as its
    /// [`crate::resend::EDITED`] header claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) edited: Option<bool>,
    /// With a shared store (`--store postgres://…`): the name of the
    /// listener that received it (`listen --name`), so a team's dashboard
    /// can tell whose it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) listener: Option<String>,
    /// How long the connection was held: from arrival to the answer, or,
    /// when none was sent, to the close that ended a `timeout` hold or to
    /// the moment the client was seen gone (`abandoned`).
    pub(crate) duration_ms: f64,
}

/// A header value that is not UTF-8, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RawHeader {
    /// Its place in [`Delivery::headers`].
    pub(crate) index: usize,
    #[serde(rename = "value_b64", with = "base64_bytes")]
    pub(crate) value: Vec<u8>,
}

/// What this tool answered, and the policy step that chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResponseRecord {
    /// `status`, `forward`, `timeout`, `reset`, `close`, `garbage`, or a
    /// limit this tool enforced (`too-large`, `slow-body`, `method`, `loop`), or
    /// `abandoned`: the client went away while a delay ran, and nothing
    /// was sent (`delay_ms` is the delay the step asked for).
    pub(crate) action: String,
    /// The status sent, when one was.
    pub(crate) status: Option<u16>,
    pub(crate) delay_ms: u64,
    /// The rule step that chose the answer, e.g. `tool.*=500,forward #1`.
    pub(crate) rule: String,
}

/// How the `rule` of a `forward` step that no `--forward-to` rule took
/// ends: it was answered as without `--forward-to`.
pub(crate) const NO_ROUTE: &str =
    "; no --forward-to rule matches the event, so 200 as without --forward-to";

/// What the developer's receiver did with a forwarded delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ForwardRecord {
    pub(crate) url: String,
    pub(crate) status: Option<u16>,
    #[serde(default)]
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u64,
    /// The first 2000 characters of the receiver's body, lossy UTF-8.
    pub(crate) body_preview: Option<String>,
}

/// What a mirror (`--mirror-to`) answered to its copy of a delivery:
/// recorded, never relayed to the sender. Neither `status` nor `error`:
/// the mirror had not answered yet when the record was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MirrorRecord {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) status: Option<u16>,
    #[serde(default)]
    pub(crate) error: Option<String>,
    /// To its answer or failure; while it is still waiting, to the write.
    pub(crate) duration_ms: u64,
}

impl MirrorRecord {
    /// The mirror had not answered when the record was written.
    pub(crate) fn is_pending(&self) -> bool {
        self.status.is_none() && self.error.is_none()
    }
}

/// How a stored delivery is resent (`replay`, the dashboard's `r` and `R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayMode {
    /// Signed anew with a fresh `t`: what a retrying sender does.
    Resigned,
    /// Byte-identical, original signature included: what an attacker does.
    AsIs,
}

impl Delivery {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as `(name, exact value bytes)`, in arrival order: the
    /// raw bytes where the value was not UTF-8, else the text's own.
    pub(crate) fn header_bytes(&self) -> impl Iterator<Item = (&str, Cow<'_, [u8]>)> {
        self.headers
            .iter()
            .enumerate()
            .map(|(index, (name, text))| {
                let raw = self
                    .raw_headers
                    .iter()
                    .find(|raw| raw.index == index)
                    // Only where the bytes are the ones the text was read from:
                    // a record edited by hand keeps its (edited) text.
                    .filter(|raw| header_value_text(&raw.value) == *text);
                let value = match raw {
                    Some(raw) => Cow::Borrowed(raw.value.as_slice()),
                    None => Cow::Borrowed(text.as_bytes()),
                };
                (name.as_str(), value)
            })
    }

    /// The record without its body: every field but `body` copied (not the
    /// body, which may be a MiB, only to drop it). For the in-memory
    /// histories that keep a summary and read the body back from the store.
    #[must_use]
    pub(crate) fn without_body(&self) -> Delivery {
        Delivery {
            id: self.id,
            received_at: self.received_at,
            remote_addr: self.remote_addr.clone(),
            local_addr: self.local_addr.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            http_version: self.http_version.clone(),
            headers: self.headers.clone(),
            raw_headers: self.raw_headers.clone(),
            body: Vec::new(),
            body_size: self.body_size,
            body_truncated: self.body_truncated,
            event: self.event.clone(),
            group: self.group.clone(),
            attempt: self.attempt,
            signature: self.signature.clone(),
            replay_of: self.replay_of,
            response: self.response.clone(),
            forward: self.forward.clone(),
            mirrors: self.mirrors.clone(),
            redelivery_of: self.redelivery_of.clone(),
            resent_from: self.resent_from,
            edited: self.edited,
            listener: self.listener.clone(),
            duration_ms: self.duration_ms,
        }
    }

    /// The record as one JSON line, safe on a terminal (no trailing newline).
    pub(crate) fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(line::capacity_for(self));
        line::write(self, &mut out);
        String::from_utf8(out).expect("a record's line is UTF-8")
    }
}

/// The header a redelivery from Danube's log carries: Danube's id of the
/// delivery, which no documented header of Danube's carries.
pub(crate) const REDELIVERY_HEADER: &str = "X-Danube-Hooks-Redelivery-Of";
/// The longest Danube delivery id sent in or read from
/// [`REDELIVERY_HEADER`]: Danube's ids are short (`dlv_…`).
const REDELIVERY_ID_MAX: usize = 128;

/// `text` when it can be a Danube delivery id in [`REDELIVERY_HEADER`]:
/// 1 to [`REDELIVERY_ID_MAX`] letters, digits, `_`, `-`, `.` or `:`, so
/// it is a header value as it is and safe on a terminal.
pub(crate) fn redelivery_id(text: &str) -> Option<&str> {
    let fits = (1..=REDELIVERY_ID_MAX).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    fits.then_some(text)
}

/// The largest body a record can keep: the most `--max-body` and
/// `--max-body-memory` accept (the stores' readers size their longest line
/// from it).
pub(crate) const LARGEST_BODY: u64 = 1024 * 1024 * 1024;

/// The `event` of a JSON body, if it has one.
pub(crate) fn event_of(body: &[u8]) -> Option<String> {
    // Other fields are skipped unbuilt. `event` is read as a string
    // outright rather than as a `serde_json::Value` whose kind is looked at
    // afterwards: any other kind now fails the parse, and a failed parse is
    // no event, which is what that kind gave before.
    #[derive(Deserialize)]
    struct Envelope {
        event: Option<String>,
    }
    // Only an object is an envelope; serde would read `["x"]` as a struct.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<Envelope>(body).ok()?.event
}

/// How attempts of one delivery are told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// The SHA-256 of the body: a retry re-signed with a new `t` keeps its
    /// body, so it lands in the same group.
    BodyHash,
    /// A delivery-id header, for senders that send one; bodies without it
    /// fall back to the body hash.
    Header(String),
}

/// The group key of a delivery: `sha256:<16 hex>` of the body, or
/// `<header>:<value>` when grouping by a header that is present.
pub(crate) fn group_key(grouping: &Grouping, headers: &[(String, String)], body: &[u8]) -> String {
    // Each key is built in one String: this runs for every request, and
    // `format!` of pieces that were Strings themselves cost two or three
    // allocations and a pass through the formatter.
    if let Grouping::Header(name) = grouping
        && let Some((_, value)) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        let mut key = name.to_ascii_lowercase();
        key.push(':');
        key.extend(value.chars().take(200));
        return key;
    }
    let digest = Sha256::digest(body);
    let mut hex = [0; 16];
    hex::encode_to_slice(&digest[..8], &mut hex).expect("8 bytes are 16 hex digits");
    let mut key = String::with_capacity("sha256:".len() + hex.len());
    key.push_str("sha256:");
    key.extend(hex.map(char::from));
    key
}

/// Headers as the record keeps them: `[name, text]` pairs, and the exact
/// bytes of the values that are not UTF-8.
///
/// On every request's path: each value is checked for UTF-8 once, and the
/// pairs are allocated once at the size the map reports.
pub(crate) fn record_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> (Vec<(String, String)>, Vec<RawHeader>) {
    let headers = headers.into_iter();
    let mut pairs = Vec::with_capacity(headers.size_hint().0);
    let mut raw = Vec::new();
    for (index, (name, value)) in headers.enumerate() {
        let text = if let Ok(text) = std::str::from_utf8(value) {
            text.to_owned()
        } else {
            raw.push(RawHeader {
                index,
                value: value.to_vec(),
            });
            latin1(value)
        };
        pairs.push((name.to_owned(), text));
    }
    (pairs, raw)
}

/// A header value as text: UTF-8 when it is, else Latin-1 (lossless).
pub(crate) fn header_value_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => latin1(bytes),
    }
}

/// One char per byte: how a value that is not UTF-8 is kept as text.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

impl fmt::Display for ResponseRecord {
    /// `200`, `500 after 12000 ms`, `reset`, `forward → 201`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.action.as_str(), self.status) {
            // The delay was cut short: "after" it would say what never was.
            ("abandoned", None) => return f.write_str("abandoned: the client went away"),
            ("status", Some(status)) => write!(f, "{status}")?,
            (action, Some(status)) => write!(f, "{action} {status}")?,
            (action, None) => f.write_str(action)?,
        }
        if self.delay_ms > 0 {
            write!(f, " after {}", format_ms(self.delay_ms))?;
        }
        Ok(())
    }
}

/// `850ms`, `12s`, `1.5s`.
pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// A measured duration: `36µs`, `4.2ms`, `1.3s`.
pub(crate) fn format_duration_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.1}s", ms / 1000.0)
    }
}

/// RFC 3339 UTC with milliseconds, as the record requires.
pub(crate) fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_time(time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    #[test]
    fn a_redelivery_id_is_a_short_plain_word() {
        for id in ["dlv_8f3a", "a", "x-1.2:3", &"d".repeat(128)] {
            assert_eq!(redelivery_id(id), Some(id), "{id:?}");
        }
        for bad in [
            "",
            "dlv 1",
            "dlv_\u{1b}[2J",
            "dlv_é",
            "a\r\nb",
            &"d".repeat(129),
        ] {
            assert_eq!(redelivery_id(bad), None, "{bad:?}");
        }
        assert_eq!(redelivery_id("dlv\u{202e}1"), None);
    }

    #[test]
    fn record_round_trips_through_json_with_the_spec_field_names() {
        let record = sample(7, br#"{"event":"workflow.failed","data":{}}"#);
        let line = record.to_json_line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        for field in [
            "id",
            "received_at",
            "remote_addr",
            "method",
            "path",
            "http_version",
            "headers",
            "body_b64",
            "body_size",
            "body_truncated",
            "event",
            "group",
            "attempt",
            "signature",
            "response",
            "forward",
            "duration_ms",
        ] {
            assert!(value.get(field).is_some(), "missing field {field}");
        }
        assert_eq!(value["received_at"], "2026-11-23T09:14:07.123Z");
        assert_eq!(value["headers"][2], serde_json::json!(["x-dup", "a"]));
        assert_eq!(value["event"], "workflow.failed");
        assert!(
            line.starts_with("{\"id\":7,"),
            "id first, so readers can find it fast"
        );
        let back: Delivery = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn event_only_from_a_json_string_field() {
        assert_eq!(
            event_of(br#"{"event":"tool.execution.failed"}"#).as_deref(),
            Some("tool.execution.failed")
        );
        assert_eq!(
            event_of(br#" {"data":{"event":"inner"},"event":"caf\u00e9"}"#).as_deref(),
            Some("caf\u{e9}"),
            "the top-level event, unescaped"
        );
        for no_event in [
            br#"{"event":5}"#.as_slice(),
            br#"{"event":null}"#,
            br#"{"event":["x"]}"#,
            br#"{"event":{"name":"x"}}"#,
            br#"{"data":{}}"#,
            br#"{"event":"a","event":"b"}"#,
            br#"{"event":"a"} trailing"#,
            br#"{"event":"a","data":"#,
            br#"{"event":5,"data":"#,
            b"not json",
            br#"["event"]"#,
            br#""event""#,
        ] {
            let text = String::from_utf8_lossy(no_event);
            assert_eq!(event_of(no_event), None, "{text}");
        }
    }

    #[test]
    fn grouping_by_body_or_header() {
        let headers = vec![("X-Danube-Delivery".to_string(), "d-1".to_string())];
        let a = group_key(&Grouping::BodyHash, &headers, b"one");
        assert_eq!(a, group_key(&Grouping::BodyHash, &[], b"one"));
        assert_ne!(a, group_key(&Grouping::BodyHash, &[], b"two"));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 16);
        // The first 8 bytes of SHA-256("one"), as lowercase hex.
        assert_eq!(a, "sha256:7692c3ad3540bb80");
        let by_header = Grouping::Header("x-danube-delivery".into());
        assert_eq!(
            group_key(&by_header, &headers, b"one"),
            "x-danube-delivery:d-1"
        );
        assert_eq!(
            group_key(&by_header, &[], b"one"),
            a,
            "falls back to the body"
        );
        let long = vec![("X-Danube-Delivery".to_string(), "é".repeat(300))];
        assert_eq!(
            group_key(&by_header, &long, b"one"),
            format!("x-danube-delivery:{}", "é".repeat(200)),
            "the value is cut at 200 characters"
        );
    }

    #[test]
    fn header_values_keep_every_byte() {
        assert_eq!(header_value_text(b"plain"), "plain");
        assert_eq!(header_value_text("café".as_bytes()), "café");
        assert_eq!(header_value_text(b"\xe9t\xe9"), "\u{e9}t\u{e9}");
    }

    #[test]
    fn non_utf8_header_values_keep_their_bytes_and_old_records_still_read() {
        let (pairs, raw) = record_headers([
            ("x-a", b"plain".as_slice()),
            ("x-b", b"caf\xe9 \xff"),
            ("x-c", "café".as_bytes()),
        ]);
        assert_eq!(pairs[1].1, "caf\u{e9} \u{ff}");
        assert_eq!(
            raw,
            [RawHeader {
                index: 1,
                value: b"caf\xe9 \xff".to_vec()
            }]
        );
        let mut record = sample(1, b"{}");
        record.headers = pairs;
        record.raw_headers = raw;
        let bytes: Vec<Vec<u8>> = record.header_bytes().map(|(_, v)| v.into_owned()).collect();
        assert_eq!(
            bytes,
            [
                b"plain".to_vec(),
                b"caf\xe9 \xff".to_vec(),
                "café".as_bytes().to_vec()
            ]
        );
        let line = record.to_json_line();
        assert!(
            line.contains(r#""raw_headers":[{"index":1,"value_b64":"Y2Fm6SD/"}]"#),
            "{line}"
        );
        let back: Delivery = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);

        // An ordinary record does not change, and one without the new
        // fields (written before them) still reads.
        let plain = sample(2, b"{}").to_json_line();
        assert!(
            !plain.contains("raw_headers") && !plain.contains("local_addr"),
            "{plain}"
        );
        let back: Delivery = serde_json::from_str(&plain).unwrap();
        assert_eq!(back, sample(2, b"{}"));
    }

    #[test]
    fn response_reads_well() {
        let mut response = sample(1, b"").response;
        assert_eq!(response.to_string(), "200");
        response.delay_ms = 12_000;
        assert_eq!(response.to_string(), "200 after 12s");
        response.action = "reset".into();
        response.status = None;
        response.delay_ms = 0;
        assert_eq!(response.to_string(), "reset");
        // The delay of an abandoned answer was cut short: no "after".
        response.action = "abandoned".into();
        response.delay_ms = 30_000;
        assert_eq!(response.to_string(), "abandoned: the client went away");
        assert_eq!(format_ms(1500), "1.5s");
        assert_eq!(format_ms(250), "250ms");
        assert_eq!(format_duration_ms(0.036), "36µs");
        assert_eq!(format_duration_ms(4.25), "4.2ms");
        assert_eq!(format_duration_ms(1250.0), "1.2s");
    }
}
