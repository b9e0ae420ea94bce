//! The REST client of Danube's API (SPEC §11), the one module every command
//! that talks to Danube goes through: the base URL, the credential headers,
//! the 30 s timeout, the SDKs' retries (1, 2, 4 s, connect errors and
//! timeouts only, never a create) and the endpoints. What an answer that is
//! not a success means, in one line that says what to do, is [`error`]'s;
//! the wire types are `super::model`'s. Credentials are only ever shown as
//! a prefix.

mod error;

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Uri};

use self::error::{Answer, ErrorBody, classify, hide, hide_in_json};
use super::credentials::Credential;
use super::model::{
    CreatedWebhook, DeliveryRecord, DeviceCode, DeviceToken, Emitted, EmittedDelivery, Webhook,
    WebhookChange,
};
use super::scrub::redact;
use crate::display::escape_line;
use crate::http::{Client, ExchangeError, Trust, check_url, url_at};

pub(crate) use self::error::ApiError;

/// Danube's API, unless `--api-url` / `DANUBE_API_URL` says otherwise.
pub(crate) const DEFAULT_API_URL: &str = "https://api.danubeai.com";
/// How long one request may take, connect to last byte.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
/// The SDKs' waits before retrying a connect error or a timeout.
pub(crate) const RETRY_WAITS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
/// An answer larger than this is not one of Danube's (100 deliveries with
/// their payloads fit many times over); the bound keeps a wrong
/// `--api-url` from filling memory.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The port `danube-hooks emulate` serves on unless told otherwise.
const EMULATE_PORT: u16 = 4200;
/// For tests of the binary only, never documented for users: the timeout
/// of one request in milliseconds instead of [`TIMEOUT`], so a test can
/// make Danube stall without waiting 30 s.
pub(crate) const TEST_TIMEOUT_ENV: &str = "DANUBE_HOOKS_API_TIMEOUT_MS";
/// For tests of the binary only: every retry wait in milliseconds
/// instead of [`RETRY_WAITS`] (the number of retries stays).
pub(crate) const TEST_RETRY_WAIT_ENV: &str = "DANUBE_HOOKS_API_RETRY_WAIT_MS";

/// Where a device flow stands after one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DevicePoll {
    /// 428: the person has not approved yet.
    Pending,
    /// 410: the code expired.
    Expired,
    /// 200: approved.
    Approved(DeviceToken),
}

/// Danube's API, as one credential under one trust.
#[derive(Clone)]
pub(crate) struct Api {
    base: Uri,
    client: Client,
    credential: Option<Credential>,
    /// The waits before retries; [`RETRY_WAITS`] but in tests.
    waits: Vec<Duration>,
    timeout: Duration,
}

