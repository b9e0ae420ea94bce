//! JSON written the ways common stacks write it.
//!
//! The signature forensics re-serialize a body in each style to find out
//! whether a proxy or a framework rewrote it; the dashboard and `show` use
//! [`JsonStyle::Pretty`]. Key order is kept (`serde_json`'s `preserve_order`),
//! since a re-serializer that keeps the order is the one that fools people.

use std::fmt::Write as _;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// `{"a":1}`: JavaScript's `JSON.stringify`, `serde_json`, Go.
    Compact,
    /// Two-space indent, `": "`: `JSON.stringify(v, null, 2)`.
    Pretty,
    /// Four-space indent: Python's `json.dumps(v, indent=4)`.
    Pretty4,
    /// `{"a": 1, "b": 2}` with non-ASCII escaped: Python's `json.dumps(v)`.
    Python,
    /// Compact with `/` written `\/`: PHP's `json_encode`.
    EscapedSlashes,
    /// Compact with non-ASCII written `\uXXXX`.
    AsciiEscaped,
}

impl JsonStyle {
    pub const ALL: [JsonStyle; 6] = [
        Self::Compact,
        Self::Pretty,
        Self::Pretty4,
        Self::Python,
        Self::EscapedSlashes,
        Self::AsciiEscaped,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Self::Compact => "compact JSON (JSON.stringify)",
            Self::Pretty => "pretty JSON (2-space indent)",
            Self::Pretty4 => "pretty JSON (4-space indent)",
            Self::Python => "JSON with \", \" and \": \" separators (Python's json.dumps)",
            Self::EscapedSlashes => "JSON with \"/\" escaped as \"\\/\" (PHP's json_encode)",
            Self::AsciiEscaped => "JSON with non-ASCII characters escaped as \\uXXXX",
        }
    }

    fn layout(self) -> Layout {
        let compact = Layout {
            indent: None,
            item_sep: ",",
            key_sep: ":",
            escape_slash: false,
            ascii_only: false,
        };
        match self {
            Self::Compact => compact,
            Self::Pretty => Layout {
                indent: Some(2),
                key_sep: ": ",
                ..compact
            },
            Self::Pretty4 => Layout {
                indent: Some(4),
                key_sep: ": ",
                ..compact
            },
            Self::Python => Layout {
                item_sep: ", ",
                key_sep: ": ",
                ascii_only: true,
                ..compact
            },
            Self::EscapedSlashes => Layout {
                escape_slash: true,
                ..compact
            },
            Self::AsciiEscaped => Layout {
                ascii_only: true,
                ..compact
            },
        }
    }
}

#[derive(Clone, Copy)]
struct Layout {
    indent: Option<usize>,
    item_sep: &'static str,
    key_sep: &'static str,
    escape_slash: bool,
    ascii_only: bool,
}

/// `value` written in `style`.
pub fn render(value: &Value, style: JsonStyle) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style.layout(), 0);
    out
}

fn write_value(out: &mut String, value: &Value, layout: Layout, depth: usize) {
    match value {
        Value::Array(items) => write_container(
            out,
            ('[', ']'),
            items.iter().map(|item| (None, item)),
            items.is_empty(),
            layout,
            depth,
        ),
        Value::Object(map) => write_container(
            out,
            ('{', '}'),
            map.iter().map(|(k, v)| (Some(k.as_str()), v)),
            map.is_empty(),
            layout,
            depth,
        ),
        Value::String(text) => write_string(out, text, layout),
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_container<'a>(
    out: &mut String,
    (open, close): (char, char),
    entries: impl Iterator<Item = (Option<&'a str>, &'a Value)>,
    empty: bool,
    layout: Layout,
    depth: usize,
) {
    out.push(open);
    if empty {
        out.push(close);
        return;
    }
    for (index, (key, value)) in entries.enumerate() {
        if index > 0 {
            out.push_str(if layout.indent.is_some() {
                ","
            } else {
                layout.item_sep
            });
        }
        newline_and_indent(out, layout, depth + 1);
        if let Some(key) = key {
            write_string(out, key, layout);
            out.push_str(layout.key_sep);
        }
        write_value(out, value, layout, depth + 1);
    }
    newline_and_indent(out, layout, depth);
    out.push(close);
}

fn newline_and_indent(out: &mut String, layout: Layout, depth: usize) {
    if let Some(width) = layout.indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', width * depth));
    }
}

fn write_string(out: &mut String, text: &str, layout: Layout) {
    // serde_json's own escaping is the baseline every style shares.
    let escaped = Value::String(text.to_string()).to_string();
    for c in escaped.chars() {
        match c {
            '/' if layout.escape_slash => out.push_str("\\/"),
            c if layout.ascii_only && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::from_str(r#"{"b":1,"a":[true,null,"x/y é 😀"],"e":{},"f":[]}"#).unwrap()
    }

    #[test]
    fn styles_match_what_each_stack_writes() {
        let v = sample();
        assert_eq!(
            render(&v, JsonStyle::Compact),
            r#"{"b":1,"a":[true,null,"x/y é 😀"],"e":{},"f":[]}"#
        );
        assert_eq!(
            render(&v, JsonStyle::Pretty),
            "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null,\n    \"x/y é 😀\"\n  ],\n  \"e\": {},\n  \"f\": []\n}"
        );
        assert_eq!(
            render(&v, JsonStyle::Python),
            r#"{"b": 1, "a": [true, null, "x/y \u00e9 \ud83d\ude00"], "e": {}, "f": []}"#
        );
        assert_eq!(
            render(&v, JsonStyle::EscapedSlashes),
            r#"{"b":1,"a":[true,null,"x\/y é 😀"],"e":{},"f":[]}"#
        );
        assert!(render(&v, JsonStyle::Pretty4).contains("\n    \"b\": 1"));
    }

    #[test]
    fn pretty_matches_serde_json_pretty() {
        let v = sample();
        assert_eq!(
            render(&v, JsonStyle::Pretty),
            serde_json::to_string_pretty(&v).unwrap()
        );
        assert_eq!(
            render(&v, JsonStyle::Compact),
            serde_json::to_string(&v).unwrap()
        );
    }
}
