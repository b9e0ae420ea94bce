use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::test_support::sample;

/// The samples' `received_at` is 2026-11-23T09:14:07.123Z; "now" is an
/// hour later.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:14:07.123Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn query(text: &str) -> Query {
    Query::parse(text, now()).unwrap_or_else(|err| panic!("{text:?}: {err}"))
}

fn error(text: &str) -> QueryError {
    Query::parse(text, now()).expect_err(text)
}

/// A failed tool delivery, attempt 2, answered 503, mismatched.
fn failed() -> Delivery {
    let mut d = sample(
        42,
        br#"{"event":"tool.execution.failed","data":{"tool_name":"Gmail - Send Email","execution_time":1.234,"status":"failed","error":null,"ok":false,"items":[{"n":1},{"n":7}]}}"#,
    );
    d.attempt = 2;
    d.response.status = Some(503);
    d.signature.verdict = Verdict::Mismatch;
    d.headers.push(("User-Agent".into(), "Danube/1.0".into()));
    d
}

#[test]
fn every_key_parses_and_matches() {
    let d = failed();
    // (query, matches the failed delivery)
    let cases = [
        ("", true),
        ("event:tool.execution.failed", true),
        ("event:tool.*", true),
        ("event:*", true),
        ("event:workflow.*", false),
        ("EVENT:tool.*", true),
        ("verdict:mismatch", true),
        ("verdict:INVALID", true),
        ("verdict:valid", false),
        ("status:503", true),
        ("status:5xx", true),
        ("status:5XX", true),
        ("status:2xx", false),
        ("status:!2xx", true),
        ("status:!5xx", false),
        ("status:!503", false),
        ("attempt:2", true),
        ("attempt:>1", true),
        ("attempt:<2", false),
        ("attempt:>=2", true),
        ("attempt:<=1", false),
        ("attempt:!=2", false),
        ("attempt:1..3", true),
        ("attempt:3..5", false),
        ("id:42", true),
        ("id:>100", false),
        ("id:40..50", true),
        ("path:/webhooks/danube", true),
        ("path:/webhooks/danube?x=1", true),
        ("path:/webhooks/danube?x=2", false),
        ("path:/webhooks/*", true),
        ("path:/webhooks", false),
        ("path:/other/*", false),
        ("header:user-agent", true),
        ("header:USER-AGENT=Danube/1.0", true),
        ("header:user-agent=Danube*", true),
        ("header:user-agent=danube/1.0", false),
        ("header:x-dup=b", true),
        ("header:x-absent", false),
        ("since:2h", true),
        ("since:10m", false),
        ("until:10m", true),
        ("until:2h", false),
        ("since:2026-11-23T09:00:00Z", true),
        ("since:2026-11-23T10:00:00+01:00", true),
        ("until:2026-11-23", false),
        ("since:2026-11-23 until:2026-11-24", true),
        ("data.tool_name=\"Gmail - Send Email\"", true),
        ("data.tool_name=Gmail", false),
        ("data.tool_name!=Gmail", true),
        ("data.tool_name>Gmail", true),
        ("data.execution_time>1", true),
        ("data.execution_time>=1.234", true),
        ("data.execution_time<1", false),
        ("data.execution_time=1.234", true),
        ("data.execution_time=\"1.234\"", false),
        ("data.error=null", true),
        ("data.ok=false", true),
        ("data.ok=true", false),
        ("data.items.1.n=7", true),
        ("data.items.5.n=7", false),
        ("data.absent=1", false),
        ("data.absent!=1", false),
        ("data.items=1", false),
        ("event=tool.execution.failed", true),
        ("gmail", true),
        ("GMAIL", true),
        ("failed", true),
        ("webhooks/danube", true),
        ("slack", false),
        ("\"gmail - send\"", true),
        ("\"gmail  send\"", false),
        ("\"status:503\"", false),
        ("\"a\\\"b\"", false),
    ];
    for (text, expected) in cases {
        assert_eq!(query(text).matches(&d), expected, "{text:?}");
    }
}

#[test]
fn listener_matches_a_shared_stores_name_and_never_a_record_without_one() {
    let mut d = failed();
    assert!(
        !query("listener:ann@laptop").matches(&d),
        "a file's record names none"
    );
    assert!(query("-listener:ann@*").matches(&d));
    d.listener = Some("ann@laptop".into());
    for (text, expected) in [
        ("listener:ann@laptop", true),
        ("listener:ann@*", true),
        ("listener:*", true),
        ("listener:ann", false),
        ("listener:bob@desk", false),
        ("-listener:bob@*", true),
    ] {
        assert_eq!(query(text).matches(&d), expected, "{text:?}");
    }
}

