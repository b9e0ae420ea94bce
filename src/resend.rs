//! A stored delivery sent again as a copy (`replay`, the dashboard's `r`,
//! `R` and `e`): the changes `replay --set`, `--data-file`, `--header` and
//! `--drop-header` make, the headers that tell a listener a request is
//! such a copy, and what a copy changed against its original
//! ([`diff`]). Pure: the caller reads files and sends.
//!
//! The headers are only a claim: any client can send them, so a record
//! says "resent from #N" as what the request said of itself, and the
//! dashboard shows it as such.

pub(crate) mod diff;

use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::delivery::Delivery;
use crate::events::Assignment;

/// On each copy this tool sends: the original's id.
pub(crate) const RESENT_FROM: &str = "X-Danube-Hooks-Resent-From";
/// On each copy this tool sends: `true` when it was changed, else `false`.
pub(crate) const EDITED: &str = "X-Danube-Hooks-Edited";

/// Whether `name` is one of the two headers above.
pub(crate) fn is_marker(name: &str) -> bool {
    name.eq_ignore_ascii_case(RESENT_FROM) || name.eq_ignore_ascii_case(EDITED)
}

/// What a request's two marks claim about it (the first of each header's
/// value): the original's id and whether the copy was changed; `(None,
/// None)` for anything else. The listener finds them in its one walk of
/// the headers (`server::head`).
pub(crate) fn claimed(
    resent_from: Option<&[u8]>,
    edited: Option<&[u8]>,
) -> (Option<u64>, Option<bool>) {
    let Some(original) = resent_from
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
    else {
        return (None, None);
    };
    let edited = edited.is_some_and(|value| value.trim_ascii() == b"true");
    (Some(original), Some(edited))
}

/// Set the two headers on a copy of delivery `original`, replacing any
/// the original itself carried (a copy of a copy names its own original).
pub(crate) fn mark(headers: &mut Vec<(String, Vec<u8>)>, original: u64, edited: bool) {
    headers.retain(|(name, _)| !is_marker(name));
    headers.push((RESENT_FROM.to_string(), original.to_string().into_bytes()));
    headers.push((
        EDITED.to_string(),
        if edited {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        },
    ));
}

/// The changes asked for, checked, before the delivery is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Edits {
    /// Replaces the body's `data` (`--data-file`), before the `sets`.
    pub(crate) data: Option<Value>,
    pub(crate) sets: Vec<Assignment>,
    /// Removed by name, any case (`--drop-header`), before `headers`.
    pub(crate) drop_headers: Vec<String>,
    /// Added, or replacing every header of the name (`--header`).
    pub(crate) headers: Vec<(String, String)>,
}

/// A copy's changes, made: its new body, when the body changed, and the
/// header changes, made after signing so that they can set or drop the
/// signature itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Edited {
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) drop_headers: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Edits {
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.sets.is_empty()
            && self.drop_headers.is_empty()
            && self.headers.is_empty()
    }

    /// The changes made to `delivery`: its body read as JSON, `data`
    /// replaced, each `--set` applied in order, written compact with the
    /// keys in their order. An error says what cannot be changed and why.
    pub(crate) fn apply(&self, delivery: &Delivery) -> Result<Edited, String> {
        let body = if self.data.is_some() || !self.sets.is_empty() {
            Some(self.edit_body(delivery)?)
        } else {
            None
        };
        Ok(Edited {
            body,
            drop_headers: self.drop_headers.clone(),
            headers: self.headers.clone(),
        })
    }

    fn edit_body(&self, delivery: &Delivery) -> Result<Vec<u8>, String> {
        let cannot = |why: String| {
            format!(
                "delivery #{}'s body {why}, so --set and --data-file cannot change it \
                 (--header and --drop-header can still change the headers)",
                delivery.id
            )
        };
        if delivery.body_truncated {
            return Err(cannot(format!(
                "was cut short ({} of {} bytes kept)",
                delivery.body.len(),
                delivery.body_size
            )));
        }
        let mut envelope: Value = serde_json::from_slice(&delivery.body)
            .map_err(|err| cannot(format!("is not JSON ({err})")))?;
        if !envelope.is_object() {
            return Err(cannot("is JSON but not an object".to_string()));
        }
        if let Some(data) = &self.data {
            envelope["data"] = data.clone();
        }
        for assignment in &self.sets {
            assignment
                .apply(&mut envelope)
                .map_err(|err| err.to_string())?;
        }
        Ok(serde_json::to_vec(&envelope).expect("a Value serializes"))
    }
}

impl Edited {
    /// The header changes on the headers about to be sent.
    pub(crate) fn apply_headers(&self, headers: &mut Vec<(String, Vec<u8>)>) {
        for name in &self.drop_headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        for (name, value) in &self.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.as_bytes().to_vec()));
        }
    }
}

/// One `--header 'Name: value'`: a header name as HTTP allows it, a value
/// without control characters, and not a header the client sets for its
/// own target and body (`Host`, `Content-Length`, the connection's) or one
/// of the copy's own two.
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("--header {text:?}: expected 'Name: value', e.g. 'X-Test: 1'"))?;
    let name = name.trim();
    check_name("--header", name)?;
    let value = value.trim();
    HeaderValue::from_str(value).map_err(|_| {
        format!("--header {text:?}: a value may not hold control characters or line breaks")
    })?;
    Ok((name.to_string(), value.to_string()))
}

/// One `--drop-header NAME`.
pub(crate) fn parse_drop(name: &str) -> Result<String, String> {
    let name = name.trim();
    check_name("--drop-header", name)?;
    Ok(name.to_string())
}

