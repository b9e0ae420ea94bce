//! A fake Danube API on loopback for the black-box tests, following SPEC
//! §11 to the letter: the device flow, webhooks (the secret in the answer
//! to a create only; `https://` URLs and at least one event, else 422),
//! `PATCH` with only the given fields, `DELETE`, the delivery log, the
//! credential header on everything but the device flow, and both error
//! shapes. Webhooks belong to the organization of `danube-org-id` at
//! their create (none: the key's own), and another organization neither
//! lists nor finds them. A test can queue faults (401, 404, 429 with `Retry-After`, 500,
//! a stall, a create that happens but whose answer never comes) and read
//! every request it saw.
//!
//! One thread per connection, each answered and closed, so a stalled
//! request holds up nothing else.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::{command_with_config, read_request};

/// The API key the fake accepts, as `danube-api-key` or as a bearer token.
pub const KEY: &str = "dk_live_Q7vK2mX9pL4nR8sT1wY6";
/// A second key the fake accepts, of another organization (`org_of_key_b`):
/// without `danube-org-id` it sees that organization's webhooks, not
/// [`KEY`]'s.
pub const KEY_B: &str = "dk_live_B2other0rgKey9xYz";
/// Danube's short name of [`KEY`].
pub const KEY_PREFIX: &str = "dk_live_Q7";
/// The device code the fake hands out and wants back.
pub const DEVICE_CODE: &str = "dc_1";

/// What the next matching request gets instead of its answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status and body (and `Retry-After` seconds when given).
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Hold the request this long, answer nothing, close.
    Stall(Duration),
    /// Do what the request asks (a create makes its webhook), then hold the
    /// answer this long and close without it: a create that timed out.
    ApplyThenStall(Duration),
}

impl Fault {
    /// A status with Danube's `{"detail": …}` body.
    pub fn status(status: u16, detail: &str) -> Self {
        Self::Status {
            status,
            body: json!({ "detail": detail }).to_string(),
            retry_after: None,
        }
    }
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The header lines, lower-cased.
    pub head: String,
    pub body: String,
}

impl Seen {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Device {
    expires_in: u64,
    interval: u64,
    user_code: String,
    /// Each token poll takes the next; the last one repeats.
    polls: VecDeque<(u16, String)>,
}

#[derive(Default)]
struct State {
    /// Every webhook, each with its secret, in creation order.
    webhooks: Vec<Value>,
    deliveries: HashMap<String, Vec<Value>>,
    /// Each webhook's organization (the `danube-org-id` it was created
    /// with; `None` for the key's own): another organization's webhooks
    /// are neither listed nor found (404), as in Danube.
    orgs: HashMap<String, Option<String>>,
    faults: Vec<(String, String, Fault)>,
    seen: Vec<Seen>,
    created: u64,
    device: Option<Device>,
}

/// The binary with its config under `config` and this fake's key.
pub fn danube_hooks(config: &Path) -> Command {
    let mut cmd = command_with_config(config);
    cmd.env("DANUBE_API_KEY", KEY);
    cmd
}

/// `listen --json --no-store --register --api-url URL --no-verify-url`,
/// then `extra`: the public URLs these tests register (`abc.ngrok.app`)
/// lead nowhere, and no test leaves loopback to prove them.
pub fn register_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "--json",
        "--no-store",
        "--register",
        "--api-url",
        url,
        "--no-verify-url",
    ];
    all.extend_from_slice(extra);
    all
}

/// The fake API; it stops when dropped.
pub struct FakeDanube {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeDanube {
    pub fn start() -> Self {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in socket.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { addr, state, stop }
    }

    /// The base URL, for `--api-url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The device flow's code, and the answers to its polls in order (the
    /// last one repeats). Without this, the first poll is approved.
    pub fn device_flow(
        &self,
        expires_in: u64,
        interval: u64,
        user_code: &str,
        polls: Vec<(u16, String)>,
    ) {
        self.state.lock().unwrap().device = Some(Device {
            expires_in,
            interval,
            user_code: user_code.to_owned(),
            polls: polls.into(),
        });
    }

