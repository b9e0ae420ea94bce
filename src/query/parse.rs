//! The query's text into terms: quotes and spaces first, then each term by
//! its key, every error pointing at the part of the input it is about.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{
    ALLOWED_TERMS, Comparison, Count, Field, Query, QueryError, StatusTest, Term, Test, Text,
    VerdictTest,
};
use crate::policy::Pattern;
use crate::signature::Verdict;

const EXPECTED_CLOSING_QUOTE: &str = "a closing \" for the quote that starts here";
const EXPECTED_AFTER_MINUS: &str = "a term after \"-\", which negates it (-event:tool.*)";
const EXPECTED_WORD: &str = "a word inside the quotes";
const EXPECTED_VERDICT: &str = "a verdict: valid, mismatch, stale, missing, malformed, unchecked, \
     or invalid (any checked verdict but valid)";
const EXPECTED_STATUS: &str =
    "a status (500), a class (5xx), or either after ! (!2xx): the status this listener answered";
const EXPECTED_COUNT: &str =
    "a number (3), a comparison (>1, <3, >=2, <=5, !=1), or a range (2..5)";
const EXPECTED_PATH: &str =
    "a path that starts with / (/webhooks/danube), or a prefix ending in * (/webhooks/*)";
const EXPECTED_HEADER: &str = "a header name, and =VALUE if the value counts (header:user-agent, \
     header:x-request-id=abc, header:user-agent=Danube*)";
const EXPECTED_LISTENER: &str = "a listener's name (ann@laptop), or a prefix ending in * (ann@*): \
     whose delivery it was, on a shared store";
const EXPECTED_TIME: &str = "a time ago (30s, 10m, 2h, 7d, 1w) or a time: RFC 3339 \
     (2026-12-06T10:00:00Z) or a date (2026-12-06, midnight UTC)";
const EXPECTED_FIELD_PATH: &str =
    "a body field: names joined by dots (data.tool_name), before the comparison";
const EXPECTED_OPERATOR: &str =
    "a comparison after the field: =, !=, >, <, >= or <= (data.execution_time>1)";
const EXPECTED_FINITE: &str = "a number within ±1.7e308 (data.execution_time>1), or the value \
     in quotes to compare it as text (data.x=\"1e400\")";
const EXPECTED_FIELD_VALUE: &str =
    "a value after the comparison (data.tool_name=Gmail, data.execution_time>1)";

/// One character of the input, whether it was inside quotes, and its byte
/// offset in the input.
#[derive(Debug, Clone, Copy)]
struct Piece {
    c: char,
    quoted: bool,
    at: usize,
}

/// A term as written: where it starts, and its characters without the
/// quotes.
struct Token {
    start: usize,
    pieces: Vec<Piece>,
}

struct Parser<'a> {
    input: &'a str,
    now: DateTime<Utc>,
}

pub(super) fn parse(input: &str, now: DateTime<Utc>) -> Result<Query, QueryError> {
    let parser = Parser { input, now };
    let mut terms = parser
        .tokens()?
        .iter()
        .map(|token| parser.term(token))
        .collect::<Result<Vec<_>, _>>()?;
    // Stable: terms of one cost keep the order they were written in.
    terms.sort_by_key(|term| term.test.cost());
    Ok(Query { terms })
}

/// The text of `pieces`.
fn text(pieces: &[Piece]) -> String {
    pieces.iter().map(|p| p.c).collect()
}

