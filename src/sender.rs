//! What Danube does: sign, post, retry. `trigger`, `replay`, `check`, the
//! dashboard's replays and the listener's forwarding all send through
//! [`Sender`], whose client (http and https) is built by [`crate::http`].

use std::time::{Duration, Instant};

use crate::delivery::{self, ReplayMode};
use crate::http::{self, Trust};
use crate::signature::{self, Secret};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

/// The largest answer body read back; the rest is cut off.
pub const MAX_ANSWER_BODY: usize = 1024 * 1024;

/// A request to send, exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub method: String,
    pub url: String,
    /// Sent in this order, each value's exact bytes; `Host` and
    /// `Content-Length` are set by the client.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    /// A Danube delivery: `POST`, JSON, signed with `secret` at `t`.
    pub fn danube(url: &str, secret: Option<&Secret>, t: i64, body: Vec<u8>) -> Self {
        let mut headers = vec![
            ("Content-Type".to_string(), b"application/json".to_vec()),
            (
                "User-Agent".to_string(),
                concat!("danube-hooks/", env!("CARGO_PKG_VERSION")).into(),
            ),
        ];
        if let Some(secret) = secret {
            headers.push((
                signature::HEADER_NAME.to_string(),
                signature::sign(secret, t, &body).into_bytes(),
            ));
        }
        Self {
            method: "POST".into(),
            url: url.to_string(),
            headers,
            body,
        }
    }

    /// Replace (or add) the signature header, signed anew at `t`.
    pub fn resign(&mut self, secret: &Secret, t: i64) {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(signature::HEADER_NAME));
        self.headers.push((
            signature::HEADER_NAME.to_string(),
            signature::sign(secret, t, &self.body).into_bytes(),
        ));
    }
}

/// Headers that describe one connection, not the message (RFC 9110
/// §7.6.1), plus `Host` and `Content-Length`, which a client sets for its
/// own target and body.
const NOT_END_TO_END: [&str; 11] = [
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
    "content-length",
];

/// Whether a header travels on when a message is forwarded or resent, as
/// far as its name alone tells: see [`EndToEnd`] for the headers a message
/// names as its own connection's.
pub fn is_end_to_end(name: &str) -> bool {
    !NOT_END_TO_END.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The headers of one message that travel on: not hop-by-hop by name, and
/// not named in its `Connection` header (RFC 9110 §7.6.1: `Connection:
/// keep-alive, X-Secret-Thing` makes `X-Secret-Thing` this hop's only).
pub struct EndToEnd {
    /// The options of every `Connection` header, lowercase.
    connection_options: Vec<String>,
}

impl EndToEnd {
    pub fn of<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let connection_options = headers
            .into_iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, value)| value.split(','))
            .map(|option| option.trim().to_ascii_lowercase())
            .filter(|option| !option.is_empty())
            .collect();
        Self { connection_options }
    }

    pub fn allows(&self, name: &str) -> bool {
        is_end_to_end(name)
            && !self
                .connection_options
                .iter()
                .any(|option| option.eq_ignore_ascii_case(name))
    }
}

/// The headers of `delivery` that a forward, a replay or an export sends,
/// in order, each value's exact bytes as received.
pub fn headers_to_send(delivery: &delivery::Delivery) -> Vec<(String, Vec<u8>)> {
    let end_to_end = EndToEnd::of(
        delivery
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    delivery
        .header_bytes()
        .filter(|(name, _)| end_to_end.allows(name))
        .map(|(name, value)| (name.to_string(), value.into_owned()))
        .collect()
}

/// A header map as `[name, value]` pairs, repeats kept, values as
/// [`delivery::record_headers`] keeps them as text.
pub fn header_pairs(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    delivery::record_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )
    .0
}

