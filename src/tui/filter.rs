//! The dashboard's `/` filter: its little grammar and the match; pure.
//!
//! ```text
//! FILTER := TERM (" " TERM)*
//! TERM   := "event:" PATTERN      an event type, or a prefix ending in * (tool.*)
//!         | "verdict:" VERDICT    valid, mismatch, stale, missing, malformed,
//!                                 unchecked, or invalid (anything but valid/unchecked)
//!         | TEXT                  found in the event, the path or the body
//! ```
//!
//! Kinds combine with AND; several `event:` (or `verdict:`) terms are
//! alternatives (OR); several text terms must all be found. Text is matched
//! without regard to ASCII case.

use crate::delivery::Delivery;
use crate::signature::Verdict;

/// A parsed filter. The default matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Lowercased; every one must be found.
    pub(crate) text: Vec<String>,
    /// Any one must match.
    pub(crate) events: Vec<EventPattern>,
    /// Any one must match.
    pub(crate) verdicts: Vec<VerdictFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventPattern {
    Exact(String),
    /// Held without its `*`.
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerdictFilter {
    Is(Verdict),
    /// Checked and not valid: mismatch, stale, missing, malformed.
    Invalid,
}

impl Filter {
    /// Parse what was typed after `/`. The error names the bad term and
    /// what is allowed.
    pub(crate) fn parse(input: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for term in input.split_whitespace() {
            if let Some(pattern) = strip_prefix_ignore_case(term, "event:") {
                if pattern.is_empty() {
                    return Err("event: needs a pattern: an event type or a prefix ending in * (event:tool.*)".into());
                }
                filter.events.push(match pattern.strip_suffix('*') {
                    Some(prefix) => EventPattern::Prefix(prefix.to_string()),
                    None => EventPattern::Exact(pattern.to_string()),
                });
            } else if let Some(verdict) = strip_prefix_ignore_case(term, "verdict:") {
                let lower = verdict.to_ascii_lowercase();
                let parsed =
                    if lower == "invalid" {
                        VerdictFilter::Invalid
                    } else {
                        Verdict::parse(&lower).map(VerdictFilter::Is).ok_or_else(|| {
                        format!(
                            "verdict:{} is not a verdict: use valid, mismatch, stale, missing, \
                             malformed, unchecked or invalid",
                            crate::display::escape_line(verdict)
                        )
                    })?
                    };
                filter.verdicts.push(parsed);
            } else {
                filter.text.push(term.to_lowercase());
            }
        }
        Ok(filter)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty() && self.events.is_empty() && self.verdicts.is_empty()
    }

    pub(crate) fn matches(&self, delivery: &Delivery) -> bool {
        let event = delivery.event.as_deref();
        let event_ok = self.events.is_empty()
            || self.events.iter().any(|pattern| match (pattern, event) {
                (EventPattern::Exact(exact), Some(event)) => event == exact,
                (EventPattern::Prefix(prefix), Some(event)) => event.starts_with(prefix.as_str()),
                (_, None) => false,
            });
        let verdict = delivery.signature.verdict;
        let verdict_ok = self.verdicts.is_empty()
            || self.verdicts.iter().any(|wanted| match wanted {
                VerdictFilter::Is(v) => *v == verdict,
                VerdictFilter::Invalid => !matches!(verdict, Verdict::Valid | Verdict::Unchecked),
            });
        event_ok
            && verdict_ok
            && self.text.iter().all(|needle| {
                let needle = needle.as_bytes();
                event.is_some_and(|e| contains_ignore_case(e.as_bytes(), needle))
                    || contains_ignore_case(delivery.path.as_bytes(), needle)
                    || contains_ignore_case(&delivery.body, needle)
            })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Whether `needle` (already lowercase) is in `haystack`, ignoring ASCII
/// case; bytes, so a body that is not UTF-8 is searched as it is.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    #[test]
    fn terms_parse_into_kinds() {
        let filter = Filter::parse(
            "  Gmail event:tool.* EVENT:workflow.failed verdict:mismatch verdict:Invalid ",
        )
        .unwrap();
        assert_eq!(filter.text, vec!["gmail".to_string()]);
        assert_eq!(
            filter.events,
            vec![
                EventPattern::Prefix("tool.".into()),
                EventPattern::Exact("workflow.failed".into())
            ]
        );
        assert_eq!(
            filter.verdicts,
            vec![VerdictFilter::Is(Verdict::Mismatch), VerdictFilter::Invalid]
        );
        assert!(Filter::parse("").unwrap().is_empty());
        let err = Filter::parse("verdict:bogus").unwrap_err();
        assert!(
            err.contains("verdict:bogus") && err.contains("mismatch"),
            "{err}"
        );
        assert!(Filter::parse("event:").unwrap_err().contains("pattern"));
    }

    #[test]
    fn matching_combines_kinds_with_and_and_alternatives_with_or() {
        let mut d = sample(
            1,
            br#"{"event":"tool.execution.failed","data":{"tool_name":"Gmail"}}"#,
        );
        d.signature.verdict = Verdict::Mismatch;
        // (filter, matches)
        let cases = [
            ("", true),
            ("gmail", true),
            ("GMAIL", true),
            ("gmail slack", false),
            ("webhooks/danube", true),
            ("event:tool.*", true),
            ("event:tool.execution.failed", true),
            ("event:tool.execution", false),
            ("event:workflow.* event:tool.*", true),
            ("verdict:mismatch", true),
            ("verdict:invalid", true),
            ("verdict:valid", false),
            ("verdict:valid verdict:mismatch", true),
            ("event:tool.* verdict:valid", false),
            ("event:tool.* verdict:mismatch gmail", true),
        ];
        for (input, expected) in cases {
            let filter = Filter::parse(input).unwrap();
            assert_eq!(filter.matches(&d), expected, "filter {input:?}");
        }
        let mut no_event = sample(2, b"\xff\xfe binary");
        no_event.signature.verdict = Verdict::Unchecked;
        assert!(!Filter::parse("event:*").unwrap().matches(&no_event));
        assert!(!Filter::parse("verdict:invalid").unwrap().matches(&no_event));
        assert!(Filter::parse("BINARY").unwrap().matches(&no_event));
    }
}
