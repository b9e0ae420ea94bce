//! Untrusted bytes to text that is safe to put on a terminal.
//!
//! Everything a delivery carries (path, headers, body) comes from the
//! internet through the tunnel. Before any of it reaches a terminal, C0 and
//! C1 controls, DEL and the bidi controls (SPEC §8) become visible escapes,
//! so no request can move the cursor, retitle the window, set the clipboard
//! or reorder what a developer reads. The dashboard, the headless lines and
//! every command that prints stored data go through here.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr as _;

/// Whether `c` must never reach a terminal as itself.
pub fn is_dangerous(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (U+0080..=U+009F)
        || matches!(c,
            '\u{202A}'..='\u{202E}'   // embeddings and overrides
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{200E}' | '\u{200F}' // LRM, RLM
            | '\u{061C}'              // Arabic letter mark
        )
}

/// A path as a message shows it: on one line, escaped as [`escape_line`]
/// escapes (a file's name may hold any byte but `/` and NUL).
pub(crate) fn escape_path(path: &std::path::Path) -> String {
    escape_line(&path.display().to_string()).into_owned()
}

/// `text` on one line: every dangerous character, newlines and tabs included,
/// becomes a visible escape (`\n`, `\t`, `\x1b`, `\u{202e}`).
pub(crate) fn escape_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_dangerous) && !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c, false);
    }
    Cow::Owned(out)
}

/// `input` escaped on a line of its own and a caret under its `column`-th
/// character (1-based; one past the end for something missing), each line
/// indented by two spaces: how a bad `--respond` rule or query points at
/// what is wrong. The caret counts the escaped width of what comes before,
/// in terminal cells.
pub(crate) fn caret_under(input: &str, column: usize) -> String {
    let before: String = input.chars().take(column.saturating_sub(1)).collect();
    // Terminal cells, not characters: a wide character (漢) takes two.
    let indent = escape_line(&before).width();
    format!("\n  {}\n  {:indent$}^", escape_line(input), "")
}

/// `text` for a multi-line view: newlines stay line breaks, tabs stay tabs,
/// everything else dangerous is escaped.
pub(crate) fn escape_multiline(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| is_dangerous(c) && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c, true);
    }
    Cow::Owned(out)
}

/// Raw bytes (which may not be UTF-8) for a multi-line view: invalid bytes
/// show as `\xNN`, dangerous characters as escapes.
pub(crate) fn escape_bytes_multiline(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c, true);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// Raw bytes on one line.
pub(crate) fn escape_bytes_line(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c, false);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char, keep_line_breaks: bool) {
    match c {
        '\n' if keep_line_breaks => out.push('\n'),
        '\t' if keep_line_breaks => out.push('\t'),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        // A backslash is doubled on one line, so `\x1b` written by the sender
        // cannot pass for an escape this tool made.
        '\\' if !keep_line_breaks => out.push_str("\\\\"),
        c if is_dangerous(c) => {
            let code = u32::from(c);
            if code < 0x100 {
                let _ = write!(out, "\\x{code:02x}");
            } else {
                let _ = write!(out, "\\u{{{code:04x}}}");
            }
        }
        c => out.push(c),
    }
}

/// Cut `text` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    Cow::Owned(out)
}

/// The hex column of one hex-dump row of up to 16 bytes, padded to full
/// width, with a gap after the eighth byte and a trailing space.
pub(crate) fn hex_row(chunk: &[u8]) -> String {
    let mut out = String::with_capacity(50);
    for i in 0..16 {
        match chunk.get(i) {
            Some(b) => {
                let _ = write!(out, "{b:02x} ");
            }
            None => out.push_str("   "),
        }
        if i == 7 {
            out.push(' ');
        }
    }
    out.push(' ');
    out
}

/// The text column of one hex-dump row: printable ASCII, `.` for the rest.
pub(crate) fn ascii_row(chunk: &[u8]) -> String {
    chunk
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

/// `value` as one line of JSON that is also safe on a terminal: on top of
/// JSON's own escapes, DEL, C1 and the bidi controls are written `\uXXXX`.
/// A person who pipes `--json` output to a terminal is as safe as one who
/// reads the dashboard, and the JSON means the same to a parser.
pub(crate) fn to_json_line<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(512);
    write_json_line(&mut out, value);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// [`to_json_line`], appended to `out` (no newline): for the store's writer
/// and the `--json` printer, which batch many lines into one buffer and
/// need neither a `String` per record nor its UTF-8 check.
pub(crate) fn write_json_line<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut serializer = serde_json::Serializer::with_formatter(out, TerminalSafeFormatter);
    // Serializing our own records to memory cannot fail: every map key is a string.
    value
        .serialize(&mut serializer)
        .expect("records serialize to JSON");
}

struct TerminalSafeFormatter;

impl serde_json::ser::Formatter for TerminalSafeFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        // Fast path for the common case, ASCII without DEL (serde_json has
        // already escaped C0 controls, `"` and `\` out of every fragment).
        // Both scans work a word or a vector at a time; decoding every char
        // of a 1 KiB body's base64 was the listener's largest cost under
        // load (see docs/performance.md).
        if fragment.is_ascii() && !fragment.as_bytes().contains(&0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        if !fragment.chars().any(is_dangerous) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut buf = [0u8; 4];
        for c in fragment.chars() {
            if is_dangerous(c) {
                write!(writer, "\\u{:04x}", u32::from(c))?;
            } else {
                writer.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_dangerous_class() {
        let cases = [
            ("\x1b[31mred", "\\x1b[31mred"),
            ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
            ("a\u{9b}31m", "a\\x9b31m"),
            ("del\x7f", "del\\x7f"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            (
                "\u{2066}\u{2069}\u{200e}\u{200f}\u{061c}",
                "\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{061c}",
            ),
            ("line\nbreak\r\ttab", "line\\nbreak\\r\\ttab"),
            ("back\\slash", "back\\\\slash"),
            ("plain café 😀", "plain café 😀"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_line(input), expected, "input {input:?}");
            assert!(!escape_line(input).chars().any(is_dangerous));
        }
    }

    #[test]
    fn multiline_keeps_newlines_only() {
        assert_eq!(escape_multiline("a\nb\x1bc"), "a\nb\\x1bc");
        assert_eq!(escape_multiline("plain\n"), "plain\n");
    }

    #[test]
    fn invalid_utf8_is_shown_as_hex() {
        assert_eq!(escape_bytes_line(b"ok\xff\xfe\x1b"), "ok\\xff\\xfe\\x1b");
        assert_eq!(escape_bytes_multiline(b"a\nb\xc3"), "a\nb\\xc3");
    }

    #[test]
    fn hex_rows() {
        let full = hex_row(b"0123456789abcdef");
        assert!(full.starts_with("30 31 32 33 34 35 36 37  38 39"), "{full}");
        assert_eq!(
            hex_row(b"\x00\x1b").len(),
            full.len(),
            "short rows are padded"
        );
        assert_eq!(ascii_row(b"ab \x00\x1b\xff"), "ab ...");
    }

    #[test]
    fn json_lines_escape_terminal_controls_and_stay_json() {
        let text = "a\u{202e}b\u{85}c\x7fd\x1be\u{e9}";
        let line = to_json_line(&serde_json::json!({ "k": text }));
        assert_eq!(line, r#"{"k":"a\u202eb\u0085c\u007fd\u001beé"}"#);
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["k"], text);
    }

    #[test]
    fn truncates_with_a_mark() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
