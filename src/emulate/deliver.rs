//! The emulator's deliveries (SPEC §13, issue 14 item 2): one event, one
//! delivery per target webhook, each signed with that webhook's secret,
//! posted with Danube's deadline, retried as `trigger` retries (through
//! [`Sender::retry`]) and logged after every attempt as a Danube delivery
//! record moving from `pending` to `success` or `failed`.
//!
//! Every wait is bounded: an attempt ends at its deadline whatever the
//! receiver does (hangs, resets, trickles a huge body), at most
//! [`MAX_IN_FLIGHT`] attempts hold a socket at once, and a finished
//! delivery leaves nothing behind here; its record lives in the log.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::delivery::{BODY_PREVIEW_CHARS, format_ms};
use crate::display::{escape_line, to_json_line};
use crate::http::Trust;
use crate::sender::{Attempt, Outgoing, RetryPlan, Sender};
use crate::signature::Secret;

/// Attempts sending at once, over every delivery: 1,000 events fanned out
/// to 3 webhooks wait their turn instead of opening 3,000 sockets.
pub const MAX_IN_FLIGHT: usize = 64;

/// The most of a receiver's answer that is read: the record keeps its
/// first 2000 characters, and a 10 MB answer must not cost 10 MB.
pub const MAX_ANSWER_READ: usize = 64 * 1024;

/// One webhook to deliver to.
#[derive(Clone, Debug)]
pub struct Target {
    pub webhook_id: String,
    pub url: String,
    pub secret: Secret,
}

/// How deliveries are attempted.
#[derive(Clone)]
pub struct DeliveryOptions {
    /// One attempt's deadline (Danube: 10 s).
    pub timeout: Duration,
    /// The waits before attempt 2, 3, …, the last repeating (`trigger`'s
    /// `--backoff`; Danube's schedule is not published).
    pub backoff: Vec<Duration>,
    /// Attempts at most per delivery (Danube: 3).
    pub attempts: u32,
    pub trust: Trust,
}

impl Default for DeliveryOptions {
    /// Danube's deadline and attempts, `trigger`'s backoff.
    fn default() -> Self {
        let plan = RetryPlan::default();
        Self {
            timeout: plan.timeout,
            backoff: plan.backoff,
            attempts: plan.attempts,
            trust: Trust::default(),
        }
    }
}

impl DeliveryOptions {
    fn into_plan(self) -> (RetryPlan, Trust) {
        let plan = RetryPlan {
            attempts: self.attempts.max(1),
            backoff: self.backoff,
            timeout: self.timeout,
        };
        (plan, self.trust)
    }
}

/// A delivery record's status, as Danube names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Success,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }
}

/// A record's state after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptUpdate {
    /// Attempts made so far (1, 2, 3).
    pub attempts: u32,
    /// `Pending` while another attempt follows, then `Success` or `Failed`.
    pub status: DeliveryStatus,
    /// The status of the attempt's answer; `None` when nothing came back
    /// (refused, reset, timed out).
    pub response_status: Option<u16>,
    /// The first 2000 characters of the answer's body (of at most
    /// [`MAX_ANSWER_READ`] bytes read), invalid UTF-8 replaced.
    pub response_body: Option<String>,
    /// RFC 3339 (ms) start of the final attempt, once the delivery
    /// succeeded or finally failed; `None` while pending. SPEC §1 names the
    /// field without saying when Danube sets it; this is when it was
    /// delivered, or given up on.
    pub delivered_at: Option<String>,
}

/// Where the records go: the emulator's state.
pub trait DeliveryLog: Send + Sync + 'static {
    /// A new delivery record (status pending, attempts 0, `created_at` now); returns its id ("dlv_…").
    fn begin(&self, webhook_id: &str, event: &str, payload: &Value) -> String;
    /// After each attempt (and once more when it is final).
    ///
    /// Called from a runtime worker after every attempt: keep it short
    /// (no waiting on a disk sync per call).
    fn attempted(&self, delivery_id: &str, update: &AttemptUpdate);
}

