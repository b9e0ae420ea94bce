//! The emulator's HTTP side: SPEC §11's webhook API with Danube's shapes
//! and rules, the device flow (approved at the first poll), and
//! `POST /v1/emulator/events`, which turns an event into deliveries.
//!
//! Errors are Danube's `{"detail": "…"}`: the official Python SDK reads
//! `detail` (and only that) into its exceptions, by status: 400
//! `ValidationError`, 401 `AuthenticationError`, 403, 404 `NotFoundError`,
//! 429, anything else `DanubeError` with the status. It also takes only a
//! 200 as success, so a create and a delete answer 200, as Danube must.
//!
//! Every byte from the socket is hostile: only this machine's own programs
//! are answered ([`super::guard`]), bodies are capped (`input::MAX_BODY`,
//! 413 past it, read no further) and time-bounded, connections are capped
//! ([`super::serve`]), and no input makes the task panic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::answer::{Array, Body};
use super::deliver::Deliverer;
use super::guard;
use super::input::{
    MAX_URL, Refusal, description, events_of, json_object, limit, quoted, raw_kind, raw_object,
    read_body,
};
use super::payload;
use super::state::{Change, MAX_WEBHOOKS, NewWebhook, State};
use crate::display::truncate;
use crate::events::EVENT_TYPES;
use crate::random::random_alnum;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq as _;

/// How deeply an event's `data` may nest: within it, a delivery log
/// answer is still within the 128 levels JSON parsers take (`serde_json`'s
/// limit among them).
const MAX_DATA_DEPTH: usize = 100;
/// What the device flow says, as Danube says it.
const DEVICE_EXPIRES_IN: u64 = 600;
const DEVICE_INTERVAL: u64 = 5;
/// Device codes waiting for their poll; past this the oldest is forgotten,
/// so a client asking for codes in a loop cannot grow memory.
const MAX_DEVICE_CODES: usize = 1000;

/// Who may call the API.
#[derive(Clone)]
pub(crate) enum Keys {
    /// Any non-empty key (the default): the emulator is for tests.
    Any,
    /// Exactly these (`--api-key`).
    Only(Vec<String>),
}

impl Keys {
    fn accepts(&self, given: &str) -> bool {
        match self {
            Self::Any => !given.is_empty(),
            Self::Only(keys) => {
                // Every key compared, in constant time: how long the check
                // takes says nothing about how much of a key was right.
                let mut found = subtle::Choice::from(0);
                for key in keys {
                    found |= key.as_bytes().ct_eq(given.as_bytes());
                }
                bool::from(found)
            }
        }
    }

    /// The key the device flow hands over: the first `--api-key`, else a
    /// fresh one (accepted, as any non-empty key is).
    fn for_login(&self) -> String {
        match self {
            Self::Only(keys) if !keys.is_empty() => keys[0].clone(),
            _ => format!("dk_emu_{}", random_alnum(32)),
        }
    }
}

/// The emulator's rules.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) keys: Keys,
    /// `--allow-http`: `http://` webhook URLs are accepted too.
    pub(crate) allow_http: bool,
    /// Where the emulator is reached (`http://127.0.0.1:4200`): the device
    /// flow's `verification_url` is on it.
    pub(crate) base_url: String,
}

/// Everything a request may touch; shared by every connection.
pub(crate) struct Emulator {
    state: State,
    config: Config,
    /// Sends the deliveries of `POST /v1/emulator/events`.
    deliverer: Deliverer,
    /// Device codes handed out and when; a std mutex: held to look one up.
    device_codes: Mutex<HashMap<String, Instant>>,
}

impl Emulator {
    pub(crate) fn new(state: State, config: Config, deliverer: Deliverer) -> Arc<Self> {
        Arc::new(Self {
            state,
            config,
            deliverer,
            device_codes: Mutex::new(HashMap::new()),
        })
    }
}

type Answer = Result<(StatusCode, Value), Refusal>;

/// What a route answers: a JSON value, or a list made as it is read.
enum Answered {
    Json(StatusCode, Value),
    List(Array),
}

