//! Forwarding to the developer's own receiver (SPEC §4): the method, the
//! body bytes and the headers unchanged (hop-by-hop headers and `Host`
//! aside), the receiver's answer relayed back and recorded. A receiver that
//! refuses is a 502, one that is too slow a 504, each recorded with the
//! error; the listener goes on either way.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode, Uri};

use crate::delivery::{BODY_PREVIEW_CHARS, ForwardRecord};
use crate::sender::{Outgoing, SendError, Sender, is_end_to_end};

/// The receiver's answer and what to record of it.
pub struct ForwardOutcome {
    pub record: ForwardRecord,
    /// What goes back to the sender: the receiver's answer, or 502/504.
    pub answer: Response<Full<Bytes>>,
}

/// Forwards to one target, through the crate's one HTTP client.
#[derive(Clone)]
pub struct Forwarder {
    target: Uri,
    timeout: Duration,
    sender: Sender,
}

impl Forwarder {
    pub fn new(target: Uri, timeout: Duration, max_answer_body: usize) -> Self {
        Self {
            target,
            timeout,
            sender: Sender::new(max_answer_body),
        }
    }

    pub fn target(&self) -> &Uri {
        &self.target
    }

    /// The URL a request for `path` goes to: the target's own path when it
    /// has one, else the path the delivery arrived on.
    pub fn url_for(&self, path: &str) -> String {
        let target_path = self.target.path_and_query().map_or("/", |p| p.as_str());
        let path = if target_path == "/" {
            path
        } else {
            target_path
        };
        let authority = self.target.authority().map_or("", |a| a.as_str());
        format!("http://{authority}{path}")
    }

    /// Send one delivery and relay the answer. Never fails: failures become
    /// 502/504 answers and a record with the error.
    pub async fn forward(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> ForwardOutcome {
        let request = Outgoing {
            method: method.to_string(),
            url: self.url_for(path),
            headers: headers
                .iter()
                .filter(|(name, _)| is_end_to_end(name))
                .cloned()
                .collect(),
            body,
        };
        let attempt = self.sender.send(&request, self.timeout).await;
        let duration_ms = attempt.duration.as_millis() as u64;
        let url = request.url;
        match attempt.result {
            Ok(answer) => {
                let preview: String = String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(BODY_PREVIEW_CHARS)
                    .collect();
                let headers: Vec<(String, String)> = answer
                    .headers
                    .into_iter()
                    .filter(|(name, _)| is_end_to_end(name))
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
            Err(err) => {
                let (status, error) = match &err {
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
        }
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

    #[test]
    fn the_target_path_wins_over_the_arrival_path() {
        let with_path = Forwarder::new(
            crate::sender::check_url("http://127.0.0.1:3000/hooks").unwrap(),
            Duration::from_secs(1),
            1024,
        );
        assert_eq!(with_path.url_for("/x?y=1"), "http://127.0.0.1:3000/hooks");
        let bare = Forwarder::new(
            crate::sender::check_url("http://127.0.0.1:3000").unwrap(),
            Duration::from_secs(1),
            1024,
        );
        assert_eq!(bare.url_for("/x?y=1"), "http://127.0.0.1:3000/x?y=1");
    }
}
