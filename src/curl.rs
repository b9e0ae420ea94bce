//! A `curl` command that reproduces a stored request byte for byte: the
//! method, every header but the connection's own, and the exact body.
//! `export --curl` prints it and the dashboard's `c` copies it.
//!
//! The command is data under any POSIX shell (dash as much as bash): every
//! word is single-quoted, and bytes that must not appear raw (controls, C1,
//! bidi, bytes that are not UTF-8) are written as octal escapes inside
//! `"$(printf '…')"`, never with bash's `$'…'`, which `sh` reads as `$`
//! and a quote that a `'` in the text then ends. The body never reaches
//! curl as an argument (where `@file` would be read as a file name): it is
//! piped to `--data-binary @-`, as text from the shell builtin `printf`
//! (no argument-size limit), or as base64 through `base64 -d` when it is
//! not plain text. curl is started with `--disable` (no `~/.curlrc`),
//! `--globoff` (no `{}`/`[]` globbing in the URL) and `--path-as-is` (no
//! `/../` squashing); a path with bytes past ASCII also goes as
//! `--request-target`, which curl does not percent-encode.

use std::fmt::Write as _;

use base64::Engine as _;
use hyper::Uri;

use crate::delivery::Delivery;
use crate::http;

/// Headers curl adds on its own; sent empty (`-H 'Name:'`) when the
/// original request had none, so curl leaves them out.
const CURL_DEFAULTS: [&str; 3] = ["user-agent", "accept", "content-type"];

/// Where a command for a record from before the listener's own address was
/// kept sends by default: `listen`'s default port.
const OLD_RECORD_ADDR: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);

/// The command, for `url` (the place to send it to).
pub(crate) fn command(delivery: &Delivery, url: &Uri) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut line = String::new();
    if is_shell_text(&delivery.body) {
        // Checked above: UTF-8.
        let text = String::from_utf8_lossy(&delivery.body);
        let _ = writeln!(line, "printf '%s' {} |", single_quoted(&text));
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&delivery.body);
        let _ = writeln!(line, "printf '%s' '{encoded}' | base64 -d |");
    }
    // `--disable` must come first: it is what keeps a ~/.curlrc out.
    line.push_str("curl --disable --silent --show-error --include --globoff --path-as-is");
    parts.push(line);
    parts.push(format!("--request {}", quote(&delivery.method)));
    for (name, value) in http::headers_to_send(delivery) {
        // Expect is curl's to decide, like the hop-by-hop headers.
        if name.eq_ignore_ascii_case("expect") {
            continue;
        }
        // A header name is a token (hyper refused any other), so the
        // argument never starts with `@`, which curl would read as a file.
        let header = if value.is_empty() {
            // `Name:` makes curl drop the header; `Name;` sends it empty.
            format!("{name};").into_bytes()
        } else {
            [name.as_bytes(), b": ", &value].concat()
        };
        parts.push(format!("--header {}", quote_bytes(&header)));
    }
    for default in CURL_DEFAULTS {
        if delivery.header(default).is_none() {
            parts.push(format!("--header {}", quote(&format!("{default}:"))));
        }
    }
    // Without this curl may wait for `100 Continue` on large bodies.
    parts.push(format!("--header {}", quote("Expect:")));
    parts.push("--data-binary @-".to_string());
    // curl percent-encodes the bytes past ASCII of a URL's path (`/café`
    // goes out as `/caf%c3%a9`); `--request-target` goes out as written.
    if let Some(target) = url.path_and_query().filter(|p| !p.as_str().is_ascii()) {
        parts.push(format!("--request-target {}", quote(target.as_str())));
    }
    parts.push(format!("--url {}", quote(&url.to_string())));
    parts.join(" \\\n  ")
}

/// `base`'s scheme and host with the path and query `delivery` arrived on,
/// built from parts; `/` when its target was not a path (one the listener
/// refused, or an old record's).
pub(crate) fn resend_url(base: &Uri, delivery: &Delivery) -> Uri {
    http::url_at(base, &delivery.path)
        .or_else(|_| http::url_at(base, "/"))
        .unwrap_or_else(|_| base.clone())
}

