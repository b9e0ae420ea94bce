//! Why a call to Danube's API failed ([`ApiError`]), each told in one line
//! that says what to do: a status turned into the error it means, both of
//! Danube's error shapes (`{"detail"}` and `{"error": {code, message,
//! details}}`) read into one message, and the credential hidden wherever
//! the server's text echoes it. Every text that came from the network is
//! escaped.

use bytes::Bytes;
use hyper::StatusCode;

use crate::danube::credentials::Credential;
use crate::danube::scrub::{redact, scrub};
use crate::display::{escape_line, truncate};

/// Text from Danube in a message is cut to this many characters.
const MAX_MESSAGE: usize = 300;

/// Why a call to Danube's API failed, each told in one line that says what
/// to do. Every text that came from the network is escaped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("--api-url {url} cannot be used: {why}")]
    BadBaseUrl { url: String, why: String },
    #[error(
        "no Danube credentials: run `danube-hooks login` (or `login --with-key`), or set \
         DANUBE_API_KEY or DANUBE_API_TOKEN"
    )]
    NoCredentials,
    #[error(
        "the credential {shown} has a character an HTTP header cannot carry (a line break or \
         control character?); set it again without it"
    )]
    BadCredential { shown: String },
    #[error(
        "Danube refused the credentials {shown} (401: {message}); log in again with \
         `danube-hooks login`"
    )]
    Unauthorized { shown: String, message: String },
    #[error(
        "Danube does not allow this for {shown} (403: {message}); check the key's organization \
         (DANUBE_ORG_ID) and permissions"
    )]
    Forbidden { shown: String, message: String },
    #[error("Danube knows no {what} (404: {message}); check the id (`danube-hooks webhooks list`)")]
    NotFound { what: String, message: String },
    #[error("Danube is rate-limiting this key (429: {message}); wait {wait} and try again")]
    RateLimited { wait: String, message: String },
    #[error("a plan limit of Danube's was reached (429: {message}); upgrade at {upgrade_url}")]
    PlanLimit {
        message: String,
        upgrade_url: String,
    },
    #[error("Danube refused the request ({status}: {message}); fix what it names and try again")]
    BadRequest { status: u16, message: String },
    #[error("Danube failed ({status}: {message}); try again in a while")]
    Server { status: u16, message: String },
    #[error("Danube answered {status} unexpectedly: {message}")]
    Unexpected { status: u16, message: String },
    #[error("cannot reach Danube at {url}: {cause} (tried {})", times(*.tries))]
    Connect {
        url: String,
        cause: String,
        tries: usize,
    },
    /// [`ApiError::Connect`] for an API that is a local Danube
    /// ([`super::is_local_danube`]): most likely `emulate` is not running.
    #[error(
        "cannot reach the local Danube (emulate?) at {origin}: {cause} (tried {}); start it with \
         `{start}`",
        times(*.tries)
    )]
    LocalConnect {
        origin: String,
        cause: String,
        tries: usize,
        /// The command that serves this origin.
        start: String,
    },
    #[error("Danube at {url} did not answer within {within} (tried {})", times(*.tries))]
    Timeout {
        url: String,
        within: String,
        tries: usize,
    },
    #[error(
        "Danube at {url} did not answer the create within {within}; it may have made the webhook \
         anyway: look with `danube-hooks webhooks list` before creating again"
    )]
    CreateTimeout { url: String, within: String },
    #[error(
        "the emulator at {url} did not answer within {within}; it may have made the deliveries \
         anyway: look with `danube-hooks deliveries WEBHOOK_ID --api-url …` before sending again"
    )]
    EmitTimeout { url: String, within: String },
    #[error("the request to Danube at {url} failed: {cause}")]
    Transport { url: String, cause: String },
    #[error("Danube's answer to {what} is not what its API documents: {cause}")]
    Decode { what: String, cause: String },
}

/// `once`, `4 times`: how often a request was tried.
fn times(tries: usize) -> String {
    if tries == 1 {
        "once".to_owned()
    } else {
        format!("{tries} times")
    }
}

/// A raw answer: status, `Retry-After`, body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) retry_after: Option<String>,
    pub(super) body: Bytes,
}

/// A status turned into the answer or the error it means: `credential`
/// is the one sent (named in a 401 or 403), `echo` the one to hide
/// wherever the answer's text holds it. `path` names the id of a 404.
pub(super) fn classify(
    answer: Answer,
    credential: Option<&Credential>,
    echo: Option<&Credential>,
    path: &str,
) -> Result<Answer, ApiError> {
    let status = answer.status.as_u16();
    if answer.status.is_success() || status == 428 || status == 410 {
        return Ok(answer);
    }
    let shown = credential.map_or_else(|| "(none)".to_owned(), Credential::shown);
    let parsed = ErrorBody::parse(&answer.body, echo);
    let message = parsed.message;
    Err(match status {
        401 => ApiError::Unauthorized { shown, message },
        403 => ApiError::Forbidden { shown, message },
        404 => ApiError::NotFound {
            what: what_of(path),
            message,
        },
        429 => match parsed.upgrade_url {
            Some(upgrade_url) => ApiError::PlanLimit {
                message,
                upgrade_url,
            },
            None => ApiError::RateLimited {
                wait: wait_text(answer.retry_after.as_deref()),
                message,
            },
        },
        400 | 409 | 422 => ApiError::BadRequest { status, message },
        500..=599 => ApiError::Server { status, message },
        _ => ApiError::Unexpected { status, message },
    })
}

