//! The emulator's deliveries (SPEC §13): one event, one
//! delivery per target webhook, each signed with that webhook's secret,
//! posted with Danube's deadline, retried as `trigger` retries (through
//! [`Sender::retry`]) and logged after every attempt as a Danube delivery
//! record moving from `pending` to `success` or `failed`.
//!
//! Every wait is bounded: an attempt ends at its deadline whatever the
//! receiver does (hangs, resets, trickles a huge body), at most
//! [`MAX_IN_FLIGHT`] attempts hold a socket at once, the deliveries
//! waiting their turn hold at most [`QUEUE_BYTES`] (past it an event is
//! refused), and a finished delivery leaves nothing behind here; its record
//! lives in the log.

use std::io::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::payload::Payload;
use crate::delivery::{format_duration_ms, format_ms, format_time};
use crate::display::{escape_line, to_json_line};
use crate::facts::RESPONSE_BODY_CHARS;
use crate::http::Trust;
use crate::http::{Attempt, Outgoing, Sender};
use crate::sender::RetryPlan;
use crate::signature::Secret;

/// Attempts sending at once, over every delivery: 1,000 events fanned out
/// to 3 webhooks wait their turn instead of opening 3,000 sockets.
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// The most of a receiver's answer that is read: the record keeps its
/// first 2000 characters, and a 10 MB answer must not cost 10 MB.
pub(crate) const MAX_ANSWER_READ: usize = 64 * 1024;

/// One webhook to deliver to.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) webhook_id: String,
    pub(crate) url: String,
    pub(crate) secret: Secret,
}

/// How deliveries are attempted.
#[derive(Clone)]
pub(crate) struct DeliveryOptions {
    /// One attempt's deadline (Danube: 10 s).
    pub(crate) timeout: Duration,
    /// The waits before attempt 2, 3, …, the last repeating (`trigger`'s
    /// `--backoff`; Danube's schedule is not published).
    pub(crate) backoff: Vec<Duration>,
    /// Attempts at most per delivery (Danube: 3).
    pub(crate) attempts: u32,
    pub(crate) trust: Trust,
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
pub(crate) enum DeliveryStatus {
    Pending,
    Success,
    Failed,
}

/// A record's state after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttemptUpdate {
    /// Attempts made so far (1, 2, 3).
    pub(crate) attempts: u32,
    /// `Pending` while another attempt follows, then `Success` or `Failed`.
    pub(crate) status: DeliveryStatus,
    /// The status of the attempt's answer; `None` when nothing came back
    /// (refused, reset, timed out).
    pub(crate) response_status: Option<u16>,
    /// The first 2000 characters of the answer's body (of at most
    /// [`MAX_ANSWER_READ`] bytes read), invalid UTF-8 replaced.
    pub(crate) response_body: Option<String>,
    /// RFC 3339 (ms) start of the final attempt, once the delivery
    /// succeeded or finally failed; `None` while pending. SPEC §1 names the
    /// field without saying when Danube sets it; this is when it was
    /// delivered, or given up on.
    pub(crate) delivered_at: Option<String>,
}

/// Where the records go: the emulator's state.
pub(crate) trait DeliveryLog: Send + Sync + 'static {
    /// A new delivery record (status pending, attempts 0, `created_at` now); returns its id ("dlv_…").
    fn begin(&self, webhook_id: &str, event: &str, payload: &Payload) -> String;
    /// After each attempt (and once more when it is final).
    ///
    /// Called from a runtime worker after every attempt: keep it short
    /// (no waiting on a disk sync per call).
    fn attempted(&self, delivery_id: &str, update: &AttemptUpdate);
}

/// How each attempt is told on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttemptOutput {
    /// One line per attempt, for a person.
    Human,
    /// One JSON object per line per attempt (`--json`).
    Json,
    /// Nothing: a caller that reads the log instead (tests).
    #[cfg(test)]
    Quiet,
}

/// Sends the deliveries of events; cheap to clone, clones share the
/// client, the log and the bound on attempts in flight.
#[derive(Clone)]
pub(crate) struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn DeliveryLog>,
    plan: RetryPlan,
    sender: Sender,
    output: AttemptOutput,
    gate: Semaphore,
    queue: Queue,
}