impl Parser<'_> {
    fn error(&self, byte: usize, expected: &str, found: &str) -> QueryError {
        QueryError {
            input: self.input.to_string(),
            column: self.input[..byte].chars().count() + 1,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// The byte offset of the `index`-th piece, or just past the last one.
    fn offset(&self, pieces: &[Piece], index: usize) -> usize {
        match (pieces.get(index), pieces.last()) {
            (Some(piece), _) => piece.at,
            (None, Some(last)) => last.at + last.c.len_utf8(),
            (None, None) => self.input.len(),
        }
    }

    /// Terms split at spaces outside quotes. Inside quotes, `\"` is a
    /// quote and `\\` a backslash.
    fn tokens(&self) -> Result<Vec<Token>, QueryError> {
        let mut tokens = Vec::new();
        let mut current: Option<Token> = None;
        let mut open_quote: Option<usize> = None;
        let mut chars = self.input.char_indices();
        while let Some((at, c)) = chars.next() {
            if open_quote.is_none() && c.is_whitespace() {
                tokens.extend(current.take());
                continue;
            }
            let token = current.get_or_insert_with(|| Token {
                start: at,
                pieces: Vec::new(),
            });
            match (open_quote, c) {
                (None, '"') => open_quote = Some(at),
                (Some(_), '"') => open_quote = None,
                (Some(_), '\\') => {
                    let (at, c) = chars.next().unwrap_or((at, c));
                    token.pieces.push(Piece {
                        c,
                        quoted: true,
                        at,
                    });
                }
                (quote, c) => token.pieces.push(Piece {
                    c,
                    quoted: quote.is_some(),
                    at,
                }),
            }
        }
        if let Some(open) = open_quote {
            return Err(self.error(open, EXPECTED_CLOSING_QUOTE, &self.input[open..]));
        }
        tokens.extend(current);
        Ok(tokens)
    }

    fn term(&self, token: &Token) -> Result<Term, QueryError> {
        let mut pieces = token.pieces.as_slice();
        let negated = pieces.first().is_some_and(|p| p.c == '-' && !p.quoted);
        if negated {
            pieces = &pieces[1..];
            if pieces.is_empty() && !self.input[token.start + 1..].starts_with('"') {
                return Err(self.error(token.start + 1, EXPECTED_AFTER_MINUS, ""));
            }
        }
        if pieces.is_empty() {
            let quotes = token.start + usize::from(negated);
            return Err(self.error(quotes, EXPECTED_WORD, "\"\""));
        }
        let special = if pieces[0].quoted {
            None
        } else {
            pieces
                .iter()
                .position(|p| !p.quoted && matches!(p.c, ':' | '=' | '<' | '>' | '!'))
        };
        let (test, flip) = match special {
            // ASCII case alone, as the match compares (README, Query language).
            None => (Test::Word(text(pieces).to_ascii_lowercase()), false),
            Some(i) if pieces[i].c == ':' => self.key(&pieces[..i], &pieces[i + 1..], pieces)?,
            Some(i) => (Test::Field(self.field(&pieces[..i], &pieces[i..])?), false),
        };
        Ok(Term {
            negated: negated != flip,
            test,
        })
    }

    /// `KEY:VALUE`, and whether the value negates it (`status:!2xx`);
    /// `whole` is the term without its `-`, for errors.
    fn key(
        &self,
        key: &[Piece],
        value: &[Piece],
        whole: &[Piece],
    ) -> Result<(Test, bool), QueryError> {
        let name = text(key).to_ascii_lowercase();
        let value_at = self.offset(whole, key.len() + 1);
        let Some((_, expected)) = KEYS.iter().find(|(k, _)| *k == name) else {
            let found = format!("{}:", text(key));
            return Err(self.error(whole[0].at, ALLOWED_TERMS, &found));
        };
        let raw = text(value);
        if raw.is_empty() {
            let expected = format!("{expected} after {name}:");
            return Err(self.error(value_at, &expected, ""));
        }
        let bad = || self.error(value_at, expected, &raw);
        let test = match name.as_str() {
            "event" => Test::Event(Pattern::parse(&raw).map_err(|err| {
                let at = self.offset(value, err.column.saturating_sub(1));
                self.error(at, &err.expected, &err.found)
            })?),
            "verdict" => Test::Verdict(verdict(&raw).ok_or_else(bad)?),
            "status" => return status(&raw).ok_or_else(bad),
            "attempt" => Test::Attempt(count(&raw).ok_or_else(bad)?),
            "id" => Test::Id(count(&raw).ok_or_else(bad)?),
            "path" => Test::Path(path(&raw).ok_or_else(bad)?),
            "header" => header(&raw).ok_or_else(bad)?,
            "listener" => Test::Listener(match raw.strip_suffix('*') {
                Some(prefix) => Text::Prefix(prefix.to_string()),
                None => Text::Exact(raw.clone()),
            }),
            "since" => Test::Since(self.time(&raw).ok_or_else(bad)?),
            _ => Test::Until(self.time(&raw).ok_or_else(bad)?),
        };
        Ok((test, false))
    }

    /// `PATH OP VALUE`, split at the first operator character.
    fn field(&self, path: &[Piece], rest: &[Piece]) -> Result<Field, QueryError> {
        let path_text = text(path);
        let segments: Vec<String> = path_text.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            let found = format!("{path_text}{}", text(rest));
            let at = path.first().map_or(rest[0].at, |p| p.at);
            return Err(self.error(at, EXPECTED_FIELD_PATH, &found));
        }
        let op_text: String = rest.iter().take(2).map(|p| p.c).collect();
        let (comparison, len) = if op_text.starts_with(">=") {
            (Comparison::AtLeast, 2)
        } else if op_text.starts_with("<=") {
            (Comparison::AtMost, 2)
        } else if op_text.starts_with("!=") {
            (Comparison::NotEqual, 2)
        } else if op_text.starts_with('=') {
            (Comparison::Equal, 1)
        } else if op_text.starts_with('>') {
            (Comparison::Greater, 1)
        } else if op_text.starts_with('<') {
            (Comparison::Less, 1)
        } else {
            return Err(self.error(rest[0].at, EXPECTED_OPERATOR, &op_text));
        };
        let value = &rest[len..];
        if value.is_empty() {
            return Err(self.error(self.offset(rest, len), EXPECTED_FIELD_VALUE, ""));
        }
        let value_text = text(value);
        // A quoted value is text, even when it reads as a number.
        let number = if value.iter().any(|p| p.quoted) {
            None
        } else {
            number(&value_text)
        };
        // A number too large for JSON's doubles would compare as text.
        if number.is_some_and(|n| !n.is_finite()) {
            return Err(self.error(value[0].at, EXPECTED_FINITE, &value_text));
        }
        Ok(Field {
            path: segments,
            comparison,
            value: value_text,
            number,
        })
    }

    /// `10m` ago, or a time written out.
    fn time(&self, text: &str) -> Option<DateTime<Utc>> {
        if let Some(ago) = ago(text) {
            return self.now.checked_sub_signed(ago);
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Some(time.with_timezone(&Utc));
        }
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc())
    }
}

