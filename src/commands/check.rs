//! `danube-hooks check`: a report card on a receiver (SPEC §7). Sends the
//! deliveries a correct receiver must accept and the ones it must reject,
//! and grades each answer.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use serde::Serialize;

use crate::cli::{CheckArgs, UsageError};
use crate::commands::{Outcome, unix_now};
use crate::display::{escape_line, to_json_line, truncate};
use crate::events::{self, EVENT_TYPES};
use crate::http::{self, Attempt, Outgoing, Sender, Trust};
use crate::signature::{self, Secret};

/// What a case expects of the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Expect {
    /// 2xx within the deadline: Danube counts anything else as a failure.
    Accept,
    /// 4xx: a forged or broken delivery must be refused, and a 5xx would
    /// only make the sender retry it.
    Reject,
}

impl Expect {
    fn label(self) -> &'static str {
        match self {
            Self::Accept => "2xx",
            Self::Reject => "4xx",
        }
    }
}

/// One case: the requests it sends (in order) and what it expects of each.
struct Case {
    name: String,
    expect: Expect,
    requests: Vec<Outgoing>,
}

/// One graded case.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Graded {
    pub(crate) case: String,
    pub(crate) expected: Expect,
    pub(crate) got: String,
    pub(crate) pass: bool,
    pub(crate) latency_ms: u64,
    /// Why it failed, for a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) why: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    url: &'a str,
    passed: bool,
    cases: &'a [Graded],
}

