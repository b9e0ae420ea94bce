//! Danube's event types and their envelopes, built from `fixtures/events/`
//! (compiled in, so the binary needs no checkout). Pure: the caller passes
//! the time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Danube's event types (SPEC §1), in the order `trigger --all` sends them.
pub(crate) const EVENT_TYPES: [&str; 5] = [
    "tool.execution.completed",
    "tool.execution.failed",
    "workflow.completed",
    "workflow.failed",
    "agent.spend.limit_approaching",
];

const FIXTURES: [&str; 5] = [
    include_str!("../fixtures/events/tool.execution.completed.json"),
    include_str!("../fixtures/events/tool.execution.failed.json"),
    include_str!("../fixtures/events/workflow.completed.json"),
    include_str!("../fixtures/events/workflow.failed.json"),
    include_str!("../fixtures/events/agent.spend.limit_approaching.json"),
];

/// What went wrong building an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    #[error("unknown event {0:?}; Danube's event types are: {list}", list = EVENT_TYPES.join(", "))]
    UnknownEvent(String),
    #[error("--set {0:?}: expected PATH=VALUE, e.g. data.status=failed")]
    NotAnAssignment(String),
    #[error("--set {path:?}: {why}")]
    BadPath { path: String, why: String },
}

/// The fixture payload of `event`.
pub(crate) fn fixture(event: &str) -> Result<Value, EnvelopeError> {
    let index = EVENT_TYPES
        .iter()
        .position(|e| *e == event)
        .ok_or_else(|| EnvelopeError::UnknownEvent(event.to_string()))?;
    Ok(serde_json::from_str(FIXTURES[index]).expect("fixtures are valid JSON (checked by a test)"))
}

/// The timestamp format of Danube's envelope: RFC 3339, microseconds.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One `--set PATH=VALUE`: the value is JSON when it reads as JSON
/// (numbers, booleans, null, "quoted", arrays, objects), else a string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assignment {
    pub(crate) path: Vec<String>,
    pub(crate) value: Value,
}

impl Assignment {
    pub(crate) fn parse(text: &str) -> Result<Self, EnvelopeError> {
        let (path, raw) = text
            .split_once('=')
            .ok_or_else(|| EnvelopeError::NotAnAssignment(text.to_string()))?;
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(EnvelopeError::BadPath {
                path: text.to_string(),
                why: "a path is dot-separated names, e.g. data.tool_name".into(),
            });
        }
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        Ok(Self { path, value })
    }

    /// Set the value at the path, making the objects on the way.
    pub(crate) fn apply(&self, envelope: &mut Value) -> Result<(), EnvelopeError> {
        let mut node = envelope;
        let (last, parents) = self.path.split_last().expect("parse refuses an empty path");
        for name in parents {
            let object = node
                .as_object_mut()
                .ok_or_else(|| self.not_an_object(name))?;
            node = object
                .entry(name.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
        node.as_object_mut()
            .ok_or_else(|| self.not_an_object(last))?
            .insert(last.clone(), self.value.clone());
        Ok(())
    }

    fn not_an_object(&self, name: &str) -> EnvelopeError {
        EnvelopeError::BadPath {
            path: self.path.join("."),
            why: format!("cannot set {name:?} inside a value that is not an object"),
        }
    }
}

/// The envelope for `event` at `at`: the fixture, its `data` replaced by
/// `data` when given, then each assignment applied in order.
pub(crate) fn envelope(
    event: &str,
    at: DateTime<Utc>,
    data: Option<Value>,
    assignments: &[Assignment],
) -> Result<Vec<u8>, EnvelopeError> {
    let mut envelope = fixture(event)?;
    envelope["timestamp"] = Value::String(timestamp(at));
    if let Some(data) = data {
        envelope["data"] = data;
    }
    for assignment in assignments {
        assignment.apply(&mut envelope)?;
    }
    Ok(serde_json::to_vec(&envelope).expect("a Value serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T09:14:07.123456Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn every_fixture_is_an_envelope_of_its_type() {
        for event in EVENT_TYPES {
            let value = fixture(event).unwrap();
            assert_eq!(value["event"], event);
            assert!(value["timestamp"].is_string());
            assert!(value["data"].is_object());
        }
        let tool = fixture("tool.execution.completed").unwrap();
        for field in ["tool_id", "tool_name", "status", "execution_time", "error"] {
            assert!(
                tool["data"].get(field).is_some(),
                "documented field {field}"
            );
        }
    }

    #[test]
    fn envelopes_get_a_fresh_microsecond_timestamp_and_typed_sets() {
        let sets = [
            Assignment::parse("data.status=failed").unwrap(),
            Assignment::parse("data.execution_time=2.5").unwrap(),
            Assignment::parse("data.retried=true").unwrap(),
            Assignment::parse("data.error=null").unwrap(),
            Assignment::parse("data.nested.deep=7").unwrap(),
            Assignment::parse("data.tool_id=0042abc").unwrap(),
        ];
        let body = envelope("tool.execution.completed", at(), None, &sets).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["timestamp"], "2026-11-23T09:14:07.123456Z");
        assert_eq!(value["data"]["status"], "failed");
        assert_eq!(value["data"]["execution_time"], 2.5);
        assert_eq!(value["data"]["retried"], true);
        assert!(value["data"]["error"].is_null());
        assert_eq!(value["data"]["nested"]["deep"], 7);
        assert_eq!(value["data"]["tool_id"], "0042abc");
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["event", "timestamp", "data"],
            "Danube's field order is kept"
        );
    }

    #[test]
    fn data_file_replaces_data() {
        let body = envelope(
            "workflow.completed",
            at(),
            Some(serde_json::json!({"x": 1})),
            &[],
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["data"], serde_json::json!({"x": 1}));
    }

    #[test]
    fn errors_name_the_input_and_what_is_allowed() {
        let unknown = fixture("order.created").unwrap_err().to_string();
        assert!(
            unknown.contains("order.created") && unknown.contains("workflow.failed"),
            "{unknown}"
        );
        assert!(Assignment::parse("data.x").is_err());
        assert!(Assignment::parse("data..x=1").is_err());
        let not_object = envelope(
            "workflow.completed",
            at(),
            None,
            &[Assignment::parse("event.x=1").unwrap()],
        );
        assert!(matches!(not_object, Err(EnvelopeError::BadPath { .. })));
    }
}