impl Api {
    /// A client for `base_url` (checked: http or https, a host, no path
    /// beyond `/`; http only to this machine, since a credential would
    /// cross the network in clear).
    pub(crate) fn new(
        base_url: &str,
        trust: &Trust,
        credential: Option<Credential>,
    ) -> Result<Self, ApiError> {
        let bad = |why: String| ApiError::BadBaseUrl {
            url: escape_line(base_url).into_owned(),
            why,
        };
        let base = check_url(base_url).map_err(|err| bad(err.to_string()))?;
        if base.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(bad(
                "give the API's origin alone (e.g. https://api.danubeai.com), no path or query"
                    .into(),
            ));
        }
        if base.scheme_str() == Some("http") && !is_loopback(base.host().unwrap_or_default()) {
            return Err(bad(
                "http:// only to this machine (127.0.0.1, localhost, [::1]); a credential must \
                 not cross the network in clear: use https://"
                    .into(),
            ));
        }
        let (waits, timeout) = timing_from_env(|name| std::env::var(name).ok());
        Ok(Self {
            base,
            client: trust.client(),
            credential,
            waits,
            timeout,
        })
    }

    /// The same client with other retry waits and timeout (tests).
    #[must_use]
    pub(crate) fn with_timing(mut self, waits: Vec<Duration>, timeout: Duration) -> Self {
        self.waits = waits;
        self.timeout = timeout;
        self
    }

    /// Whether a credential was found (`login`, `DANUBE_API_KEY`,
    /// `DANUBE_API_TOKEN`): without one, only the device flow works.
    pub(crate) fn has_credential(&self) -> bool {
        self.credential.is_some()
    }

    /// The origin as text, `scheme://authority`: what saved webhooks are
    /// kept under, so one API's webhooks are never taken for another's.
    pub(crate) fn origin(&self) -> String {
        crate::http::origin(&self.base)
    }

    /// The organization requests are made for (`DANUBE_ORG_ID`), if any.
    pub(crate) fn org_id(&self) -> Option<&str> {
        self.credential.as_ref().and_then(Credential::org_id)
    }

    /// The credential's [`Credential::digest`], if there is one.
    pub(crate) fn credential_digest(&self) -> Option<String> {
        self.credential.as_ref().map(Credential::digest)
    }

    /// Start the device flow (no credential needed).
    pub(crate) async fn device_code(&self, client_name: &str) -> Result<DeviceCode, ApiError> {
        let body = serde_json::json!({ "client_name": client_name });
        let answer = self
            .call(
                Method::POST,
                "/v1/auth/device/code",
                Some(&body),
                Call::Anonymous,
            )
            .await?;
        self.expect_json(&answer, "the device code request")
    }

    /// One poll of the device flow.
    pub(crate) async fn device_token(&self, device_code: &str) -> Result<DevicePoll, ApiError> {
        let body = serde_json::json!({ "device_code": device_code });
        let answer = self
            .call(
                Method::POST,
                "/v1/auth/device/token",
                Some(&body),
                Call::Anonymous,
            )
            .await?;
        match answer.status.as_u16() {
            428 => Ok(DevicePoll::Pending),
            410 => Ok(DevicePoll::Expired),
            _ => self
                .expect_json(&answer, "the device token request")
                .map(DevicePoll::Approved),
        }
    }

    /// `GET /v1/webhooks`.
    pub(crate) async fn list_webhooks(&self) -> Result<Vec<Webhook>, ApiError> {
        let answer = self
            .call(Method::GET, "/v1/webhooks", None, Call::Read)
            .await?;
        self.expect_json(&answer, "the webhook list")
    }

    /// The webhook `id` as Danube lists it, `None` when the list does not
    /// hold it (Danube has no call that reads one webhook).
    pub(crate) async fn find_webhook(&self, id: &str) -> Result<Option<Webhook>, ApiError> {
        let all = self.list_webhooks().await?;
        Ok(all.into_iter().find(|webhook| webhook.id == id))
    }

    /// `POST /v1/webhooks`: never retried, since Danube has no idempotency
    /// key and a retried create can make a second webhook.
    pub(crate) async fn create_webhook(
        &self,
        change: &WebhookChange,
    ) -> Result<CreatedWebhook, ApiError> {
        let body = serde_json::to_value(change).expect("a WebhookChange serializes");
        let answer = self
            .call(Method::POST, "/v1/webhooks", Some(&body), Call::Create)
            .await?;
        self.expect_json(&answer, "the create")
    }

    /// `PATCH /v1/webhooks/{id}` with only the fields in `change`.
    pub(crate) async fn update_webhook(
        &self,
        id: &str,
        change: &WebhookChange,
    ) -> Result<Webhook, ApiError> {
        let body = serde_json::to_value(change).expect("a WebhookChange serializes");
        let path = format!("/v1/webhooks/{}", path_segment(id));
        let answer = self
            .call(Method::PATCH, &path, Some(&body), Call::Read)
            .await?;
        self.expect_json(&answer, "the update")
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub(crate) async fn delete_webhook(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/v1/webhooks/{}", path_segment(id));
        self.call(Method::DELETE, &path, None, Call::Read).await?;
        Ok(())
    }

    /// `GET /v1/webhooks/{id}/deliveries?limit=N`, newest first. `limit`
    /// is kept within the SDK's 1..=100.
    pub(crate) async fn list_deliveries(
        &self,
        webhook_id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        let path = format!(
            "/v1/webhooks/{}/deliveries?limit={}",
            path_segment(webhook_id),
            limit.clamp(1, crate::facts::DELIVERIES_PAGE_MAX)
        );
        let answer = self.call(Method::GET, &path, None, Call::Read).await?;
        self.expect_json(&answer, "the delivery log")
    }

    /// `POST /v1/emulator/events` `{"event", "data"}` to a local Danube
    /// (`danube-hooks emulate`; Danube itself has no such endpoint): the
    /// deliveries it made. Never retried: a retried event is delivered twice.
    pub(crate) async fn emit_event(
        &self,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<Vec<EmittedDelivery>, ApiError> {
        let body = serde_json::json!({ "event": event, "data": data });
        let answer = self
            .call(
                Method::POST,
                "/v1/emulator/events",
                Some(&body),
                Call::Create,
            )
            .await
            .map_err(|err| match err {
                ApiError::CreateTimeout { url, within } => ApiError::EmitTimeout { url, within },
                other => other,
            })?;
        self.expect_json::<Emitted>(&answer, "the event")
            .map(|emitted| emitted.deliveries)
    }

    /// Send one request, retrying as the SDKs do; any status below 300
    /// and the device flow's 428 and 410 come back, every other status is
    /// the error it means.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        kind: Call,
    ) -> Result<Answer, ApiError> {
        let uri = url_at(&self.base, path).map_err(|err| ApiError::Transport {
            url: escape_line(path).into_owned(),
            cause: err.to_string(),
        })?;
        let credential = match (kind, &self.credential) {
            (Call::Anonymous, _) => None,
            (_, Some(credential)) => Some(credential),
            (_, None) => return Err(ApiError::NoCredentials),
        };
        let body = body.map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON serializes")));
        let url = uri.to_string();
        let waits: &[Duration] = if kind == Call::Create {
            &[]
        } else {
            &self.waits
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let request = build_request(&method, &uri, credential, body.clone())?;
            let outcome = tokio::time::timeout(self.timeout, self.exchange(request)).await;
            let failure = match outcome {
                Ok(Ok(answer)) => {
                    return classify(answer, credential, self.credential.as_ref(), path);
                }
                Ok(Err(Failure::Fatal(err))) => {
                    return Err(err.into_error(&url, self.credential.as_ref()));
                }
                Ok(Err(Failure::Connect(cause))) => {
                    self.connect_error(&url, hide(&cause, self.credential.as_ref()), tries)
                }
                Err(_elapsed) if kind == Call::Create => {
                    return Err(ApiError::CreateTimeout {
                        url,
                        within: seconds(self.timeout),
                    });
                }
                Err(_elapsed) => ApiError::Timeout {
                    url: url.clone(),
                    within: seconds(self.timeout),
                    tries,
                },
            };
            match waits.get(tries - 1) {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => return Err(failure),
            }
        }
    }

    /// Why `url` could not be reached after `tries`, naming the emulator
    /// when this API is a local Danube.
    fn connect_error(&self, url: &str, cause: String, tries: usize) -> ApiError {
        if !self.is_local_danube() {
            return ApiError::Connect {
                url: url.to_owned(),
                cause,
                tries,
            };
        }
        let start = match self.base.port_u16() {
            Some(EMULATE_PORT) | None => "danube-hooks emulate".to_owned(),
            Some(port) => format!("danube-hooks emulate --port {port}"),
        };
        ApiError::LocalConnect {
            origin: self.origin(),
            cause,
            tries,
            start,
        }
    }

    /// Whether this API is a Danube on this machine ([`is_local_danube`]).
    pub(crate) fn is_local_danube(&self) -> bool {
        is_local_danube(&self.origin())
    }

    async fn exchange(&self, request: hyper::Request<Full<Bytes>>) -> Result<Answer, Failure> {
        let (parts, body) = crate::http::exchange(&self.client, request, MAX_ANSWER)
            .await
            .map_err(|err| match err {
                ExchangeError::Request(err) => {
                    if let Some(tls) = crate::http::tls_problem(&err) {
                        Failure::Fatal(FatalCause(tls))
                    } else if err.is_connect() {
                        Failure::Connect(crate::errors::chain::chain(&err))
                    } else {
                        Failure::Fatal(FatalCause(crate::errors::chain::chain(&err)))
                    }
                }
                ExchangeError::Body(err) => {
                    Failure::Fatal(FatalCause(format!("reading the answer: {err}")))
                }
            })?;
        let retry_after = parts
            .headers
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Answer {
            status: parts.status,
            retry_after,
            body,
        })
    }
}