/// The request that resends `delivery` to `url`: its method, end-to-end
/// headers and exact body; re-signed at `now` with `secret` unless as-is.
pub fn replay_request(
    delivery: &delivery::Delivery,
    url: &str,
    mode: ReplayMode,
    secret: Option<&Secret>,
    now: i64,
) -> Result<Outgoing, String> {
    let mut request = Outgoing {
        method: delivery.method.clone(),
        url: url.to_string(),
        headers: headers_to_send(delivery),
        body: delivery.body.clone(),
    };
    if mode == ReplayMode::Resigned {
        let secret = secret.ok_or(
            "a re-signed replay needs the signing secret: pass --secret whsec_… or set \
             DANUBE_WEBHOOK_SECRET (or replay --as-is)",
        )?;
        request.resign(secret, now);
    }
    Ok(request)
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why nothing (usable) came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{0:?} is not a usable URL: {1}")]
    BadUrl(String, String),
    #[error("cannot connect to {url}: {cause}")]
    Connect { url: String, cause: String },
    #[error("no answer from {url} within {} ms", .timeout.as_millis())]
    Timeout { url: String, timeout: Duration },
    #[error("{url} failed: {cause}")]
    Transport { url: String, cause: String },
    /// The TLS handshake failed: `host` is `host:port`, `problem` says
    /// what was wrong (a certificate's problem, with what to do).
    #[error("TLS to {host} failed: {problem}")]
    Tls { host: String, problem: String },
}

/// One attempt: when, how long, and what happened.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub started: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    pub result: Result<Answer, SendError>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.result.as_ref().is_ok_and(Answer::is_success)
    }

    /// Whether the request may have reached the receiver: it answered, or
    /// the connection was made and then failed or went quiet. A refused
    /// connection, a failed TLS handshake or a URL never sent to cannot
    /// have reached it.
    pub fn may_have_arrived(&self) -> bool {
        match &self.result {
            Ok(_) | Err(SendError::Timeout { .. } | SendError::Transport { .. }) => true,
            Err(SendError::Connect { .. } | SendError::Tls { .. } | SendError::BadUrl(..)) => false,
        }
    }

    /// `200 in 3ms`, `500 in 12ms`, `no answer from … within 10000 ms`.
    pub fn summary(&self) -> String {
        match &self.result {
            Ok(answer) => format!(
                "{} in {}",
                answer.status,
                delivery::format_duration_ms(self.duration.as_secs_f64() * 1000.0)
            ),
            Err(err) => err.to_string(),
        }
    }
}

/// Check that `url` is something the sender can reach.
pub fn check_url(url: &str) -> Result<hyper::Uri, SendError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| SendError::BadUrl(url.into(), e.to_string()))?;
    // `http://127.0.0.1:4000@127.0.0.1:4001` goes to 4001: the part before
    // `@` is a user name. Nobody means that for a local receiver, and a
    // record written before request targets were checked may hold a URL
    // a stranger built that way (issue 12).
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(SendError::BadUrl(
            url.into(),
            "it has a user name before '@' (user@host), so it would connect to the host after \
             the '@'; write the host and port alone (e.g. http://127.0.0.1:3000/webhooks/danube)"
                .into(),
        ));
    }
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|host| !host.is_empty()) => Ok(uri),
        Some("http" | "https") => Err(SendError::BadUrl(url.into(), "it has no host".into())),
        _ => Err(SendError::BadUrl(
            url.into(),
            "it must start with http:// or https://".into(),
        )),
    }
}

/// `uri`'s `scheme://authority`, with no path: what names a server in
/// messages and keys. (A URI from [`check_url`] or [`url_at`] has both.)
pub fn origin(uri: &hyper::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map(ToString::to_string).unwrap_or_default()
    )
}

/// `base`'s scheme and authority with `path_and_query` (origin-form: `/…`):
/// built from parts, never by joining text, so nothing in the path can
/// change where the request goes (`@host:port`, `:port`, `.evil.com/` all
/// are refused, and `//host/` stays a path).
pub fn url_at(base: &hyper::Uri, path_and_query: &str) -> Result<hyper::Uri, SendError> {
    let bad = |why: &str| SendError::BadUrl(path_and_query.into(), why.into());
    if !path_and_query.starts_with('/') {
        return Err(bad(
            "a request path must start with '/' (origin-form); this one would not stay a path",
        ));
    }
    let path: hyper::http::uri::PathAndQuery = path_and_query
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
        return Err(SendError::BadUrl(
            base.to_string(),
            "it has no scheme or host".into(),
        ));
    };
    let url = hyper::Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| bad(&e.to_string()))?;
    // Read back as the client will read it: the same place, or refused.
    let reread: hyper::Uri = url
        .to_string()
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    if reread.scheme() != base.scheme() || reread.authority() != base.authority() {
        return Err(bad("it would change the host the request goes to"));
    }
    Ok(url)
}

/// Where a server bound to `local` is reached, as a URL to copy: an
/// unspecified bind address (`0.0.0.0`, `::`) is reached through loopback.
/// The banners of `listen` and `emulate` print it.
pub fn reachable_url(local: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    let ip = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => IpAddr::from(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, local.port()))
}

