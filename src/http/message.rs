//! What goes out and what comes back: a request to send exactly, its
//! answer, why none came, and one attempt's account of it.

use std::time::Duration;

use bytes::Bytes;

use crate::delivery;

/// A request to send, exactly. A Danube delivery's is signed by
/// `crate::sender` (`Outgoing::danube`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) method: String,
    pub(crate) url: String,
    /// Sent in this order, each value's exact bytes; `Host` and
    /// `Content-Length` are set by the client.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why nothing (usable) came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
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
pub(crate) struct Attempt {
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    pub(crate) duration: Duration,
    pub(crate) result: Result<Answer, SendError>,
}

impl Attempt {
    pub(crate) fn succeeded(&self) -> bool {
        self.result.as_ref().is_ok_and(Answer::is_success)
    }

    /// Whether the request may have reached the receiver: it answered, or
    /// the connection was made and then failed or went quiet. A refused
    /// connection, a failed TLS handshake or a URL never sent to cannot
    /// have reached it.
    pub(crate) fn may_have_arrived(&self) -> bool {
        match &self.result {
            Ok(_) | Err(SendError::Timeout { .. } | SendError::Transport { .. }) => true,
            Err(SendError::Connect { .. } | SendError::Tls { .. } | SendError::BadUrl(..)) => false,
        }
    }

    /// `200 in 3ms`, `500 in 12ms`, `no answer from … within 10000 ms`.
    pub(crate) fn summary(&self) -> String {
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
}