impl Deliverer {
    pub(crate) fn new(
        log: Arc<dyn DeliveryLog>,
        options: DeliveryOptions,
        output: AttemptOutput,
    ) -> Self {
        let (plan, trust) = options.into_plan();
        Self {
            inner: Arc::new(Inner {
                log,
                plan,
                sender: Sender::new(&trust, MAX_ANSWER_READ).cutting_long_answers(),
                output,
                gate: Semaphore::new(MAX_IN_FLIGHT),
                queue: Queue::default(),
            }),
        }
    }

    /// Build the SPEC §1 envelope once (fresh RFC 3339 µs timestamp), begin one record per target,
    /// and run each target's attempts in the background (bounded concurrency); return
    /// (`delivery_id`, `webhook_id`) at once. Must be called within a tokio runtime.
    ///
    /// Refused, with nothing begun, while the deliveries waiting to be
    /// sent hold [`QUEUE_BYTES`]: a receiver that hangs must not let
    /// events pile up in memory without end.
    pub(crate) fn dispatch(
        &self,
        event: &str,
        data: &RawValue,
        targets: Vec<Target>,
    ) -> Result<Vec<(String, String)>, Busy> {
        let payload = Payload::envelope(event, Utc::now(), data);
        let cost = payload.len()
            + targets
                .iter()
                .map(|t| JOB_OVERHEAD + t.url.len() + t.webhook_id.len())
                .sum::<usize>();
        let ticket = Arc::new(self.inner.queue.take(cost)?);
        let event: Arc<str> = event.into();
        Ok(targets
            .into_iter()
            .map(|target| {
                let delivery_id = self.inner.log.begin(&target.webhook_id, &event, &payload);
                let webhook_id = target.webhook_id.clone();
                let job = Job {
                    delivery_id: delivery_id.clone(),
                    event: event.clone(),
                    payload: payload.clone(),
                    target,
                    _ticket: Arc::clone(&ticket),
                };
                tokio::spawn(self.inner.clone().run(job));
                (delivery_id, webhook_id)
            })
            .collect())
    }
}

/// Bytes that deliveries waiting to be sent (or being sent) may hold.
pub(crate) const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// What a delivery job costs besides its payload and its target's text.
const JOB_OVERHEAD: usize = 1024;

/// Events refused while the deliveries waiting to be sent hold too much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{jobs} events' deliveries are waiting to be sent and hold {} KiB (at most {} KiB): try \
     again once some are done",
    held / 1024,
    QUEUE_BYTES / 1024
)]
pub(crate) struct Busy {
    pub(crate) jobs: usize,
    pub(crate) held: usize,
}

/// The bytes held by deliveries in flight, counted as events are taken
/// and given back when an event's last delivery ends.
#[derive(Default)]
struct Queue {
    /// (bytes, events); a std mutex: held to add or subtract.
    held: Arc<Mutex<(usize, usize)>>,
}

impl Queue {
    /// Count `cost` bytes in, or refuse when they do not fit; an event is
    /// always taken when nothing else is waiting.
    fn take(&self, cost: usize) -> Result<Ticket, Busy> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.1 > 0 && held.0 + cost > QUEUE_BYTES {
            return Err(Busy {
                jobs: held.1,
                held: held.0,
            });
        }
        held.0 += cost;
        held.1 += 1;
        Ok(Ticket {
            held: Arc::clone(&self.held),
            cost,
        })
    }
}

/// One event's share of the queue, given back when dropped.
#[derive(Debug)]
struct Ticket {
    held: Arc<Mutex<(usize, usize)>>,
    cost: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.0 -= self.cost;
        held.1 -= 1;
    }
}