/// `http://addr` with `path_and_query` (origin-form), as [`url_at`] builds it.
pub fn url_on(addr: std::net::SocketAddr, path_and_query: &str) -> Result<hyper::Uri, SendError> {
    let base = hyper::Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query("/")
        .build()
        .map_err(|e| SendError::BadUrl(addr.to_string(), e.to_string()))?;
    url_at(&base, path_and_query)
}

/// `host:port` of `uri`, the port given or the scheme's own.
fn host_port(uri: &hyper::Uri) -> String {
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    format!("{}:{port}", uri.host().unwrap_or_default())
}

/// An HTTP/1 client, http and https. Cheap to clone; clones share
/// connections.
#[derive(Clone)]
pub struct Sender {
    client: http::Client,
    max_answer_body: usize,
    /// An answer body longer than `max_answer_body` is cut to it (the
    /// attempt keeps its status) rather than failing the attempt.
    cut_long_answers: bool,
}

impl Default for Sender {
    /// Trusting the web's root certificates.
    fn default() -> Self {
        Self::new(&Trust::default(), MAX_ANSWER_BODY)
    }
}

impl Sender {
    pub fn new(trust: &Trust, max_answer_body: usize) -> Self {
        Self {
            client: trust.client(),
            max_answer_body,
            cut_long_answers: false,
        }
    }

    /// Read at most `max_answer_body` bytes of an answer and keep its
    /// status, as Danube keeps a receiver's status and the start of its
    /// body; the rest is never read (the connection is closed).
    #[must_use]
    pub fn cutting_long_answers(mut self) -> Self {
        self.cut_long_answers = true;
        self
    }

    /// Send once; an answer of any status is `Ok`.
    pub async fn send(&self, request: &Outgoing, timeout: Duration) -> Attempt {
        let started = chrono::Utc::now();
        let clock = Instant::now();
        let result = match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout {
                url: request.url.clone(),
                timeout,
            }),
        };
        Attempt {
            started,
            duration: clock.elapsed(),
            result,
        }
    }

    async fn exchange(&self, request: &Outgoing) -> Result<Answer, SendError> {
        let url = &request.url;
        let uri = check_url(url)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|e| SendError::BadUrl(url.clone(), format!("bad method: {e}")))?;
        let host = host_port(&uri);
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let built = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| SendError::Transport {
                url: url.clone(),
                cause: format!("cannot build the request: {e}"),
            })?;
        let overflow = if self.cut_long_answers {
            http::Overflow::Cut
        } else {
            http::Overflow::Fail
        };
        let (parts, body) =
            http::exchange_with(&self.client, built, self.max_answer_body, overflow)
                .await
                .map_err(|err| match err {
                    http::ExchangeError::Request(err) => {
                        if let Some(problem) = http::tls_problem(&err) {
                            return SendError::Tls { host, problem };
                        }
                        let cause = crate::errors::innermost(&err);
                        if err.is_connect() {
                            SendError::Connect {
                                url: url.clone(),
                                cause,
                            }
                        } else {
                            SendError::Transport {
                                url: url.clone(),
                                cause,
                            }
                        }
                    }
                    http::ExchangeError::Body(err) => SendError::Transport {
                        url: url.clone(),
                        cause: format!("reading the answer failed: {err}"),
                    },
                })?;
        let headers = header_pairs(&parts.headers);
        Ok(Answer {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }

    /// Send as Danube does: up to `plan.attempts` times, waiting the
    /// backoff between failed attempts (non-2xx, timeout, transport error).
    /// `prepare(n)` gives the request for attempt `n` (from 1), so a caller
    /// can re-sign each one. `on_attempt` sees each attempt as it ends.
    pub async fn deliver(
        &self,
        plan: &RetryPlan,
        prepare: impl FnMut(u32) -> Outgoing,
        mut on_attempt: impl FnMut(u32, &Attempt, Option<Duration>),
    ) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        self.retry(plan, None, prepare, |n, attempt, wait| {
            on_attempt(n, &attempt, wait);
            attempts.push(attempt);
        })
        .await;
        attempts
    }

    /// [`Sender::deliver`]'s loop, for many deliveries at once: each
    /// attempt is handed over as it ends (kept only if the caller keeps
    /// it), `wait` is `Some` when another attempt follows, and when `gate`
    /// is given each attempt is sent holding one of its permits, released
    /// before the backoff, so deliveries waiting to retry hold no socket.
    /// `prepare(n)` runs once the permit is held, so a fresh `t` is fresh
    /// when sent. Returns whether an attempt succeeded.
    pub async fn retry(
        &self,
        plan: &RetryPlan,
        gate: Option<&tokio::sync::Semaphore>,
        mut prepare: impl FnMut(u32) -> Outgoing,
        mut on_attempt: impl FnMut(u32, Attempt, Option<Duration>),
    ) -> bool {
        for n in 1..=plan.attempts.max(1) {
            let attempt = {
                // A closed gate lets everything through; nobody closes it.
                let _permit = match gate {
                    Some(gate) => gate.acquire().await.ok(),
                    None => None,
                };
                self.send(&prepare(n), plan.timeout).await
            };
            let succeeded = attempt.succeeded();
            let wait = (!succeeded && n < plan.attempts).then(|| plan.backoff_before(n + 1));
            on_attempt(n, attempt, wait);
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return succeeded,
            }
        }
        false
    }
}

