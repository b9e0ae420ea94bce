//! One request sent, within a deadline, its answer read within a bound and
//! every failure told by kind: the one-shot client that Danube's retries
//! (`crate::sender`), forwarding, replays and probes all send through.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

use super::client::{self, Client, ExchangeError, Overflow};
use super::headers::header_pairs;
use super::message::{Answer, Attempt, Outgoing, SendError};
use super::tls::{Trust, tls_problem};
use super::url::{check_url, host_port};

/// The largest answer body read back; the rest is cut off.
pub(crate) const MAX_ANSWER_BODY: usize = 1024 * 1024;

/// An HTTP/1 client, http and https, that sends one request at a time
/// ([`Sender::send`]); Danube's retries over it are `crate::sender`'s.
/// Cheap to clone; clones share connections.
#[derive(Clone)]
pub(crate) struct Sender {
    client: Client,
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
    pub(crate) fn new(trust: &Trust, max_answer_body: usize) -> Self {
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
    pub(crate) fn cutting_long_answers(mut self) -> Self {
        self.cut_long_answers = true;
        self
    }

    /// Send once; an answer of any status is `Ok`.
    pub(crate) async fn send(&self, request: &Outgoing, timeout: Duration) -> Attempt {
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
            Overflow::Cut
        } else {
            Overflow::Fail
        };
        let (parts, body) =
            client::exchange_with(&self.client, built, self.max_answer_body, overflow)
                .await
                .map_err(|err| match err {
                    ExchangeError::Request(err) => {
                        if let Some(problem) = tls_problem(&err) {
                            return SendError::Tls { host, problem };
                        }
                        let cause = crate::errors::chain::innermost(&err);
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
                    ExchangeError::Body(err) => SendError::Transport {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain `POST` of `body` to `url`.
    fn post(url: String, body: Vec<u8>) -> Outgoing {
        Outgoing {
            method: "POST".into(),
            url,
            headers: vec![("Content-Type".into(), b"application/json".to_vec())],
            body,
        }
    }

    #[tokio::test]
    async fn refused_and_timed_out_are_told_apart() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let attempt = Sender::default()
            .send(
                &post(format!("http://{refused}/"), vec![]),
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
                &post(format!("http://{addr}/"), vec![]),
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
        let request = post(format!("http://{addr}/"), b"{}".to_vec());
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
