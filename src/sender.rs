//! What Danube does: sign, post, retry. A Danube delivery is a signed JSON
//! `POST` ([`Outgoing::danube`]), a replay is re-signed
//! ([`replay_request`]), and [`Sender::deliver`] and [`Sender::retry`]
//! send as Danube does, over [`crate::http`]'s one-shot [`Sender`]; the
//! record of it all is Danube's own ([`delivery_record`]). `trigger`,
//! `replay`, `check`, the emulator's deliveries and the dashboard's
//! replays send through here.

use std::time::Duration;

use crate::danube::model::{DeliveryRecord, DeliveryStatus};
use crate::delivery::{self, ReplayMode};
use crate::http::{Attempt, Outgoing, Sender, headers_to_send};
use crate::resend::{self, Edited};
use crate::signature::{self, Secret};

/// The request of a Danube delivery: written here, with what else Danube
/// does, rather than beside the plain request.
impl Outgoing {
    /// A Danube delivery: `POST`, JSON, signed with `secret` at `t`.
    pub(crate) fn danube(url: &str, secret: Option<&Secret>, t: i64, body: Vec<u8>) -> Self {
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
    pub(crate) fn resign(&mut self, secret: &Secret, t: i64) {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(signature::HEADER_NAME));
        self.headers.push((
            signature::HEADER_NAME.to_string(),
            signature::sign(secret, t, &self.body).into_bytes(),
        ));
    }
}

/// The request that resends `delivery` to `url`: its method, end-to-end
/// headers and exact body (or the copy's, `edited`); re-signed at `now`
/// with `secret` unless as-is (then the original signature goes over
/// whatever body is sent); then the copy's header changes, and the two
/// headers that say it is a copy ([`crate::resend::mark`]).
pub(crate) fn replay_request(
    delivery: &delivery::Delivery,
    url: &str,
    mode: ReplayMode,
    secret: Option<&Secret>,
    now: i64,
    edited: Option<&Edited>,
) -> Result<Outgoing, String> {
    let mut request = Outgoing {
        method: delivery.method.clone(),
        url: url.to_string(),
        headers: headers_to_send(delivery),
        body: match edited.and_then(|edited| edited.body.as_ref()) {
            Some(body) => body.clone(),
            None => delivery.body.clone(),
        },
    };
    if mode == ReplayMode::Resigned {
        let secret = secret.ok_or(
            "a re-signed replay needs the signing secret: pass --secret whsec_… or set \
             DANUBE_WEBHOOK_SECRET (or replay --as-is)",
        )?;
        request.resign(secret, now);
    }
    if let Some(edited) = edited {
        edited.apply_headers(&mut request.headers);
    }
    resend::mark(&mut request.headers, delivery.id, edited.is_some());
    Ok(request)
}