/// `webhook wh_1` for `/v1/webhooks/wh_1/…`, else the path.
fn what_of(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("webhooks"), Some(id)) => {
            let id = id.split('?').next().unwrap_or(id);
            format!("webhook {}", escape_line(id))
        }
        _ => format!("resource at {}", escape_line(path)),
    }
}

/// `Retry-After` seconds as a wait; an HTTP date or nothing is "a minute".
fn wait_text(retry_after: Option<&str>) -> String {
    match retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(secs) => format!("{secs} s"),
        None => "a minute".to_owned(),
    }
}

/// Both of Danube's error shapes, read into one message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ErrorBody {
    pub(super) message: String,
    upgrade_url: Option<String>,
}

impl ErrorBody {
    /// Read `body`; wherever it holds `echo`'s key or token, that is
    /// hidden ([`hide`]) before anything else is done with it.
    pub(super) fn parse(body: &[u8], echo: Option<&Credential>) -> Self {
        let mut value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        if let (Some(value), Some(echo)) = (&mut value, echo) {
            // Each string on its own first: a value written out as JSON
            // below (`details`) would escape a key's `"` or `\`.
            hide_in_json(value, echo.secret(), &redact(echo.secret()));
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (message, upgrade_url) = match &value {
            Some(v) if v.get("detail").is_some() => (text(&v["detail"]), find_upgrade(v)),
            Some(v) if v.get("error").is_some_and(serde_json::Value::is_object) => {
                let error = &v["error"];
                let mut message = error.get("message").map(text).unwrap_or_default();
                if let Some(code) = error.get("code").map(text) {
                    message = if message.is_empty() {
                        code
                    } else {
                        format!("{code}: {message}")
                    };
                }
                if let Some(details) = error.get("details").filter(|d| !d.is_null()) {
                    message = format!("{message} ({})", text(details));
                }
                (message, find_upgrade(v))
            }
            _ => (String::from_utf8_lossy(body).trim().to_owned(), None),
        };
        // Cut, then hidden: a key the cut leaves half of is hidden too,
        // and the search runs over what is shown, not over a 16 MB answer.
        let shown =
            |text: &str| escape_line(&hide(&truncate(text, MAX_MESSAGE), echo)).into_owned();
        let message = if message.is_empty() {
            "no explanation given".to_owned()
        } else {
            shown(&message)
        };
        Self {
            message,
            upgrade_url: upgrade_url.map(|u| shown(&u)),
        }
    }
}

/// `text` from a server with `echo`'s key or token, and every run of it
/// long enough to matter, plain or percent-encoded, shown as its
/// fingerprint ([`redact`]). Every text from the server that goes into an
/// [`ApiError`] goes through here.
pub(super) fn hide(text: &str, echo: Option<&Credential>) -> String {
    match echo {
        Some(echo) => scrub(text, echo.secret(), &redact(echo.secret())).into_owned(),
        None => text.to_owned(),
    }
}

/// Every string in `value`, names included, with `secret` (and each run
/// of it long enough to matter, plain or percent-encoded) shown as
/// `shown`: the scrub of [`hide`], over a whole JSON answer.
pub(super) fn hide_in_json(value: &mut serde_json::Value, secret: &str, shown: &str) {
    use serde_json::Value;
    let hidden = |text: &str| scrub(text, secret, shown).into_owned();
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(changed) = scrub(text, secret, shown) {
                *text = changed;
            }
        }
        Value::Array(items) => {
            for item in items {
                hide_in_json(item, secret, shown);
            }
        }
        Value::Object(fields) => {
            if fields
                .keys()
                .any(|name| matches!(scrub(name, secret, shown), std::borrow::Cow::Owned(_)))
            {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(name, v)| (hidden(&name), v))
                    .collect();
            }
            for field in fields.values_mut() {
                hide_in_json(field, secret, shown);
            }
        }
        _ => {}
    }
}