    /// A webhook someone else made (through Danube's site, say): its id
    /// and secret.
    pub fn add_webhook(&self, url: &str, events: &[&str]) -> (String, String) {
        let mut state = self.state.lock().unwrap();
        let events: Vec<Value> = events.iter().map(|e| json!(e)).collect();
        let webhook = new_webhook(&mut state, url, &events, None);
        (
            webhook["id"].as_str().unwrap().to_owned(),
            webhook["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Set fields of webhook `id` directly, as Danube's site would (a
    /// description with a control character, a paused webhook).
    pub fn edit_webhook(&self, id: &str, fields: &Value) {
        let mut state = self.state.lock().unwrap();
        let webhook = state.webhooks.iter_mut().find(|w| w["id"] == id).unwrap();
        for (name, value) in fields.as_object().unwrap() {
            webhook[name] = value.clone();
        }
    }

    /// Every webhook as it stands, each with its `secret`.
    pub fn webhooks(&self) -> Vec<Value> {
        self.state.lock().unwrap().webhooks.clone()
    }

    /// Danube's delivery log for `webhook_id`, newest first.
    pub fn set_deliveries(&self, webhook_id: &str, records: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .deliveries
            .insert(webhook_id.to_owned(), records);
    }

    /// The next request with this method whose path starts with
    /// `path_prefix` gets `fault`. Faults queue, each used once.
    pub fn fail_next(&self, method: &str, path_prefix: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((method.to_owned(), path_prefix.to_owned(), fault));
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests so far with this method and a path starting with `prefix`.
    pub fn seen_of(&self, method: &str, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.path.starts_with(prefix))
            .collect()
    }
}

impl Drop for FakeDanube {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// An answer: status, extra headers, body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn detail(status: u16, detail: &str) -> Self {
        Self::json(status, &json!({ "detail": detail }))
    }

    fn not_found(what: &str) -> Self {
        Self::json(
            404,
            &json!({"error": {"code": "not_found", "message": format!("{what} not found"), "details": null}}),
        )
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let bytes = read_request(&mut stream, Duration::from_secs(10));
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut line = head.lines().next().unwrap_or_default().split_whitespace();
    let seen = Seen {
        method: line.next().unwrap_or_default().to_owned(),
        path: line.next().unwrap_or_default().to_owned(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    };
    let (answer, stall) = {
        let mut state = state.lock().unwrap();
        state.seen.push(seen.clone());
        let fault = take_fault(&mut state, &seen);
        match fault {
            Some(Fault::Status {
                status,
                body,
                retry_after,
            }) => (
                Answer {
                    status,
                    headers: retry_after
                        .map(|s| ("retry-after", s.to_string()))
                        .into_iter()
                        .collect(),
                    body,
                },
                None,
            ),
            Some(Fault::Stall(wait)) => (Answer::detail(500, "stalled"), Some(wait)),
            Some(Fault::ApplyThenStall(wait)) => (route(&mut state, &seen), Some(wait)),
            None => (route(&mut state, &seen), None),
        }
    };
    if let Some(wait) = stall {
        std::thread::sleep(wait);
        return;
    }
    let reason = match answer.status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        410 => "Gone",
        422 => "Unprocessable Entity",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nconnection: close\r\n",
        answer.status
    );
    for (name, value) in &answer.headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if answer.status == 204 {
        out.push_str("\r\n");
    } else {
        let _ = write!(
            out,
            "content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            answer.body.len(),
            answer.body
        );
    }
    let _ = stream.write_all(out.as_bytes());
}

fn take_fault(state: &mut State, seen: &Seen) -> Option<Fault> {
    let at = state.faults.iter().position(|(method, prefix, _)| {
        *method == seen.method && seen.path.starts_with(prefix.as_str())
    })?;
    Some(state.faults.remove(at).2)
}

fn authorized(seen: &Seen) -> bool {
    [KEY, KEY_B].iter().any(|key| {
        let key = key.to_ascii_lowercase();
        seen.head.lines().any(|line| {
            line == format!("danube-api-key: {key}")
                || line == format!("authorization: bearer {key}")
        })
    })
}

/// The organization a request is made for (`danube-org-id`, lower-cased
/// as the head is), else the key's own: `None` for [`KEY`]'s.
fn org_of(seen: &Seen) -> Option<String> {
    let header = seen
        .head
        .lines()
        .find_map(|line| line.strip_prefix("danube-org-id:"))
        .map(|org| org.trim().to_owned());
    let key_b = KEY_B.to_ascii_lowercase();
    header.or_else(|| {
        seen.head
            .lines()
            .any(|line| line.ends_with(&format!(" {key_b}")))
            .then(|| "org_of_key_b".to_owned())
    })
}

/// The organization webhook `id` belongs to (`None`: the key's own, and
/// what a webhook added by the test itself has).
fn webhook_org(state: &State, id: &str) -> Option<String> {
    state.orgs.get(id).cloned().flatten()
}

fn route(state: &mut State, seen: &Seen) -> Answer {
    let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let org = org_of(seen);
    match (seen.method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "auth", "device", "code"]) => device_code(state),
        ("POST", ["v1", "auth", "device", "token"]) => device_token(state, seen),
        (_, ["v1", "webhooks", ..]) if !authorized(seen) => Answer::detail(401, "Invalid API key"),
        ("GET", ["v1", "webhooks"]) => {
            let listed: Vec<Value> = state
                .webhooks
                .iter()
                .filter(|w| webhook_org(state, w["id"].as_str().unwrap()) == org)
                .map(without_secret)
                .collect();
            Answer::json(200, &Value::Array(listed))
        }
        ("POST", ["v1", "webhooks"]) => {
            let answer = create(state, &seen.json());
            let made = serde_json::from_str::<Value>(&answer.body).unwrap_or_default();
            if let Some(id) = made["id"].as_str() {
                state.orgs.insert(id.to_owned(), org);
            }
            answer
        }
        (_, ["v1", "webhooks", id, ..]) if webhook_org(state, id) != org => {
            Answer::not_found("Webhook")
        }
        ("PATCH", ["v1", "webhooks", id]) => update(state, id, &seen.json()),
        ("DELETE", ["v1", "webhooks", id]) => {
            let before = state.webhooks.len();
            state.webhooks.retain(|w| w["id"] != *id);
            if state.webhooks.len() == before {
                return Answer::not_found("Webhook");
            }
            state.deliveries.remove(*id);
            Answer::json(204, &Value::Null)
        }
        ("GET", ["v1", "webhooks", id, "deliveries"]) => deliveries(state, id, query),
        _ => Answer::detail(404, "Not Found"),
    }
}

fn device_code(state: &mut State) -> Answer {
    let (expires_in, interval, user_code) = state
        .device
        .as_ref()
        .map_or((600, 5, "ABCD-EFGH".to_owned()), |d| {
            (d.expires_in, d.interval, d.user_code.clone())
        });
    Answer::json(
        200,
        &json!({
            "device_code": DEVICE_CODE,
            "user_code": user_code,
            "verification_url": "https://danubeai.com/device",
            "expires_in": expires_in,
            "interval": interval,
        }),
    )
}

fn device_token(state: &mut State, seen: &Seen) -> Answer {
    if seen.json()["device_code"] != DEVICE_CODE {
        return Answer::detail(422, "device_code required");
    }
    let approved = (
        200,
        json!({"api_key": KEY, "key_prefix": KEY_PREFIX}).to_string(),
    );
    let (status, body) = match &mut state.device {
        Some(device) if device.polls.len() > 1 => device.polls.pop_front().unwrap(),
        Some(device) => device.polls.front().cloned().unwrap_or(approved),
        None => approved,
    };
    Answer {
        status,
        headers: Vec::new(),
        body,
    }
}

fn without_secret(webhook: &Value) -> Value {
    let mut webhook = webhook.clone();
    webhook.as_object_mut().unwrap().remove("secret");
    webhook
}

/// Why Danube refuses these fields, if it does.
fn refused(fields: &Value, creating: bool) -> Option<Answer> {
    if !fields.is_object() {
        return Some(Answer::detail(422, "body must be a JSON object"));
    }
    match &fields["url"] {
        Value::Null if !creating => {}
        Value::String(url) if url.starts_with("https://") => {}
        _ => return Some(Answer::detail(422, "url must start with https://")),
    }
    match &fields["events"] {
        Value::Null if !creating => {}
        Value::Array(events) if !events.is_empty() && events.iter().all(Value::is_string) => {}
        _ => {
            return Some(Answer::detail(
                422,
                "events must list at least one event type",
            ));
        }
    }
    None
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn new_webhook(
    state: &mut State,
    url: &str,
    events: &[Value],
    description: Option<&Value>,
) -> Value {
    state.created += 1;
    let n = state.created;
    let webhook = json!({
        "id": format!("wh_{n:04x}"),
        "url": url,
        "events": events,
        "is_active": true,
        "description": description.cloned().unwrap_or(Value::Null),
        "created_at": now(),
        "updated_at": now(),
        "secret": format!("whsec_fake{n:04}{}", "Kq9r8GYqrTwjUPD8ILPZIo2L"),
    });
    state.webhooks.push(webhook.clone());
    webhook
}

fn create(state: &mut State, fields: &Value) -> Answer {
    if let Some(refusal) = refused(fields, true) {
        return refusal;
    }
    let url = fields["url"].as_str().unwrap().to_owned();
    let events = fields["events"].as_array().unwrap().clone();
    let webhook = new_webhook(state, &url, &events, fields.get("description"));
    Answer::json(201, &webhook)
}

fn update(state: &mut State, id: &str, fields: &Value) -> Answer {
    if let Some(refusal) = refused(fields, false) {
        return refusal;
    }
    let Some(webhook) = state.webhooks.iter_mut().find(|w| w["id"] == id) else {
        return Answer::not_found("Webhook");
    };
    for name in ["url", "events", "is_active", "description"] {
        if let Some(value) = fields.get(name) {
            webhook[name] = value.clone();
        }
    }
    webhook["updated_at"] = json!(now());
    Answer::json(200, &without_secret(webhook))
}

fn deliveries(state: &State, id: &str, query: &str) -> Answer {
    if !state.webhooks.iter().any(|w| w["id"] == id) {
        return Answer::not_found("Webhook");
    }
    let limit = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("limit="))
        .map_or(Ok(20), str::parse::<usize>);
    let Ok(limit @ 1..=100) = limit else {
        return Answer::detail(422, "limit must be between 1 and 100");
    };
    let log = state.deliveries.get(id).cloned().unwrap_or_default();
    Answer::json(200, &Value::Array(log.into_iter().take(limit).collect()))
}