/// What a request is, for its credential and its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// The device flow: no credential.
    Anonymous,
    /// Retried on connect errors and timeouts: a read, or a change that
    /// is the same change however often it is made (PATCH, DELETE).
    Read,
    /// A create: never retried.
    Create,
}

enum Failure {
    /// Worth a retry: the request never reached Danube.
    Connect(String),
    Fatal(FatalCause),
}

struct FatalCause(String);

impl FatalCause {
    /// The error, with `echo` hidden in what the server may have put in
    /// it (a certificate's names, say).
    fn into_error(self, url: &str, echo: Option<&Credential>) -> ApiError {
        ApiError::Transport {
            url: url.to_owned(),
            cause: hide(&self.0, echo),
        }
    }
}

/// The retry waits and the timeout: the SDKs' own, unless a test of the
/// binary shortened them through [`TEST_TIMEOUT_ENV`] or
/// [`TEST_RETRY_WAIT_ENV`]. The one place those are read; a value that is
/// not a whole number of milliseconds is ignored.
fn timing_from_env(env: impl Fn(&str) -> Option<String>) -> (Vec<Duration>, Duration) {
    let millis = |name: &str| {
        env(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
    };
    let waits = match millis(TEST_RETRY_WAIT_ENV) {
        Some(wait) => vec![wait; RETRY_WAITS.len()],
        None => RETRY_WAITS.to_vec(),
    };
    let timeout = millis(TEST_TIMEOUT_ENV)
        .filter(|t| !t.is_zero())
        .unwrap_or(TIMEOUT);
    (waits, timeout)
}

/// Whether `api_url` is a Danube on this machine (`danube-hooks emulate`,
/// or a test's stand-in) rather than Danube itself: a plain `http://` API
/// on a loopback host, the only kind of http:// API [`Api::new`] accepts.
/// Such an API keeps its own rules on webhook URLs (`emulate
/// --allow-http` takes an http:// receiver), so a client leaves them to
/// it, and when it cannot be reached, `emulate` is what is not running.
pub(crate) fn is_local_danube(api_url: &str) -> bool {
    check_url(api_url).is_ok_and(|uri| {
        uri.scheme_str() == Some("http") && is_loopback(uri.host().unwrap_or_default())
    })
}

/// `30 s`, or `0.25 s` for a timeout shorter than a second.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

/// Whether `host` (as a URI holds it, IPv6 in brackets) is this machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn build_request(
    method: &Method,
    uri: &Uri,
    credential: Option<&Credential>,
    body: Option<Bytes>,
) -> Result<hyper::Request<Full<Bytes>>, ApiError> {
    let mut builder = hyper::Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .header("accept", "application/json")
        .header(
            "user-agent",
            concat!("danube-hooks/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(authority) = uri.authority() {
        builder = builder.header("host", authority.as_str());
    }
    for (name, value) in credential.map(Credential::headers).unwrap_or_default() {
        builder = builder.header(name, value);
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    // The method, URI and fixed headers are valid by construction; only a
    // credential (from the environment or the user) can hold a byte a
    // header cannot carry.
    builder
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|_| ApiError::BadCredential {
            shown: credential.map_or_else(String::new, Credential::shown),
        })
}

/// An id as one path segment: every byte but the unreserved ones
/// percent-encoded, so an id (from the user or from an answer) can never
/// add a segment, a query or a fragment to the path; and an id of dots
/// alone (`.`, `..`) has its dots encoded too, since a server or proxy
/// takes those for the segment itself or the one above.
fn path_segment(id: &str) -> String {
    let only_dots = !id.is_empty() && id.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if (byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)) && !only_dots {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

impl Api {
    /// The answer as `T`; a status [`classify`] let through (the device
    /// flow's 428 and 410) is an error here.
    fn expect_json<T: serde::de::DeserializeOwned>(
        &self,
        answer: &Answer,
        what: &str,
    ) -> Result<T, ApiError> {
        if !answer.status.is_success() {
            return Err(ApiError::Unexpected {
                status: answer.status.as_u16(),
                message: ErrorBody::parse(&answer.body, self.credential.as_ref()).message,
            });
        }
        // Where, not serde's text: that can quote a value, and a value here
        // can be a key.
        let decode = |err: serde_json::Error| ApiError::Decode {
            what: what.to_owned(),
            cause: format!(
                "{:?} error at line {} column {}",
                err.classify(),
                err.line(),
                err.column()
            ),
        };
        let mut value: serde_json::Value = serde_json::from_slice(&answer.body).map_err(decode)?;
        // A successful answer is printed too (a webhook's URL, its
        // description, a delivery's payload): an API that echoes the key
        // there gets it shown as its fingerprint, as in an error.
        if let Some(credential) = &self.credential {
            hide_in_json(
                &mut value,
                credential.secret(),
                &redact(credential.secret()),
            );
        }
        serde_json::from_value(value).map_err(decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn key() -> Credential {
        Credential::ApiKey {
            key: "dk_abcdefghijklmnopqrstuvwxyz".into(),
            org_id: None,
        }
    }

    #[test]
    fn an_id_is_one_path_segment_whatever_it_holds() {
        assert_eq!(path_segment("wh_8f3a-1.x~"), "wh_8f3a-1.x~");
        assert_eq!(path_segment("../v1/x?y#z"), "..%2Fv1%2Fx%3Fy%23z");
        assert_eq!(path_segment("a b\u{e9}"), "a%20b%C3%A9");
        // Dots alone would be the segment itself or the one above.
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("."), "%2E");
        assert_eq!(path_segment("..."), "%2E%2E%2E");
        assert_eq!(path_segment("a..b"), "a..b");
    }

    #[test]
    fn base_url_is_checked() {
        let trust = Trust::default();
        assert!(Api::new(DEFAULT_API_URL, &trust, None).is_ok());
        assert!(Api::new("http://127.0.0.1:9", &trust, None).is_ok());
        assert!(Api::new("http://[::1]:9/", &trust, None).is_ok());
        for (url, why) in [
            ("http://api.danubeai.com", "only to this machine"),
            ("https://api.danubeai.com/v1", "origin alone"),
            ("ftp://api.danubeai.com", "http:// or https://"),
            ("https://evil@api.danubeai.com", "user name"),
        ] {
            let err = Api::new(url, &trust, None).err().unwrap().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    fn api(port: u16, waits: Vec<Duration>, timeout: Duration) -> Api {
        Api::new(
            &format!("http://127.0.0.1:{port}"),
            &Trust::default(),
            Some(key()),
        )
        .unwrap()
        .with_timing(waits, timeout)
    }

    #[tokio::test]
    async fn a_credential_a_header_cannot_carry_is_refused_before_sending() {
        let (addr, count) = crate::test_servers::serve(None);
        let port = addr.port();
        let bad = Credential::ApiKey {
            key: "dk_abcdef\u{7}ghijklmnop".into(),
            org_id: None,
        };
        let api = Api::new(
            &format!("http://127.0.0.1:{port}"),
            &Trust::default(),
            Some(bad),
        )
        .unwrap();
        let err = api.list_webhooks().await.unwrap_err().to_string();
        assert!(
            err.contains("cannot carry") && !err.contains("ghij"),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_sdks_retry_schedule() {
        assert_eq!(RETRY_WAITS.map(|d| d.as_secs()), [1, 2, 4]);
        assert_eq!(TIMEOUT, Duration::from_secs(30));
    }

    #[test]
    fn only_a_test_shortens_the_timing() {
        let none = |_: &str| None;
        assert_eq!(timing_from_env(none), (RETRY_WAITS.to_vec(), TIMEOUT));
        let short = |name: &str| match name {
            TEST_TIMEOUT_ENV => Some("250".to_owned()),
            TEST_RETRY_WAIT_ENV => Some("10".to_owned()),
            _ => None,
        };
        assert_eq!(
            timing_from_env(short),
            (
                vec![Duration::from_millis(10); 3],
                Duration::from_millis(250)
            )
        );
        let junk = |_: &str| Some("soon".to_owned());
        assert_eq!(timing_from_env(junk), (RETRY_WAITS.to_vec(), TIMEOUT));
        let zero = |name: &str| (name == TEST_TIMEOUT_ENV).then(|| "0".to_owned());
        assert_eq!(timing_from_env(zero).1, TIMEOUT);
        assert_eq!(seconds(TIMEOUT), "30 s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25 s");
    }

    #[tokio::test]
    async fn connect_errors_are_retried_but_never_a_create() {
        let waits = vec![Duration::from_millis(1); 3];
        let api = api(
            crate::test_servers::closed_port().port(),
            waits,
            Duration::from_secs(10),
        );
        let read = api.list_webhooks().await.unwrap_err();
        assert!(
            matches!(read, ApiError::LocalConnect { tries: 4, .. }),
            "{read}"
        );
        assert!(read.to_string().contains("(tried 4 times)"), "{read}");
        let create = api
            .create_webhook(&WebhookChange::default())
            .await
            .unwrap_err();
        assert!(
            matches!(create, ApiError::LocalConnect { tries: 1, .. }),
            "{create}"
        );
        assert!(create.to_string().contains("(tried once)"), "{create}");
        assert!(!create.to_string().contains("dk_abcdefghij"));
    }

    #[tokio::test]
    async fn an_unreachable_local_danube_is_named_with_how_to_start_it() {
        let port = crate::test_servers::closed_port().port();
        let local = api(port, Vec::new(), Duration::from_secs(10));
        let told = local.list_webhooks().await.unwrap_err().to_string();
        assert_eq!(
            told,
            format!(
                "cannot reach the local Danube (emulate?) at http://127.0.0.1:{port}: {} (tried \
                 once); start it with `danube-hooks emulate --port {port}`",
                connect_cause(&told)
            )
        );
        // Over https it is not the emulator (which serves http only).
        let far = Api::new(
            &format!("https://127.0.0.1:{port}"),
            &Trust::default(),
            Some(key()),
        )
        .unwrap()
        .with_timing(Vec::new(), Duration::from_secs(10));
        let told = far.list_webhooks().await.unwrap_err().to_string();
        assert!(
            told.starts_with(&format!("cannot reach Danube at https://127.0.0.1:{port}/")),
            "{told}"
        );
        assert!(told.ends_with("(tried once)"), "{told}");
    }

    /// The operating system's words for a refused connection, as `told` has them.
    fn connect_cause(told: &str) -> &str {
        let start = told.find(": ").unwrap() + 2;
        let end = told.rfind(" (tried").unwrap();
        &told[start..end]
    }

    #[test]
    fn a_local_danube_is_plain_http_on_this_machine() {
        for (url, local) in [
            ("http://127.0.0.1:4200", true),
            ("HTTP://localhost:4200", true),
            ("http://[::1]:4200", true),
            ("http://127.0.0.2", true),
            ("https://127.0.0.1:4200", false),
            ("https://api.danubeai.com", false),
            ("http://danube.example", false),
            ("http://10.0.0.1:4200", false),
            ("127.0.0.1:4200", false),
        ] {
            assert_eq!(is_local_danube(url), local, "{url}");
        }
        let emulate = Api::new("http://localhost:4200", &Trust::default(), None).unwrap();
        assert!(emulate.is_local_danube());
        let danube = Api::new(DEFAULT_API_URL, &Trust::default(), None).unwrap();
        assert!(!danube.is_local_danube());
    }

    #[tokio::test]
    async fn timeouts_are_retried_but_never_a_create() {
        let (addr, count) = crate::test_servers::serve(None);
        let port = addr.port();
        let waits = vec![Duration::from_millis(1); 3];
        let api = api(port, waits, Duration::from_millis(200));
        let read = api.list_webhooks().await.unwrap_err();
        assert!(matches!(read, ApiError::Timeout { tries: 4, .. }), "{read}");
        assert!(read.to_string().contains("(tried 4 times)"), "{read}");
        assert_eq!(count.load(Ordering::SeqCst), 4);
        let create = api
            .create_webhook(&WebhookChange::default())
            .await
            .unwrap_err();
        assert!(matches!(create, ApiError::CreateTimeout { .. }), "{create}");
        assert!(create.to_string().contains("webhooks list"), "{create}");
        assert_eq!(count.load(Ordering::SeqCst), 5);
    }

    /// A server that answers one request with `reply` and hands back the
    /// request's bytes.
    async fn one_answer(reply: String) -> (u16, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut stream, _) = socket.accept().await.unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers and the small JSON body arrive well within a moment.
            while !String::from_utf8_lossy(&request).contains("\r\n\r\n{") {
                let n = stream.read(&mut chunk).await.unwrap();
                request.extend_from_slice(&chunk[..n]);
            }
            while !request.ends_with(b"}") {
                let n = stream.read(&mut chunk).await.unwrap();
                request.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        (port, task)
    }

    #[tokio::test]
    async fn an_event_goes_to_the_emulator_with_the_key_and_comes_back_as_deliveries() {
        let body = r#"{"deliveries":[{"id":"dlv_1","webhook_id":"wh_1"},{"id":"dlv_2","webhook_id":"wh_2"}]}"#;
        let reply = format!(
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (port, request) = one_answer(reply).await;
        let api = api(port, vec![], Duration::from_secs(5));
        let data = serde_json::json!({"tool_id": "t-1"});
        let made = api
            .emit_event("tool.execution.failed", &data)
            .await
            .unwrap();
        assert_eq!(
            made,
            [
                EmittedDelivery {
                    id: "dlv_1".into(),
                    webhook_id: "wh_1".into()
                },
                EmittedDelivery {
                    id: "dlv_2".into(),
                    webhook_id: "wh_2".into()
                },
            ]
        );
        let request = request.await.unwrap();
        assert!(
            request.starts_with("POST /v1/emulator/events HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("danube-api-key: dk_abcdefghijklmnopqrstuvwxyz\r\n"),
            "{request}"
        );
        let sent: serde_json::Value =
            serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"event": "tool.execution.failed", "data": {"tool_id": "t-1"}})
        );
    }

    #[tokio::test]
    async fn an_event_is_never_retried() {
        let (addr, count) = crate::test_servers::serve(None);
        let api = api(
            addr.port(),
            vec![Duration::from_millis(1); 3],
            Duration::from_millis(200),
        );
        let err = api
            .emit_event("workflow.failed", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::EmitTimeout { .. }), "{err}");
        assert!(err.to_string().contains("deliveries"), "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
