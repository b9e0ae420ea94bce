//! JSON written the ways common stacks write it.
//!
//! The signature forensics re-serialize a body in each style to find out
//! whether a proxy or a framework rewrote it; the dashboard and `show` use
//! [`JsonStyle::Pretty`] through [`pretty_bounded`]. Key order is kept
//! (`serde_json`'s `preserve_order`), since a re-serializer that keeps the
//! order is the one that fools people.
//!
//! A stranger chooses the body, so every caller bounds the cost: the shape
//! is checked on the bytes ([`check_shape`]) before a `Value` is built, and
//! the text is cut at a size ([`render_capped`]).

use std::fmt::Write as _;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonStyle {
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
    pub(crate) const ALL: [JsonStyle; 6] = [
        Self::Compact,
        Self::Pretty,
        Self::Pretty4,
        Self::Python,
        Self::EscapedSlashes,
        Self::AsciiEscaped,
    ];

    pub(crate) fn describe(self) -> &'static str {
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
#[cfg(test)]
pub(crate) fn render(value: &Value, style: JsonStyle) -> String {
    render_capped(value, style, usize::MAX).0
}

/// `value` written in `style`, stopping once the text passes `cap` bytes:
/// the text (at most `cap` bytes, cut at a character boundary) and whether
/// it was cut. Pretty-printing a deeply nested value multiplies its size
/// by the indent (a 1 MiB body 126 levels deep is 127 MB pretty), so every
/// caller that does not trust the value's shape passes a cap.
pub(crate) fn render_capped(value: &Value, style: JsonStyle, cap: usize) -> (String, bool) {
    let mut out = Out {
        text: String::new(),
        cap,
    };
    write_value(&mut out, value, style.layout(), 0);
    let cut = out.text.len() > cap;
    if cut {
        let mut end = cap;
        while !out.text.is_char_boundary(end) {
            end -= 1;
        }
        out.text.truncate(end);
    }
    (out.text, cut)
}

/// Why a JSON text is not worth building into a `serde_json::Value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShapeExceeded {
    #[error("the JSON is nested more than {0} levels deep")]
    Depth(usize),
    #[error("the JSON holds more than {0} values")]
    Values(usize),
}

/// Check, from the bytes alone and without building anything, that a JSON
/// text nests at most `max_depth` levels and holds at most `max_values`
/// values (counted as openings and separators, an upper bound). The bytes
/// need not be valid JSON: the scan only bounds what a parse would build.
pub(crate) fn check_shape(
    bytes: &[u8],
    max_depth: usize,
    max_values: usize,
) -> Result<(), ShapeExceeded> {
    let mut depth = 0usize;
    let mut values = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                values += 1;
                if depth > max_depth {
                    return Err(ShapeExceeded::Depth(max_depth));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => continue,
        }
        if values > max_values {
            return Err(ShapeExceeded::Values(max_values));
        }
    }
    Ok(())
}

/// Why a body is not shown re-indented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotPretty {
    #[error("not JSON")]
    NotJson,
    #[error("{0}")]
    Shape(#[from] ShapeExceeded),
}

/// How deep a received body may nest before this tool stops building it
/// into a `serde_json::Value` (to re-indent it, or to alter it for
/// forensics): `serde_json`'s own recursion limit is 128, and a body nested
/// deeper than any real payload is shown or judged as bytes.
pub(crate) const MAX_DEPTH: usize = 64;

/// What re-indenting one body may cost: the shape checked on the bytes
/// first, then the text cut. Each reader has its own budget, because each
/// has its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrettyLimits {
    /// Levels of nesting at most.
    pub(crate) depth: usize,
    /// Values at most (as [`check_shape`] counts them).
    pub(crate) values: usize,
    /// Bytes of re-indented text kept; the rest is cut.
    pub(crate) text: usize,
}

impl PrettyLimits {
    /// The dashboard's body tab: built within one frame's budget.
    pub(crate) const DASHBOARD: Self = Self {
        depth: MAX_DEPTH,
        values: 20_000,
        text: 256 * 1024,
    };
    /// `show`: a command the user waits for, printing to a pager.
    pub(crate) const SHOW: Self = Self {
        depth: MAX_DEPTH,
        values: 1_000_000,
        text: 16 * 1024 * 1024,
    };
}

