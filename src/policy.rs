//! The response policy (SPEC §3): the `--respond` grammar, and the choice of
//! an answer for each attempt of a delivery.
//!
//! Pure: no I/O, no clock. The server asks [`Policy::decide`] with the event
//! and the attempt number, then carries out the [`Step`] it gets back.
//!
//! ```text
//! RULE    := [PATTERN "="] STEP ("," STEP)*
//! PATTERN := an event type (tool.execution.failed), a prefix ending in "*" (tool.*), or "*"
//! STEP    := [DELAY "+"] ACTION
//! ACTION  := STATUS | forward | timeout | reset | close | garbage
//! STATUS  := 100..=599
//! DELAY   := 250ms | 3s | 1.5s | 2m …   (at most 10 minutes)
//! ```
//!
//! Whitespace around tokens is tolerated and keywords are case-insensitive;
//! patterns are matched case-sensitively, as event types are exact strings.

use std::fmt::{self, Write as _};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::display::escape_line;

/// The longest delay a step may have. Danube gives up after 10 s; the cap
/// keeps a slip such as `600m` from holding a connection for hours.
pub(crate) const MAX_DELAY: Duration = Duration::from_mins(10);
const MAX_DELAY_MS: u128 = MAX_DELAY.as_millis();

const EXPECTED_RULE: &str = "a rule such as 500,500,forward or tool.*=12s+200";
const EXPECTED_STEP: &str = "a step: a status 100..=599, one of forward, timeout, reset, close, garbage, or DELAY+ACTION (3s+200)";
const EXPECTED_ACTION: &str =
    "a status 100..=599 or one of forward, timeout, reset, close, garbage";
const EXPECTED_ACTION_AFTER_DELAY: &str = "an action after the delay: a status 100..=599 or one of forward, timeout, reset, close, garbage";
const EXPECTED_STATUS: &str = "a status 100..=599";
const EXPECTED_FORWARDING: &str = "a status 100..=599 or one of timeout, reset, close, garbage; \
     forward needs --forward-to URL";
const EXPECTED_ONE_DELAY: &str = "one delay per step, as DELAY+ACTION (3s+200)";
const EXPECTED_DELAY: &str = "a delay before \"+\": a number and a unit (250ms, 3s, 1.5s, 2m)";
const EXPECTED_FRACTION: &str = "digits after the decimal point (1.5s)";
const EXPECTED_UNIT: &str = "a unit after the number: ms, s or m (250ms, 3s, 1.5s, 2m)";
const EXPECTED_WHOLE_MS: &str =
    "a delay in whole milliseconds (250ms; decimals only with s or m, as in 0.25s)";
const EXPECTED_MAX_DELAY: &str = "a delay of at most 10 minutes (10m, 600s)";
const EXPECTED_PATTERN: &str = "an event pattern before \"=\": an event type (tool.execution.failed), a prefix ending in * (tool.*), or *";
const EXPECTED_STAR_AT_END: &str =
    "\"*\" only at the end of a pattern: a prefix (tool.*) or every event (*)";
const EXPECTED_PATTERN_CHAR: &str = "an event pattern without spaces, commas or control characters";
const EXPECTED_ONE_EQUALS: &str =
    "one \"=\", between the pattern and the steps (tool.*=500,forward)";

/// What to do with one attempt, apart from when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Answer with this status. Always in `100..=599` when parsed.
    Status(u16),
    /// Pass the delivery to the developer's receiver and relay its answer.
    Forward,
    /// Answer nothing; hold the connection past the sender's deadline.
    Timeout,
    /// Abort the TCP connection (RST) without an answer.
    Reset,
    /// Close the connection cleanly without an answer.
    Close,
    /// Write bytes that are not HTTP, then close.
    Garbage,
}

impl Action {
    /// "status", "forward", "timeout", "reset", "close", "garbage": the
    /// `action` of a delivery record.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Status(_) => "status",
            Action::Forward => "forward",
            Action::Timeout => "timeout",
            Action::Reset => "reset",
            Action::Close => "close",
            Action::Garbage => "garbage",
        }
    }
}

impl fmt::Display for Action {
    /// The action as written in a rule: `500`, `forward`, `reset`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Status(status) => write!(f, "{status}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One step of a rule: wait `delay`, then do `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// Whole milliseconds, at most [`MAX_DELAY`], when parsed. Display
    /// shows whole milliseconds only.
    pub(crate) delay: Duration,
    pub(crate) action: Action,
}

impl Step {
    /// The action at once, with no delay.
    pub(crate) const fn now(action: Action) -> Step {
        Step {
            delay: Duration::ZERO,
            action,
        }
    }
}

impl fmt::Display for Step {
    /// `200`, `12s+200`, `250ms+reset`, `1.5s+forward`, `2m+close`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.delay.as_millis();
        if ms > 0 {
            write!(f, "{}+", format_delay(ms))?;
        }
        write!(f, "{}", self.action)
    }
}

/// A delay in the shortest form that is exact and reads naturally: whole
/// minutes as `2m`, below a second as `250ms`, else seconds with as many
/// decimals as needed (`12s`, `1.5s`, `1.25s`). Every form parses back.
fn format_delay(ms: u128) -> String {
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let fraction = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, fraction.trim_end_matches('0'))
    }
}

