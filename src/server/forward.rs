//! Forwarding to the developer's own receiver (SPEC §4): the method, the
//! body bytes and the headers unchanged (hop-by-hop headers and `Host`
//! aside), the receiver's answer relayed back and recorded. A receiver that
//! refuses is a 502, one that is too slow a 504, each recorded with the
//! error; the listener goes on either way.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::delivery::{self, BODY_PREVIEW_CHARS, ForwardRecord};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus `Host` and `Content-Length`, which the client sets for the target.
const NOT_FORWARDED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Whether a header is passed on, in either direction.
pub fn is_forwarded(name: &str) -> bool {
    !NOT_FORWARDED.iter().any(|h| name.eq_ignore_ascii_case(h))
        && !name.eq_ignore_ascii_case("content-length")
}

/// The receiver's answer and what to record of it.
pub struct ForwardOutcome {
    pub record: ForwardRecord,
    /// What goes back to the sender: the receiver's answer, or 502/504.
    pub answer: Response<Full<Bytes>>,
}

/// A client for one forward target.
#[derive(Clone)]
pub struct Forwarder {
    target: Uri,
    timeout: Duration,
    max_answer_body: usize,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A `--forward-to` that can't be used, with what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardTargetError {
    #[error("--forward-to {0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error(
        "--forward-to {0:?}: only http:// targets are supported (your receiver runs on this machine, e.g. http://localhost:3000/webhooks/danube)"
    )]
    NotHttp(String),
}

/// Parse and check a forward target.
pub fn parse_target(text: &str) -> Result<Uri, ForwardTargetError> {
    let uri: Uri = text.parse().map_err(|err: hyper::http::uri::InvalidUri| {
        ForwardTargetError::NotAUrl(text.into(), err.to_string())
    })?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("http") => Err(ForwardTargetError::NotAUrl(
            text.into(),
            "it has no host".into(),
        )),
        _ => Err(ForwardTargetError::NotHttp(text.into())),
    }
}

impl Forwarder {
    pub fn new(target: Uri, timeout: Duration, max_answer_body: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            target,
            timeout,
            max_answer_body,
            client,
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
        let url = self.url_for(path);
        let started = Instant::now();
        let result =
            tokio::time::timeout(self.timeout, self.exchange(method, &url, headers, body)).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let failed = |status: StatusCode, error: String| ForwardOutcome {
            answer: error_answer(status, &error),
            record: ForwardRecord {
                url: url.clone(),
                status: None,
                headers: Vec::new(),
                error: Some(error),
                duration_ms,
                body_preview: None,
            },
        };
        match result {
            Err(_) => failed(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "no answer from {url} within {} ms (--forward-timeout)",
                    self.timeout.as_millis()
                ),
            ),
            Ok(Err(error)) => failed(StatusCode::BAD_GATEWAY, error),
            Ok(Ok((status, answer_headers, body))) => {
                let preview: String = String::from_utf8_lossy(&body)
                    .chars()
                    .take(BODY_PREVIEW_CHARS)
                    .collect();
                let mut answer = Response::new(Full::new(body));
                *answer.status_mut() = status;
                for (name, value) in &answer_headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_bytes(value.as_bytes()),
                    ) {
                        answer.headers_mut().append(name, value);
                    }
                }
                ForwardOutcome {
                    answer,
                    record: ForwardRecord {
                        url,
                        status: Some(status.as_u16()),
                        headers: answer_headers,
                        error: None,
                        duration_ms,
                        body_preview: Some(preview),
                    },
                }
            }
        }
    }

    async fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<(String, String)>, Bytes), String> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers.iter().filter(|(name, _)| is_forwarded(name)) {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the forwarded request: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| describe_client_error(url, &err))?;
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| is_forwarded(name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    delivery::header_value_text(value.as_bytes()),
                )
            })
            .collect();
        let body = Limited::new(body, self.max_answer_body)
            .collect()
            .await
            .map_err(|err| format!("reading the answer of {url} failed: {err}"))?
            .to_bytes();
        Ok((parts.status, headers, body))
    }
}

fn describe_client_error(url: &str, err: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut cause = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if err.is_connect() {
        format!("cannot connect to {url}: {cause} (is your receiver running?)")
    } else {
        format!("{url} failed: {cause}")
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
    fn targets_must_be_http_with_a_host() {
        assert!(parse_target("http://localhost:3000/webhooks/danube").is_ok());
        assert!(matches!(
            parse_target("https://example.com"),
            Err(ForwardTargetError::NotHttp(_))
        ));
        assert!(matches!(
            parse_target("localhost:3000"),
            Err(ForwardTargetError::NotHttp(_))
        ));
        assert!(parse_target("http://").is_err());
        assert!(matches!(
            parse_target("not a url"),
            Err(ForwardTargetError::NotAUrl(..))
        ));
    }

    #[test]
    fn the_target_path_wins_over_the_arrival_path() {
        let with_path = Forwarder::new(
            parse_target("http://127.0.0.1:3000/hooks").unwrap(),
            Duration::from_secs(1),
            1024,
        );
        assert_eq!(with_path.url_for("/x?y=1"), "http://127.0.0.1:3000/hooks");
        let bare = Forwarder::new(
            parse_target("http://127.0.0.1:3000").unwrap(),
            Duration::from_secs(1),
            1024,
        );
        assert_eq!(bare.url_for("/x?y=1"), "http://127.0.0.1:3000/x?y=1");
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        for name in [
            "Connection",
            "host",
            "Transfer-Encoding",
            "keep-alive",
            "content-length",
        ] {
            assert!(!is_forwarded(name), "{name}");
        }
        for name in ["x-danube-signature", "content-type", "user-agent"] {
            assert!(is_forwarded(name), "{name}");
        }
    }
}
