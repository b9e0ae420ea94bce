//! Forwarding to the developer's own receiver (SPEC §4): the method, the
//! body bytes and the headers unchanged (hop-by-hop headers and `Host`
//! aside; `X-Danube-Hooks-Via` added, `server::loops`), the receiver's
//! answer relayed back and recorded. A receiver that refuses is a 502,
//! one that is too slow a 504, each recorded with the error; the listener
//! goes on either way.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode, Uri};

use super::loops::headers_to_send_on;
use crate::delivery::{Delivery, ForwardRecord};
use crate::facts::RESPONSE_BODY_CHARS;
use crate::http::{EndToEnd, Outgoing, SendError, Sender, Trust};

/// The receiver's answer and what to record of it.
pub(crate) struct ForwardOutcome {
    pub(crate) record: ForwardRecord,
    /// What goes back to the sender: the receiver's answer, or 502/504.
    pub(crate) answer: Response<Full<Bytes>>,
}

/// Forwards to one target, through the crate's one HTTP client.
#[derive(Clone)]
pub(crate) struct Forwarder {
    target: Uri,
    timeout: Duration,
    sender: Sender,
}

impl Forwarder {
    pub(crate) fn new(
        target: Uri,
        timeout: Duration,
        max_answer_body: usize,
        trust: &Trust,
    ) -> Self {
        Self {
            target,
            timeout,
            sender: Sender::new(trust, max_answer_body),
        }
    }

    pub(crate) fn target(&self) -> &Uri {
        &self.target
    }

    /// The URL a request for `path` goes to: see [`url_for`].
    pub(crate) fn url_for(&self, path: &str) -> Result<Uri, SendError> {
        url_for(&self.target, path)
    }

    /// Send one delivery and relay the answer. Never fails: failures become
    /// 502/504 answers and a record with the error.
    pub(crate) async fn forward(&self, delivery: &Delivery) -> ForwardOutcome {
        let url = match self.url_for(&delivery.path) {
            Ok(url) => url.to_string(),
            // The listener refuses such targets before this; a failure
            // here is answered like any other that reaches no receiver.
            Err(err) => return failed(self.target.to_string(), &err, 0),
        };
        let request = Outgoing {
            method: delivery.method.clone(),
            url,
            headers: headers_to_send_on(delivery),
            body: delivery.body.clone(),
        };
        let attempt = self.sender.send(&request, self.timeout).await;
        let duration_ms = attempt.duration.as_millis() as u64;
        let url = request.url;
        match attempt.result {
            Ok(answer) => {
                let preview: String = String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(RESPONSE_BODY_CHARS)
                    .collect();
                // The receiver's own connection's headers stay behind too.
                let end_to_end =
                    EndToEnd::of(answer.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                let headers: Vec<(String, String)> = answer
                    .headers
                    .into_iter()
                    .filter(|(name, _)| end_to_end.allows(name))
                    .collect();
                let mut relayed = Response::new(Full::new(answer.body));
                *relayed.status_mut() =
                    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
                for (name, value) in &headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_bytes(value.as_bytes()),
                    ) {
                        relayed.headers_mut().append(name, value);
                    }
                }
                ForwardOutcome {
                    answer: relayed,
                    record: ForwardRecord {
                        url,
                        status: Some(answer.status),
                        headers,
                        error: None,
                        duration_ms,
                        body_preview: Some(preview),
                    },
                }
            }
            Err(err) => failed(url, &err, duration_ms),
        }
    }
}

/// The URL a request for `path` goes to at `target` (a forward's or a
/// mirror's): the target's own path when it has one, else the path the
/// delivery arrived on, which must then be origin-form. Always the
/// target's scheme and host: built from parts.
pub(crate) fn url_for(target: &Uri, path: &str) -> Result<Uri, SendError> {
    match target.path_and_query() {
        Some(own) if own.as_str() != "/" => Ok(target.clone()),
        _ => crate::http::url_at(target, path),
    }
}

/// The answer and record of a forward that got no answer from the receiver.
fn failed(url: String, err: &SendError, duration_ms: u64) -> ForwardOutcome {
    let (status, error) = match err {
        SendError::Timeout { .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("{err} (--forward-timeout)"),
        ),
        SendError::Connect { .. } => (
            StatusCode::BAD_GATEWAY,
            format!("{err} (is your receiver running?)"),
        ),
        _ => (StatusCode::BAD_GATEWAY, err.to_string()),
    };
    ForwardOutcome {
        answer: error_answer(status, &error),
        record: ForwardRecord {
            url,
            status: None,
            headers: Vec::new(),
            error: Some(error),
            duration_ms,
            body_preview: None,
        },
    }
}

fn error_answer(status: StatusCode, error: &str) -> Response<Full<Bytes>> {
    let body =
        serde_json::json!({ "status": status.as_u16(), "error": error, "by": "danube-hooks" });
    let mut answer = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarder(target: &str) -> Forwarder {
        Forwarder::new(
            crate::http::check_url(target).unwrap(),
            Duration::from_secs(1),
            1024,
            &Trust::default(),
        )
    }

    #[test]
    fn the_target_path_wins_over_the_arrival_path() {
        let with_path = forwarder("http://127.0.0.1:3000/hooks");
        assert_eq!(
            with_path.url_for("/x?y=1").unwrap(),
            "http://127.0.0.1:3000/hooks"
        );
        assert_eq!(
            with_path.url_for("@127.0.0.1:47202").unwrap(),
            "http://127.0.0.1:3000/hooks",
            "the arrival path is not used at all"
        );
        let bare = forwarder("http://127.0.0.1:3000");
        assert_eq!(
            bare.url_for("/x?y=1").unwrap(),
            "http://127.0.0.1:3000/x?y=1"
        );
    }

    #[test]
    fn an_arrival_path_never_changes_the_host() {
        let bare = forwarder("http://127.0.0.1:3000");
        for hostile in [
            "@127.0.0.1:47202",
            ":47202/",
            "0/",
            ".evil.example/",
            "evil:1",
            "*",
            "",
        ] {
            let err = bare.url_for(hostile).unwrap_err();
            assert!(
                err.to_string().contains("must start with '/'"),
                "{hostile}: {err}"
            );
        }
        for odd in ["//evil.example/x", "/%40evil:1", "/a/../b", "/x?@evil:1"] {
            let url = bare.url_for(odd).unwrap();
            assert_eq!(url.authority().unwrap(), "127.0.0.1:3000", "{odd}");
            assert_eq!(url.path_and_query().unwrap(), odd);
        }
    }
}