/// Which events a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*`: every event, and bodies that have none.
    Any,
    /// One event type, compared exactly.
    Exact(String),
    /// `tool.*`, held without its `*` (`tool.`): events that start with it.
    Prefix(String),
}

impl Pattern {
    /// A pattern on its own, as `log --event` and the dashboard's filter
    /// take it: `tool.execution.failed`, `tool.*` or `*`.
    pub(crate) fn parse(text: &str) -> Result<Pattern, PolicyError> {
        let parser = Parser {
            input: text,
            forwarding: false,
        };
        parser.pattern(Span { text, start: 0 })
    }

    /// Whether `event` (`None`: a body without one) matches.
    pub(crate) fn matches(&self, event: Option<&str>) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(exact) => event == Some(exact.as_str()),
            Pattern::Prefix(prefix) => event.is_some_and(|e| e.starts_with(prefix.as_str())),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Any => f.write_str("*"),
            Pattern::Exact(exact) => f.write_str(exact),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// One `--respond` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// `None`: the rule applies to every event, like `*`.
    pub(crate) pattern: Option<Pattern>,
    /// Never empty: attempt n gets step n, and the last one repeats.
    pub(crate) steps: Vec<Step>,
}

impl Rule {
    /// A rule as written after `--respond`. `forward` is accepted here;
    /// [`Policy::parse`] refuses it when nothing is forwarded to.
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Result<Rule, PolicyError> {
        Parser {
            input: text,
            forwarding: true,
        }
        .rule()
    }

    /// Whether the rule applies to a body with this `event` (`None`: the
    /// body has no event). Only `*` and pattern-less rules match `None`.
    pub(crate) fn matches(&self, event: Option<&str>) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(event))
    }

    /// The step for the 1-based `attempt` (0 counts as 1), and its 1-based
    /// number: the last step repeats. `None` only for a rule built by hand
    /// without steps.
    fn step_for(&self, attempt: u32) -> Option<(usize, Step)> {
        let wanted = usize::try_from(attempt.max(1)).unwrap_or(usize::MAX);
        let number = wanted.min(self.steps.len());
        let step = *self.steps.get(number.checked_sub(1)?)?;
        Some((number, step))
    }
}

impl fmt::Display for Rule {
    /// The canonical text, which parses back to the same rule:
    /// `tool.*=500,500,forward`, `12s+200`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pattern) = &self.pattern {
            write!(f, "{pattern}=")?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

/// The rules in the order given, and what to do when none applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Whether `--forward-to` is set: it picks the default, and without it
    /// no rule has a `forward` step.
    forwarding: bool,
    /// What [`Policy::decide`] names, prepared with the policy rather than
    /// formatted for every delivery: per rule, `rule #n` (header-safe) for
    /// its first [`LABELLED_STEPS`] step numbers…
    labels: Vec<Vec<String>>,
    /// …and `default 200` or `default forward`.
    default_label: String,
}

/// Step numbers whose labels are prepared: a rule's text grows with its
/// steps, so preparing every one would cost the square of a long rule.
const LABELLED_STEPS: usize = 32;

impl Policy {
    /// The policy from `--respond` values in order; `forwarding` says whether
    /// `--forward-to` is set. The first rule that does not parse is the error.
    pub(crate) fn parse(rules: &[String], forwarding: bool) -> Result<Policy, PolicyError> {
        let rules = rules
            .iter()
            .map(|text| {
                Parser {
                    input: text,
                    forwarding,
                }
                .rule()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy::new(rules, forwarding))
    }

    /// No rules: the default only.
    pub fn default_for(forwarding: bool) -> Policy {
        Policy::new(Vec::new(), forwarding)
    }

    fn new(rules: Vec<Rule>, forwarding: bool) -> Policy {
        let labels = rules
            .iter()
            .map(|rule| {
                (1..=rule.steps.len().min(LABELLED_STEPS))
                    .map(|number| rule_label(rule, number))
                    .collect()
            })
            .collect();
        let mut policy = Policy {
            rules,
            forwarding,
            labels,
            default_label: String::new(),
        };
        policy.default_label = format!("default {}", policy.default_step());
        policy
    }

    /// The answer for the `attempt`-th (1-based; 0 counts as 1) delivery of
    /// a group whose body has this `event`.
    pub(crate) fn decide(&self, event: Option<&str>, attempt: u32) -> Decision {
        let chosen = self.rules.iter().enumerate().find_map(|(index, rule)| {
            if rule.matches(event) {
                rule.step_for(attempt).map(|found| (index, rule, found))
            } else {
                None
            }
        });
        if let Some((index, rule, (number, step))) = chosen {
            let prepared = self.labels[index].get(number - 1);
            return Decision {
                step,
                rule: prepared.map_or_else(|| rule_label(rule, number), Clone::clone),
            };
        }
        Decision {
            step: self.default_step(),
            rule: self.default_label.clone(),
        }
    }

    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub(crate) fn forwarding(&self) -> bool {
        self.forwarding
    }

    /// One line for a banner or a dashboard header:
    /// `tool.*=500,500,forward; otherwise 200`, or `200` with no rules.
    /// Patterns cannot hold control characters, so the line is terminal-safe.
    pub(crate) fn describe(&self) -> String {
        let default = self.default_step();
        if self.rules.is_empty() {
            return default.to_string();
        }
        let mut shown = Vec::new();
        for rule in &self.rules {
            shown.push(rule.to_string());
            // Rules after one that matches everything can never apply, and
            // neither can the default.
            if matches!(rule.pattern, None | Some(Pattern::Any)) {
                return shown.join("; ");
            }
        }
        shown.push(format!("otherwise {default}"));
        shown.join("; ")
    }

    /// SPEC §3: forward when there is somewhere to forward to, else 200.
    fn default_step(&self) -> Step {
        Step::now(if self.forwarding {
            Action::Forward
        } else {
            Action::Status(200)
        })
    }
}

/// The policy in force, shared with whoever may change it while listening
/// (the dashboard). Readers clone the `Arc` and release the lock at once.
#[derive(Debug, Clone)]
pub struct PolicyHandle(Arc<RwLock<Arc<Policy>>>);

impl PolicyHandle {
    pub fn new(policy: Policy) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(policy))))
    }

    pub(crate) fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn replace(&self, policy: Policy) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }
}