impl Emulator {
    /// Answer one request. `local` is the address its client reached;
    /// `received` is called once the request has arrived whole, from when
    /// its connection is being answered (and never gives way at the cap).
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        local: IpAddr,
        received: impl FnOnce(),
    ) -> Response<Body> {
        let json =
            |value: &Value| Body::whole(serde_json::to_vec(value).expect("a Value serializes"));
        let (status, body) = match self.route(request, local, received).await {
            Ok(Answered::Json(status, value)) => (status, json(&value)),
            Ok(Answered::List(array)) => (StatusCode::OK, Body::Array(array)),
            Err(refusal) => (refusal.status, json(&json!({ "detail": refusal.detail }))),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    async fn route(
        &self,
        request: Request<Incoming>,
        local: IpAddr,
        received: impl FnOnce(),
    ) -> Result<Answered, Refusal> {
        let (parts, body) = request.into_parts();
        guard::check(&parts.headers, &parts.uri, local)
            .map_err(|(status, detail)| Refusal::new(status, detail))?;
        let method = parts.method.clone();
        let route = Route::of(parts.uri.path(), &method)?;
        // The root says what this is. The device flow is how a key is had:
        // open while any key is taken, and locked once keys are named (else
        // two key-less POSTs to it would hand any local process the very
        // key that is there to be required). Every other call, the events
        // door included, wants a key: a key-less event would let any local
        // process fire signed deliveries at the registered receivers.
        let open = match route {
            Route::Root | Route::Device => true,
            Route::DeviceCode | Route::DeviceToken => matches!(self.config.keys, Keys::Any),
            _ => false,
        };
        if !open {
            self.authorize(&parts.headers)?;
        }
        let body = if method == Method::POST || method == Method::PATCH {
            Some(read_body(&parts.headers, body).await?)
        } else {
            None
        };
        received();
        let answer: Answer = match (route, method) {
            (Route::Root, _) => Ok((
                StatusCode::OK,
                json!({
                    "name": "danube-hooks emulate",
                    "version": env!("CARGO_PKG_VERSION"),
                    "allow_http": self.config.allow_http,
                }),
            )),
            // The device flow's verification_url: nothing to approve here.
            (Route::Device, _) => Ok((
                StatusCode::OK,
                json!({
                    "message": "danube-hooks emulate approves every login at its first poll: \
                                there is nothing to do here",
                }),
            )),
            (Route::DeviceCode, _) => Ok(self.device_code()),
            (Route::DeviceToken, _) => self.device_token(&json_object(body.as_deref())?),
            (Route::Webhooks, Method::GET) => return Ok(Answered::List(self.webhook_list())),
            (Route::Webhooks, _) => self.create(&json_object(body.as_deref())?).await,
            (Route::Webhook(id), Method::GET) => self
                .state
                .get(&id)
                .map_or_else(|| Err(Refusal::not_found(&id)), |w| Ok(found(&w))),
            (Route::Webhook(id), Method::PATCH) => {
                self.update(&id, &json_object(body.as_deref())?).await
            }
            (Route::Webhook(id), _) => {
                let generation = self
                    .state
                    .delete(&id)
                    .ok_or_else(|| Refusal::not_found(&id))?;
                self.state.saved(generation).await;
                Ok((StatusCode::OK, json!({ "id": id, "deleted": true })))
            }
            (Route::Events, _) => self.event(body.as_deref()),
            (Route::Deliveries(id), _) => {
                let limit = limit(parts.uri.query())?;
                return self.delivery_list(&id, limit).map(Answered::List);
            }
        };
        answer.map(|(status, value)| Answered::Json(status, value))
    }

    /// The webhooks, in creation order, each written as it is read.
    fn webhook_list(&self) -> Array {
        let state = self.state.clone();
        Array::new(
            self.state.webhook_ids(),
            Box::new(move |id| {
                let webhook = state.get(id)?;
                Some(serde_json::to_vec(&webhook).expect("a webhook serializes"))
            }),
        )
    }

    /// A webhook's newest `limit` delivery records, newest first, each
    /// written as it is read.
    fn delivery_list(&self, id: &str, limit: usize) -> Result<Array, Refusal> {
        let ids = self
            .state
            .delivery_ids(id, limit)
            .ok_or_else(|| Refusal::not_found(id))?;
        let state = self.state.clone();
        Ok(Array::new(
            ids,
            Box::new(move |id| {
                let record = state.record(id)?;
                Some(serde_json::to_vec(&*record).expect("a record serializes"))
            }),
        ))
    }

    /// `danube-api-key: KEY` (the SDKs) or `Authorization: Bearer KEY`
    /// (the API reference).
    fn authorize(&self, headers: &hyper::HeaderMap) -> Result<(), Refusal> {
        let from_key = headers
            .get("danube-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let from_bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let given: Vec<&str> = [from_key, from_bearer]
            .into_iter()
            .flatten()
            .filter(|k| !k.is_empty())
            .collect();
        if given.is_empty() {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Missing API key: send it as the danube-api-key header or as Authorization: Bearer",
            ));
        }
        if given.iter().any(|key| self.config.keys.accepts(key)) {
            Ok(())
        } else {
            Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Invalid API key: this emulator takes only the keys given with --api-key",
            ))
        }
    }

    fn device_code(&self) -> (StatusCode, Value) {
        let device_code = random_alnum(40);
        let user_code = {
            let code = random_alnum(8).to_ascii_uppercase();
            format!("{}-{}", &code[..4], &code[4..])
        };
        let mut codes = self
            .device_codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let expiry = Duration::from_secs(DEVICE_EXPIRES_IN);
        codes.retain(|_, at| at.elapsed() < expiry);
        if codes.len() >= MAX_DEVICE_CODES
            && let Some(oldest) = codes
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(code, _)| code.clone())
        {
            codes.remove(&oldest);
        }
        codes.insert(device_code.clone(), Instant::now());
        drop(codes);
        (
            StatusCode::OK,
            json!({
                "device_code": device_code,
                "user_code": user_code,
                // Where a person would approve it; the emulator approves
                // at the first poll, so its page only says so.
                "verification_url": format!("{}/device", self.config.base_url),
                "expires_in": DEVICE_EXPIRES_IN,
                "interval": DEVICE_INTERVAL,
            }),
        )
    }

    /// Approved at the first poll: 200 with the key; a code used or
    /// expired is 410, one never handed out 404.
    fn device_token(&self, body: &Map<String, Value>) -> Answer {
        let code = match body.get("device_code") {
            Some(Value::String(code)) if !code.is_empty() => code,
            Some(_) => return Err(Refusal::invalid("device_code must be a non-empty string")),
            None => return Err(Refusal::invalid("device_code is required")),
        };
        let issued = self
            .device_codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(code);
        match issued {
            Some(at) if at.elapsed() < Duration::from_secs(DEVICE_EXPIRES_IN) => {
                let api_key = self.config.keys.for_login();
                let prefix: String = api_key
                    .chars()
                    .take((api_key.chars().count() / 3).min(10))
                    .collect();
                Ok((
                    StatusCode::OK,
                    json!({ "api_key": api_key, "key_prefix": prefix }),
                ))
            }
            Some(_) => Err(Refusal::new(
                StatusCode::GONE,
                "The device code has expired",
            )),
            None => Err(Refusal::new(
                StatusCode::GONE,
                "The device code has expired or was already used; start the login again",
            )),
        }
    }

    async fn create(&self, body: &Map<String, Value>) -> Answer {
        let url = match body.get("url") {
            None => return Err(Refusal::invalid("url is required")),
            Some(url) => self.url(url)?,
        };
        let events = match body.get("events") {
            None => {
                return Err(Refusal::invalid(
                    "events is required: at least one event type",
                ));
            }
            Some(events) => events_of(events)?,
        };
        let description = description(body.get("description"))?.flatten();
        let (created, generation) = self
            .state
            .create(NewWebhook {
                url,
                events,
                description,
            })
            .ok_or_else(|| {
                Refusal::invalid(format!(
                    "the emulator holds at most {MAX_WEBHOOKS} webhooks; delete one first"
                ))
            })?;
        self.state.saved(generation).await;
        Ok(found(&created))
    }

    async fn update(&self, id: &str, body: &Map<String, Value>) -> Answer {
        // Checked whole before anything changes, and the id first: an
        // unknown webhook is 404 whatever the body says.
        if self.state.get(id).is_none() {
            return Err(Refusal::not_found(id));
        }
        let change = Change {
            url: body.get("url").map(|url| self.url(url)).transpose()?,
            events: body.get("events").map(events_of).transpose()?,
            is_active: match body.get("is_active") {
                None => None,
                Some(Value::Bool(active)) => Some(*active),
                Some(_) => return Err(Refusal::invalid("is_active must be true or false")),
            },
            description: description(body.get("description"))?,
        };
        let (webhook, generation) = self
            .state
            .update(id, change)
            .ok_or_else(|| Refusal::not_found(id))?;
        self.state.saved(generation).await;
        Ok(found(&webhook))
    }

    /// `{"event", "data"?}`: one delivery per active webhook subscribed to
    /// `event`, sent in the background; 202 with their ids at once. `data`
    /// stays the text it came as (see [`super::payload`]); 503 while the
    /// deliveries waiting to be sent hold all they may.
    fn event(&self, body: Option<&[u8]>) -> Answer {
        let fields = raw_object(body)?;
        // Only a string is read, and never parsed as a tree: a value
        // nested past any parser's depth is just not a string.
        let event = fields
            .get("event")
            .map(|raw| serde_json::from_str::<String>(raw.get()).map_err(|_| raw_kind(raw.get())));
        let event = match event {
            Some(Ok(event)) if EVENT_TYPES.contains(&event.as_str()) => event,
            Some(Ok(event)) => {
                return Err(Refusal::invalid(format!(
                    "unknown event type {}; Danube's are: {}",
                    quoted(&event),
                    EVENT_TYPES.join(", ")
                )));
            }
            Some(Err(kind)) => {
                return Err(Refusal::invalid(format!(
                    "event must be a string, not {kind}"
                )));
            }
            None => {
                return Err(Refusal::invalid(format!(
                    "event is required: one of {}",
                    EVENT_TYPES.join(", ")
                )));
            }
        };
        let empty: &RawValue = serde_json::from_str("{}").expect("JSON");
        let data = fields.get("data").copied().unwrap_or(empty);
        let depth = payload::nesting(data.get());
        if depth > MAX_DATA_DEPTH {
            return Err(Refusal::invalid(format!(
                "data nests {depth} levels deep; at most {MAX_DATA_DEPTH}, so that a reader of \
                 the delivery log (an SDK, danube-hooks) can parse it"
            )));
        }
        let targets = self.state.targets(&event);
        let deliveries: Vec<Value> = self
            .deliverer
            .dispatch(&event, data, targets)
            .map_err(|busy| Refusal::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()))?
            .into_iter()
            .map(|(id, webhook_id)| json!({ "id": id, "webhook_id": webhook_id }))
            .collect();
        Ok((StatusCode::ACCEPTED, json!({ "deliveries": deliveries })))
    }

    /// Danube's rule: `https://`; `--allow-http` lets `http://` in too.
    fn url(&self, value: &Value) -> Result<String, Refusal> {
        let Value::String(url) = value else {
            return Err(Refusal::invalid("url must be a string"));
        };
        if url.len() > MAX_URL {
            return Err(Refusal::invalid(format!(
                "url must be at most {MAX_URL} bytes, not {}",
                url.len()
            )));
        }
        let lower = url.to_ascii_lowercase();
        let https = lower.starts_with("https://");
        if !(https || self.config.allow_http && lower.starts_with("http://")) {
            return Err(Refusal::invalid(if self.config.allow_http {
                format!(
                    "url must start with https:// or http:// (this emulator runs with \
                     --allow-http), not {}",
                    quoted(url)
                )
            } else {
                format!(
                    "url must start with https:// (got {}); a local http:// receiver can be \
                     registered when the emulator runs with --allow-http",
                    quoted(url)
                )
            }));
        }
        crate::http::check_url(url)
            .map_err(|err| Refusal::invalid(format!("url: {}", truncate(&err.to_string(), 400))))?;
        Ok(url.clone())
    }
}

