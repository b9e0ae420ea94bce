//! Reading a request to the emulator: its body, within [`MAX_BODY`] and
//! [`BODY_TIMEOUT`]; the JSON fields and the query the routes take, each
//! checked; and the [`Refusal`], in Danube's envelope, when one is wrong.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::display::truncate;
use crate::events::EVENT_TYPES;
use crate::facts::DELIVERIES_PAGE_MAX;

/// The largest request body read, an event's `data` included; a larger
/// one gets 413 and is read no further. A webhook or an event is a few
/// KiB. The cap bounds what each event adds to the log and to the
/// deliveries waiting to be sent, and what 512 connections sending bodies
/// at once hold: 32 MiB.
const MAX_BODY: usize = 64 * 1024;

/// The longest webhook URL and description taken: a webhook stays a few
/// KiB, so [`MAX_WEBHOOKS`](super::state::MAX_WEBHOOKS) of them do too.
pub(super) const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 4096;

/// Deliveries listed when `limit` is not given, as Danube.
const DEFAULT_LIMIT: usize = 20;

/// Time to send a body once the head has arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Text of the client's quoted in an error (a URL, an event) is cut here.
const MAX_QUOTED: usize = 200;

/// An error answer in Danube's envelope.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) detail: String,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub(super) fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub(super) fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Webhook {} not found", quoted(id)),
        )
    }
}

/// A client's text in an error: quoted, cut, one line (JSON escapes the rest).
pub(super) fn quoted(text: &str) -> String {
    format!("{:?}", truncate(text, MAX_QUOTED))
}

/// The body whole, up to [`MAX_BODY`] and [`BODY_TIMEOUT`]; a declared
/// length past the cap is refused before a byte of it is read.
pub(super) async fn read_body(
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body too large: at most {} KiB ({MAX_BODY} bytes), an event's data \
                 included",
                MAX_BODY / 1024
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "the request body could not be read whole",
        )),
        Err(_) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// The body as a JSON object (an empty body is an empty object).
pub(super) fn json_object(body: Option<&[u8]>) -> Result<Map<String, Value>, Refusal> {
    let body = body.unwrap_or_default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Refusal::invalid(format!(
            "the body must be a JSON object, not {}",
            kind(&other)
        ))),
        // Where, never serde's text, which can quote the body.
        Err(err) => Err(Refusal::invalid(format!(
            "the body is not valid JSON ({:?} error at line {} column {})",
            err.classify(),
            err.line(),
            err.column()
        ))),
    }
}

/// The body as a JSON object whose values are kept as their text (an
/// empty body is an empty object): an event's `data` is never parsed into
/// a tree.
pub(super) fn raw_object(body: Option<&[u8]>) -> Result<HashMap<String, &RawValue>, Refusal> {
    let body = body.unwrap_or_default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashMap::new());
    }
    serde_json::from_slice(body).map_err(|err| {
        let start = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        let kind = raw_kind(&String::from_utf8_lossy(
            &body[start..body.len().min(start + 8)],
        ));
        if err.is_data() && !matches!(kind, "an object" | "invalid JSON") {
            return Refusal::invalid(format!("the body must be a JSON object, not {kind}"));
        }
        // Where, never serde's text, which can quote the body.
        Refusal::invalid(format!(
            "the body is not valid JSON ({:?} error at line {} column {})",
            err.classify(),
            err.line(),
            err.column()
        ))
    })
}

/// What kind of value JSON text starts with, read from its first byte.
pub(super) fn raw_kind(json: &str) -> &'static str {
    match json.trim_start().bytes().next() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "invalid JSON",
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `events`: a non-empty array of Danube's event types, duplicates dropped.
pub(super) fn events_of(value: &Value) -> Result<Vec<String>, Refusal> {
    let allowed = || EVENT_TYPES.join(", ");
    let Value::Array(items) = value else {
        return Err(Refusal::invalid(format!(
            "events must be an array of event types ({}), not {}",
            allowed(),
            kind(value)
        )));
    };
    if items.is_empty() {
        return Err(Refusal::invalid(format!(
            "events must name at least one event type: {}",
            allowed()
        )));
    }
    let mut events: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(event) if EVENT_TYPES.contains(&event.as_str()) => {
                if !events.contains(event) {
                    events.push(event.clone());
                }
            }
            Value::String(event) => {
                return Err(Refusal::invalid(format!(
                    "unknown event type {}; Danube's are: {}",
                    quoted(event),
                    allowed()
                )));
            }
            other => {
                return Err(Refusal::invalid(format!(
                    "events must hold strings, not {}",
                    kind(other)
                )));
            }
        }
    }
    Ok(events)
}