/// What [`Policy::decide`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) step: Step,
    /// Names the rule and the step that chose it, e.g.
    /// `tool.*=500,500,forward #2` (the step used, i.e.
    /// min(attempt, steps)), or `default 200` / `default forward`.
    /// Printable ASCII only: it is also sent as the `X-Danube-Hooks-Rule`
    /// header value, so anything else is written `\u{…}` and `\` as `\\`.
    pub(crate) rule: String,
}

/// `tool.*=500,forward #2`: the rule and the 1-based number of its step,
/// header-safe.
fn rule_label(rule: &Rule, number: usize) -> String {
    header_safe(&format!("{rule} #{number}"))
}

/// `text` with every character outside printable ASCII written `\u{…}`, and
/// `\` doubled so an escape in a pattern cannot pass for one made here.
fn header_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
        }
    }
    out
}

/// A rule that does not parse: where, what was expected, and what was there.
///
/// Displayed on several lines, with the input (escaped) and a caret:
///
/// ```text
/// --respond "tool.*=50x": at column 8, expected a status 100..=599 or one of forward, timeout, reset, close, garbage; found "50x"
///   tool.*=50x
///          ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct PolicyError {
    /// The whole rule, as given (unescaped; Display escapes it).
    pub(crate) input: String,
    /// 1-based, in characters (not bytes), of the start of the bad token;
    /// one past the end when something is missing at the end.
    pub(crate) column: usize,
    pub(crate) expected: String,
    /// The bad token as given; empty when something is missing.
    pub(crate) found: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_for("--respond", f)
    }
}

impl PolicyError {
    /// The error as told for `flag`, whose value held the pattern:
    /// `--forward-to` takes the same patterns.
    pub(crate) fn for_flag(&self, flag: &str) -> String {
        let mut out = String::new();
        let _ = self.write_for(flag, &mut out);
        out
    }

    fn write_for(&self, flag: &str, f: &mut impl fmt::Write) -> fmt::Result {
        let input = escape_line(&self.input);
        write!(
            f,
            "{flag} \"{input}\": at column {}, expected {}; found ",
            self.column, self.expected
        )?;
        if self.found.is_empty() {
            f.write_str("nothing")?;
        } else {
            write!(f, "\"{}\"", escape_line(&self.found))?;
        }
        f.write_str(&crate::display::caret_under(&self.input, self.column))
    }
}

/// A slice of the input and its byte offset in the whole rule, so errors can
/// point at it. Every split is at an ASCII delimiter, so offsets always fall
/// on character boundaries.
#[derive(Clone, Copy)]
struct Span<'a> {
    text: &'a str,
    start: usize,
}

impl<'a> Span<'a> {
    fn trimmed(self) -> Span<'a> {
        let rest = self.text.trim_start();
        Span {
            text: rest.trim_end(),
            start: self.start + (self.text.len() - rest.len()),
        }
    }

    /// The parts before and after the first `delimiter`.
    fn split_once(self, delimiter: char) -> Option<(Span<'a>, Span<'a>)> {
        let at = self.text.find(delimiter)?;
        Some((
            Span {
                text: &self.text[..at],
                start: self.start,
            },
            Span {
                text: &self.text[at + delimiter.len_utf8()..],
                start: self.start + at + delimiter.len_utf8(),
            },
        ))
    }

    fn after(self, byte: usize) -> Span<'a> {
        Span {
            text: &self.text[byte..],
            start: self.start + byte,
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    /// Whether `forward` is allowed.
    forwarding: bool,
}