/// `body` re-indented as pretty JSON, for a person to read, at a cost
/// bounded whatever the body: parsed only when its bytes fit `limits`'
/// depth and values, and the text cut at its `text` bytes (the bool says
/// whether it was).
pub(crate) fn pretty_bounded(
    body: &[u8],
    limits: &PrettyLimits,
) -> Result<(String, bool), NotPretty> {
    check_shape(body, limits.depth, limits.values)?;
    let value: Value = serde_json::from_slice(body).map_err(|_| NotPretty::NotJson)?;
    Ok(render_capped(&value, JsonStyle::Pretty, limits.text))
}

/// The text being written, and the size past which writing stops.
struct Out {
    text: String,
    cap: usize,
}

impl Out {
    fn full(&self) -> bool {
        self.text.len() > self.cap
    }
}

fn write_value(out: &mut Out, value: &Value, layout: Layout, depth: usize) {
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
        scalar => out.text.push_str(&scalar.to_string()),
    }
}

fn write_container<'a>(
    out: &mut Out,
    (open, close): (char, char),
    entries: impl Iterator<Item = (Option<&'a str>, &'a Value)>,
    empty: bool,
    layout: Layout,
    depth: usize,
) {
    out.text.push(open);
    if empty {
        out.text.push(close);
        return;
    }
    for (index, (key, value)) in entries.enumerate() {
        if out.full() {
            return;
        }
        if index > 0 {
            out.text.push_str(if layout.indent.is_some() {
                ","
            } else {
                layout.item_sep
            });
        }
        newline_and_indent(out, layout, depth + 1);
        if let Some(key) = key {
            write_string(out, key, layout);
            out.text.push_str(layout.key_sep);
        }
        write_value(out, value, layout, depth + 1);
    }
    newline_and_indent(out, layout, depth);
    out.text.push(close);
}

fn newline_and_indent(out: &mut Out, layout: Layout, depth: usize) {
    if let Some(width) = layout.indent {
        out.text.push('\n');
        out.text.extend(std::iter::repeat_n(' ', width * depth));
    }
}

fn write_string(out: &mut Out, text: &str, layout: Layout) {
    // serde_json's own escaping is the baseline every style shares.
    let escaped = Value::String(text.to_string()).to_string();
    for c in escaped.chars() {
        match c {
            '/' if layout.escape_slash => out.text.push_str("\\/"),
            c if layout.ascii_only && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out.text, "\\u{unit:04x}");
                }
            }
            c => out.text.push(c),
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

    #[test]
    fn a_capped_render_stops_at_the_cap_and_says_so() {
        let v = sample();
        let whole = render(&v, JsonStyle::Pretty);
        assert_eq!(
            render_capped(&v, JsonStyle::Pretty, whole.len()),
            (whole.clone(), false)
        );
        for cap in [0, 1, 7, 20, whole.len() - 1] {
            let (text, cut) = render_capped(&v, JsonStyle::Pretty, cap);
            assert!(cut, "cap {cap}");
            assert!(text.len() <= cap, "cap {cap}: {} bytes", text.len());
            assert!(whole.starts_with(&text), "cap {cap}");
        }
        // 126 levels of arrays, pretty: the indent alone would be huge.
        let deep = format!("{}{}", "[".repeat(126), "]".repeat(126));
        let deep: Value = serde_json::from_str(&deep).unwrap();
        let (text, cut) = render_capped(&deep, JsonStyle::Pretty4, 1000);
        assert!(cut && text.len() <= 1000);
    }

    #[test]
    fn shapes_are_checked_from_the_bytes() {
        let cases: [(&[u8], Result<(), ShapeExceeded>); 7] = [
            (br#"{"a":[1,2,3]}"#, Ok(())),
            (b"[[[[1]]]]", Err(ShapeExceeded::Depth(3))),
            (br#""[[[[[[""#, Ok(())),
            (br#"["\"[[[[["]"#, Ok(())),
            (b"[1,2,3,4,5,6,7,8,9,10]", Err(ShapeExceeded::Values(8))),
            (b"not json at all", Ok(())),
            (b"]]]]]][", Ok(())),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                check_shape(bytes, 3, 8),
                expected,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
