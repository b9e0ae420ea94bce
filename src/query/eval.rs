//! A query's terms against one delivery, and the bytes a store line must
//! hold before it is worth parsing.

use std::cell::OnceCell;
use std::cmp::Ordering;

use memchr::memmem::Finder;
use serde_json::Value;

use super::{Comparison, Count, Field, StatusTest, Term, Test, Text, VerdictTest};
use crate::delivery::Delivery;
use crate::json_style::{MAX_DEPTH, check_shape};
use crate::policy::Pattern;
use crate::signature::Verdict;

/// Values a body may hold and still be built to look a field up: more
/// than a 1 MiB body of small values can, so only a hostile shape stops it.
const MAX_VALUES: usize = 1_000_000;

#[cfg(test)]
thread_local! {
    /// Bodies parsed on this thread: the tests hold the count to one per record.
    pub(super) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

pub(super) fn matches(terms: &[Term], delivery: &Delivery) -> bool {
    let body = Body {
        bytes: &delivery.body,
        json: OnceCell::new(),
    };
    terms
        .iter()
        .all(|term| term.test.holds(delivery, &body) != term.negated)
}

/// The body, parsed as JSON at most once, and only when a field is asked
/// for.
struct Body<'a> {
    bytes: &'a [u8],
    /// Set once parsed: `None` when not JSON (or past the bounds).
    json: OnceCell<Option<Value>>,
}

impl Body<'_> {
    fn json(&self) -> Option<&Value> {
        let bytes = self.bytes;
        self.json
            .get_or_init(|| {
                // The shape is checked on the bytes first: a body nested a
                // thousand deep is never built.
                #[cfg(test)]
                PARSES.with(|n| n.set(n.get() + 1));
                check_shape(bytes, MAX_DEPTH, MAX_VALUES).ok()?;
                serde_json::from_slice(bytes).ok()
            })
            .as_ref()
    }
}

impl Test {
    fn holds(&self, d: &Delivery, body: &Body<'_>) -> bool {
        match self {
            Test::Id(count) => count.holds(d.id),
            Test::Attempt(count) => count.holds(u64::from(d.attempt)),
            Test::Verdict(VerdictTest::Is(verdict)) => d.signature.verdict == *verdict,
            Test::Verdict(VerdictTest::Invalid) => {
                !matches!(d.signature.verdict, Verdict::Valid | Verdict::Unchecked)
            }
            Test::Status(test) => d.response.status.is_some_and(|status| match test {
                StatusTest::Is(wanted) => status == *wanted,
                StatusTest::Class(hundreds) => status / 100 == *hundreds,
            }),
            Test::Since(start) => d.received_at >= *start,
            Test::Until(end) => d.received_at <= *end,
            Test::Event(pattern) => pattern.matches(d.event.as_deref()),
            Test::Path(Text::Exact(path)) => {
                // The query counts only when the wanted path names one.
                let target = if path.contains('?') {
                    d.path.as_str()
                } else {
                    d.path.split('?').next().unwrap_or_default()
                };
                target == path
            }
            Test::Path(Text::Prefix(prefix)) => d.path.starts_with(prefix.as_str()),
            Test::Listener(wanted) => d.listener.as_deref().is_some_and(|name| match wanted {
                Text::Exact(exact) => name == exact,
                Text::Prefix(prefix) => name.starts_with(prefix.as_str()),
            }),
            Test::Header { name, value } => d.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name)
                    && value.as_ref().is_none_or(|wanted| match wanted {
                        Text::Exact(exact) => v == exact,
                        Text::Prefix(prefix) => v.starts_with(prefix.as_str()),
                    })
            }),
            Test::Word(word) => {
                let needle = word.as_bytes();
                d.event
                    .as_deref()
                    .is_some_and(|e| contains_ignore_case(e.as_bytes(), needle))
                    || contains_ignore_case(d.path.as_bytes(), needle)
                    || contains_ignore_case(&d.body, needle)
            }
            Test::Field(field) => body.json().is_some_and(|root| field.holds(root)),
        }
    }
}