/// How each attempt is told on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutput {
    /// One line per attempt, for a person.
    Human,
    /// One JSON object per line per attempt (`--json`).
    Json,
    /// Nothing: a caller that reads the log instead (tests).
    Quiet,
}

/// Sends the deliveries of events; cheap to clone, clones share the
/// client, the log and the bound on attempts in flight.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn DeliveryLog>,
    plan: RetryPlan,
    sender: Sender,
    output: AttemptOutput,
    gate: Semaphore,
}

impl Deliverer {
    pub fn new(log: Arc<dyn DeliveryLog>, options: DeliveryOptions, output: AttemptOutput) -> Self {
        let (plan, trust) = options.into_plan();
        Self {
            inner: Arc::new(Inner {
                log,
                plan,
                sender: Sender::new(&trust, MAX_ANSWER_READ).cutting_long_answers(),
                output,
                gate: Semaphore::new(MAX_IN_FLIGHT),
            }),
        }
    }

    /// Build the SPEC §1 envelope once (fresh RFC 3339 µs timestamp), begin one record per target,
    /// and run each target's attempts in the background (bounded concurrency); return
    /// (`delivery_id`, `webhook_id`) at once. Must be called within a tokio runtime.
    pub fn dispatch(
        &self,
        event: &str,
        data: Value,
        targets: Vec<Target>,
    ) -> Vec<(String, String)> {
        let payload = envelope(event, Utc::now(), data);
        let body: Arc<[u8]> = serde_json::to_vec(&payload)
            .expect("a Value serializes")
            .into();
        let event: Arc<str> = event.into();
        targets
            .into_iter()
            .map(|target| {
                let delivery_id = self.inner.log.begin(&target.webhook_id, &event, &payload);
                let webhook_id = target.webhook_id.clone();
                let job = Job {
                    delivery_id: delivery_id.clone(),
                    event: event.clone(),
                    body: body.clone(),
                    target,
                };
                tokio::spawn(self.inner.clone().run(job));
                (delivery_id, webhook_id)
            })
            .collect()
    }
}

/// The envelope of SPEC §1, in Danube's field order.
fn envelope(event: &str, at: DateTime<Utc>, data: Value) -> Value {
    let mut envelope = serde_json::Map::new();
    envelope.insert("event".into(), event.into());
    envelope.insert("timestamp".into(), crate::events::timestamp(at).into());
    envelope.insert("data".into(), data);
    Value::Object(envelope)
}

/// One delivery in the background.
struct Job {
    delivery_id: String,
    event: Arc<str>,
    body: Arc<[u8]>,
    target: Target,
}

impl Inner {
    async fn run(self: Arc<Self>, job: Job) {
        // Read back by the report of the attempt it signed; an atomic
        // because both closures see it and the future must be `Send`.
        let signed_at = AtomicI64::new(0);
        self.sender
            .retry(
                &self.plan,
                Some(&self.gate),
                |_| {
                    // Whether Danube re-signs a retry is not published
                    // (SPEC §1). The emulator signs every attempt anew with
                    // a fresh `t` over the same body, as `trigger` does by
                    // default, and prints the `t` of each attempt so this
                    // choice shows; retries within one second repeat it.
                    let t = Utc::now().timestamp();
                    signed_at.store(t, Ordering::Relaxed);
                    Outgoing::danube(
                        &job.target.url,
                        Some(&job.target.secret),
                        t,
                        job.body.to_vec(),
                    )
                },
                |n, attempt, wait| {
                    let update = update_after(n, &attempt, wait.is_some());
                    self.log.attempted(&job.delivery_id, &update);
                    self.print(
                        &job,
                        n,
                        signed_at.load(Ordering::Relaxed),
                        &attempt,
                        &update,
                        wait,
                    );
                },
            )
            .await;
    }