/// The keys, and what each takes.
const KEYS: [(&str, &str); 10] = [
    (
        "event",
        "an event pattern (tool.execution.failed, tool.*, *)",
    ),
    ("verdict", EXPECTED_VERDICT),
    ("status", EXPECTED_STATUS),
    ("attempt", EXPECTED_COUNT),
    ("path", EXPECTED_PATH),
    ("header", EXPECTED_HEADER),
    ("id", EXPECTED_COUNT),
    ("listener", EXPECTED_LISTENER),
    ("since", EXPECTED_TIME),
    ("until", EXPECTED_TIME),
];

fn verdict(text: &str) -> Option<VerdictTest> {
    let lower = text.to_ascii_lowercase();
    if lower == "invalid" {
        return Some(VerdictTest::Invalid);
    }
    Verdict::parse(&lower).map(VerdictTest::Is)
}

/// `500`, `5xx`, `!2xx`, `!404`, and whether `!` negated it (so that
/// `status:!2xx` is `-status:2xx`, which a record without a status passes).
fn status(text: &str) -> Option<(Test, bool)> {
    let (negate, rest) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let bytes = rest.as_bytes();
    if bytes.len() != 3 || !(b'1'..=b'5').contains(&bytes[0]) {
        return None;
    }
    let hundreds = u16::from(bytes[0] - b'0');
    let wanted = if rest[1..].eq_ignore_ascii_case("xx") {
        StatusTest::Class(hundreds)
    } else if bytes[1..].iter().all(u8::is_ascii_digit) {
        StatusTest::Is(rest.parse().ok()?)
    } else {
        return None;
    };
    Some((Test::Status(wanted), negate))
}

fn count(text: &str) -> Option<Count> {
    if let Some((low, high)) = text.split_once("..") {
        let (low, high) = (whole(low)?, whole(high)?);
        return (low <= high).then_some(Count::Between(low, high));
    }
    let (comparison, digits) = [
        (">=", Comparison::AtLeast),
        ("<=", Comparison::AtMost),
        ("!=", Comparison::NotEqual),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
        ("=", Comparison::Equal),
    ]
    .into_iter()
    .find_map(|(op, comparison)| text.strip_prefix(op).map(|rest| (comparison, rest)))
    .unwrap_or((Comparison::Equal, text));
    Some(Count::Is(comparison, whole(digits)?))
}

/// Digits only (no sign, no spaces), within u64.
fn whole(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn path(text: &str) -> Option<Text> {
    if !text.starts_with('/') {
        return None;
    }
    match text.find('*') {
        None => Some(Text::Exact(text.to_string())),
        Some(at) if at == text.len() - 1 => Some(Text::Prefix(text[..at].to_string())),
        Some(_) => None,
    }
}

fn header(text: &str) -> Option<Test> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    // A header name is a token (RFC 9110): visible ASCII but separators.
    let token = |c: char| c.is_ascii_graphic() && !"\"(),/:;<=>?@[\\]{}".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return None;
    }
    let value = value.map(|value| match value.strip_suffix('*') {
        Some(prefix) => Text::Prefix(prefix.to_string()),
        None => Text::Exact(value.to_string()),
    });
    Some(Test::Header {
        name: name.to_string(),
        value,
    })
}

/// A number as JSON writes one (no `inf`, no `nan`, no `0x`); infinite
/// when it is too large for a double.
fn number(text: &str) -> Option<f64> {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    let starts = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'.');
    if !(plain && starts) {
        return None;
    }
    text.parse::<f64>().ok()
}

/// `30s`, `10m`, `2h`, `7d`, `1w`, as a span back from now: the one
/// reading of an age, for `since:`/`until:` and the commands' `--since`.
pub(crate) fn ago(text: &str) -> Option<TimeDelta> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    // Nine digits of weeks is already far past what a date can hold.
    if digits == 0 || digits > 9 {
        return None;
    }
    let n: i64 = text[..digits].parse().ok()?;
    let unit = match &text[digits..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    TimeDelta::try_seconds(n.checked_mul(unit)?)
}