/// How Danube retries. Its real schedule is not published; these are the
/// defaults of `trigger`, shown in its output so the guess is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPlan {
    pub attempts: u32,
    /// The wait before attempt 2, 3, …; the last one repeats.
    pub backoff: Vec<Duration>,
    /// Danube's deadline for one attempt (SPEC §1: 10 s).
    pub timeout: Duration,
}

impl Default for RetryPlan {
    fn default() -> Self {
        Self {
            attempts: crate::facts::ATTEMPTS,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
            timeout: crate::facts::DEADLINE,
        }
    }
}

impl RetryPlan {
    /// The wait before attempt `n` (n ≥ 2).
    pub fn backoff_before(&self, n: u32) -> Duration {
        let index = (n.saturating_sub(2) as usize).min(self.backoff.len().saturating_sub(1));
        self.backoff.get(index).copied().unwrap_or_default()
    }
}

/// A delivery as Danube reports it (`GET /v1/webhooks/{id}/deliveries`,
/// SPEC §1): what `trigger` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryReport {
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    /// `pending`, `success` or `failed`.
    pub status: String,
    pub response_status: Option<u16>,
    /// The first [`crate::facts::RESPONSE_BODY_CHARS`] characters of the last answer's body.
    pub response_body: Option<String>,
    pub attempts: u32,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