    fn print(
        &self,
        job: &Job,
        n: u32,
        t: i64,
        attempt: &Attempt,
        update: &AttemptUpdate,
        wait: Option<Duration>,
    ) {
        let line = match self.output {
            AttemptOutput::Quiet => return,
            AttemptOutput::Human => {
                human_line(job, n, self.plan.attempts, t, attempt, update, wait)
            }
            AttemptOutput::Json => to_json_line(&AttemptLine::new(
                job,
                n,
                self.plan.attempts,
                t,
                attempt,
                update,
                wait,
            )),
        };
        // One write per line, so lines of concurrent deliveries never
        // interleave; a closed stdout must not take the emulator down.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// The record's state after attempt `n`.
fn update_after(n: u32, attempt: &Attempt, more: bool) -> AttemptUpdate {
    let answer = attempt.result.as_ref().ok();
    let status = match (more, attempt.succeeded()) {
        (true, _) => DeliveryStatus::Pending,
        (false, true) => DeliveryStatus::Success,
        (false, false) => DeliveryStatus::Failed,
    };
    AttemptUpdate {
        attempts: n,
        status,
        response_status: answer.map(|a| a.status),
        response_body: answer.map(|a| {
            String::from_utf8_lossy(&a.body)
                .chars()
                .take(BODY_PREVIEW_CHARS)
                .collect()
        }),
        delivered_at: (status != DeliveryStatus::Pending)
            .then(|| attempt.started.to_rfc3339_opts(SecondsFormat::Millis, true)),
    }
}

/// `2026-11-30T17:05:01.123Z dlv_… wh_… tool.execution.completed attempt
/// 1/3 t=1764522301: 500 in 3ms; retrying in 1s`, escaped whole: the
/// URL in an error and the ids are not ours to trust.
fn human_line(
    job: &Job,
    n: u32,
    of: u32,
    t: i64,
    attempt: &Attempt,
    update: &AttemptUpdate,
    wait: Option<Duration>,
) -> String {
    let then = match (wait, update.status) {
        (Some(wait), _) => format!("retrying in {}", format_ms(millis(wait))),
        (None, DeliveryStatus::Success) => "success".to_string(),
        (None, _) => format!("failed after {n} attempt{}", if n == 1 { "" } else { "s" }),
    };
    let line = format!(
        "{} {} {} {} attempt {n}/{of} t={t} (signed anew): {}; {then}",
        attempt.started.to_rfc3339_opts(SecondsFormat::Millis, true),
        job.delivery_id,
        job.target.webhook_id,
        job.event,
        attempt.summary(),
    );
    escape_line(&line).into_owned()
}

/// `--json`: one attempt.
#[derive(serde::Serialize)]
struct AttemptLine<'a> {
    time: String,
    delivery_id: &'a str,
    webhook_id: &'a str,
    event: &'a str,
    url: &'a str,
    attempt: u32,
    max_attempts: u32,
    /// The `t` this attempt was signed with: each attempt is signed anew.
    signed_t: i64,
    response_status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    /// The record's status after this attempt.
    status: DeliveryStatus,
    retry_in_ms: Option<u64>,
}

impl<'a> AttemptLine<'a> {
    fn new(
        job: &'a Job,
        n: u32,
        of: u32,
        t: i64,
        attempt: &Attempt,
        update: &AttemptUpdate,
        wait: Option<Duration>,
    ) -> Self {
        Self {
            time: attempt.started.to_rfc3339_opts(SecondsFormat::Millis, true),
            delivery_id: &job.delivery_id,
            webhook_id: &job.target.webhook_id,
            event: &job.event,
            url: &job.target.url,
            attempt: n,
            max_attempts: of,
            signed_t: t,
            response_status: update.response_status,
            error: attempt.result.as_ref().err().map(ToString::to_string),
            duration_ms: millis(attempt.duration),
            status: update.status,
            retry_in_ms: wait.map(millis),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