/// Danube's retries, over the one-shot client: written here, with what
/// else Danube does, rather than beside the client's single attempt.
impl Sender {
    /// Send as Danube does: up to `plan.attempts` times, waiting the
    /// backoff between failed attempts (non-2xx, timeout, transport error).
    /// `prepare(n)` gives the request for attempt `n` (from 1), so a caller
    /// can re-sign each one. `on_attempt` sees each attempt as it ends.
    pub(crate) async fn deliver(
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
    pub(crate) async fn retry(
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
pub(crate) struct RetryPlan {
    pub(crate) attempts: u32,
    /// The wait before attempt 2, 3, …; the last one repeats.
    pub(crate) backoff: Vec<Duration>,
    /// Danube's deadline for one attempt (SPEC §1: 10 s).
    pub(crate) timeout: Duration,
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
    pub(crate) fn backoff_before(&self, n: u32) -> Duration {
        let index = (n.saturating_sub(2) as usize).min(self.backoff.len().saturating_sub(1));
        self.backoff.get(index).copied().unwrap_or_default()
    }
}

/// Danube's record of delivering `body` in `attempts` (SPEC §1): what
/// `trigger` prints.
pub(crate) fn delivery_record(
    id: String,
    webhook_id: String,
    event_type: &str,
    body: &[u8],
    created_at: chrono::DateTime<chrono::Utc>,
    attempts: &[Attempt],
) -> DeliveryRecord {
    let last = attempts.last();
    let answer = last.and_then(|a| a.result.as_ref().ok());
    let delivered = attempts.iter().find(|a| a.succeeded());
    let millis = |t: chrono::DateTime<chrono::Utc>| delivery::format_time(&t);
    DeliveryRecord {
        id,
        webhook_id,
        event_type: event_type.to_string(),
        payload: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
        status: if delivered.is_some() {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Failed
        },
        response_status: answer.map(|a| a.status),
        response_body: answer.map(|a| {
            String::from_utf8_lossy(&a.body)
                .chars()
                .take(crate::facts::RESPONSE_BODY_CHARS)
                .collect()
        }),
        attempts: attempts.len() as u32,
        delivered_at: delivered.map(|a| millis(a.started)),
        created_at: Some(millis(created_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_keep_bytes_and_swap_only_the_signature() {
        let secret = Secret::new("whsec_abcdefghijklmnop1234");
        let mut stored = crate::test_support::sample(3, br#"{"event":"x"}"#);
        stored
            .headers
            .push(("connection".into(), "keep-alive".into()));
        let as_is = replay_request(&stored, "http://h/", ReplayMode::AsIs, None, 9, None).unwrap();
        assert_eq!(as_is.body, stored.body);
        assert!(
            as_is
                .headers
                .contains(&("x-danube-signature".into(), "t=1,sha256=00".into()))
        );
        assert!(!as_is.headers.iter().any(|(n, _)| n == "connection"));
        let resigned = replay_request(
            &stored,
            "http://h/",
            ReplayMode::Resigned,
            Some(&secret),
            9,
            None,
        )
        .unwrap();
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
            replay_request(&stored, "http://h/", ReplayMode::Resigned, None, 9, None).unwrap_err();
        assert!(refused.contains("--secret"), "{refused}");
    }

    #[test]
    fn an_edited_copy_is_signed_then_changed_then_marked() {
        let secret = Secret::new("whsec_abcdefghijklmnop1234");
        let stored = crate::test_support::sample(3, br#"{"event":"x"}"#);
        let edited = Edited {
            body: Some(br#"{"event":"y"}"#.to_vec()),
            drop_headers: vec!["content-type".into()],
            headers: vec![("X-Test".into(), "1".into())],
        };
        let value = |request: &Outgoing, name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let as_is = replay_request(
            &stored,
            "http://h/",
            ReplayMode::AsIs,
            None,
            9,
            Some(&edited),
        )
        .unwrap();
        assert_eq!(as_is.body, br#"{"event":"y"}"#);
        assert_eq!(
            value(&as_is, "x-danube-signature"),
            Some(b"t=1,sha256=00".to_vec())
        );
        assert_eq!(value(&as_is, "content-type"), None);
        assert_eq!(value(&as_is, "x-test"), Some(b"1".to_vec()));
        assert_eq!(value(&as_is, resend::RESENT_FROM), Some(b"3".to_vec()));
        assert_eq!(value(&as_is, resend::EDITED), Some(b"true".to_vec()));
        let resigned = replay_request(
            &stored,
            "http://h/",
            ReplayMode::Resigned,
            Some(&secret),
            9,
            Some(&edited),
        )
        .unwrap();
        assert_eq!(
            value(&resigned, "x-danube-signature"),
            Some(signature::sign(&secret, 9, br#"{"event":"y"}"#).into_bytes())
        );
        let plain = replay_request(&stored, "http://h/", ReplayMode::AsIs, None, 9, None).unwrap();
        assert_eq!(value(&plain, resend::EDITED), Some(b"false".to_vec()));
    }

    #[test]
    fn a_replay_leaves_behind_the_headers_named_in_connection() {
        let mut stored = crate::test_support::sample(3, br#"{"event":"x"}"#);
        stored.headers.extend([
            ("connection".into(), "keep-alive, X-Secret-Thing".into()),
            ("x-secret-thing".into(), "for this hop".into()),
        ]);
        let replayed =
            replay_request(&stored, "http://h/", ReplayMode::AsIs, None, 9, None).unwrap();
        assert!(
            !replayed
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-secret-thing"))
        );
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
}