#[test]
fn terms_combine_with_and_and_minus_negates() {
    let d = failed();
    let cases = [
        ("event:tool.* status:5xx gmail", true),
        ("event:tool.* status:2xx", false),
        ("event:workflow.* event:tool.*", false),
        ("-event:workflow.*", true),
        ("-event:tool.*", false),
        ("-status:2xx", true),
        ("-slack gmail", true),
        ("-gmail", false),
        ("-\"send email\"", false),
        ("-data.absent=1", true),
        ("-data.tool_name=Gmail attempt:>1", true),
        ("  event:tool.*    verdict:mismatch  ", true),
    ];
    for (text, expected) in cases {
        assert_eq!(query(text).matches(&d), expected, "{text:?}");
    }
    assert!(query("").is_empty());
    assert!(query("   ").is_empty());
}

#[test]
fn a_record_without_a_status_or_event_or_json_body() {
    let mut d = sample(1, b"\xff\xfe binary BODY");
    d.response.status = None;
    d.response.action = "reset".into();
    let cases = [
        ("status:5xx", false),
        ("status:!2xx", true),
        ("-status:2xx", true),
        // `*` matches as in --respond: bodies without an event too.
        ("event:*", true),
        ("event:x", false),
        ("-event:*", false),
        ("-event:x", true),
        ("body", true),
        ("data.x=1", false),
        ("-data.x=1", true),
    ];
    for (text, expected) in cases {
        assert_eq!(query(text).matches(&d), expected, "{text:?}");
    }
}

#[test]
fn cheap_terms_are_checked_first_and_the_body_parsed_at_most_once() {
    let q = query("data.a=1 gmail header:x status:500 event:x id:1");
    let costs: Vec<u8> = q.terms.iter().map(|t| t.test.cost()).collect();
    assert_eq!(costs, [0, 0, 1, 2, 3, 4]);
    let parses = |text: &str, d: &Delivery| {
        eval::PARSES.with(|n| n.set(0));
        let _ = query(text).matches(d);
        eval::PARSES.with(std::cell::Cell::get)
    };
    let d = failed();
    assert_eq!(
        parses("data.ok=false data.error=null data.items.0.n=1", &d),
        1
    );
    assert_eq!(
        parses("data.ok=false event:workflow.*", &d),
        0,
        "cheap terms first"
    );
    assert_eq!(parses("data.ok=false slack", &d), 0, "words before fields");
    // A body nested past the bound is not built, and matches no field.
    let deep = crate::test_support::nested(200, 4096);
    let d = sample(1, &deep);
    assert!(!query("x=1").matches(&d));
    assert!(query("-x=1").matches(&d));
}

#[test]
fn shorthands_add_terms() {
    let mut q = query("gmail");
    q.and_event(Pattern::parse("tool.*").unwrap());
    q.and_verdict(Verdict::Mismatch);
    assert!(q.matches(&failed()));
    q.and_verdict(Verdict::Valid);
    assert!(!q.matches(&failed()));
}

#[test]
fn the_line_check_refuses_only_lines_that_cannot_match() {
    let d = failed();
    let line = d.to_json_line();
    for text in [
        "event:tool.execution.failed",
        "event:tool.*",
        "verdict:mismatch",
        "event:tool.* verdict:mismatch gmail data.ok=false",
        "-event:workflow.*",
        "-verdict:valid",
    ] {
        let q = query(text);
        assert!(q.matches(&d), "{text}");
        assert!(q.line_check().may_match(line.as_bytes()), "{text}");
    }
    for text in [
        "event:workflow.*",
        "verdict:stale",
        "event:tool.* verdict:valid",
    ] {
        assert!(
            !query(text).line_check().may_match(line.as_bytes()),
            "{text}"
        );
    }
    // Events a writer might escape are not looked for in the bytes.
    assert!(query("event:caf\u{e9}").line_check().is_trivial());
    assert!(query("event:a\\b").line_check().is_trivial());
    assert!(query("-event:x status:5xx").line_check().is_trivial());
}

/// The error as displayed: the message, the query, and the caret.
fn shown(text: &str) -> String {
    error(text).to_string()
}

