//! A credential as it may be shown, its fingerprint ([`redact`]), and a
//! credential echoed back in a server's text, found and replaced by it.
//! Pure.
//!
//! An API that answers `{"detail": "Invalid API key: dk_live_…"}` hands
//! the key back to be printed; so may one that quotes the request in an
//! error. What is hidden: the credential itself, and any run of at least
//! [`FRAGMENT`] of its characters (a key cut at a length limit, or split
//! between an error's fields), as they stand or percent-encoded (a key
//! quoted from a URL), in any case, and with spaces, control characters
//! or invisible ones (a zero-width space) between its characters: a
//! server that dresses the key up to be printed has it shown as its
//! fingerprint all the same. Hiding a little more than the key is harmless.

use std::borrow::Cow;

/// A secret as it may be shown: at most its first 6 characters (fewer for a
/// short one, so that never more than a third shows) and `…`.
pub(crate) fn redact(secret: &str) -> String {
    let count = secret.chars().count();
    let keep = (count / 3).min(6);
    let head: String = secret.chars().take(keep).collect();
    format!("{}…", crate::display::escape_line(&head))
}

/// The shortest run of a credential's characters that is hidden: a
/// fingerprint shows at most 6, and shorter runs say nothing of the rest.
const FRAGMENT: usize = 8;

/// `text` with every occurrence of `secret`, and of each run of its
/// characters at least [`FRAGMENT`] long (all of it, if it is shorter),
/// plain or percent-encoded, replaced by `shown`. The work is
/// `text.len() × secret.len()`: give it text already cut to what is shown.
pub(crate) fn scrub<'a>(text: &'a str, secret: &str, shown: &str) -> Cow<'a, str> {
    let secret = secret.as_bytes();
    if secret.is_empty() {
        return Cow::Borrowed(text);
    }
    let (decoded, from) = normalized(text);
    let secret = secret.to_ascii_lowercase();
    let runs = runs_of(&decoded, &secret, FRAGMENT.min(secret.len()));
    if runs.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in runs {
        // Back to the text's own bytes, widened to whole characters.
        let (mut start, mut end) = (from[start].0, from[end - 1].1);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        // A run widened into the one before is hidden by its replacement.
        if start >= at {
            out.push_str(&text[at..start]);
            out.push_str(shown);
        }
        at = at.max(end);
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// The length of an invisible character (a zero-width space or joiner, a
/// direction mark, a word joiner, the byte order mark, a soft hyphen) at
/// the start of `bytes`, if one is there.
fn invisible_at(bytes: &[u8]) -> Option<usize> {
    match bytes {
        // U+200B–U+200F, U+2060–U+2064, U+FEFF
        [0xe2, 0x80, 0x8b..=0x8f, ..] | [0xe2, 0x81, 0xa0..=0xa4, ..] | [0xef, 0xbb, 0xbf, ..] => {
            Some(3)
        }
        // U+00AD, the soft hyphen
        [0xc2, 0xad, ..] => Some(2),
        _ => None,
    }
}

/// `text`'s bytes as a key is looked for in them: each `%XX` decoded,
/// letters in lower case, spaces, control and invisible characters left
/// out; and for each byte kept, the range of `text` it came from.
fn normalized(text: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut from = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = invisible_at(&bytes[i..]) {
            i += len;
            continue;
        }
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        let (byte, len) = match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => ((high * 16 + low) as u8, 3),
            (byte, _, _) => (byte, 1),
        };
        if !(byte.is_ascii_whitespace() || byte.is_ascii_control()) {
            decoded.push(byte.to_ascii_lowercase());
            from.push((i, i + len));
        }
        i += len;
    }
    (decoded, from)
}