/// Where `export` sends by default: the listener's address and the path the
/// delivery arrived on, never the sender's `Host` header.
pub(crate) fn arrival_url(delivery: &Delivery) -> Uri {
    let base = http::url_on(arrival_addr(delivery), "/").expect("an address and `/` make a URL");
    resend_url(&base, delivery)
}

/// The listener's address `delivery` arrived on, one a client can reach:
/// loopback for a listener on every interface, and the old default port
/// for a record written before the address was kept.
pub(crate) fn arrival_addr(delivery: &Delivery) -> std::net::SocketAddr {
    let mut addr = delivery
        .local_addr
        .as_deref()
        .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
        .unwrap_or(OLD_RECORD_ADDR);
    if addr.ip().is_unspecified() {
        addr.set_ip(OLD_RECORD_ADDR.ip());
    }
    addr
}

/// Text a single-quoted shell word can carry as is, and a terminal can
/// show: UTF-8, and no controls but newline and tab.
fn is_shell_text(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|text| {
        !text
            .chars()
            .any(|c| crate::display::is_dangerous(c) && c != '\n' && c != '\t')
    })
}

/// `text` as one shell word, in POSIX syntax: single-quoted, or built by
/// `printf` when it holds characters that must not reach a terminal.
pub(crate) fn quote(text: &str) -> String {
    if text.chars().any(crate::display::is_dangerous) {
        printf_word(text.as_bytes())
    } else {
        single_quoted(text)
    }
}

/// `bytes` as one shell word: [`quote`] for UTF-8, else built by `printf`.
fn quote_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => quote(text),
        Err(_) => printf_word(bytes),
    }
}

