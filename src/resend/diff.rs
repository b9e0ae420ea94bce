//! What a copy changed against its original: the body's JSON path by path
//! (added, removed, changed with old → new), and the headers added and
//! removed. Bounded whatever the bodies: bodies over [`MAX_BODY`] are not
//! compared, at most [`MAX_CHANGES`] changes are kept (the rest counted),
//! and each value is cut at [`VALUE_CHARS`]. The text is not escaped:
//! whoever shows it escapes it (`display`).

use std::fmt::Write as _;

use serde_json::Value;

use crate::http::is_end_to_end;

/// Bodies larger than this are said to differ, not compared.
pub(crate) const MAX_BODY: usize = 256 * 1024;
/// Changes kept of a body's, and of the headers' each way.
pub(crate) const MAX_CHANGES: usize = 40;
/// Characters of a value shown, as compact JSON.
pub(crate) const VALUE_CHARS: usize = 60;

/// One path's change, its values as cut compact JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Added(String),
    Removed(String),
    Changed(String, String),
}

/// The body's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyDiff {
    /// The same bytes.
    Same,
    /// Both JSON: the paths that changed (none: the same JSON written
    /// differently), and how many more were not kept.
    Json {
        changes: Vec<(String, Change)>,
        more: usize,
    },
    /// Different bytes, not both JSON.
    NotJson,
    /// Different bytes, one over [`MAX_BODY`].
    TooLarge,
}

/// The headers that differ, by name and value; the ones a client sets for
/// its own connection and the copy's own two are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeaderDiff {
    pub(crate) added: Vec<(String, String)>,
    pub(crate) removed: Vec<(String, String)>,
    /// Changes past [`MAX_CHANGES`] each way.
    pub(crate) more: usize,
}

/// What `new` changed against `old`.
pub(crate) fn bodies(old: &[u8], new: &[u8]) -> BodyDiff {
    if old == new {
        return BodyDiff::Same;
    }
    if old.len() > MAX_BODY || new.len() > MAX_BODY {
        return BodyDiff::TooLarge;
    }
    let (Ok(old), Ok(new)) = (
        serde_json::from_slice::<Value>(old),
        serde_json::from_slice::<Value>(new),
    ) else {
        return BodyDiff::NotJson;
    };
    let mut changes = Vec::new();
    let mut more = 0;
    walk(&old, &new, &mut String::new(), &mut |path, change| {
        if changes.len() < MAX_CHANGES {
            changes.push((path.to_string(), change));
        } else {
            more += 1;
        }
    });
    BodyDiff::Json { changes, more }
}

/// Each change under `path`, in the order of `old`'s keys, then `new`'s
/// new ones. Depth is bounded by `serde_json`'s parser (128).
fn walk(old: &Value, new: &Value, path: &mut String, found: &mut impl FnMut(&str, Change)) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, before) in old {
                let len = path.len();
                push_key(path, key);
                match new.get(key) {
                    Some(after) => walk(before, after, path, found),
                    None => found(path, Change::Removed(shown(before))),
                }
                path.truncate(len);
            }
            for (key, after) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
                let len = path.len();
                push_key(path, key);
                found(path, Change::Added(shown(after)));
                path.truncate(len);
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for index in 0..old.len().max(new.len()) {
                let len = path.len();
                let _ = write!(path, "[{index}]");
                match (old.get(index), new.get(index)) {
                    (Some(before), Some(after)) => walk(before, after, path, found),
                    (Some(before), None) => found(path, Change::Removed(shown(before))),
                    (None, Some(after)) => found(path, Change::Added(shown(after))),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (old, new) if old != new => found(path, Change::Changed(shown(old), shown(new))),
        _ => {}
    }
}

/// `.key` for a plain name (as `--set` writes it), `["k.e y"]` otherwise.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_string()).to_string());
        path.push(']');
    }
}

/// A value as compact JSON, cut at [`VALUE_CHARS`].
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(VALUE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The headers of `new` not in `old` and those of `old` not in `new`, by
/// name (any case) and value, repeats counted.
pub(crate) fn headers(old: &[(String, String)], new: &[(String, String)]) -> HeaderDiff {
    let compared = |(name, _): &&(String, String)| is_end_to_end(name) && !super::is_marker(name);
    let new: Vec<&(String, String)> = new.iter().filter(compared).collect();
    let mut matched = vec![false; new.len()];
    let mut diff = HeaderDiff::default();
    let keep = |list: &mut Vec<(String, String)>, more: &mut usize, header: &(String, String)| {
        if list.len() < MAX_CHANGES {
            list.push(header.clone());
        } else {
            *more += 1;
        }
    };
    for header in old.iter().filter(compared) {
        let twin = (0..new.len()).find(|&i| {
            !matched[i] && new[i].0.eq_ignore_ascii_case(&header.0) && new[i].1 == header.1
        });
        match twin {
            Some(i) => matched[i] = true,
            None => keep(&mut diff.removed, &mut diff.more, header),
        }
    }
    for (header, _) in new.iter().zip(&matched).filter(|(_, matched)| !**matched) {
        keep(&mut diff.added, &mut diff.more, header);
    }
    diff
}

/// The changes as lines: `~ path: old → new`, `+ path: value`,
/// `- path: value`, then `+ header Name: value`, `- header Name: value`;
/// a last line counts what was left out.
pub(crate) fn lines(body: &BodyDiff, headers: &HeaderDiff) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = headers.more;
    match body {
        BodyDiff::Same => {}
        BodyDiff::Json {
            changes,
            more: left,
        } => {
            if changes.is_empty() {
                out.push("~ the body: the same JSON, written differently".to_string());
            }
            for (path, change) in changes {
                let path = if path.is_empty() { "(the body)" } else { path };
                out.push(match change {
                    Change::Added(value) => format!("+ {path}: {value}"),
                    Change::Removed(value) => format!("- {path}: {value}"),
                    Change::Changed(old, new) => format!("~ {path}: {old} → {new}"),
                });
            }
            more += left;
        }
        BodyDiff::NotJson => out.push("~ the body: other bytes (not JSON)".to_string()),
        BodyDiff::TooLarge => out.push(format!(
            "~ the body: other bytes (over {} KiB, not compared)",
            MAX_BODY / 1024
        )),
    }
    header_lines(headers, &mut out);
    if more > 0 {
        out.push(format!("… and {more} more"));
    }
    out
}