pub(crate) fn run(args: &CheckArgs) -> anyhow::Result<Outcome> {
    let secrets = args.secret.required("check")?;
    http::check_url(&args.url).map_err(|err| UsageError::new(format!("check: {err}")))?;
    let trust = crate::commands::trust(&args.tls)?;
    let cases = cases(&args.url, &secrets[0], unix_now());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (graded, tls_failure) = runtime.block_on(run_cases(&trust, cases, args.timeout));
    if let Some(err) = tls_failure {
        // No case reached the receiver: one line, not the same one per case.
        eprintln!("danube-hooks: check: {}", escape_line(&err.to_string()));
        return Ok(Outcome::Negative);
    }
    let passed = graded.iter().all(|g| g.pass);
    if args.json {
        crate::commands::out_line(&to_json_line(&Report {
            url: &args.url,
            passed,
            cases: &graded,
        }))?;
    } else {
        crate::commands::out(&report_card(&args.url, &graded))?;
    }
    Ok(if passed {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// Every case of SPEC §7, for `url`, signed with `secret`, at `now`.
fn cases(url: &str, secret: &Secret, now: i64) -> Vec<Case> {
    let body = |event: &str| {
        events::envelope(event, Utc::now(), None, &[]).expect("every Danube event has a fixture")
    };
    let signed = |t: i64, body: Vec<u8>| Outgoing::danube(url, Some(secret), t, body);
    let tolerance = i64::try_from(crate::facts::TOLERANCE_S).unwrap_or(i64::MAX);
    let base = body("tool.execution.completed");

    let wrong_secret = Secret::new("whsec_not_your_secret_check_0000");
    let mut tampered = signed(now, base.clone());
    tampered.body = String::from_utf8_lossy(&tampered.body)
        .replace("\"success\"", "\"tampered\"")
        .into_bytes();
    let mut missing = signed(now, base.clone());
    missing
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case(signature::HEADER_NAME));
    let mut malformed = missing.clone();
    malformed.headers.push((
        signature::HEADER_NAME.into(),
        "t=not-a-time,sha256=zz".into(),
    ));
    let twice = signed(now, body("workflow.completed"));

    let mut cases = vec![
        Case {
            name: "valid delivery".into(),
            expect: Expect::Accept,
            requests: vec![signed(now, base.clone())],
        },
        Case {
            name: "wrong secret".into(),
            expect: Expect::Reject,
            requests: vec![Outgoing::danube(
                url,
                Some(&wrong_secret),
                now,
                base.clone(),
            )],
        },
        Case {
            name: "tampered body".into(),
            expect: Expect::Reject,
            requests: vec![tampered],
        },
        Case {
            name: format!("stale t ({} s old)", 2 * tolerance),
            expect: Expect::Reject,
            requests: vec![signed(now - 2 * tolerance, base.clone())],
        },
        Case {
            name: format!("future t ({} s ahead)", 2 * tolerance),
            expect: Expect::Reject,
            requests: vec![signed(now + 2 * tolerance, base.clone())],
        },
        Case {
            name: "missing signature header".into(),
            expect: Expect::Reject,
            requests: vec![missing],
        },
        Case {
            name: "malformed signature header".into(),
            expect: Expect::Reject,
            requests: vec![malformed],
        },
        Case {
            name: "same delivery twice (idempotency)".into(),
            expect: Expect::Accept,
            requests: vec![twice.clone(), twice],
        },
    ];
    cases.extend(EVENT_TYPES.iter().map(|event| Case {
        name: format!("event {event}"),
        expect: Expect::Accept,
        requests: vec![signed(now, body(event))],
    }));
    cases
}

/// Run every case at once (each case's own requests in order), so a slow
/// receiver costs one deadline, not one per case. With the graded cases,
/// the TLS failure that every request met, if every one met one.
async fn run_cases(
    trust: &Trust,
    cases: Vec<Case>,
    timeout: Duration,
) -> (Vec<Graded>, Option<http::SendError>) {
    let sender = Sender::new(trust, http::MAX_ANSWER_BODY);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, case) in cases.into_iter().enumerate() {
        let sender = sender.clone();
        tasks.spawn(async move {
            let mut attempts = Vec::new();
            for request in &case.requests {
                attempts.push(sender.send(request, timeout).await);
            }
            let tls = attempts
                .iter()
                .try_fold(None, |_, attempt| match &attempt.result {
                    Err(err @ http::SendError::Tls { .. }) => Some(Some(err.clone())),
                    _ => None,
                });
            (index, grade(&case, &attempts, timeout), tls.flatten())
        });
    }
    let mut graded: Vec<(usize, Graded, Option<http::SendError>)> = tasks.join_all().await;
    graded.sort_by_key(|(index, ..)| *index);
    let tls_failure = graded
        .iter()
        .map(|(.., tls)| tls.clone())
        .collect::<Option<Vec<_>>>()
        .and_then(|all| all.into_iter().next());
    (graded.into_iter().map(|(_, g, _)| g).collect(), tls_failure)
}

fn grade(case: &Case, attempts: &[Attempt], timeout: Duration) -> Graded {
    let got: Vec<String> = attempts
        .iter()
        .map(|a| match &a.result {
            Ok(answer) => answer.status.to_string(),
            Err(http::SendError::Timeout { .. }) => {
                format!("no answer in {}s", timeout.as_secs_f64())
            }
            Err(http::SendError::Connect { .. }) => "refused".into(),
            Err(_) => "error".into(),
        })
        .collect();
    let latency = attempts
        .iter()
        .map(|a| a.duration)
        .max()
        .unwrap_or_default();
    let why = attempts
        .iter()
        .find_map(|attempt| judge(case.expect, attempt, timeout));
    Graded {
        case: case.name.clone(),
        expected: case.expect,
        got: got.join(", "),
        pass: why.is_none(),
        latency_ms: latency.as_millis() as u64,
        why,
    }
}

/// `None` when the attempt is what `expect` asks; else why not.
fn judge(expect: Expect, attempt: &Attempt, timeout: Duration) -> Option<String> {
    let answer = match &attempt.result {
        Ok(answer) => answer,
        Err(http::SendError::Timeout { .. }) => {
            return Some(format!(
                "no answer within {} s: Danube counts the attempt as failed and retries",
                timeout.as_secs_f64()
            ));
        }
        Err(err) => return Some(err.to_string()),
    };
    match (expect, answer.status) {
        (Expect::Accept, 200..=299) | (Expect::Reject, 400..=499) => None,
        (Expect::Accept, status) => Some(format!(
            "a genuine delivery got {status}: Danube will retry it and finally mark it failed"
        )),
        (Expect::Reject, 200..=299) => Some(
            "accepted: the receiver does not verify this; anyone could forge such a delivery"
                .into(),
        ),
        (Expect::Reject, status @ 500..=599) => Some(format!(
            "refused with {status}: answer 4xx, since a 5xx tells the sender to retry"
        )),
        (Expect::Reject, status) => Some(format!("got {status}; expected a 4xx")),
    }
}

/// The card a person reads: one row per case, then the verdict.
fn report_card(url: &str, graded: &[Graded]) -> String {
    let mut out = format!("check {}\n\n", escape_line(url));
    let _ = writeln!(
        out,
        "{:<36} {:<9} {:<22} {:<6} {:>8}",
        "case", "expected", "got", "result", "latency"
    );
    for g in graded {
        let _ = writeln!(
            out,
            "{:<36} {:<9} {:<22} {:<6} {:>6}ms",
            g.case,
            g.expected.label(),
            truncate(&g.got, 22),
            if g.pass { "PASS" } else { "FAIL" },
            g.latency_ms
        );
        if let Some(why) = &g.why {
            let _ = writeln!(out, "    {}", escape_line(why));
        }
    }
    let failed = graded.iter().filter(|g| !g.pass).count();
    let _ = writeln!(
        out,
        "\n{} of {} cases passed{}",
        graded.len() - failed,
        graded.len(),
        if failed == 0 {
            "."
        } else {
            "; fix the failures above."
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::Verdict;

    fn attempt(result: Result<u16, http::SendError>) -> Attempt {
        Attempt {
            started: Utc::now(),
            duration: Duration::from_millis(5),
            result: result.map(|status| http::Answer {
                status,
                headers: vec![],
                body: bytes::Bytes::new(),
            }),
        }
    }

    #[test]
    fn every_spec_case_is_there_and_signed_as_it_says() {
        let secret = Secret::new("whsec_check_unit_test_secret_1");
        let cases = cases("http://127.0.0.1:9/", &secret, 1_800_000_000);
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        for expected in [
            "valid delivery",
            "wrong secret",
            "tampered body",
            "missing signature header",
            "malformed signature header",
            "same delivery twice (idempotency)",
            "event workflow.failed",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert!(
            names.iter().any(|n| n.starts_with("stale t"))
                && names.iter().any(|n| n.starts_with("future t"))
        );
        assert_eq!(cases.len(), 8 + EVENT_TYPES.len());
        let verdict = |case: &Case| {
            let request = &case.requests[0];
            let header = request
                .headers
                .iter()
                .find(|(n, _)| n == signature::HEADER_NAME)
                .and_then(|(_, v)| std::str::from_utf8(v).ok());
            signature::verify(
                std::slice::from_ref(&secret),
                header,
                &request.body,
                1_800_000_000,
                300,
            )
            .verdict
        };
        let by_name = |name: &str| cases.iter().find(|c| c.name.starts_with(name)).unwrap();
        assert_eq!(verdict(by_name("valid")), Verdict::Valid);
        assert_eq!(verdict(by_name("wrong secret")), Verdict::Mismatch);
        assert_eq!(verdict(by_name("tampered")), Verdict::Mismatch);
        assert_eq!(verdict(by_name("stale")), Verdict::Stale);
        assert_eq!(verdict(by_name("future")), Verdict::Stale);
        assert_eq!(verdict(by_name("missing")), Verdict::Missing);
        assert_eq!(verdict(by_name("malformed")), Verdict::Malformed);
    }

    #[test]
    fn grading_names_what_went_wrong() {
        let timeout = Duration::from_secs(10);
        assert_eq!(judge(Expect::Accept, &attempt(Ok(204)), timeout), None);
        assert_eq!(judge(Expect::Reject, &attempt(Ok(401)), timeout), None);
        assert!(
            judge(Expect::Reject, &attempt(Ok(200)), timeout)
                .unwrap()
                .contains("forge")
        );
        assert!(
            judge(Expect::Reject, &attempt(Ok(500)), timeout)
                .unwrap()
                .contains("retry")
        );
        assert!(
            judge(Expect::Accept, &attempt(Ok(401)), timeout)
                .unwrap()
                .contains("genuine")
        );
        let slow = attempt(Err(http::SendError::Timeout {
            url: "u".into(),
            timeout,
        }));
        assert!(
            judge(Expect::Accept, &slow, timeout)
                .unwrap()
                .contains("within 10 s")
        );
    }
}