impl Count {
    fn holds(self, n: u64) -> bool {
        match self {
            Count::Is(comparison, wanted) => comparison.holds(n.cmp(&wanted)),
            Count::Between(low, high) => (low..=high).contains(&n),
        }
    }
}

impl Comparison {
    /// Whether `found` compared with the wanted value as `ordering`
    /// passes; `None` is values that do not compare (a string and a
    /// number), which only `!=` passes.
    fn holds(self, ordering: Ordering) -> bool {
        self.holds_maybe(Some(ordering))
    }

    fn holds_maybe(self, ordering: Option<Ordering>) -> bool {
        match self {
            Comparison::Equal => ordering == Some(Ordering::Equal),
            Comparison::NotEqual => ordering != Some(Ordering::Equal),
            Comparison::Greater => ordering == Some(Ordering::Greater),
            Comparison::Less => ordering == Some(Ordering::Less),
            Comparison::AtLeast => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            Comparison::AtMost => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        }
    }
}

impl Field {
    /// A field that is not there passes no comparison, `!=` included
    /// (`-data.x=1` is the term that also takes records without it).
    fn holds(&self, root: &Value) -> bool {
        let Some(found) = lookup(root, &self.path) else {
            return false;
        };
        let ordering = match found {
            Value::Number(n) => n
                .as_f64()
                .zip(self.number)
                .and_then(|(a, b)| a.partial_cmp(&b)),
            Value::String(s) => Some(s.as_str().cmp(self.value.as_str())),
            Value::Bool(b) => (self.value == b.to_string()).then_some(Ordering::Equal),
            Value::Null => (self.value == "null").then_some(Ordering::Equal),
            Value::Array(_) | Value::Object(_) => None,
        };
        self.comparison.holds_maybe(ordering)
    }
}

/// The value at `path`: object members by name, array items by index.
fn lookup<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(root, |node, name| match node {
        Value::Object(members) => members.get(name),
        Value::Array(items) => name.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Whether `needle` (lowercase) is in `haystack`, ignoring ASCII case;
/// bytes, so a body that is not UTF-8 is searched as it is. Candidates
/// are found by the first byte in either case, so a body is not copied.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut from = 0;
    while let Some(found) = memchr::memchr2(lower, upper, &haystack[from..]) {
        let start = from + found;
        let Some(candidate) = haystack.get(start + 1..start + needle.len()) else {
            return false;
        };
        if candidate.eq_ignore_ascii_case(rest) {
            return true;
        }
        from = start + 1;
    }
    false
}

/// Byte strings a store line must contain for its record to pass the
/// query: found by a fast search before the line is parsed, so a selective
/// query over a big store parses only the lines that can match.
///
/// Only what any JSON writer keeps as it is goes in: an event or verdict
/// of printable ASCII without `"` or `\` (a writer may escape anything
/// else), from terms that are not negated.
#[derive(Debug)]
pub(crate) struct LineCheck {
    needles: Vec<Finder<'static>>,
}

impl LineCheck {
    pub(super) fn of(terms: &[Term]) -> LineCheck {
        let plain = |text: &str| {
            !text.is_empty()
                && text
                    .bytes()
                    .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
        };
        let needles = terms
            .iter()
            .filter(|term| !term.negated)
            .filter_map(|term| match &term.test {
                Test::Event(Pattern::Exact(text) | Pattern::Prefix(text)) => Some(text.clone()),
                // Quoted: a verdict is always a whole string.
                Test::Verdict(VerdictTest::Is(verdict)) => {
                    Some(format!("\"{}\"", verdict.as_str()))
                }
                _ => None,
            })
            .filter(|needle| plain(needle.trim_matches('"')))
            .map(|needle| Finder::new(needle.as_bytes()).into_owned())
            .collect();
        LineCheck { needles }
    }

    /// False only when the line cannot hold a record the query matches.
    pub(crate) fn may_match(&self, line: &[u8]) -> bool {
        self.needles
            .iter()
            .all(|needle| needle.find(line).is_some())
    }

    /// Whether the check can refuse any line at all.
    #[cfg(test)]
    pub(crate) fn is_trivial(&self) -> bool {
        self.needles.is_empty()
    }
}