impl DeliveryReport {
    /// The report on `attempts` at delivering `body`.
    pub fn new(
        id: String,
        webhook_id: String,
        event_type: &str,
        body: &[u8],
        created_at: chrono::DateTime<chrono::Utc>,
        attempts: &[Attempt],
    ) -> Self {
        let last = attempts.last();
        let answer = last.and_then(|a| a.result.as_ref().ok());
        let delivered = attempts.iter().find(|a| a.succeeded());
        let millis = |t: chrono::DateTime<chrono::Utc>| crate::delivery::format_time(&t);
        Self {
            id,
            webhook_id,
            event_type: event_type.to_string(),
            payload: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
            status: if delivered.is_some() {
                "success"
            } else {
                "failed"
            }
            .to_string(),
            response_status: answer.map(|a| a.status),
            response_body: answer.map(|a| {
                String::from_utf8_lossy(&a.body)
                    .chars()
                    .take(crate::facts::RESPONSE_BODY_CHARS)
                    .collect()
            }),
            attempts: attempts.len() as u32,
            delivered_at: delivered.map(|a| millis(a.started)),
            created_at: millis(created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_attempt_that_connected_may_have_arrived() {
        let attempt = |result| Attempt {
            started: chrono::Utc::now(),
            duration: Duration::ZERO,
            result,
        };
        let url = || "http://h/".to_owned();
        let answered = Ok(Answer {
            status: 500,
            headers: Vec::new(),
            body: Bytes::new(),
        });
        for (result, arrived) in [
            (answered, true),
            (
                Err(SendError::Timeout {
                    url: url(),
                    timeout: Duration::from_secs(10),
                }),
                true,
            ),
            (
                Err(SendError::Transport {
                    url: url(),
                    cause: "connection reset".into(),
                }),
                true,
            ),
            (
                Err(SendError::Connect {
                    url: url(),
                    cause: "connection refused".into(),
                }),
                false,
            ),
            (
                Err(SendError::Tls {
                    host: "h:443".into(),
                    problem: "not trusted".into(),
                }),
                false,
            ),
            (Err(SendError::BadUrl(url(), "no host".into())), false),
        ] {
            let attempt = attempt(result);
            assert_eq!(attempt.may_have_arrived(), arrived, "{}", attempt.summary());
        }
    }

    #[test]
    fn replays_keep_bytes_and_swap_only_the_signature() {
        let secret = Secret::new("whsec_abcdefghijklmnop1234");
        let mut stored = crate::test_support::sample(3, br#"{"event":"x"}"#);
        stored
            .headers
            .push(("connection".into(), "keep-alive".into()));
        let as_is = replay_request(&stored, "http://h/", ReplayMode::AsIs, None, 9).unwrap();
        assert_eq!(as_is.body, stored.body);
        assert!(
            as_is
                .headers
                .contains(&("x-danube-signature".into(), "t=1,sha256=00".into()))
        );
        assert!(!as_is.headers.iter().any(|(n, _)| n == "connection"));
        let resigned =
            replay_request(&stored, "http://h/", ReplayMode::Resigned, Some(&secret), 9).unwrap();
        let header = resigned
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(signature::HEADER_NAME))
            .unwrap();
        assert_eq!(
            header.1,
            signature::sign(&secret, 9, &stored.body).into_bytes()
        );
        let refused =
            replay_request(&stored, "http://h/", ReplayMode::Resigned, None, 9).unwrap_err();
        assert!(refused.contains("--secret"), "{refused}");
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
            assert!(!is_end_to_end(name), "{name}");
        }
        for name in ["x-danube-signature", "content-type", "user-agent"] {
            assert!(is_end_to_end(name), "{name}");
        }
    }

    #[test]
    fn headers_named_in_connection_are_not_sent_on() {
        let mut stored = crate::test_support::sample(3, br#"{"event":"x"}"#);
        stored.headers.extend([
            ("connection".into(), "keep-alive, X-Secret-Thing".into()),
            ("x-secret-thing".into(), "for this hop".into()),
            ("connection".into(), " ,x-other ,".into()),
            ("X-Other".into(), "also".into()),
            ("x-kept".into(), "yes".into()),
        ]);
        let sent: Vec<String> = headers_to_send(&stored)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            sent,
            [
                "content-type",
                "x-danube-signature",
                "x-dup",
                "x-dup",
                "x-kept"
            ]
        );
        let replayed = replay_request(&stored, "http://h/", ReplayMode::AsIs, None, 9).unwrap();
        assert!(
            !replayed
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-secret-thing"))
        );
    }

    #[test]
    fn urls_with_a_user_name_are_refused() {
        for bad in [
            "http://127.0.0.1:47201@127.0.0.1:47202",
            "http://user:pw@127.0.0.1:3000/x",
            "http://@127.0.0.1:3000/",
        ] {
            let err = check_url(bad).unwrap_err().to_string();
            assert!(err.contains("user name before '@'"), "{bad}: {err}");
        }
        assert!(
            check_url("http://127.0.0.1:3000/a@b").is_ok(),
            "@ in a path is a path"
        );
    }

    #[test]
    fn a_bind_address_becomes_a_url_to_copy() {
        for (bound, url) in [
            ("0.0.0.0:4000", "http://127.0.0.1:4000"),
            ("[::]:4000", "http://[::1]:4000"),
            ("127.0.0.1:5001", "http://127.0.0.1:5001"),
            ("[::1]:1", "http://[::1]:1"),
        ] {
            assert_eq!(reachable_url(bound.parse().unwrap()), url, "{bound}");
        }
    }

    #[test]
    fn url_on_builds_from_parts() {
        let v4: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let v6: std::net::SocketAddr = "[::1]:4000".parse().unwrap();
        assert_eq!(url_on(v4, "/x?y").unwrap(), "http://127.0.0.1:4000/x?y");
        assert_eq!(url_on(v6, "//h/").unwrap(), "http://[::1]:4000//h/");
        assert!(url_on(v4, "@127.0.0.1:1").is_err());
    }

    #[test]
    fn backoff_repeats_its_last_step() {
        let plan = RetryPlan {
            attempts: 5,
            backoff: vec![Duration::from_millis(100), Duration::from_secs(1)],
            timeout: Duration::from_secs(1),
        };
        assert_eq!(plan.backoff_before(2), Duration::from_millis(100));
        assert_eq!(plan.backoff_before(3), Duration::from_secs(1));
        assert_eq!(plan.backoff_before(5), Duration::from_secs(1));
        let none = RetryPlan {
            backoff: vec![],
            ..plan
        };
        assert_eq!(none.backoff_before(2), Duration::ZERO);
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(check_url("http://127.0.0.1:3000/x").is_ok());
        assert!(check_url("https://example.com/").is_ok());
        assert!(check_url("https://127.0.0.1:8443/webhooks/danube").is_ok());
        for bad in ["ftp://x/", "localhost:3000", "http://", "https://", ""] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(
            check_url("ftp://x/")
                .unwrap_err()
                .to_string()
                .contains("it must start with http:// or https://")
        );
        // The userinfo trick is refused for https as for http.
        assert!(
            check_url("https://127.0.0.1:4000@127.0.0.1:4001/")
                .unwrap_err()
                .to_string()
                .contains("user name before '@'")
        );
    }

    #[test]
    fn the_tls_host_names_the_port_even_when_it_is_the_schemes_own() {
        let at = |url: &str| host_port(&url.parse().unwrap());
        assert_eq!(at("https://example.com/x"), "example.com:443");
        assert_eq!(at("http://example.com/x"), "example.com:80");
        assert_eq!(at("https://127.0.0.1:8443/"), "127.0.0.1:8443");
    }

    #[test]
    fn danube_requests_are_signed_and_resigned() {
        let secret = Secret::new("whsec_abcdefghijklmnop1234");
        let mut request = Outgoing::danube("http://h/", Some(&secret), 100, b"{}".to_vec());
        let header = |r: &Outgoing| {
            r.headers
                .iter()
                .find(|(n, _)| n == signature::HEADER_NAME)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(
            header(&request),
            signature::sign(&secret, 100, b"{}").into_bytes()
        );
        request.resign(&secret, 200);
        assert_eq!(
            header(&request),
            signature::sign(&secret, 200, b"{}").into_bytes()
        );
        assert_eq!(
            request
                .headers
                .iter()
                .filter(|(n, _)| n == signature::HEADER_NAME)
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn retries_until_success_and_reports_each_attempt() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            for status in [500, 503, 200] {
                let (mut stream, _) = server.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let plan = RetryPlan {
            attempts: 3,
            backoff: vec![Duration::from_millis(10)],
            timeout: Duration::from_secs(5),
        };
        let mut seen = Vec::new();
        let attempts = Sender::default()
            .deliver(
                &plan,
                |_| Outgoing::danube(&format!("http://{addr}/"), None, 0, b"{}".to_vec()),
                |n, a, wait| {
                    seen.push((n, a.result.as_ref().map(|r| r.status).ok(), wait));
                },
            )
            .await;
        assert_eq!(attempts.len(), 3);
        assert!(attempts[2].succeeded());
        assert_eq!(
            seen,
            [
                (1, Some(500), Some(Duration::from_millis(10))),
                (2, Some(503), Some(Duration::from_millis(10))),
                (3, Some(200), None)
            ]
        );
    }

    #[tokio::test]
    async fn refused_and_timed_out_are_told_apart() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let attempt = Sender::default()
            .send(
                &Outgoing::danube(&format!("http://{refused}/"), None, 0, vec![]),
                Duration::from_secs(5),
            )
            .await;
        assert!(
            matches!(attempt.result, Err(SendError::Connect { .. })),
            "{:?}",
            attempt.result
        );

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let attempt = Sender::default()
            .send(
                &Outgoing::danube(&format!("http://{addr}/"), None, 0, vec![]),
                Duration::from_millis(200),
            )
            .await;
        assert!(
            matches!(attempt.result, Err(SendError::Timeout { .. })),
            "{:?}",
            attempt.result
        );
        drop(silent);
    }

    #[tokio::test]
    async fn a_long_answer_fails_the_attempt_unless_it_is_cut() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = server.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = vec![b'a'; 100_000];
                let head = format!("HTTP/1.1 201 X\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            }
        });
        let request = Outgoing::danube(&format!("http://{addr}/"), None, 0, b"{}".to_vec());
        let whole = Sender::new(&Trust::default(), 1000)
            .send(&request, Duration::from_secs(5))
            .await;
        assert!(
            matches!(&whole.result, Err(SendError::Transport { cause, .. }) if cause.contains("reading the answer")),
            "{:?}",
            whole.result
        );
        let cut = Sender::new(&Trust::default(), 1000)
            .cutting_long_answers()
            .send(&request, Duration::from_secs(5))
            .await;
        let answer = cut.result.unwrap();
        assert_eq!((answer.status, answer.body.len()), (201, 1000));
    }
}
