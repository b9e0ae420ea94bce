//! An event's payload (SPEC §1's envelope) as the JSON text it is sent as,
//! never as a parsed tree: `[0,0,0,…]` is 2 bytes a value as text and
//! about 16 times that as a `serde_json::Value`, so a tree would make the
//! emulator's memory a multiple of what arrived. The text is kept once per
//! event, shared by its records and deliveries, and counted by its length.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The envelope `{"event","timestamp","data"}` as compact JSON text;
/// cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Payload(Arc<RawValue>);

impl Payload {
    /// The envelope of `event` at `at` around `data` (checked JSON), in
    /// Danube's field order, with `data`'s insignificant whitespace
    /// dropped (what it says is kept as written, numbers and escapes
    /// included).
    pub(crate) fn envelope(event: &str, at: DateTime<Utc>, data: &RawValue) -> Self {
        let data = data.get();
        let mut text = String::with_capacity(data.len() + 96);
        text.push_str("{\"event\":");
        text.push_str(&quote(event));
        text.push_str(",\"timestamp\":");
        text.push_str(&quote(&crate::events::timestamp(at)));
        text.push_str(",\"data\":");
        push_compact(&mut text, data);
        text.push('}');
        let raw = RawValue::from_string(text).expect("JSON around JSON is JSON");
        Self(Arc::from(raw))
    }

    /// The JSON text, as it is signed and sent.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.get().as_bytes()
    }

    /// Its length in bytes: what it costs to keep.
    pub(crate) fn len(&self) -> usize {
        self.0.get().len()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Self(Arc::from(raw)))
    }
}

/// How deeply `json` (valid JSON) nests arrays and objects: `1` for `[]`,
/// `0` for a number.
pub(crate) fn nesting(json: &str) -> usize {
    let (mut in_string, mut escaped) = (false, false);
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in json.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// `json` (valid JSON) without the whitespace between its tokens.
fn push_compact(out: &mut String, json: &str) {
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn the_envelope_is_danubes_order_and_data_as_written_without_blanks() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 17, 5, 1).unwrap();
        let table = [
            ("{}", "{}"),
            ("null", "null"),
            (
                "{ \"a\" : [1, 2.50, 1e3],\n\t\"b\": \"x  y\\\" \\\\\" }",
                "{\"a\":[1,2.50,1e3],\"b\":\"x  y\\\" \\\\\"}",
            ),
            ("\"\\u00e9 \"", "\"\\u00e9 \""),
        ];
        for (data, compact) in table {
            let payload = Payload::envelope("workflow.failed", at, &raw(data));
            let text = std::str::from_utf8(payload.as_bytes()).unwrap();
            assert_eq!(
                text,
                format!(
                    "{{\"event\":\"workflow.failed\",\"timestamp\":\"2026-11-30T17:05:01.000000Z\",\"data\":{compact}}}"
                )
            );
            assert_eq!(payload.len(), text.len());
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            let given: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(parsed["data"], given, "the same data once parsed");
        }
    }

    #[test]
    fn nesting_counts_containers_not_brackets_in_strings() {
        let table = [
            ("1", 0),
            ("\"[[[\"", 0),
            ("[]", 1),
            ("{\"a\": [1, {\"b\": \"]]\\\"[\"}]}", 3),
            ("[[1], [[2]], 3]", 3),
        ];
        for (json, depth) in table {
            assert_eq!(nesting(json), depth, "{json}");
        }
    }

    #[test]
    fn it_serializes_as_the_json_it_is_and_reads_back() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let payload = Payload::envelope("tool.execution.failed", at, &raw("[0,0,0]"));
        let written = serde_json::to_string(&payload).unwrap();
        assert_eq!(written.as_bytes(), payload.as_bytes());
        let back: Payload = serde_json::from_str(&written).unwrap();
        assert_eq!(back.as_bytes(), payload.as_bytes());
    }
}
