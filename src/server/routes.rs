//! Where a delivery is forwarded (SPEC §4): `--forward-to [PATTERN=]URL`,
//! repeatable, with the patterns of `--respond`. The first rule whose
//! pattern matches the delivery's event decides; a rule without a pattern
//! matches every event (a default); a delivery that no rule matches is not
//! forwarded, and is answered as without `--forward-to`.
//!
//! A URL holds `=` in its query and `:` after its scheme, so the text
//! before the first `=` is a pattern only when it holds neither `/` nor
//! `:`: every URL has its `scheme:` before any `=`, and no event type
//! holds either, so `http://x/?a=b` is always a URL alone.

use std::time::Duration;

use super::forward::Forwarder;
use crate::display::escape_line;
use crate::http::{self, Trust};
use crate::policy::Pattern;

/// One `--forward-to` value, read but not yet checked as a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteText<'a> {
    /// `None`: every event, as a rule without a pattern in `--respond`.
    pub(crate) pattern: Option<Pattern>,
    pub(crate) url: &'a str,
}

/// Split `[PATTERN=]URL`; the error tells the flag, where, and what is allowed.
pub(crate) fn split(text: &str) -> Result<RouteText<'_>, String> {
    let Some((before, url)) = text
        .split_once('=')
        .filter(|(before, _)| !before.contains(['/', ':']))
    else {
        return Ok(RouteText {
            pattern: None,
            url: text.trim(),
        });
    };
    // The pattern starts the value, so its columns are the value's.
    let pattern = Pattern::parse(before).map_err(|mut err| {
        err.input = text.to_string();
        err.for_flag("--forward-to")
    })?;
    let url = url.trim();
    if url.is_empty() {
        return Err(format!(
            "--forward-to {:?}: expected a URL after \"=\" (http://… or https://…), as in \
             tool.*=http://localhost:3000/hooks; found nothing",
            escape_line(text)
        ));
    }
    Ok(RouteText {
        pattern: Some(pattern),
        url,
    })
}

/// One rule: the events it takes, and the receiver they go to.
#[derive(Clone)]
struct Route {
    pattern: Option<Pattern>,
    forwarder: Forwarder,
}