/// The ranges of `text`, left to right and apart, that are runs of
/// `secret`'s bytes at least `min` long, each as long as it goes.
fn runs_of(text: &[u8], secret: &[u8], min: usize) -> Vec<(usize, usize)> {
    // longest[i]: the longest run of `secret` that starts at text[i], from
    // the table of common runs `text[i..]` and `secret[j..]` start with,
    // built from the end one row at a time.
    let mut longest = vec![0; text.len()];
    let mut next_row = vec![0usize; secret.len() + 1];
    let mut row = vec![0usize; secret.len() + 1];
    for i in (0..text.len()).rev() {
        for j in (0..secret.len()).rev() {
            row[j] = if text[i] == secret[j] {
                next_row[j + 1] + 1
            } else {
                0
            };
        }
        longest[i] = row.iter().copied().max().unwrap_or(0);
        std::mem::swap(&mut row, &mut next_row);
    }
    let mut runs = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if longest[i] >= min {
            runs.push((i, i + longest[i]));
            i += longest[i];
        } else {
            i += 1;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    const KEY: &str = "dk_live_Q7vK2mX9pL4nR8sT1wY6";
    const SHOWN: &str = "dk_liv…";

    /// A key dressed up to be printed: a zero-width space, a bell or a
    /// space between its characters, or in capitals.
    #[test]
    fn a_key_dressed_up_is_hidden_too() {
        let spaced_out = |between: &str| {
            KEY.chars()
                .map(String::from)
                .collect::<Vec<_>>()
                .join(between)
        };
        let chunks: Vec<String> = KEY
            .as_bytes()
            .chunks(7)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        for dressed in [
            spaced_out("\u{200b}"),
            spaced_out("\u{feff}"),
            spaced_out("\u{ad}"),
            chunks.join("\u{7}"),
            chunks.join(" "),
            chunks.join("\n"),
            KEY.to_ascii_uppercase(),
        ] {
            let text = format!("Invalid API key: {dressed}.");
            let hidden = scrub(&text, KEY, SHOWN);
            assert_eq!(hidden, format!("Invalid API key: {SHOWN}."), "{dressed:?}");
        }
    }

    #[test]
    fn every_form_of_the_key_is_replaced() {
        let encoded = KEY.bytes().fold(String::new(), |mut out, b| {
            let _ = write!(out, "%{b:02X}");
            out
        });
        let lower = encoded.to_lowercase();
        for (text, want) in [
            (
                format!("Invalid API key: {KEY}"),
                "Invalid API key: dk_liv…".to_owned(),
            ),
            (format!("{KEY}{KEY}"), format!("{SHOWN}{SHOWN}")),
            (
                format!("{KEY} and {KEY}."),
                "dk_liv… and dk_liv….".to_owned(),
            ),
            (format!("k={encoded}&x=1"), "k=dk_liv…&x=1".to_owned()),
            (format!("k={lower}"), "k=dk_liv…".to_owned()),
            (KEY.replace('_', "%5f"), SHOWN.to_owned()),
            // Cut at a length limit, or split between fields.
            (format!("xx {}…", &KEY[..12]), "xx dk_liv……".to_owned()),
            (
                format!("code {}: {}", &KEY[..14], &KEY[14..]),
                "code dk_liv…: dk_liv…".to_owned(),
            ),
            // Around other characters, multibyte ones included.
            (format!("«{KEY}»"), "«dk_liv…»".to_owned()),
        ] {
            assert_eq!(scrub(&text, KEY, SHOWN), want, "{text}");
        }
    }

    #[test]
    fn text_without_the_key_is_left_as_it_is() {
        for text in [
            "",
            "Invalid API key",
            "dk_test_ keys are for tests",
            "100% sure: %zz %4",
            "dk_liv… (the fingerprint itself)",
            "naïve ünïcode",
        ] {
            assert!(
                matches!(scrub(text, KEY, SHOWN), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        // A short credential is hidden only whole.
        assert_eq!(scrub("abc abd abcabc", "abc", "a…"), "a… abd a…a…");
        assert_eq!(scrub("anything", "", "…"), "anything");
    }

    #[test]
    fn a_fragment_shorter_than_the_limit_stays() {
        let seven = &KEY[10..17];
        assert_eq!(scrub(seven, KEY, SHOWN), seven);
        let eight = &KEY[10..18];
        assert_eq!(scrub(eight, KEY, SHOWN), SHOWN);
        // Even the key's usual start: it is 8 of its characters.
        assert_eq!(scrub("dk_live_ keys", KEY, SHOWN), "dk_liv… keys");
    }
}