enum Route {
    Root,
    Device,
    DeviceCode,
    DeviceToken,
    Webhooks,
    Webhook(String),
    Deliveries(String),
    Events,
}

impl Route {
    /// The route of `path`, if `method` is one it takes: else 404 or 405.
    fn of(path: &str, method: &Method) -> Result<Self, Refusal> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match segments.as_slice() {
            ["v1", "auth", "device", "code"] => Self::DeviceCode,
            ["v1", "auth", "device", "token"] => Self::DeviceToken,
            ["v1", "webhooks"] | ["v1", "webhooks", ""] => Self::Webhooks,
            ["v1", "webhooks", id] if !id.is_empty() => Self::Webhook((*id).to_owned()),
            ["v1", "webhooks", id, "deliveries"] if !id.is_empty() => {
                Self::Deliveries((*id).to_owned())
            }
            ["v1", "emulator", "events"] => Self::Events,
            ["device"] => Self::Device,
            [""] => Self::Root,
            _ => return Err(Refusal::new(StatusCode::NOT_FOUND, "Not Found")),
        };
        let allowed: &[Method] = match route {
            Self::DeviceCode | Self::DeviceToken | Self::Events => &[Method::POST],
            Self::Webhooks => &[Method::GET, Method::POST],
            Self::Webhook(_) => &[Method::GET, Method::PATCH, Method::DELETE],
            Self::Deliveries(_) | Self::Root | Self::Device => &[Method::GET],
        };
        if !allowed.contains(method) {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "Method Not Allowed: {} takes {}",
                    quoted(path),
                    allowed
                        .iter()
                        .map(Method::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(route)
    }
}

/// A 200 with `value` as JSON (the SDK takes no other success status).
fn found<T: serde::Serialize>(value: &T) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        serde_json::to_value(value).expect("the answer serializes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_any_and_only() {
        assert!(Keys::Any.accepts("x"));
        assert!(!Keys::Any.accepts(""));
        let only = Keys::Only(vec!["dk_one".into(), "dk_two".into()]);
        assert!(only.accepts("dk_two"));
        assert!(!only.accepts("dk_tw"));
        assert!(!only.accepts("dk_three"));
        assert_eq!(only.for_login(), "dk_one");
        assert!(Keys::Any.for_login().starts_with("dk_emu_"));
    }
}