/// The `--forward-to` rules in the order given. Never empty.
#[derive(Clone)]
pub(crate) struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Every `--forward-to` value, each URL checked as any target is
    /// (`http://` or `https://`, a host, no `user@`); `None` without one.
    pub(crate) fn parse(
        texts: &[String],
        timeout: Duration,
        max_answer_body: usize,
        trust: &Trust,
    ) -> Result<Option<Routes>, String> {
        let mut routes = Vec::with_capacity(texts.len());
        for text in texts {
            let RouteText { pattern, url } = split(text)?;
            let target = http::check_url(url).map_err(|err| {
                format!(
                    "--forward-to {:?}: {err}; a rule is [PATTERN=]URL, as in \
                     tool.*=http://localhost:3000/hooks",
                    escape_line(text)
                )
            })?;
            routes.push(Route {
                pattern,
                forwarder: Forwarder::new(target, timeout, max_answer_body, trust),
            });
        }
        Ok((!routes.is_empty()).then_some(Routes { routes }))
    }

    /// The receiver of a delivery with `event` (`None`: a body without
    /// one), by the first rule that matches; `None` when none does.
    pub(crate) fn choose(&self, event: Option<&str>) -> Option<&Forwarder> {
        self.routes
            .iter()
            .find(|route| route.pattern.as_ref().is_none_or(|p| p.matches(event)))
            .map(|route| &route.forwarder)
    }

    /// Every rule's target, in order.
    pub(crate) fn targets(&self) -> impl Iterator<Item = &hyper::Uri> {
        self.routes.iter().map(|route| route.forwarder.target())
    }

    /// One line for the banner and the dashboard's header: the target
    /// alone for one rule without a pattern, else each rule as
    /// `PATTERN=URL` (`*` for a default), in order.
    pub(crate) fn describe(&self) -> String {
        if let [only] = self.routes.as_slice()
            && only.pattern.is_none()
        {
            return only.forwarder.target().to_string();
        }
        self.routes
            .iter()
            .map(|route| {
                let target = route.forwarder.target();
                match &route.pattern {
                    Some(pattern) => format!("{pattern}={target}"),
                    None => format!("*={target}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    #[test]
    fn a_plain_url_is_never_read_as_a_pattern() {
        for url in [
            "http://x/?a=b",
            "http://localhost:3000/hooks?token=abc=&x=1",
            "https://x:8443/a=b",
            "http://x=y/",
            "localhost:3000/?a=b",
            "http://[::1]:3000/?q==",
            "http://x",
        ] {
            assert_eq!(split(url), Ok(RouteText { pattern: None, url }), "{url}");
        }
    }

    #[test]
    fn a_pattern_is_what_comes_before_the_first_equals_without_slash_or_colon() {
        for (text, want, url) in [
            ("tool.*=http://x/?a=b", "tool.*", "http://x/?a=b"),
            ("workflow.failed=http://x/", "workflow.failed", "http://x/"),
            ("*=http://x", "*", "http://x"),
            (" tool.* = http://x ", "tool.*", "http://x"),
        ] {
            let split = split(text).unwrap();
            assert_eq!(split.pattern, Some(pattern(want)), "{text}");
            assert_eq!(split.url, url, "{text}");
        }
    }

    #[test]
    fn a_bad_pattern_or_a_missing_url_names_the_part_and_what_is_allowed() {
        for (text, wanted) in [
            (
                "to*ol=http://x",
                "--forward-to \"to*ol=http://x\": at column 3, expected \"*\" only at the end",
            ),
            (
                "=http://x",
                "--forward-to \"=http://x\": at column 1, expected an event pattern before \"=\"",
            ),
            (
                "a b=http://x",
                "--forward-to \"a b=http://x\": at column 2, expected an event pattern without spaces",
            ),
            (
                "tool.*=",
                "expected a URL after \"=\" (http://… or https://…)",
            ),
        ] {
            let err = split(text).unwrap_err();
            assert!(
                err.starts_with(wanted) || err.contains(wanted),
                "{text}: {err}"
            );
        }
        let caret = split("to*ol=http://x").unwrap_err();
        assert!(caret.ends_with("\n  to*ol=http://x\n    ^"), "{caret}");
    }

    fn routes(texts: &[&str]) -> Result<Option<Routes>, String> {
        let texts: Vec<String> = texts.iter().map(ToString::to_string).collect();
        Routes::parse(&texts, Duration::from_secs(1), 1024, &Trust::default())
    }

    #[test]
    fn a_bad_url_names_the_rule_and_the_form() {
        for text in [
            "tool.*=ftp://x",
            "tool.*http://x",
            "x=1",
            "http://u@evil:1/",
        ] {
            let err = routes(&[text]).err().unwrap();
            assert!(err.starts_with("--forward-to \""), "{text}: {err}");
            assert!(err.contains("is not a usable URL"), "{text}: {err}");
            assert!(err.contains("[PATTERN=]URL"), "{text}: {err}");
        }
        assert!(routes(&[]).unwrap().is_none());
    }

    #[test]
    fn the_first_rule_that_matches_the_event_chooses_the_receiver() {
        let routes = routes(&[
            "tool.execution.failed=http://failed",
            "tool.*=http://tools",
            "http://default",
        ])
        .unwrap()
        .unwrap();
        for (event, want) in [
            (Some("tool.execution.failed"), "failed"),
            (Some("tool.execution.completed"), "tools"),
            (Some("workflow.completed"), "default"),
            (None, "default"),
        ] {
            let chosen = routes.choose(event).unwrap();
            assert_eq!(chosen.target().host(), Some(want), "{event:?}");
        }
        assert_eq!(
            routes.describe(),
            "tool.execution.failed=http://failed/ · tool.*=http://tools/ · *=http://default/"
        );
    }

    #[test]
    fn without_a_default_an_unmatched_event_goes_nowhere() {
        let routes = routes(&["tool.*=http://tools", "workflow.failed=http://wf"])
            .unwrap()
            .unwrap();
        assert!(routes.choose(Some("workflow.completed")).is_none());
        assert!(routes.choose(None).is_none(), "a body without an event");
        assert!(routes.choose(Some("tool.x")).is_some());
        let star = self::routes(&["*=http://all"]).unwrap().unwrap();
        assert!(
            star.choose(None).is_some(),
            "* matches a body without an event"
        );
    }

    #[test]
    fn one_rule_without_a_pattern_is_described_as_its_url() {
        let one = routes(&["http://localhost:3000/hooks"]).unwrap().unwrap();
        assert_eq!(one.describe(), "http://localhost:3000/hooks");
    }
}