/// `description`: absent (`None`), null (`Some(None)`) or a string.
#[allow(clippy::option_option)] // PATCH's three cases: keep, clear, set
pub(super) fn description(value: Option<&Value>) -> Result<Option<Option<String>>, Refusal> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(text)) if text.len() > MAX_DESCRIPTION => {
            Err(Refusal::invalid(format!(
                "description must be at most {MAX_DESCRIPTION} bytes, not {}",
                text.len()
            )))
        }
        Some(Value::String(text)) => Ok(Some(Some(text.clone()))),
        Some(other) => Err(Refusal::invalid(format!(
            "description must be a string or null, not {}",
            kind(other)
        ))),
    }
}

/// `?limit=N`: 1 to 100, default 20.
pub(super) fn limit(query: Option<&str>) -> Result<usize, Refusal> {
    let given = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "limit")
        .map(|(_, value)| value);
    let Some(given) = given else {
        return Ok(DEFAULT_LIMIT);
    };
    given
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=DELIVERIES_PAGE_MAX as usize).contains(n))
        .ok_or_else(|| {
            Refusal::invalid(format!(
                "limit must be a whole number from 1 to {DELIVERIES_PAGE_MAX}, not {}",
                quoted(given)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_in_range_or_refused() {
        assert_eq!(limit(None).unwrap(), 20);
        assert_eq!(limit(Some("limit=5")).unwrap(), 5);
        assert_eq!(limit(Some("x=1&limit=100")).unwrap(), 100);
        for bad in ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit="] {
            let refusal = limit(Some(bad)).unwrap_err();
            assert_eq!(refusal.status, 422, "{bad}");
            assert!(refusal.detail.contains("1 to 100"), "{bad}");
        }
    }

    #[test]
    fn events_checked_one_by_one() {
        let ok = events_of(&json!([
            "workflow.failed",
            "workflow.failed",
            "tool.execution.failed"
        ]));
        assert_eq!(ok.unwrap(), ["workflow.failed", "tool.execution.failed"]);
        let table = [
            (json!([]), "at least one"),
            (json!("workflow.failed"), "must be an array"),
            (
                json!(["workflow.exploded"]),
                "unknown event type \"workflow.exploded\"",
            ),
            (json!([7]), "must hold strings"),
        ];
        for (value, expected) in table {
            let refusal = events_of(&value).unwrap_err();
            assert_eq!(refusal.status, 422);
            assert!(
                refusal.detail.contains(expected),
                "{value}: {}",
                refusal.detail
            );
        }
    }

    #[test]
    fn an_events_body_keeps_its_values_as_text() {
        let fields =
            raw_object(Some(br#" {"event": "x", "data": [0, 0], "event": "y"} "#)).unwrap();
        assert_eq!(
            fields["event"].get(),
            "\"y\"",
            "the last of a repeated field"
        );
        assert_eq!(fields["data"].get(), "[0, 0]");
        assert!(raw_object(Some(b" \n")).unwrap().is_empty());
        let table: [(&[u8], &str); 4] = [
            (b"[1,2]", "not an array"),
            (b"  7", "not a number"),
            (b"{\"data\": whsec_oops", "not valid JSON"),
            (b"nope", "not valid JSON"),
        ];
        for (body, expected) in table {
            let refusal = raw_object(Some(body)).unwrap_err();
            assert_eq!(refusal.status, 422);
            assert!(refusal.detail.contains(expected), "{}", refusal.detail);
            assert!(!refusal.detail.contains("whsec_oops"));
        }
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(json_object(Some(b"  ")).unwrap().is_empty());
        assert!(json_object(None).unwrap().is_empty());
        let table: [(&[u8], &str); 3] = [
            (b"{\"url\": whsec_oops", "not valid JSON"),
            (b"[1,2]", "not an array"),
            (b"\"x\"", "not a string"),
        ];
        for (body, expected) in table {
            let refusal = json_object(Some(body)).unwrap_err();
            assert_eq!(refusal.status, 422);
            assert!(refusal.detail.contains(expected), "{}", refusal.detail);
            assert!(!refusal.detail.contains("whsec_oops"));
        }
    }
}