#[test]
fn errors_point_at_the_bad_part_and_say_what_is_allowed() {
    // (query, column, found, words of what is expected)
    let cases: &[(&str, usize, &str, &[&str])] = &[
        (
            "stauts:500",
            1,
            "stauts:",
            &["event:", "until:", "data.tool_name=Gmail", "word"],
        ),
        ("gmail http://x", 7, "http:", &["a key", "quotes"]),
        ("status:5x", 8, "5x", &["5xx", "!2xx"]),
        ("status:600", 8, "600", &["a status"]),
        ("status:", 8, "", &["after status:"]),
        ("verdict:nope", 9, "nope", &["mismatch", "invalid"]),
        ("attempt:>x", 9, ">x", &["a number", "2..5"]),
        ("attempt:5..2", 9, "5..2", &["a range"]),
        (
            "id:99999999999999999999",
            4,
            "99999999999999999999",
            &["a number"],
        ),
        ("path:webhooks", 6, "webhooks", &["starts with /"]),
        ("path:/a*b", 6, "/a*b", &["prefix ending in *"]),
        ("header:=x", 8, "=x", &["a header name"]),
        ("header:a/b", 8, "a/b", &["a header name"]),
        ("since:10y", 7, "10y", &["10m", "RFC 3339"]),
        ("until:yesterday", 7, "yesterday", &["a date"]),
        ("event:tool.*.x", 12, "tool.*.x", &["only at the end"]),
        ("event:", 7, "", &["an event pattern", "after event:"]),
        ("data..x=1", 1, "data..x=1", &["names joined by dots"]),
        ("=1", 1, "=1", &["names joined by dots"]),
        ("data.x!1", 7, "!1", &["!=", ">="]),
        ("data.x=", 8, "", &["a value after"]),
        ("a \"open", 3, "\"open", &["a closing \""]),
        ("a - b", 4, "", &["a term after \"-\""]),
        ("-", 2, "", &["a term after"]),
        ("a \"\"", 3, "\"\"", &["a word inside the quotes"]),
        (
            "data.x>1e400",
            8,
            "1e400",
            &["a number within", "in quotes"],
        ),
        ("data.x=-1e999", 8, "-1e999", &["a number within"]),
    ];
    for (text, column, found, expected) in cases {
        let err = error(text);
        assert_eq!(err.column, *column, "{text:?}: {err}");
        assert_eq!(err.found, *found, "{text:?}: {err}");
        for word in *expected {
            assert!(err.expected.contains(word), "{text:?}: {word:?} in {err}");
        }
        // The caret is under the column, on the line under the query.
        let shown = err.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        assert_eq!(lines[1], format!("  {text}"));
        assert_eq!(
            lines[2],
            format!("  {}^", " ".repeat(column - 1)),
            "{shown}"
        );
    }
}

#[test]
fn an_error_reads_like_a_bad_respond_rule() {
    assert_eq!(
        shown("event:tool.* status:5x"),
        "--query \"event:tool.* status:5x\": at column 21, expected a status (500), a class \
         (5xx), or either after ! (!2xx): the status this listener answered; found \"5x\"\n  \
         event:tool.* status:5x\n                      ^"
    );
    let err = error("bogus:1");
    assert_eq!(
        err.headline(),
        format!("at column 1, expected {ALLOWED_TERMS}; found \"bogus:\"")
    );
    // Escaped, and the caret still under the bad part.
    let shown = shown("\u{1b}[2J x:1");
    assert!(!shown.contains('\u{1b}'), "{shown}");
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[1], "  \\x1b[2J x:1");
    assert_eq!(lines[2].find('^'), Some(2 + "\\x1b[2J ".len()));
}

#[test]
fn times_count_back_from_now() {
    let q = query("since:90m");
    assert_eq!(q.terms[0].test, Test::Since(now() - TimeDelta::minutes(90)));
    for (text, seconds) in [("30s", 30), ("2h", 7200), ("7d", 604_800), ("1w", 604_800)] {
        assert_eq!(
            query(&format!("until:{text}")).terms[0].test,
            Test::Until(now() - TimeDelta::seconds(seconds))
        );
    }
    // Far past what a date holds: refused, not a panic.
    error("since:999999999w");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_errors_point_inside(text in any::<String>()) {
            if let Err(err) = Query::parse(&text, now()) {
                prop_assert!(err.column >= 1 && err.column <= text.chars().count() + 1);
                let _ = err.to_string();
            } else {
                let _ = Query::parse(&text, now()).unwrap().matches(&failed());
            }
        }
    }
}

#[test]
fn the_caret_counts_terminal_cells_under_wide_characters() {
    let err = error("漢字漢字 status:5x");
    assert_eq!(err.column, 13, "{err}");
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    // Four wide characters are eight cells, then " status:" eight more.
    assert_eq!(lines[2], format!("  {}^", " ".repeat(16)), "{shown}");
}

#[test]
fn words_ignore_ascii_case_alone_on_both_sides() {
    let mut delivery = failed();
    delivery.body = "Café ÉTÉ".as_bytes().to_vec();
    // é and É are different letters to it: only A-Z and a-z fold.
    let cases = [
        ("CAFé", true),
        ("CAFÉ", false),
        ("ÉtÉ", true),
        ("été", false),
    ];
    for (text, matches) in cases {
        assert_eq!(query(text).matches(&delivery), matches, "{text:?}");
    }
    // A large but finite number still compares as one.
    assert_eq!(query("data.x<1e300").terms.len(), 1);
}