/// One delivery in the background.
struct Job {
    delivery_id: String,
    event: Arc<str>,
    payload: Payload,
    target: Target,
    /// Its event's place in the queue, given back by the last of its jobs.
    _ticket: Arc<Ticket>,
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
                        job.payload.as_bytes().to_vec(),
                    )
                },
                |n, attempt, wait| {
                    let update = update_after(n, &attempt, wait.is_some());
                    self.log.attempted(&job.delivery_id, &update);
                    self.print(&AttemptReport {
                        job: &job,
                        n,
                        of: self.plan.attempts,
                        t: signed_at.load(Ordering::Relaxed),
                        attempt: &attempt,
                        update: &update,
                        wait,
                    });
                },
            )
            .await;
    }

    fn print(&self, report: &AttemptReport<'_>) {
        let line = match self.output {
            #[cfg(test)]
            AttemptOutput::Quiet => return,
            AttemptOutput::Human => report.human_line(),
            AttemptOutput::Json => to_json_line(&report.json_line()),
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
                .take(RESPONSE_BODY_CHARS)
                .collect()
        }),
        delivered_at: (status != DeliveryStatus::Pending).then(|| format_time(&attempt.started)),
    }
}

/// What the emulator says of one attempt, in either form.
struct AttemptReport<'a> {
    job: &'a Job,
    /// This attempt's number, from 1, of `of`.
    n: u32,
    of: u32,
    /// The `t` this attempt was signed with.
    t: i64,
    attempt: &'a Attempt,
    /// The record's state after it.
    update: &'a AttemptUpdate,
    /// How long until the next attempt, when there is one.
    wait: Option<Duration>,
}