/// A header removed and one of its name added read as one change (the
/// signature, signed anew); the rest as added and removed.
fn header_lines(headers: &HeaderDiff, out: &mut Vec<String>) {
    let mut paired = vec![false; headers.added.len()];
    let mut removed = Vec::new();
    for (name, old) in &headers.removed {
        let twin = (0..headers.added.len())
            .find(|&i| !paired[i] && headers.added[i].0.eq_ignore_ascii_case(name));
        match twin {
            Some(i) => {
                paired[i] = true;
                out.push(format!("~ header {name}: {old} → {}", headers.added[i].1));
            }
            None => removed.push(format!("- header {name}: {old}")),
        }
    }
    for ((name, value), _) in headers.added.iter().zip(&paired).filter(|(_, p)| !**p) {
        out.push(format!("+ header {name}: {value}"));
    }
    out.extend(removed);
}

/// The first `shown` lines in one, for a status line.
pub(crate) fn summary(lines: &[String], shown: usize) -> String {
    let mut text = lines
        .iter()
        .take(shown)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" · ");
    if lines.len() > shown {
        let _ = write!(text, " · (+{} more)", lines.len() - shown);
    }
    if text.is_empty() {
        text.push_str("no change");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_lines(old: &str, new: &str) -> Vec<String> {
        lines(
            &bodies(old.as_bytes(), new.as_bytes()),
            &HeaderDiff::default(),
        )
    }

    #[test]
    fn paths_added_removed_and_changed_with_old_and_new() {
        let old = r#"{"event":"a","data":{"status":"ok","n":1,"gone":[1,2],"list":[1,2]}}"#;
        let new = r#"{"event":"a","data":{"status":"failed","n":1.5,"list":[1,3,4],"odd key":{"x":null}}}"#;
        assert_eq!(
            json_lines(old, new),
            [
                r#"~ data.status: "ok" → "failed""#,
                "~ data.n: 1 → 1.5",
                "- data.gone: [1,2]",
                "~ data.list[1]: 2 → 3",
                "+ data.list[2]: 4",
                r#"+ data["odd key"]: {"x":null}"#,
            ]
        );
    }

    #[test]
    fn the_same_json_other_bytes_and_not_json() {
        assert!(json_lines("{}", "{}").is_empty());
        assert_eq!(
            json_lines(r#"{"a":1}"#, r#"{ "a": 1 }"#),
            ["~ the body: the same JSON, written differently"]
        );
        assert_eq!(json_lines("x", "y"), ["~ the body: other bytes (not JSON)"]);
        assert_eq!(json_lines("1", "2"), ["~ (the body): 1 → 2"]);
    }

    #[test]
    fn the_diff_is_bounded_in_changes_value_length_and_body_size() {
        let old: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        let new: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("k{i}"), Value::from(i + 1)))
            .collect();
        let (old, new) = (
            Value::Object(old).to_string(),
            Value::Object(new).to_string(),
        );
        let shown = json_lines(&old, &new);
        assert_eq!(shown.len(), MAX_CHANGES + 1);
        assert_eq!(shown.last().unwrap(), "… and 60 more");
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(500));
        let cut = json_lines("{}", &long);
        assert_eq!(cut[0].chars().count(), "+ a: ".len() + VALUE_CHARS + 1);
        assert!(cut[0].ends_with('…'));
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_BODY));
        assert_eq!(bodies(b"{}", big.as_bytes()), BodyDiff::TooLarge);
    }

    #[test]
    fn headers_added_and_removed_by_name_and_value() {
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let old = [
            pair("Content-Type", "application/json"),
            pair("X-Danube-Signature", "t=1,v1=aa"),
            pair("X-Gone", "1"),
            pair("Host", "127.0.0.1:4000"),
            pair("Content-Length", "2"),
        ];
        let new = [
            pair("content-type", "application/json"),
            pair("X-Danube-Signature", "t=2,v1=bb"),
            pair("X-New", "\u{1b}[31m"),
            pair("Host", "127.0.0.1:4001"),
            pair("Content-Length", "3"),
            pair("X-Danube-Hooks-Resent-From", "1"),
            pair("X-Danube-Hooks-Edited", "true"),
        ];
        let diff = headers(&old, &new);
        assert_eq!(
            diff.added,
            [
                pair("X-Danube-Signature", "t=2,v1=bb"),
                pair("X-New", "\u{1b}[31m")
            ]
        );
        assert_eq!(
            diff.removed,
            [pair("X-Danube-Signature", "t=1,v1=aa"), pair("X-Gone", "1")]
        );
        assert_eq!(
            lines(&BodyDiff::Same, &diff),
            [
                "~ header X-Danube-Signature: t=1,v1=aa → t=2,v1=bb",
                "+ header X-New: \u{1b}[31m",
                "- header X-Gone: 1",
            ]
        );
        assert_eq!(
            summary(&lines(&BodyDiff::Same, &diff), 2),
            "~ header X-Danube-Signature: t=1,v1=aa → t=2,v1=bb · + header X-New: \u{1b}[31m \
             · (+1 more)"
        );
    }
}