/// `upgrade_url` at the top, or inside `error` or its `details`.
fn find_upgrade(value: &serde_json::Value) -> Option<String> {
    [
        &value["upgrade_url"],
        &value["error"]["upgrade_url"],
        &value["error"]["details"]["upgrade_url"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(str::to_owned),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn key() -> Credential {
        Credential::ApiKey {
            key: "dk_abcdefghijklmnopqrstuvwxyz".into(),
            org_id: None,
        }
    }

    fn message(status: u16, retry_after: Option<&str>, body: &str, path: &str) -> String {
        classify(
            answer(status, retry_after, body),
            Some(&key()),
            Some(&key()),
            path,
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn a_404_names_the_webhook_of_its_path() {
        assert_eq!(
            what_of("/v1/webhooks/wh_1/deliveries?limit=5"),
            "webhook wh_1"
        );
    }

    #[test]
    fn both_error_shapes_read_into_one_line() {
        let table = [
            (r#"{"detail": "Invalid API key"}"#, "Invalid API key"),
            (
                r#"{"error": {"code": "unauthorized", "message": "Invalid API key", "details": null}}"#,
                "unauthorized: Invalid API key",
            ),
            (
                r#"{"error": {"code": "validation_error", "message": "bad url", "details": {"field": "url"}}}"#,
                r#"validation_error: bad url ({"field":"url"})"#,
            ),
            ("<html>gateway</html>", "<html>gateway</html>"),
            ("", "no explanation given"),
        ];
        for (body, want) in table {
            assert_eq!(
                ErrorBody::parse(body.as_bytes(), Some(&key())).message,
                want,
                "{body}"
            );
        }
        // Text from the network reaches the terminal escaped, on one line.
        let hostile = ErrorBody::parse(b"{\"detail\": \"a\\u001b[2Jb\\nc\"}", None).message;
        assert!(
            !hostile.contains('\u{1b}') && !hostile.contains('\n'),
            "{hostile}"
        );
    }

    /// Whatever the server wraps the key in, every error (and so the
    /// dashboard's poll, which shows the error's text) shows its
    /// fingerprint: the key as sent, or as a bearer token.
    #[test]
    fn a_key_the_server_echoes_is_shown_as_its_fingerprint() {
        let secret = "dk_abcdefghijklmnopqrstuvwxyz";
        let token = Credential::Bearer {
            token: secret.into(),
            org_id: None,
        };
        for (status, body) in [
            (401, format!(r#"{{"detail": "Invalid API key: {secret}"}}"#)),
            (
                403,
                format!(r#"{{"error": {{"code": "{secret}", "message": "", "details": null}}}}"#),
            ),
            (
                422,
                format!(
                    r#"{{"error": {{"code": "x", "message": "m", "details": {{"{secret}": ["{secret}"]}}}}}}"#
                ),
            ),
            (
                400,
                format!(
                    r#"{{"error": {{"code": "{}", "message": "{}"}}}}"#,
                    &secret[..14],
                    &secret[14..]
                ),
            ),
            (
                404,
                format!(r#"{{"detail": "/keys/{}"}}"#, secret.replace('_', "%5F")),
            ),
            (500, format!("plain {secret} text")),
            (
                429,
                format!(r#"{{"detail": "limit", "upgrade_url": "https://x.example/?k={secret}"}}"#),
            ),
            (
                502,
                format!(r#"{{"detail": "{}{secret}"}}"#, "x".repeat(290)),
            ),
        ] {
            for credential in [key(), token.clone()] {
                let err = classify(
                    answer(status, None, &body),
                    Some(&credential),
                    Some(&credential),
                    "/v1/webhooks",
                )
                .unwrap_err()
                .to_string();
                for run in secret.as_bytes().windows(8) {
                    let run = std::str::from_utf8(run).unwrap();
                    assert!(!err.contains(run), "{status}: {run} shows in {err}");
                }
                assert!(err.contains("dk_abc…"), "{status}: {err}");
            }
        }
        // A device-flow call sends no credential, yet the one held is hidden.
        let err = classify(
            answer(401, None, &format!(r#"{{"detail": "{secret}"}}"#)),
            None,
            Some(&key()),
            "/",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains(secret) && err.contains("(none)"), "{err}");
    }

    #[test]
    fn each_status_says_what_to_do() {
        let m = message(
            401,
            None,
            r#"{"detail": "Invalid API key"}"#,
            "/v1/webhooks",
        );
        assert!(m.contains("log in again with `danube-hooks login`"), "{m}");
        assert!(m.contains("dk_abc…") && !m.contains("dk_abcdefghij"), "{m}");

        let m = message(
            404,
            None,
            r#"{"detail": "Not found"}"#,
            "/v1/webhooks/wh_42/deliveries?limit=5",
        );
        assert!(m.contains("no webhook wh_42 "), "{m}");

        let m = message(
            429,
            Some("17"),
            r#"{"detail": "Too many requests"}"#,
            "/v1/webhooks",
        );
        assert!(m.contains("wait 17 s"), "{m}");

        let m = message(
            429,
            Some("60"),
            r#"{"error": {"code": "plan_limit", "message": "5 webhooks max", "details": {"upgrade_url": "https://danubeai.com/pricing"}}}"#,
            "/v1/webhooks",
        );
        assert!(
            m.contains("plan limit") && m.contains("https://danubeai.com/pricing"),
            "{m}"
        );
        assert!(!m.contains("wait"), "{m}");

        let m = message(500, None, r#"{"detail": "Internal error"}"#, "/v1/webhooks");
        assert!(
            m.contains("Danube failed (500: Internal error); try again"),
            "{m}"
        );

        let m = message(
            422,
            None,
            r#"{"detail": "url must start with https://"}"#,
            "/v1/webhooks",
        );
        assert!(m.contains("422: url must start with https://"), "{m}");

        for status in [200, 201, 204, 410, 428] {
            assert!(
                classify(answer(status, None, ""), None, None, "/").is_ok(),
                "{status}"
            );
        }
    }
}