impl AttemptReport<'_> {
    /// `2026-11-30T17:05:01.123Z dlv_… wh_… tool.execution.completed attempt
    /// 1/3 t=1764522301: 500 in 3ms; retrying in 1s`, escaped whole: the
    /// URL in an error and the ids are not ours to trust.
    fn human_line(&self) -> String {
        let Self {
            job,
            n,
            of,
            t,
            attempt,
            update,
            wait,
        } = self;
        let then = match (wait, update.status) {
            (Some(wait), _) => format!("retrying in {}", format_ms(millis(*wait))),
            (None, DeliveryStatus::Success) => "success".to_string(),
            (None, _) => format!("failed after {n} attempt{}", if *n == 1 { "" } else { "s" }),
        };
        // An answer's summary has its duration (`500 in 3ms`); an error's
        // gets it here.
        let outcome = match &attempt.result {
            Ok(_) => attempt.summary(),
            Err(err) => format!(
                "{err} (after {})",
                format_duration_ms(attempt.duration.as_secs_f64() * 1000.0)
            ),
        };
        let line = format!(
            "{} {} {} {} attempt {n}/{of} t={t} (signed anew): {outcome}; {then}",
            format_time(&attempt.started),
            job.delivery_id,
            job.target.webhook_id,
            job.event,
        );
        escape_line(&line).into_owned()
    }

    /// `--json`: the same attempt as one JSON line.
    fn json_line(&self) -> AttemptLine<'_> {
        AttemptLine {
            time: format_time(&self.attempt.started),
            delivery_id: &self.job.delivery_id,
            webhook_id: &self.job.target.webhook_id,
            event: &self.job.event,
            url: &self.job.target.url,
            attempt: self.n,
            max_attempts: self.of,
            signed_t: self.t,
            response_status: self.update.response_status,
            error: self.attempt.result.as_ref().err().map(ToString::to_string),
            duration_ms: millis(self.attempt.duration),
            status: self.update.status,
            retry_in_ms: self.wait.map(millis),
        }
    }
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature;
    use serde_json::Value;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    /// The records, in memory, with every update each one saw.
    #[derive(Default)]
    pub(crate) struct MemoryLog {
        records: Mutex<HashMap<String, Record>>,
        next: AtomicUsize,
    }

    #[derive(Clone, Debug)]
    pub(crate) struct Record {
        pub(crate) webhook_id: String,
        pub(crate) event: String,
        pub(crate) payload: Value,
        pub(crate) updates: Vec<AttemptUpdate>,
    }

    impl Record {
        pub(crate) fn last(&self) -> Option<&AttemptUpdate> {
            self.updates.last()
        }

        fn is_final(&self) -> bool {
            self.last()
                .is_some_and(|u| u.status != DeliveryStatus::Pending)
        }
    }

    impl DeliveryLog for MemoryLog {
        fn begin(&self, webhook_id: &str, event: &str, payload: &Payload) -> String {
            let id = format!("dlv_{}", self.next.fetch_add(1, Ordering::Relaxed));
            self.records.lock().unwrap().insert(
                id.clone(),
                Record {
                    webhook_id: webhook_id.into(),
                    event: event.into(),
                    payload: serde_json::from_slice(payload.as_bytes()).unwrap(),
                    updates: Vec::new(),
                },
            );
            id
        }

        fn attempted(&self, delivery_id: &str, update: &AttemptUpdate) {
            self.records
                .lock()
                .unwrap()
                .get_mut(delivery_id)
                .expect("attempted after begin")
                .updates
                .push(update.clone());
        }
    }

    impl MemoryLog {
        /// Every record once all are final; panics after `within`.
        pub(crate) async fn finished(&self, within: Duration) -> HashMap<String, Record> {
            let deadline = Instant::now() + within;
            loop {
                {
                    let records = self.records.lock().unwrap();
                    if records.values().all(Record::is_final) {
                        return records.clone();
                    }
                    let pending = records.values().filter(|r| !r.is_final()).count();
                    assert!(
                        Instant::now() < deadline,
                        "{pending} of {} deliveries still pending after {within:?}",
                        records.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    pub(crate) fn options(timeout: Duration) -> DeliveryOptions {
        DeliveryOptions {
            timeout,
            backoff: vec![Duration::from_millis(10)],
            ..DeliveryOptions::default()
        }
    }

    /// What a receiver does with the connection it accepted.
    #[derive(Clone, Debug)]
    pub(crate) enum Behaviour {
        Answer(u16, Vec<u8>),
        /// Read the request, never answer, keep the socket open.
        Hang,
        /// Read the request, then reset the connection.
        Reset,
        /// Status line, headers (a 10 MB `Content-Length`) and `first`,
        /// then a byte every `every`.
        Trickle {
            status: u16,
            first: Vec<u8>,
            every: Duration,
        },
    }

    /// One request as it arrived.
    #[derive(Clone, Debug)]
    pub(crate) struct Received {
        pub(crate) signature: Option<String>,
        pub(crate) body: Vec<u8>,
    }

    pub(crate) struct Receiver {
        pub(crate) url: String,
        pub(crate) received: Arc<Mutex<Vec<Received>>>,
        /// The most connections served at once.
        pub(crate) most_at_once: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// A loopback receiver: the `n`th connection gets `script[n]`, the
    /// last one repeating; each answer holds the connection `hold` first.
    pub(crate) async fn start_receiver(script: Vec<Behaviour>, hold: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let now_open = Arc::new(AtomicUsize::new(0));
        let (seen, most) = (received.clone(), most_at_once.clone());
        let task = tokio::spawn(async move {
            let mut n = 0;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let behaviour = script[n.min(script.len() - 1)].clone();
                n += 1;
                let (seen, most, now_open) = (seen.clone(), most.clone(), now_open.clone());
                tokio::spawn(async move {
                    let open = now_open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(open, Ordering::SeqCst);
                    serve(stream, behaviour, hold, &seen).await;
                    now_open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/webhooks/danube"),
            received,
            most_at_once,
            task,
        }
    }

    async fn serve(
        mut stream: TcpStream,
        behaviour: Behaviour,
        hold: Duration,
        seen: &Mutex<Vec<Received>>,
    ) {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        seen.lock().unwrap().push(request);
        tokio::time::sleep(hold).await;
        match behaviour {
            Behaviour::Answer(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            }
            Behaviour::Hang => tokio::time::sleep(Duration::from_hours(1)).await,
            Behaviour::Reset => {
                let _ = stream.set_zero_linger();
                drop(stream);
            }
            Behaviour::Trickle {
                status,
                first,
                every,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&first).await;
                while stream.write_all(b"x").await.is_ok() {
                    tokio::time::sleep(every).await;
                }
            }
        }
    }

    /// One HTTP/1.1 request with a `Content-Length` body.
    async fn read_request(stream: &mut TcpStream) -> Option<Received> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let length: usize = header("content-length")?.parse().ok()?;
        let mut body = buf[end..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Received {
            signature: header(signature::HEADER_NAME),
            body,
        })
    }

    /// `value` as the raw JSON an event's `data` arrives as.
    pub(crate) fn data(value: &Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    pub(crate) fn target(webhook_id: &str, url: &str, secret: &str) -> Target {
        Target {
            webhook_id: webhook_id.into(),
            url: url.into(),
            secret: Secret::new(secret),
        }
    }

    /// A port nothing listens on (bound, then let go).
    pub(crate) fn refused_url() -> String {
        let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        format!("http://{addr}/")
    }

    /// One delivery to `url`, to its end.
    async fn deliver_one(url: &str, timeout: Duration) -> Record {
        let log = Arc::new(MemoryLog::default());
        let deliverer = Deliverer::new(log.clone(), options(timeout), AttemptOutput::Quiet);
        let ids = deliverer
            .dispatch(
                "workflow.failed",
                &data(&serde_json::json!({"workflow_id": "wf-1"})),
                vec![target("wh_1", url, "whsec_test_secret_0001")],
            )
            .unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].1, "wh_1");
        let mut records = log.finished(Duration::from_secs(30)).await;
        records.remove(&ids[0].0).unwrap()
    }

    fn kinds(record: &Record) -> Vec<(u32, DeliveryStatus, Option<u16>)> {
        record
            .updates
            .iter()
            .map(|u| (u.attempts, u.status, u.response_status))
            .collect()
    }

    #[tokio::test]
    async fn failed_attempts_are_retried_each_signed_anew_with_the_webhooks_secret() {
        let receiver = start_receiver(
            vec![
                Behaviour::Answer(500, b"oops".to_vec()),
                Behaviour::Answer(500, b"oops again".to_vec()),
                Behaviour::Answer(200, b"{\"ok\":true}".to_vec()),
            ],
            Duration::ZERO,
        )
        .await;
        let log = Arc::new(MemoryLog::default());
        let deliverer = Deliverer::new(
            log.clone(),
            options(Duration::from_secs(10)),
            AttemptOutput::Quiet,
        );
        let ids = deliverer
            .dispatch(
                "tool.execution.completed",
                &data(&serde_json::json!({"tool_id": "abc-123"})),
                vec![target("wh_a", &receiver.url, "whsec_receiver_secret_1234")],
            )
            .unwrap();
        let record = log.finished(Duration::from_secs(30)).await[&ids[0].0].clone();
        assert_eq!(record.webhook_id, "wh_a");
        assert_eq!(record.event, "tool.execution.completed");
        assert_eq!(
            kinds(&record),
            [
                (1, DeliveryStatus::Pending, Some(500)),
                (2, DeliveryStatus::Pending, Some(500)),
                (3, DeliveryStatus::Success, Some(200)),
            ]
        );
        let last = record.last().unwrap();
        assert_eq!(last.response_body.as_deref(), Some("{\"ok\":true}"));
        assert!(last.delivered_at.is_some());
        assert!(record.updates[..2].iter().all(|u| u.delivered_at.is_none()));
        assert_eq!(
            record.updates[1].response_body.as_deref(),
            Some("oops again")
        );

        let requests = receiver.received.lock().unwrap().clone();
        assert_eq!(requests.len(), 3);
        let secret = Secret::new("whsec_receiver_secret_1234");
        let now = Utc::now().timestamp();
        for request in &requests {
            assert_eq!(request.body, requests[0].body, "the same body each time");
            let check = signature::verify(
                std::slice::from_ref(&secret),
                request.signature.as_deref(),
                &request.body,
                now,
                300,
            );
            assert_eq!(check.verdict, signature::Verdict::Valid, "{check:?}");
            let wrong = signature::verify(
                &[Secret::new("whsec_some_other_secret_99")],
                request.signature.as_deref(),
                &request.body,
                now,
                300,
            );
            assert_ne!(wrong.verdict, signature::Verdict::Valid);
        }
        // The envelope of SPEC §1, in Danube's order; the record's payload is it.
        let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
        let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["event", "timestamp", "data"]);
        assert_eq!(body["event"], "tool.execution.completed");
        assert_eq!(body["data"], serde_json::json!({"tool_id": "abc-123"}));
        let timestamp = body["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.len() == 27,
            "RFC 3339 with µs: {timestamp}"
        );
        assert_eq!(record.payload, body);
    }

    #[tokio::test]
    async fn a_hanging_receiver_fails_each_attempt_at_the_deadline() {
        let receiver = start_receiver(vec![Behaviour::Hang], Duration::ZERO).await;
        let started = Instant::now();
        let record = deliver_one(&receiver.url, Duration::from_millis(300)).await;
        let last = record.last().unwrap();
        assert_eq!((last.attempts, last.status), (3, DeliveryStatus::Failed));
        assert_eq!(last.response_status, None);
        assert!(last.delivered_at.is_some());
        assert_eq!(receiver.received.lock().unwrap().len(), 3);
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_receiver_that_is_down_fails_three_times() {
        let record = deliver_one(&refused_url(), Duration::from_secs(10)).await;
        assert_eq!(
            kinds(&record),
            [
                (1, DeliveryStatus::Pending, None),
                (2, DeliveryStatus::Pending, None),
                (3, DeliveryStatus::Failed, None),
            ]
        );
    }

    #[tokio::test]
    async fn a_reset_is_an_attempt_that_failed() {
        let receiver = start_receiver(
            vec![
                Behaviour::Reset,
                Behaviour::Reset,
                Behaviour::Answer(204, vec![]),
            ],
            Duration::ZERO,
        )
        .await;
        let record = deliver_one(&receiver.url, Duration::from_secs(10)).await;
        assert_eq!(
            kinds(&record),
            [
                (1, DeliveryStatus::Pending, None),
                (2, DeliveryStatus::Pending, None),
                (3, DeliveryStatus::Success, Some(204)),
            ]
        );
        let all_reset = start_receiver(vec![Behaviour::Reset], Duration::ZERO).await;
        let record = deliver_one(&all_reset.url, Duration::from_secs(10)).await;
        let last = record.last().unwrap();
        assert_eq!((last.attempts, last.status), (3, DeliveryStatus::Failed));
    }

    #[tokio::test]
    async fn a_huge_answer_is_read_only_so_far_and_a_slow_one_only_until_the_deadline() {
        // 10 MB announced, 100 KB at once, then a byte every 50 ms: the
        // first 64 KiB are read and the status kept.
        let huge = start_receiver(
            vec![Behaviour::Trickle {
                status: 200,
                first: vec![b'a'; 100_000],
                every: Duration::from_millis(50),
            }],
            Duration::ZERO,
        )
        .await;
        let record = deliver_one(&huge.url, Duration::from_secs(10)).await;
        let last = record.last().unwrap();
        assert_eq!(
            (last.attempts, last.status, last.response_status),
            (1, DeliveryStatus::Success, Some(200))
        );
        assert_eq!(last.response_body.as_deref(), Some(&"a".repeat(2000)[..]));

        // A byte every 50 ms from the start: the deadline ends each attempt.
        let slow = start_receiver(
            vec![Behaviour::Trickle {
                status: 200,
                first: Vec::new(),
                every: Duration::from_millis(50),
            }],
            Duration::ZERO,
        )
        .await;
        let started = Instant::now();
        let record = deliver_one(&slow.url, Duration::from_millis(400)).await;
        let last = record.last().unwrap();
        assert_eq!((last.attempts, last.status), (3, DeliveryStatus::Failed));
        assert_eq!(
            last.response_status, None,
            "no whole answer within the deadline"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn the_record_keeps_the_first_2000_characters_of_the_answer() {
        let body = "é".repeat(3000) + "\u{1b}[31m";
        let receiver = start_receiver(
            vec![Behaviour::Answer(500, body.into_bytes())],
            Duration::ZERO,
        )
        .await;
        let record = deliver_one(&receiver.url, Duration::from_secs(10)).await;
        let kept = record.last().unwrap().response_body.clone().unwrap();
        assert_eq!(kept.chars().count(), 2000);
        assert_eq!(kept, "é".repeat(2000));
    }

    #[tokio::test]
    async fn attempts_in_flight_are_bounded() {
        let receiver = start_receiver(
            vec![Behaviour::Answer(200, vec![])],
            Duration::from_millis(100),
        )
        .await;
        let log = Arc::new(MemoryLog::default());
        let deliverer = Deliverer::new(
            log.clone(),
            options(Duration::from_secs(10)),
            AttemptOutput::Quiet,
        );
        let targets: Vec<_> = (0..300)
            .map(|i| target(&format!("wh_{i}"), &receiver.url, "whsec_bounded_0001"))
            .collect();
        let ids = deliverer
            .dispatch("workflow.completed", &data(&Value::Null), targets)
            .unwrap();
        assert_eq!(ids.len(), 300);
        let records = log.finished(Duration::from_mins(1)).await;
        assert!(
            records
                .values()
                .all(|r| r.last().unwrap().status == DeliveryStatus::Success)
        );
        let most = receiver.most_at_once.load(Ordering::SeqCst);
        assert!(
            most <= MAX_IN_FLIGHT && most > 1,
            "{most} connections at once"
        );
    }

    #[test]
    fn the_queue_refuses_past_its_bytes_and_takes_them_back_when_jobs_end() {
        let queue = Queue::default();
        let first = queue
            .take(QUEUE_BYTES * 2)
            .expect("alone, any event is taken");
        assert_eq!(
            queue.take(1).unwrap_err(),
            Busy {
                jobs: 1,
                held: QUEUE_BYTES * 2
            }
        );
        drop(first);
        let half = queue.take(QUEUE_BYTES / 2).unwrap();
        let rest = queue.take(QUEUE_BYTES / 2).unwrap();
        let busy = queue.take(1).unwrap_err();
        assert_eq!((busy.jobs, busy.held), (2, QUEUE_BYTES));
        assert!(busy.to_string().contains("at most 16384 KiB"), "{busy}");
        drop((half, rest));
        assert_eq!(*queue.held.lock().unwrap(), (0, 0));
    }

    fn failed_attempt(url: &str) -> Attempt {
        Attempt {
            started: Utc::now(),
            duration: Duration::from_millis(3),
            result: Err(crate::http::SendError::Connect {
                url: url.into(),
                cause: "Connection refused\u{1b}]0;owned\u{7}".into(),
            }),
        }
    }

    #[test]
    fn attempt_lines_escape_what_came_from_outside() {
        let url = "http://127.0.0.1:1/\u{1b}[2J\u{202e}";
        let job = Job {
            delivery_id: "dlv_1".into(),
            event: "workflow.failed".into(),
            payload: Payload::envelope("workflow.failed", Utc::now(), &data(&Value::Null)),
            target: target("wh_\u{1b}[31m", url, "whsec_x_000000000000"),
            _ticket: Arc::new(Queue::default().take(0).unwrap()),
        };
        let attempt = failed_attempt(url);
        let pending = update_after(1, &attempt, true);
        let line = AttemptReport {
            job: &job,
            n: 1,
            of: 3,
            t: 1_764_522_301,
            attempt: &attempt,
            update: &pending,
            wait: Some(Duration::from_secs(1)),
        }
        .human_line();
        assert!(!line.chars().any(crate::display::is_dangerous), "{line:?}");
        assert!(line.contains("dlv_1"), "{line}");
        assert!(
            line.contains("attempt 1/3 t=1764522301 (signed anew)"),
            "{line}"
        );
        assert!(
            line.contains("Connection refused") && line.contains("(after 3.0ms)"),
            "{line}"
        );
        assert!(line.ends_with("; retrying in 1s"), "{line}");
        let last = update_after(3, &attempt, false);
        let last_report = AttemptReport {
            job: &job,
            n: 3,
            of: 3,
            t: 1_764_522_303,
            attempt: &attempt,
            update: &last,
            wait: None,
        };
        let line = last_report.human_line();
        assert!(line.ends_with("; failed after 3 attempts"), "{line}");

        let json = to_json_line(
            &AttemptReport {
                t: 7,
                ..last_report
            }
            .json_line(),
        );
        assert!(!json.chars().any(crate::display::is_dangerous), "{json:?}");
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["url"], url, "the same text once parsed");
        assert_eq!(parsed["status"], "failed");
        assert_eq!(parsed["attempt"], 3);
        assert_eq!(parsed["signed_t"], 7);
        assert_eq!(parsed["response_status"], Value::Null);
        assert!(
            parsed["error"]
                .as_str()
                .unwrap()
                .contains("Connection refused")
        );
    }
}
