//! The dashboard's `/` filter: the query language of `log --query`
//! (SPEC §15, [`crate::query`]) over the deliveries in memory, with
//! `since:` counted back from the moment it is typed.
//!
//! A word or a body field is looked for in the bodies the history still
//! holds: an older delivery kept as a summary, its body dropped for the
//! byte budget, passes no such term.

use chrono::Utc;

use crate::delivery::Delivery;
use crate::query::Query;

/// A filter that does not parse: the column of its bad part (1-based, in
/// characters, as the query's errors count: the footer puts a caret under
/// it) and the error on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterError {
    pub(crate) column: usize,
    pub(crate) headline: String,
}

/// A parsed filter. The default matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Filter {
    query: Query,
}

impl Filter {
    /// Parse what was typed after `/`. The error's text is one line (the
    /// query is on the screen beside it): the column, what is allowed
    /// there, and what was found.
    pub(crate) fn parse(input: &str) -> Result<Filter, FilterError> {
        Query::parse(input, Utc::now())
            .map(|query| Filter { query })
            .map_err(|err| FilterError {
                column: err.column,
                headline: err.headline(),
            })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.query.is_empty()
    }

    pub(crate) fn matches(&self, delivery: &Delivery) -> bool {
        self.query.matches(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::Verdict;
    use crate::test_support::sample;

    #[test]
    fn terms_parse_and_errors_point_at_the_bad_part() {
        let filter = Filter::parse(
            "  Gmail event:tool.* EVENT:tool.execution.failed verdict:mismatch verdict:Invalid ",
        )
        .unwrap();
        assert!(!filter.is_empty());
        assert!(Filter::parse("").unwrap().is_empty());
        // The query's errors, on one line: the column, what is allowed
        // and what was found.
        let err = Filter::parse("verdict:bogus").unwrap_err();
        assert_eq!(err.column, 9);
        let err = err.headline;
        assert!(
            err.contains("column 9") && err.contains("\"bogus\"") && err.contains("mismatch"),
            "{err}"
        );
        assert!(
            Filter::parse("event:")
                .unwrap_err()
                .headline
                .contains("pattern")
        );
        let err = Filter::parse("status:500 stauts:500").unwrap_err().headline;
        assert!(
            err.contains("column 12") && err.contains("status:,"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
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
            // Every term must hold (the query language); before, two
            // event: terms were alternatives.
            ("event:workflow.* event:tool.*", false),
            ("verdict:mismatch", true),
            ("verdict:invalid", true),
            ("verdict:valid", false),
            ("verdict:valid verdict:mismatch", false),
            ("event:tool.* verdict:valid", false),
            ("event:tool.* verdict:mismatch gmail", true),
        ];
        for (input, expected) in cases {
            let filter = Filter::parse(input).unwrap();
            assert_eq!(filter.matches(&d), expected, "filter {input:?}");
        }
        let mut no_event = sample(2, b"\xff\xfe binary");
        no_event.signature.verdict = Verdict::Unchecked;
        // `*` matches as in --respond: a body without an event too.
        assert!(Filter::parse("event:*").unwrap().matches(&no_event));
        assert!(!Filter::parse("verdict:invalid").unwrap().matches(&no_event));
        assert!(Filter::parse("BINARY").unwrap().matches(&no_event));
    }
}
