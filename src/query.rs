//! The query language (SPEC §15): one grammar for every place deliveries
//! are listed (`log --query`, `export --query`, `deliveries --query` and
//! the dashboard's `/` filter). Pure: no I/O and no clock (the caller
//! passes the time `since:10m` counts back from).
//!
//! ```text
//! QUERY := TERM (" " TERM)*          every term must hold
//! TERM  := ["-"] (KEY ":" VALUE | FIELD OP VALUE | WORD)      "-" negates
//! KEY   := event | verdict | status | attempt | path | header | id | since | until
//! FIELD := a JSON path into the body: names (or array indexes) joined by dots
//! OP    := = | != | > | < | >= | <=
//! WORD  := text found in the event, the path or the body, ignoring ASCII case
//! ```
//!
//! Double quotes keep spaces (`"Gmail - Send"`, `data.tool_name="Gmail -
//! Send Email"`), and a term that starts with one is a word whatever it
//! holds (`"a:b"`). Anything else with a `:`, `=`, `<`, `>` or `!` is a key
//! or a field, and a key this grammar does not know is refused, never read
//! as text.
//!
//! A query is evaluated against one [`Delivery`] at a time, its terms in
//! order of cost: the record's own fields first, then words (a scan of the
//! body), then body fields (the body parsed as JSON, once per record, only
//! when every cheaper term held, and only within a bounded shape). Readers
//! of the store can first ask [`LineCheck`] whether a line can match at
//! all, before they parse it.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::delivery::Delivery;
use crate::policy::Pattern;
use crate::signature::Verdict;

pub(crate) use self::eval::LineCheck;
pub(crate) use self::parse::ago;

/// What a query may hold, for errors that name what is allowed: the keys,
/// a body field, or a word.
const ALLOWED_TERMS: &str = "a key (event:, verdict:, status:, attempt:, path:, header:, id:, \
     listener:, since:, until:), a body field and a comparison (data.tool_name=Gmail, \
     data.execution_time>1), or a word (in quotes, \"a:b\", to search for text with : = < > !)";

/// A parsed query: the terms in the order they are checked. The default
/// holds no term and matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Query {
    terms: Vec<Term>,
}

/// One term, and whether `-` negated it.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    negated: bool,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Id(Count),
    Attempt(Count),
    Verdict(VerdictTest),
    /// The status this listener answered; a record without one (reset,
    /// timeout, close, garbage) passes none.
    Status(StatusTest),
    Since(DateTime<Utc>),
    Until(DateTime<Utc>),
    Event(Pattern),
    Path(Text),
    /// The listener a shared store's record names (`listen --name`); a
    /// record without one (a file store's) passes none.
    Listener(Text),
    Header {
        /// Compared without regard to ASCII case.
        name: String,
        /// `None`: the header is there, whatever its value.
        value: Option<Text>,
    },
    /// Lowercased; found in the event, the path or the body.
    Word(String),
    Field(Field),
}

impl Test {
    /// Cheaper tests are checked first: the record's numbers and short
    /// strings, then its headers, then the body's bytes, then its JSON.
    fn cost(&self) -> u8 {
        match self {
            Test::Id(_)
            | Test::Attempt(_)
            | Test::Verdict(_)
            | Test::Status(_)
            | Test::Since(_)
            | Test::Until(_) => 0,
            Test::Event(_) | Test::Path(_) | Test::Listener(_) => 1,
            Test::Header { .. } => 2,
            Test::Word(_) => 3,
            Test::Field(_) => 4,
        }
    }
}

/// `3`, `>1`, `<=5`, `2..5`: a number compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    Is(Comparison, u64),
    /// Both ends included.
    Between(u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Greater,
    Less,
    AtLeast,
    AtMost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerdictTest {
    Is(Verdict),
    /// Checked and not valid: mismatch, stale, missing, malformed.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusTest {
    Is(u16),
    /// The hundreds: `5xx` is 5.
    Class(u16),
}

/// A value matched whole, or (written with a `*` at its end) by prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Text {
    Exact(String),
    Prefix(String),
}

/// `data.execution_time>1`: a value in the body's JSON compared.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    path: Vec<String>,
    comparison: Comparison,
    value: String,
    /// `value` as a number, when it is one: compared with numbers as one.
    number: Option<f64>,
}

impl Query {
    /// The query typed by a person; `now` is what `since:10m` counts back
    /// from. An empty text is the query that matches everything.
    pub(crate) fn parse(input: &str, now: DateTime<Utc>) -> Result<Query, QueryError> {
        parse::parse(input, now)
    }

    /// Also require `event` to match: `log --event`'s shorthand.
    pub(crate) fn and_event(&mut self, pattern: Pattern) {
        self.push(Test::Event(pattern));
    }

    /// Also require this verdict: `log --verdict`'s shorthand.
    pub(crate) fn and_verdict(&mut self, verdict: Verdict) {
        self.push(Test::Verdict(VerdictTest::Is(verdict)));
    }

    fn push(&mut self, test: Test) {
        self.terms.push(Term {
            negated: false,
            test,
        });
        self.terms.sort_by_key(|term| term.test.cost());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every term holds for `delivery`.
    pub(crate) fn matches(&self, delivery: &Delivery) -> bool {
        eval::matches(&self.terms, delivery)
    }

    /// What a store line must contain for its record to match, checked on
    /// the bytes before the line is parsed.
    pub(crate) fn line_check(&self) -> LineCheck {
        LineCheck::of(&self.terms)
    }
}

/// A query that does not parse: where, what was expected, and what was
/// there. Displayed as a bad `--respond` rule is, with a caret:
///
/// ```text
/// --query "status:5x": at column 8, expected a status (500), a class (5xx), …; found "5x"
///   status:5x
///          ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct QueryError {
    /// The whole query, as given (unescaped; Display escapes it).
    pub(crate) input: String,
    /// 1-based, in characters, of the start of the bad part; one past the
    /// end when something is missing at the end.
    pub(crate) column: usize,
    pub(crate) expected: String,
    /// The bad part as given; empty when something is missing.
    pub(crate) found: String,
}

impl QueryError {
    /// The error on one line, without the query and its caret: for the
    /// dashboard, whose status line shows the query being typed above it.
    pub(crate) fn headline(&self) -> String {
        let found = if self.found.is_empty() {
            "nothing".to_string()
        } else {
            format!("\"{}\"", crate::display::escape_line(&self.found))
        };
        format!(
            "at column {}, expected {}; found {found}",
            self.column, self.expected
        )
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--query \"{}\": {}",
            crate::display::escape_line(&self.input),
            self.headline()
        )?;
        f.write_str(&crate::display::caret_under(&self.input, self.column))
    }
}
