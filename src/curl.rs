//! A `curl` command that reproduces a stored request byte for byte: the
//! method, every header but the connection's own, and the exact body.
//! `export --curl` prints it and the dashboard's `c` copies it.
//!
//! Everything is single-quoted for a POSIX shell, so no byte of a hostile
//! delivery can run anything when the command is pasted. Bodies that are
//! not plain text travel as base64 through `base64 -d`, the one form that
//! carries every byte (a shell argument can't hold NUL).

use std::fmt::Write as _;

use base64::Engine as _;

use crate::delivery::Delivery;
use crate::sender::is_end_to_end;

/// Headers curl adds on its own; sent empty (`-H 'Name:'`) when the
/// original request had none, so curl leaves them out.
const CURL_DEFAULTS: [&str; 3] = ["user-agent", "accept", "content-type"];

/// The command, for `url` (the place to send it to).
pub fn command(delivery: &Delivery, url: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let body_is_text = is_shell_text(&delivery.body);
    let mut line = String::new();
    if !body_is_text {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&delivery.body);
        let _ = write!(line, "printf %s {} | base64 -d | ", quote(&encoded));
    }
    line.push_str("curl --silent --show-error --include");
    parts.push(line);
    parts.push(format!("--request {}", quote(&delivery.method)));
    for (name, value) in &delivery.headers {
        // Expect is curl's to decide, like the hop-by-hop headers.
        if !is_end_to_end(name) || name.eq_ignore_ascii_case("expect") {
            continue;
        }
        parts.push(format!("--header {}", quote(&format!("{name}: {value}"))));
    }
    for default in CURL_DEFAULTS {
        if delivery.header(default).is_none() {
            parts.push(format!("--header {}", quote(&format!("{default}:"))));
        }
    }
    // Without this curl may wait for `100 Continue` on large bodies.
    parts.push(format!("--header {}", quote("Expect:")));
    if body_is_text {
        parts.push(format!(
            "--data-binary {}",
            quote(&String::from_utf8_lossy(&delivery.body))
        ));
    } else {
        parts.push("--data-binary @-".to_string());
    }
    parts.push(quote(url));
    parts.join(" \\\n  ")
}

/// Text a single-quoted shell word can carry as is: UTF-8, and no controls
/// but newline and tab.
fn is_shell_text(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|text| {
        !text
            .chars()
            .any(|c| (crate::display::is_dangerous(c) && c != '\n' && c != '\t') || c == '\r')
    })
}

/// A single-quoted shell word: `'` becomes `'\''`. Text with characters
/// that must not reach a terminal uses `$'…'` with `\xNN` escapes instead
/// (bash and zsh), which also gives back the original byte of a header
/// value kept as Latin-1.
pub fn quote(text: &str) -> String {
    if !text.chars().any(crate::display::is_dangerous) {
        return format!("'{}'", text.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if crate::display::is_dangerous(c) && u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if crate::display::is_dangerous(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::tests::sample;

    #[test]
    fn text_bodies_are_quoted_inline() {
        let delivery = sample(1, br#"{"event":"x","note":"it's"}"#);
        let cmd = command(&delivery, "http://127.0.0.1:4000/webhooks/danube");
        assert!(
            cmd.contains(r#"--data-binary '{"event":"x","note":"it'\''s"}'"#),
            "{cmd}"
        );
        assert!(
            cmd.contains("--header 'x-danube-signature: t=1,sha256=00'"),
            "{cmd}"
        );
        assert!(cmd.contains("--header 'x-dup: a'") && cmd.contains("--header 'x-dup: b'"));
        assert!(
            cmd.contains("--header 'user-agent:'"),
            "curl's own user agent is suppressed"
        );
        assert!(
            !cmd.contains("content-type:'"),
            "the original content type is kept: {cmd}"
        );
        assert!(cmd.ends_with("'http://127.0.0.1:4000/webhooks/danube'"));
    }

    #[test]
    fn binary_and_control_bodies_travel_as_base64() {
        for body in [&b"\x00\x01bin"[..], b"a\x1b[31m", b"crlf\r\n", b"\xff"] {
            let cmd = command(&sample(1, body), "http://h/");
            assert!(cmd.starts_with("printf %s '"), "{cmd}");
            assert!(cmd.contains("--data-binary @-"), "{cmd}");
            assert!(!cmd.contains('\x1b') && !cmd.contains('\0'));
        }
    }

    #[test]
    fn quoting_survives_hostile_text() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("a\u{85}b'\\\u{202e}"), r"$'a\x85b\'\\\u202e'");
    }
}