fn check_name(flag: &str, name: &str) -> Result<(), String> {
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!(
            "{flag} {name:?}: not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        ));
    }
    if !crate::http::is_end_to_end(name) {
        return Err(format!(
            "{flag} {name:?}: the client sets this header for its own connection, target \
             and body; it cannot be changed"
        ));
    }
    if is_marker(name) {
        return Err(format!(
            "{flag} {name:?}: this header says the request is a copy; every copy carries it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    fn edits(sets: &[&str]) -> Edits {
        Edits {
            sets: sets.iter().map(|s| Assignment::parse(s).unwrap()).collect(),
            ..Edits::default()
        }
    }

    fn body_after(edits: &Edits, body: &[u8]) -> Result<Value, String> {
        let edited = edits.apply(&sample(4, body))?;
        Ok(serde_json::from_slice(&edited.body.unwrap()).unwrap())
    }

    #[test]
    fn sets_change_typed_values_by_path_and_keep_the_key_order() {
        let body = br#"{"event":"tool.execution.completed","data":{"status":"ok","n":1},"z":0}"#;
        let after = body_after(
            &edits(&[
                "data.status=failed",
                "data.n=2.5",
                "data.tags=[\"a\",1]",
                "data.meta={\"k\":null}",
                "data.note=\"quoted\"",
                "data.new.deep=true",
                "event=workflow.failed",
            ]),
            body,
        )
        .unwrap();
        assert_eq!(after["data"]["status"], "failed");
        assert_eq!(after["data"]["n"], 2.5);
        assert_eq!(after["data"]["tags"], serde_json::json!(["a", 1]));
        assert_eq!(after["data"]["meta"], serde_json::json!({"k": null}));
        assert_eq!(after["data"]["note"], "quoted");
        assert_eq!(after["data"]["new"]["deep"], true);
        assert_eq!(after["event"], "workflow.failed");
        let keys: Vec<&String> = after.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["event", "data", "z"]);
    }

    #[test]
    fn data_file_replaces_data_before_the_sets() {
        let edits = Edits {
            data: Some(serde_json::json!({"x": 1})),
            ..edits(&["data.y=2"])
        };
        let after = body_after(&edits, br#"{"data":{"old":true}}"#).unwrap();
        assert_eq!(after["data"], serde_json::json!({"x": 1, "y": 2}));
    }

    #[test]
    fn a_body_that_cannot_be_edited_says_why() {
        let set = edits(&["data.x=1"]);
        let err = body_after(&set, b"not json").unwrap_err();
        assert!(err.contains("#4's body is not JSON"), "{err}");
        let err = body_after(&set, b"[1]").unwrap_err();
        assert!(err.contains("not an object"), "{err}");
        let err = body_after(&set, br#"{"data":"text"}"#).unwrap_err();
        assert!(err.contains("not an object"), "{err}");
        let mut cut = sample(4, br#"{"data":{}}"#);
        cut.body_truncated = true;
        assert!(set.apply(&cut).unwrap_err().contains("cut short"));
        // Headers alone never read the body.
        let headers_only = Edits {
            drop_headers: vec!["x".into()],
            ..Edits::default()
        };
        assert_eq!(headers_only.apply(&sample(4, b"\xff")).unwrap().body, None);
    }

    #[test]
    fn bad_assignments_and_headers_are_refused_with_what_is_allowed() {
        assert!(Assignment::parse("data.x").is_err());
        assert!(Assignment::parse("data..x=1").is_err());
        assert!(
            parse_header("X-Test 1")
                .unwrap_err()
                .contains("'Name: value'")
        );
        assert!(
            parse_header("X Test: 1")
                .unwrap_err()
                .contains("not a header name")
        );
        assert!(
            parse_header("X-Test: a\u{7}b")
                .unwrap_err()
                .contains("control")
        );
        assert!(
            parse_header("Host: evil")
                .unwrap_err()
                .contains("cannot be changed")
        );
        assert!(parse_drop("content-length").is_err());
        assert!(parse_drop("x-danube-hooks-edited").is_err());
        assert_eq!(
            parse_header(" X-Test :  two words ").unwrap(),
            ("X-Test".to_string(), "two words".to_string())
        );
    }

    #[test]
    fn header_edits_drop_then_replace_and_marks_replace_old_ones() {
        let mut headers = vec![
            ("X-Danube-Signature".to_string(), b"t=1,v1=aa".to_vec()),
            ("x-test".to_string(), b"old".to_vec()),
            ("x-test".to_string(), b"older".to_vec()),
            ("x-danube-hooks-resent-from".to_string(), b"1".to_vec()),
        ];
        let edited = Edited {
            drop_headers: vec!["x-danube-signature".into()],
            headers: vec![("X-Test".into(), "new".into())],
            ..Edited::default()
        };
        edited.apply_headers(&mut headers);
        mark(&mut headers, 9, true);
        assert_eq!(
            headers,
            [
                ("X-Test".to_string(), b"new".to_vec()),
                (RESENT_FROM.to_string(), b"9".to_vec()),
                (EDITED.to_string(), b"true".to_vec()),
            ]
        );
    }

    #[test]
    fn the_claim_is_read_only_from_a_number() {
        assert_eq!(claimed(None, None), (None, None));
        assert_eq!(claimed(None, Some(b"true")), (None, None));
        assert_eq!(claimed(Some(b"12"), Some(b"true")), (Some(12), Some(true)));
        assert_eq!(claimed(Some(b" 12 "), None), (Some(12), Some(false)));
        assert_eq!(claimed(Some(b"12"), Some(b"no")), (Some(12), Some(false)));
        assert_eq!(claimed(Some(b"-1"), Some(b"true")), (None, None));
        assert_eq!(claimed(Some(b"\xff"), None), (None, None));
    }
}
