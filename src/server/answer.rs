//! How an answer leaves: a status with the policy's rule and the
//! record's id in its headers and JSON body, the developer's receiver's
//! answer relayed, or something hyper can't send (a connection action);
//! and the few answers given before there is a delivery to record (a
//! head over the limit, a probe, the page for a browser).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::{ConnAction, ConnControl};

/// The header naming the policy step that chose an answer.
const RULE_HEADER: &str = "x-danube-hooks-rule";

/// The header carrying the id of the record an answer belongs to.
const DELIVERY_HEADER: &str = "x-danube-hooks-delivery";

/// Bytes written for the `garbage` action: not HTTP by any reading.
pub(super) const GARBAGE: &[u8] =
    b"\x00\xff\xfe danube-hooks garbage: this is not an HTTP response \x00\r\n\r\n";

/// How an answer leaves.
pub(super) enum Answer {
    Status {
        status: u16,
        close: bool,
    },
    /// The developer's receiver's answer (or 502/504 when it failed).
    Relay(Response<Full<Bytes>>),
    Hold,
    Connection(ConnAction),
    /// The client is gone: nothing to send.
    Nothing,
}

impl Answer {
    pub(super) fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Relay(response) => Some(response.status().as_u16()),
            Self::Hold | Self::Connection(_) | Self::Nothing => None,
        }
    }

    pub(super) async fn send(
        self,
        rule: &str,
        id: u64,
        control: &ConnControl,
        max_hold: Duration,
    ) -> Response<Full<Bytes>> {
        let mut response = match self {
            Self::Status { status, close } if (200..=599).contains(&status) => {
                status_response(status, rule, id, close)
            }
            Self::Status { status, .. } => {
                // hyper will not send a 1xx as the final answer; write it raw.
                let head =
                    format!("HTTP/1.1 {status} Informational\r\n{RULE_HEADER}: {rule}\r\n\r\n");
                return hang_up(control, ConnAction::WriteAndClose(head.into_bytes())).await;
            }
            Self::Relay(response) => response,
            Self::Hold => return hang_up(control, ConnAction::Hold(max_hold)).await,
            Self::Connection(action) => return hang_up(control, action).await,
            Self::Nothing => return hang_up(control, ConnAction::Close).await,
        };
        // Named by `HeaderName`s made at compile time: named by `&str`, each
        // insert parsed the name and copied it into a new allocation.
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(rule) {
            headers.insert(const { HeaderName::from_static(RULE_HEADER) }, value);
        }
        headers.insert(
            const { HeaderName::from_static(DELIVERY_HEADER) },
            HeaderValue::from(id),
        );
        response
    }
}

/// Hand the connection over for an answer hyper can't give; never returns.
pub(super) async fn hang_up(control: &ConnControl, action: ConnAction) -> Response<Full<Bytes>> {
    control.request(action);
    std::future::pending().await
}

pub(super) fn status_response(
    status: u16,
    rule: &str,
    id: u64,
    close: bool,
) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    // 204 and 304 carry no body by definition.
    let body = if matches!(status.as_u16(), 204 | 304) {
        Bytes::new()
    } else {
        // Written by hand rather than through a `serde_json::Value`: this is
        // on every answer's path, and the map cost more than the rest of
        // the answer (docs/performance.md). Only `rule` needs
        // escaping, and only when it holds `"`, `\` or a control character
        // (JSON's list, as serde_json writes it). Built to its exact length:
        // `Bytes` takes a full `Vec` as it is, and a part-full one costs it
        // another allocation.
        const HEAD: &str = "{\"status\":";
        const RULE: &str = ",\"rule\":";
        const DELIVERY: &str = ",\"delivery\":";
        const TAIL: &str = ",\"by\":\"danube-hooks\"}\n";
        let escaped = rule
            .bytes()
            .any(|b| b < 0x20 || b == b'"' || b == b'\\')
            .then(|| serde_json::to_string(rule).expect("a string serializes"));
        let rule_len = escaped.as_ref().map_or(rule.len() + 2, String::len);
        let id_len = id.checked_ilog10().map_or(1, |log| log as usize + 1);
        let status_text = status.as_str();
        let length = HEAD.len()
            + status_text.len()
            + RULE.len()
            + rule_len
            + DELIVERY.len()
            + id_len
            + TAIL.len();
        let mut text = String::with_capacity(length);
        text.push_str(HEAD);
        text.push_str(status_text);
        text.push_str(RULE);
        if let Some(escaped) = &escaped {
            text.push_str(escaped);
        } else {
            text.push('"');
            text.push_str(rule);
            text.push('"');
        }
        text.push_str(DELIVERY);
        push_decimal(&mut text, id);
        text.push_str(TAIL);
        debug_assert_eq!(text.len(), length, "{text}");
        Bytes::from(text)
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST, GET"));
    }
    response
}

/// `n` in decimal, without the formatting machinery (a quarter of the
/// answer's body's cost).
fn push_decimal(out: &mut String, n: u64) {
    let mut buffer = [0; 20];
    let digits = crate::delivery::line::decimal(n, &mut buffer);
    out.extend(digits.iter().map(|&digit| char::from(digit)));
}

/// The answer to a head over the limit. hyper's own check (`max_buf_size`)
/// only fires while a head is still incomplete, so a big head that arrives
/// in one read got through (the reliability suite sent 100 KiB and got
/// 200); this is the check that always applies. Not recorded, like the
/// 431 hyper sends itself: the limit is there to refuse, not to keep.
pub(super) fn head_too_large(limit: usize) -> Response<Full<Bytes>> {
    let body = format!(
        "{{\"status\":431,\"rule\":\"limit: request head over {} KiB\",\"by\":\"danube-hooks\"}}\n",
        limit / 1024
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer to a probe waited for: the proof is its arrival here, not
/// this text, which only tells a person who follows the link.
pub(super) fn reached_page() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(
        b"danube-hooks: this URL reaches the listener.\n",
    )));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(super) fn info_page() -> Response<Full<Bytes>> {
    // Reachable from the internet through the tunnel: says nothing about
    // secrets, paths or where deliveries are forwarded.
    let text = "danube-hooks is listening here.\n\nDanube deliveries (POST, any path) are \
                recorded, verified and shown in the terminal that runs `danube-hooks listen`.\n";
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_body_is_the_bytes_the_format_gave() {
        use http_body_util::BodyExt as _;
        let rules = [
            "default 200".to_string(),
            "tool.*=500,500,forward #2".to_string(),
            String::new(),
            "quote \" backslash \\ tab \t newline \n nul \0 esc \u{1b} del \u{7f}".to_string(),
            "caf\u{e9} \u{2028} \u{10ffff} \\u{e9}".to_string(),
            (0u8..0x80).map(char::from).collect(),
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for rule in &rules {
            for status in [200, 201, 299, 404, 503, 599, 999] {
                for id in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
                    let old = format!(
                        "{{\"status\":{status},\"rule\":{},\"delivery\":{id},\"by\":\"danube-hooks\"}}\n",
                        serde_json::to_string(rule).unwrap()
                    );
                    let response = status_response(status, rule, id, false);
                    let body = runtime
                        .block_on(response.into_body().collect())
                        .unwrap()
                        .to_bytes();
                    assert_eq!(body, old.as_bytes(), "{rule:?} {status} {id}");
                }
            }
        }
    }
}