/// `'…'`, with each `'` written `'\''` (end the quote, a quoted `'`,
/// start again): nothing else is special inside single quotes.
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `"$(printf '…')"`: the bytes with everything but plain printable ASCII
/// as octal escapes, which every POSIX `printf` reads. Command substitution
/// drops trailing newlines and a shell word can't hold NUL; this is only
/// used for header lines and URLs, which can hold neither (HTTP forbids
/// CR, LF and NUL in them), so nothing is lost.
fn printf_word(bytes: &[u8]) -> String {
    let mut format = String::new();
    for &byte in bytes {
        match byte {
            b'%' => format.push_str("%%"),
            b'\\' | b'\'' => {
                let _ = write!(format, "\\{byte:03o}");
            }
            0x20..=0x7e => format.push(char::from(byte)),
            _ => {
                let _ = write!(format, "\\{byte:03o}");
            }
        }
    }
    format!("\"$(printf '{format}')\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    fn url(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn text_bodies_go_on_stdin_single_quoted() {
        let delivery = sample(1, br#"{"event":"x","note":"it's"}"#);
        let cmd = command(&delivery, &url("http://127.0.0.1:4000/webhooks/danube"));
        assert!(
            cmd.starts_with(
                r#"printf '%s' '{"event":"x","note":"it'\''s"}' |
curl --disable "#
            ),
            "{cmd}"
        );
        assert!(cmd.contains("--data-binary @-"), "{cmd}");
        assert!(cmd.contains("--globoff") && cmd.contains("--path-as-is"));
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
        assert!(cmd.ends_with("--url 'http://127.0.0.1:4000/webhooks/danube'"));
    }

    #[test]
    fn no_body_is_ever_a_curl_argument() {
        for body in [&b"@/etc/passwd"[..], b"@.env", b"-K/etc/passwd", b"<x", b""] {
            let cmd = command(&sample(1, body), &url("http://h/"));
            let text = String::from_utf8_lossy(body);
            assert!(
                cmd.starts_with(&format!("printf '%s' '{text}' |\ncurl")),
                "{cmd}"
            );
            assert_eq!(cmd.matches("--data-binary").count(), 1);
            assert!(cmd.contains("--data-binary @-"), "{cmd}");
        }
    }

    #[test]
    fn binary_and_control_bodies_travel_as_base64() {
        for body in [
            &b"\x00\x01bin"[..],
            b"a\x1b[31m",
            b"\xff",
            "a\u{85}b".as_bytes(),
            "a\u{202e}b".as_bytes(),
            b"crlf\r\n",
        ] {
            let cmd = command(&sample(1, body), &url("http://h/"));
            let encoded = base64::engine::general_purpose::STANDARD.encode(body);
            assert!(
                cmd.starts_with(&format!("printf '%s' '{encoded}' | base64 -d |\ncurl")),
                "{cmd}"
            );
            assert!(
                !cmd.chars()
                    .any(|c| crate::display::is_dangerous(c) && c != '\n')
            );
        }
    }

    #[test]
    fn quoting_is_posix_and_terminal_safe() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("`id`"), "'`id`'");
        assert_eq!(
            quote("a\u{85}b'\\%\u{202e}"),
            r#""$(printf 'a\302\205b\047\134%%\342\200\256')""#
        );
        assert_eq!(quote_bytes(b"caf\xe9"), r#""$(printf 'caf\351')""#);
        for hostile in ["x\u{1b}]52;c;e\u{7}", "\u{9b}31m", "\t"] {
            assert!(!quote(hostile).chars().any(crate::display::is_dangerous));
            assert!(!quote(hostile).contains("$'"));
        }
    }

    #[test]
    fn empty_and_non_utf8_headers_go_out_as_they_came() {
        let mut delivery = sample(1, b"{}");
        let (headers, raw) =
            crate::delivery::record_headers([("x-empty", &b""[..]), ("x-latin", b"caf\xe9")]);
        delivery.headers = headers;
        delivery.raw_headers = raw;
        let cmd = command(&delivery, &url("http://h/"));
        assert!(cmd.contains("--header 'x-empty;'"), "{cmd}");
        assert!(
            cmd.contains(r#"--header "$(printf 'x-latin: caf\351')""#),
            "{cmd}"
        );
        assert!(
            cmd.contains("--header 'content-type:'"),
            "curl's default content type is suppressed when none came: {cmd}"
        );
    }

    #[test]
    fn headers_named_in_connection_stay_behind() {
        let mut delivery = sample(1, b"{}");
        delivery
            .headers
            .push(("connection".into(), "keep-alive, X-Secret-Thing".into()));
        delivery
            .headers
            .push(("x-secret-thing".into(), "hop".into()));
        let cmd = command(&delivery, &url("http://h/"));
        assert!(
            !cmd.contains("x-secret-thing") && !cmd.contains("hop"),
            "{cmd}"
        );
    }

    #[test]
    fn the_default_url_is_the_arrival_port_and_path() {
        let mut delivery = sample(1, b"{}");
        assert_eq!(
            arrival_url(&delivery),
            "http://127.0.0.1:4000/webhooks/danube?x=1",
            "an old record: the default port"
        );
        delivery.local_addr = Some("127.0.0.1:47201".into());
        delivery.path = "/a{1,2}/[x]?q=1".into();
        assert_eq!(
            arrival_url(&delivery).to_string(),
            "http://127.0.0.1:47201/a{1,2}/[x]?q=1"
        );
        let cmd = command(&delivery, &arrival_url(&delivery));
        assert!(
            !cmd.contains("--request-target"),
            "an ASCII path needs none: {cmd}"
        );
        delivery.path = "/caf\u{e9}/\u{202e}?q=\u{e9}".into();
        let cmd = command(&delivery, &arrival_url(&delivery));
        assert!(
            cmd.contains(r#"--request-target "$(printf '/caf\303\251/\342\200\256?q=\303\251')""#),
            "curl would percent-encode it in the URL: {cmd}"
        );
        delivery.local_addr = Some("[::1]:47201".into());
        delivery.path = "@127.0.0.1:47202".into();
        assert_eq!(
            arrival_url(&delivery),
            "http://[::1]:47201/",
            "a target that is not a path is not followed"
        );
    }
}