impl Parser<'_> {
    fn error(&self, byte: usize, expected: &str, found: &str) -> PolicyError {
        PolicyError {
            input: self.input.to_string(),
            column: self.input[..byte].chars().count() + 1,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn rule(&self) -> Result<Rule, PolicyError> {
        let whole = Span {
            text: self.input,
            start: 0,
        };
        if whole.trimmed().text.is_empty() {
            return Err(self.error(0, EXPECTED_RULE, ""));
        }
        if let Some((second, _)) = self.input.match_indices('=').nth(1) {
            return Err(self.error(second, EXPECTED_ONE_EQUALS, "="));
        }
        let (pattern, steps) = match whole.split_once('=') {
            Some((pattern, steps)) => (Some(self.pattern(pattern)?), steps),
            None => (None, whole),
        };
        let mut parsed = Vec::new();
        let mut rest = Some(steps);
        while let Some(span) = rest {
            let (step, next) = match span.split_once(',') {
                Some((step, next)) => (step, Some(next)),
                None => (span, None),
            };
            parsed.push(self.step(step)?);
            rest = next;
        }
        Ok(Rule {
            pattern,
            steps: parsed,
        })
    }

    fn pattern(&self, span: Span<'_>) -> Result<Pattern, PolicyError> {
        let span = span.trimmed();
        if span.text.is_empty() {
            // Point at the "=" the pattern should come before.
            return Err(self.error(span.start, EXPECTED_PATTERN, ""));
        }
        let last = span.text.len() - 1;
        for (at, c) in span.text.char_indices() {
            if c == '*' && at != last {
                return Err(self.error(span.start + at, EXPECTED_STAR_AT_END, span.text));
            }
            // Patterns are shown on banners and dashboards as they are, and
            // a space or a comma is a sign of a rule mistyped, not an event.
            if c.is_whitespace() || c == ',' || crate::display::is_dangerous(c) {
                return Err(self.error(span.start + at, EXPECTED_PATTERN_CHAR, span.text));
            }
        }
        Ok(match span.text.strip_suffix('*') {
            Some("") => Pattern::Any,
            Some(prefix) => Pattern::Prefix(prefix.to_string()),
            None => Pattern::Exact(span.text.to_string()),
        })
    }

    fn step(&self, span: Span<'_>) -> Result<Step, PolicyError> {
        let span = span.trimmed();
        if span.text.is_empty() {
            return Err(self.error(span.start, EXPECTED_STEP, ""));
        }
        let Some((delay, action)) = span.split_once('+') else {
            return Ok(Step::now(self.action(span, EXPECTED_ACTION)?));
        };
        let (delay, action) = (delay.trimmed(), action.trimmed());
        let delay = self.delay(delay)?;
        if action.text.contains('+') {
            return Err(self.error(action.start, EXPECTED_ONE_DELAY, action.text));
        }
        Ok(Step {
            delay,
            action: self.action(action, EXPECTED_ACTION_AFTER_DELAY)?,
        })
    }

    fn action(&self, span: Span<'_>, expected: &str) -> Result<Action, PolicyError> {
        let text = span.text;
        if text.is_empty() {
            return Err(self.error(span.start, expected, ""));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            // At most three digits, so the parse cannot overflow.
            return match text.parse::<u16>() {
                Ok(status @ 100..=599) if text.len() == 3 => Ok(Action::Status(status)),
                _ => Err(self.error(span.start, EXPECTED_STATUS, text)),
            };
        }
        let action = [
            Action::Forward,
            Action::Timeout,
            Action::Reset,
            Action::Close,
            Action::Garbage,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(text))
        .ok_or_else(|| self.error(span.start, expected, text))?;
        if action == Action::Forward && !self.forwarding {
            return Err(self.error(span.start, EXPECTED_FORWARDING, text));
        }
        Ok(action)
    }

    /// `250ms`, `3s`, `1.5s`, `2m`: computed exactly in integers, so `0.1s`
    /// is 100 ms and not 99.
    fn delay(&self, span: Span<'_>) -> Result<Duration, PolicyError> {
        let text = span.text;
        let whole_len = text.bytes().take_while(u8::is_ascii_digit).count();
        if whole_len == 0 {
            return Err(self.error(span.start, EXPECTED_DELAY, text));
        }
        let whole = &text[..whole_len];
        let mut unit = span.after(whole_len);
        let mut fraction = "";
        if unit.text.starts_with('.') {
            let digits = unit.after(1);
            let len = digits.text.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return Err(self.error(digits.start, EXPECTED_FRACTION, text));
            }
            fraction = &digits.text[..len];
            unit = digits.after(len);
        }
        let unit_ms: u128 = match unit.text.to_ascii_lowercase().as_str() {
            "ms" if fraction.is_empty() => 1,
            "ms" => return Err(self.error(span.start, EXPECTED_WHOLE_MS, text)),
            "s" => 1000,
            "m" => 60_000,
            _ => return Err(self.error(unit.start, EXPECTED_UNIT, unit.text)),
        };
        // Bound the digits so the arithmetic below fits in u128: a whole part
        // of 13 digits is far over the limit in any unit, and a fraction of
        // 21 significant digits is never whole milliseconds.
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        if whole.len() > 12 {
            return Err(self.error(span.start, EXPECTED_MAX_DELAY, text));
        }
        if fraction.len() > 20 {
            return Err(self.error(span.start, EXPECTED_WHOLE_MS, text));
        }
        let number = |digits: &str| digits.parse::<u128>().unwrap_or(0);
        let scale = 10u128.pow(fraction.len() as u32);
        let scaled = (number(whole) * scale + number(fraction)) * unit_ms;
        if !scaled.is_multiple_of(scale) {
            return Err(self.error(span.start, EXPECTED_WHOLE_MS, text));
        }
        let ms = scaled / scale;
        if ms > MAX_DELAY_MS {
            return Err(self.error(span.start, EXPECTED_MAX_DELAY, text));
        }
        Ok(Duration::from_millis(ms as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn step(delay_ms: u64, action: Action) -> Step {
        Step {
            delay: ms(delay_ms),
            action,
        }
    }

    fn policy(rules: &[&str], forwarding: bool) -> Policy {
        let rules: Vec<String> = rules.iter().map(ToString::to_string).collect();
        Policy::parse(&rules, forwarding).unwrap()
    }

    #[test]
    fn prepared_labels_read_as_the_format_they_replaced() {
        let long = vec!["500"; LABELLED_STEPS + 3].join(",");
        let sets: [(&[&str], bool); 4] = [
            (&[], false),
            (&[], true),
            (
                &[
                    "tool.*=500,500,forward",
                    "caf\u{e9}\\x=3s+429,1.5s+reset",
                    "*=garbage",
                ],
                true,
            ),
            (
                &["tool.execution.failed=503", long.as_str(), "close"],
                false,
            ),
        ];
        let events = [
            None,
            Some("tool.execution.failed"),
            Some("caf\u{e9}\\x"),
            Some("other"),
        ];
        for (rules, forwarding) in sets {
            let policy = policy(rules, forwarding);
            for event in events {
                for attempt in 0..u32::try_from(LABELLED_STEPS).unwrap() + 6 {
                    let decision = policy.decide(event, attempt);
                    let old = policy
                        .rules()
                        .iter()
                        .find_map(|rule| {
                            rule.matches(event)
                                .then(|| rule.step_for(attempt))
                                .flatten()
                                .map(|(number, _)| header_safe(&format!("{rule} #{number}")))
                        })
                        .unwrap_or_else(|| format!("default {}", decision.step));
                    assert_eq!(decision.rule, old, "{rules:?} {event:?} {attempt}");
                }
            }
        }
        assert_eq!(policy(&[], true).decide(None, 1).rule, "default forward");
        assert_eq!(
            policy(&[long.as_str()], false).decide(None, 40).rule,
            format!("{long} #{}", LABELLED_STEPS + 3)
        );
    }

    #[test]
    fn describe_stops_at_a_rule_that_matches_everything() {
        let policy = |rules: &[&str]| {
            let rules: Vec<String> = rules.iter().map(ToString::to_string).collect();
            Policy::parse(&rules, false).unwrap().describe()
        };
        assert_eq!(policy(&[]), "200");
        assert_eq!(policy(&["503"]), "503");
        assert_eq!(
            policy(&["tool.*=500", "*=timeout", "429"]),
            "tool.*=500; *=timeout"
        );
        assert_eq!(policy(&["tool.*=500"]), "tool.*=500; otherwise 200");
    }

    #[test]
    fn patterns_parse_on_their_own() {
        assert_eq!(
            Pattern::parse("tool.*"),
            Ok(Pattern::Prefix("tool.".into()))
        );
        assert_eq!(Pattern::parse("*"), Ok(Pattern::Any));
        assert_eq!(
            Pattern::parse("workflow.failed"),
            Ok(Pattern::Exact("workflow.failed".into()))
        );
        assert_eq!(Pattern::parse("to*l").unwrap_err().column, 3);
        assert!(Pattern::parse("").is_err());
        assert!(
            Pattern::parse("tool.*")
                .unwrap()
                .matches(Some("tool.execution.failed"))
        );
    }

    #[test]
    fn every_action_and_delay_form_parses() {
        use Action::{Close, Forward, Garbage, Reset, Status, Timeout};
        // (input, step, canonical display)
        let cases = [
            ("200", step(0, Status(200)), "200"),
            ("100", step(0, Status(100)), "100"),
            ("599", step(0, Status(599)), "599"),
            ("forward", step(0, Forward), "forward"),
            ("timeout", step(0, Timeout), "timeout"),
            ("reset", step(0, Reset), "reset"),
            ("close", step(0, Close), "close"),
            ("garbage", step(0, Garbage), "garbage"),
            ("FORWARD", step(0, Forward), "forward"),
            ("Timeout", step(0, Timeout), "timeout"),
            ("12s+200", step(12_000, Status(200)), "12s+200"),
            ("250ms+reset", step(250, Reset), "250ms+reset"),
            ("1.5s+forward", step(1500, Forward), "1.5s+forward"),
            ("1500ms+garbage", step(1500, Garbage), "1.5s+garbage"),
            ("0.25s+close", step(250, Close), "250ms+close"),
            ("1.25s+500", step(1250, Status(500)), "1.25s+500"),
            ("2m+503", step(120_000, Status(503)), "2m+503"),
            ("120s+503", step(120_000, Status(503)), "2m+503"),
            ("1.5m+200", step(90_000, Status(200)), "90s+200"),
            ("0.0001m+200", step(6, Status(200)), "6ms+200"),
            ("0.001s+200", step(1, Status(200)), "1ms+200"),
            ("1.000s+200", step(1000, Status(200)), "1s+200"),
            ("10m+599", step(600_000, Status(599)), "10m+599"),
            ("600000ms+100", step(600_000, Status(100)), "10m+100"),
            ("600.000s+100", step(600_000, Status(100)), "10m+100"),
            ("0s+200", step(0, Status(200)), "200"),
            ("007s+200", step(7000, Status(200)), "7s+200"),
            ("3S+Reset", step(3000, Reset), "3s+reset"),
            ("2M+200", step(120_000, Status(200)), "2m+200"),
            ("5MS+200", step(5, Status(200)), "5ms+200"),
            ("  3s + 500  ", step(3000, Status(500)), "3s+500"),
        ];
        for (input, expected, display) in cases {
            let rule = Rule::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(rule.pattern, None, "{input:?}");
            assert_eq!(rule.steps, vec![expected], "{input:?}");
            assert_eq!(expected.to_string(), display, "{input:?}");
            assert_eq!(Rule::parse(display).unwrap(), rule, "{input:?} round trip");
        }
    }

    #[test]
    fn rules_parse_and_display_canonically() {
        let prefix = |p: &str| Some(Pattern::Prefix(p.to_string()));
        let exact = |p: &str| Some(Pattern::Exact(p.to_string()));
        // (input, pattern, number of steps, canonical display)
        let cases = [
            (
                "tool.*=500,500,forward",
                prefix("tool."),
                3,
                "tool.*=500,500,forward",
            ),
            (
                " tool.* = 500 , 500,Forward ",
                prefix("tool."),
                3,
                "tool.*=500,500,forward",
            ),
            ("*=200", Some(Pattern::Any), 1, "*=200"),
            (" * =200", Some(Pattern::Any), 1, "*=200"),
            (
                "tool.execution.failed=timeout",
                exact("tool.execution.failed"),
                1,
                "tool.execution.failed=timeout",
            ),
            (
                "évènement.*=5s+close",
                prefix("évènement."),
                1,
                "évènement.*=5s+close",
            ),
            ("500, 500, forward", None, 3, "500,500,forward"),
            ("12s+200", None, 1, "12s+200"),
        ];
        for (input, pattern, steps, display) in cases {
            let rule = Rule::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(rule.pattern, pattern, "{input:?}");
            assert_eq!(rule.steps.len(), steps, "{input:?}");
            assert_eq!(rule.to_string(), display, "{input:?}");
            assert_eq!(Rule::parse(display).unwrap(), rule, "{input:?} round trip");
        }
    }

    #[test]
    fn attempt_n_gets_step_n_and_the_last_repeats() {
        let policy = policy(&["500,500,forward"], true);
        let cases = [
            (0, Action::Status(500), "500,500,forward #1"),
            (1, Action::Status(500), "500,500,forward #1"),
            (2, Action::Status(500), "500,500,forward #2"),
            (3, Action::Forward, "500,500,forward #3"),
            (4, Action::Forward, "500,500,forward #3"),
            (7, Action::Forward, "500,500,forward #3"),
            (u32::MAX, Action::Forward, "500,500,forward #3"),
        ];
        for (attempt, action, rule) in cases {
            let decision = policy.decide(Some("tool.execution.failed"), attempt);
            assert_eq!(decision.step, Step::now(action), "attempt {attempt}");
            assert_eq!(decision.rule, rule, "attempt {attempt}");
        }
    }

    #[test]
    fn patterns_and_first_match_wins() {
        let policy = policy(
            &[
                "tool.execution.failed=503",
                "tool.*=502",
                "workflow.*=timeout",
                "*=reset",
            ],
            false,
        );
        // (event, action, rule)
        let cases = [
            (
                Some("tool.execution.failed"),
                Action::Status(503),
                "tool.execution.failed=503 #1",
            ),
            (
                Some("tool.execution.completed"),
                Action::Status(502),
                "tool.*=502 #1",
            ),
            (Some("tool."), Action::Status(502), "tool.*=502 #1"),
            (Some("tool"), Action::Reset, "*=reset #1"),
            (Some("tools.x"), Action::Reset, "*=reset #1"),
            (Some("Tool.execution.failed"), Action::Reset, "*=reset #1"),
            (
                Some("workflow.completed"),
                Action::Timeout,
                "workflow.*=timeout #1",
            ),
            (Some(""), Action::Reset, "*=reset #1"),
            (None, Action::Reset, "*=reset #1"),
        ];
        for (event, action, rule) in cases {
            let decision = policy.decide(event, 1);
            assert_eq!(decision.step.action, action, "event {event:?}");
            assert_eq!(decision.rule, rule, "event {event:?}");
        }
    }

    #[test]
    fn which_patterns_match_no_event() {
        let cases = [
            ("500", true),
            ("*=500", true),
            ("tool.*=500", false),
            ("tool.execution.failed=500", false),
        ];
        for (rule, matches_none) in cases {
            let rule = Rule::parse(rule).unwrap();
            assert_eq!(rule.matches(None), matches_none, "{rule}");
            assert!(rule.matches(Some("tool.execution.failed")), "{rule}");
        }
    }

    #[test]
    fn falls_back_to_the_default() {
        // (rules, forwarding, event, action, rule)
        type Case<'a> = (&'a [&'a str], bool, Option<&'a str>, Action, &'a str);
        let cases: [Case; 5] = [
            (
                &[],
                false,
                Some("tool.x"),
                Action::Status(200),
                "default 200",
            ),
            (
                &[],
                true,
                Some("tool.x"),
                Action::Forward,
                "default forward",
            ),
            (
                &["tool.*=500"],
                false,
                Some("workflow.x"),
                Action::Status(200),
                "default 200",
            ),
            (
                &["tool.*=500"],
                true,
                None,
                Action::Forward,
                "default forward",
            ),
            (
                &["tool.*=500"],
                false,
                Some("tool.x"),
                Action::Status(500),
                "tool.*=500 #1",
            ),
        ];
        for (rules, forwarding, event, action, rule) in cases {
            let decision = policy(rules, forwarding).decide(event, 3);
            assert_eq!(decision.step, Step::now(action), "{rules:?} {event:?}");
            assert_eq!(decision.rule, rule, "{rules:?} {event:?}");
        }
        assert_eq!(Policy::default_for(true), policy(&[], true));
        assert!(Policy::default_for(false).rules().is_empty());
        assert!(!Policy::default_for(false).forwarding());
    }

    #[test]
    fn decision_rule_is_printable_ascii() {
        let policy = policy(&["évé\u{1F600}.*=12s+500,forward", r"a\b=close"], true);
        let decision = policy.decide(Some("évé\u{1F600}.x"), 5);
        assert_eq!(
            decision.rule,
            r"\u{00e9}v\u{00e9}\u{1f600}.*=12s+500,forward #2"
        );
        assert_eq!(policy.decide(Some(r"a\b"), 1).rule, r"a\\b=close #1");
        for event in ["évé\u{1F600}.x", r"a\b", "other"] {
            let rule = policy.decide(Some(event), 1).rule;
            assert!(rule.bytes().all(|b| (b' '..=b'~').contains(&b)), "{rule}");
        }
    }

    #[test]
    fn describe_is_one_line() {
        let cases: [(&[&str], bool, &str); 4] = [
            (&[], false, "200"),
            (&[], true, "forward"),
            (
                &["tool.*=500,500,forward"],
                true,
                "tool.*=500,500,forward; otherwise forward",
            ),
            (&["tool.* = 500", "3s+200"], false, "tool.*=500; 3s+200"),
        ];
        for (rules, forwarding, line) in cases {
            assert_eq!(policy(rules, forwarding).describe(), line, "{rules:?}");
        }
    }

    #[test]
    fn errors_name_the_column_and_what_was_expected() {
        // (input, column, expected (a part of it), found)
        let cases = [
            ("", 1, "a rule", ""),
            ("   ", 1, "a rule", ""),
            ("500,,200", 5, "a step", ""),
            ("500, ,200", 6, "a step", ""),
            ("500,", 5, "a step", ""),
            (",500", 1, "a step", ""),
            ("tool.*=", 8, "a step", ""),
            ("99", 1, "a status 100..=599", "99"),
            ("600", 1, "a status 100..=599", "600"),
            ("500,2000", 5, "a status 100..=599", "2000"),
            ("0500", 1, "a status 100..=599", "0500"),
            ("teapot", 1, EXPECTED_ACTION, "teapot"),
            ("500, ok", 6, EXPECTED_ACTION, "ok"),
            ("tool.*=50x", 8, EXPECTED_ACTION, "50x"),
            ("évé=5x0", 5, EXPECTED_ACTION, "5x0"),
            ("3s+teapot", 4, "an action after the delay", "teapot"),
            ("5h+200", 2, "a unit after the number: ms, s or m", "h"),
            ("5+200", 2, "a unit after the number: ms, s or m", ""),
            ("500,5 s+200", 6, "a unit after the number", " s"),
            ("1.5.2s+200", 4, "a unit after the number", ".2s"),
            ("3s+", 4, "an action after the delay", ""),
            ("500, 3s +  ", 10, "an action after the delay", ""),
            ("+200", 1, "a delay before \"+\"", ""),
            ("ms+200", 1, "a delay before \"+\"", "ms"),
            (".5s+200", 1, "a delay before \"+\"", ".5s"),
            ("1.s+200", 3, "digits after the decimal point", "1.s"),
            ("1.5ms+200", 1, "whole milliseconds", "1.5ms"),
            ("0.0005s+200", 1, "whole milliseconds", "0.0005s"),
            ("3s+2s+200", 4, "one delay per step", "2s+200"),
            ("11m+200", 1, "at most 10 minutes", "11m"),
            ("600001ms+200", 1, "at most 10 minutes", "600001ms"),
            ("10.001m+200", 1, "at most 10 minutes", "10.001m"),
            (
                "99999999999999999999s+200",
                1,
                "at most 10 minutes",
                "99999999999999999999s",
            ),
            ("=500", 1, "an event pattern before \"=\"", ""),
            ("  = 500", 3, "an event pattern before \"=\"", ""),
            ("to*l.x=500", 3, "\"*\" only at the end", "to*l.x"),
            ("**=500", 1, "\"*\" only at the end", "**"),
            ("tool x=500", 5, "without spaces", "tool x"),
            ("a,b=500", 2, "without spaces, commas", "a,b"),
            ("\u{1b}[2J=500", 1, "control characters", "\u{1b}[2J"),
            ("a=b=500", 4, "one \"=\"", "="),
            ("é=é=500", 4, "one \"=\"", "="),
        ];
        for (input, column, expected, found) in cases {
            let error = Rule::parse(input).expect_err(input);
            assert_eq!(error.column, column, "{input:?}: {error}");
            assert!(error.expected.contains(expected), "{input:?}: {error}");
            assert_eq!(error.found, found, "{input:?}");
            assert_eq!(error.input, input);
        }
    }

    #[test]
    fn forward_needs_forwarding() {
        let rules = vec!["tool.*=500".to_string(), "500, Forward".to_string()];
        let error = Policy::parse(&rules, false).unwrap_err();
        assert_eq!(error.input, "500, Forward");
        assert_eq!(error.column, 6);
        assert_eq!(error.found, "Forward");
        assert!(
            error.expected.contains("forward needs --forward-to URL"),
            "{error}"
        );
        assert!(Policy::parse(&rules, true).is_ok());
        // The rule alone cannot know; the policy decides.
        assert!(Rule::parse("500,forward").is_ok());
    }

    #[test]
    fn error_display_points_at_the_column() {
        let error = Rule::parse("tool.*=50x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "--respond \"tool.*=50x\": at column 8, expected a status 100..=599 or one of \
             forward, timeout, reset, close, garbage; found \"50x\"\n  tool.*=50x\n         ^"
        );
        let error = Rule::parse("3s+").unwrap_err();
        assert!(
            error.to_string().ends_with("found nothing\n  3s+\n     ^"),
            "{error}"
        );
    }

    #[test]
    fn error_display_escapes_and_keeps_the_caret_aligned() {
        // (input, caret line): the caret sits under the bad token as shown,
        // after escapes widened what comes before it.
        let cases = [
            ("500,\t9", "  500,\\t9\n        ^"),
            ("évé=5x0", "  évé=5x0\n      ^"),
            ("a\u{202e}b=5x0", "  a\\u{202e}b=5x0\n   ^"),
        ];
        for (input, tail) in cases {
            let text = Rule::parse(input).unwrap_err().to_string();
            assert!(text.ends_with(tail), "{input:?}:\n{text}");
            for line in text.split('\n') {
                assert!(!line.chars().any(crate::display::is_dangerous), "{line:?}");
            }
        }
        let text = Rule::parse("\u{1b}[2J=500").unwrap_err().to_string();
        assert!(text.contains("found \"\\x1b[2J\""), "{text}");
        assert!(!text.contains('\u{1b}'));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn check(text: &str) -> Result<(), TestCaseError> {
            match Rule::parse(text) {
                Ok(rule) => {
                    prop_assert!(!rule.steps.is_empty());
                    let shown = rule.to_string();
                    let reparsed = Rule::parse(&shown);
                    prop_assert_eq!(reparsed.as_ref(), Ok(&rule), "{}", shown);
                    let decision = Policy::new(vec![rule], true).decide(None, 2);
                    prop_assert!(decision.rule.bytes().all(|b| (b' '..=b'~').contains(&b)));
                }
                Err(error) => {
                    prop_assert!(error.column >= 1);
                    prop_assert!(error.column <= text.chars().count() + 1);
                    let shown = error.to_string();
                    let lines: Vec<&str> = shown.split('\n').collect();
                    prop_assert_eq!(lines.len(), 3, "{}", shown);
                    for line in lines {
                        prop_assert!(
                            !line.chars().any(crate::display::is_dangerous),
                            "{:?}",
                            line
                        );
                    }
                }
            }
            Ok(())
        }

        /// Mostly well-formed steps, some slightly wrong, so both the
        /// round trip and the errors get exercised.
        fn step_text() -> impl Strategy<Value = String> {
            let delay = prop_oneof![
                4 => Just(String::new()),
                3 => "[0-9]{1,3}(ms|s|m|MS|S|M) ?\\+ ?",
                2 => "[0-9]\\.[0-9]{1,3}(s|m)\\+",
                1 => "[0-9]{0,4}(\\.[0-9]{0,4})?(ms|s|m|h|)\\+",
            ];
            let action = prop_oneof![
                4 => prop::sample::select(vec![
                    "forward", "timeout", "reset", "close", "garbage", "Forward", "RESET",
                ])
                .prop_map(String::from),
                4 => "[1-5][0-9][0-9]",
                1 => prop::sample::select(vec!["ok", "teapot", "", "99", "600", "2000"])
                    .prop_map(String::from),
                1 => "[a-z0-9+*=.]{1,6}",
            ];
            (delay, action).prop_map(|(d, a)| format!("{d}{a}"))
        }

        fn rule_text() -> impl Strategy<Value = String> {
            let pattern = prop_oneof![
                4 => Just(String::new()),
                2 => Just("*=".to_string()),
                4 => "[a-z]{1,6}(\\.[a-z]{1,6}){0,2}(\\.\\*)? ?=",
                1 => "évé[.é]{0,3}\\*?=",
                1 => "[a-zé.*, \t=]{0,10}=",
            ];
            let separator = prop_oneof![
                8 => prop::sample::select(vec![",", ", ", " , "]),
                1 => prop::sample::select(vec![",,", ", ,", ""]),
            ];
            (
                pattern,
                prop::collection::vec((step_text(), separator), 1..5),
            )
                .prop_map(|(pattern, steps)| {
                    let mut text = pattern;
                    for (i, (step, separator)) in steps.iter().enumerate() {
                        if i > 0 {
                            text.push_str(separator);
                        }
                        text.push_str(step);
                    }
                    text
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                check(&text)?;
            }

            #[test]
            fn grammar_shaped_text_round_trips(text in rule_text()) {
                check(&text)?;
            }
        }

        #[test]
        fn grammar_shaped_text_often_parses() {
            // The generator is only worth its cases if many of them parse.
            use proptest::strategy::ValueTree as _;
            use proptest::test_runner::TestRunner;
            let mut runner = TestRunner::deterministic();
            let strategy = rule_text();
            let parsed = (0..1000)
                .filter(|_| {
                    let text = strategy.new_tree(&mut runner).unwrap().current();
                    Rule::parse(&text).is_ok()
                })
                .count();
            assert!(parsed > 100, "only {parsed} of 1000 parsed");
        }
    }
}
