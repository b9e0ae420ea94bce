//! One request: read it within the limits, verify it, group it, choose the
//! answer by the policy, forward it when asked, record it, then answer.
//! A request target that is not a path (nor an absolute URL, whose path
//! alone is kept) is recorded and answered 400; a mismatch is explained
//! off the async workers, a few at a time, within a budget.
//!
//! The record is appended to the store before the answer goes out, so a
//! sender that got a 2xx can always find its delivery in the log; a record
//! that could not be written is answered 503, so the sender sends it again.
//!
//! A delivery whose answer waits (a delay, a `timeout` hold, a forward) is
//! announced in flight as it arrives (`DeliveryStore::arrive`), and its
//! record's `duration_ms` is how long its connection was held: to the
//! answer, or to the close that ends a hold (the record of a hold is
//! written then, by the connection task: [`Intake::store_held`]), or to the
//! moment the client was seen gone while a delay ran (`abandoned`: nothing
//! is sent).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use tokio_util::sync::CancellationToken;

use super::answer::{self, Answer, GARBAGE, hang_up};
use super::body::{BodyEnd, ReadBody, read_body};
use super::body_memory::{BodyMemory, Reservation};
use super::forward::ForwardOutcome;
use super::head::{Headers, head_size, origin_form, request_target, version_text};
use super::mirror::{Copies, Mirrors};
use super::reach::ReachProbes;
use super::recall::{Attempts, KeyHasher, ReplayKeys, SeenSignatures};
use super::routes::Routes;
use super::{ConnAction, ConnControl, Limits};
use crate::delivery::{self, Delivery, Grouping, ResponseRecord};
use crate::policy::{Action, Decision, PolicyHandle, Step};
use crate::signature::{
    self, Checked, ForensicsBudget, Mismatch, ParsedHeader, Secret, SignatureCheck, Verdict,
};
use crate::store::{Arrival, DeliveryStore, InFlight, NotStored};

/// The recorded action of a delivery whose client went away while its
/// answer waited out a delay: nothing was sent.
pub(crate) const ABANDONED: &str = "abandoned";

/// Mismatches explained at once, each on a blocking thread within
/// [`ForensicsBudget::DEFAULT`]; one more is answered unexplained. One core
/// fewer than the machine has (at least one, at most four): the explanations
/// of a flood then leave a core to the async workers, so Danube's deliveries
/// are not held up, and hold at most a few budgets of memory.
fn forensics_at_once() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).clamp(1, 4))
}

/// What the intake needs to know, fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct IntakeConfig {
    pub(crate) secrets: Vec<Secret>,
    pub(crate) tolerance_s: u64,
    /// Answer 401 to any verdict but `valid`, as a correct receiver would.
    pub(crate) reject_invalid: bool,
    pub(crate) grouping: Grouping,
    pub(crate) limits: Limits,
}

/// The shared state of the listener: one per process, behind an `Arc`.
pub(crate) struct Intake {
    config: IntakeConfig,
    policy: PolicyHandle,
    store: DeliveryStore,
    /// `--forward-to`'s rules: which receiver a `forward` goes to.
    routes: Option<Routes>,
    /// `--mirror-to`'s targets, each with its worker.
    mirrors: Option<Mirrors>,
    /// Attempts seen per group. A std mutex: held for one map update.
    attempts: Mutex<Attempts>,
    /// Hashes each `(t, digest)` into the key replay detection keeps.
    replay_hasher: KeyHasher,
    /// First arrival of each `(t, digest)`, for replay detection.
    seen_signatures: Mutex<SeenSignatures>,
    /// Permits for the forensics of a mismatch ([`forensics_at_once`]).
    forensics: Arc<tokio::sync::Semaphore>,
    /// What bodies still arriving may hold together.
    body_memory: Arc<BodyMemory>,
    /// The probes that prove a public URL reaches this listener.
    reach: ReachProbes,
    /// The secrets once the webhook `listen` registered is known: its own
    /// first, so its deliveries match secret #1, then `config.secrets`.
    /// Set once, after the listener has started (the tunnel's URL must
    /// reach it before it is registered).
    with_webhook: std::sync::OnceLock<Vec<Secret>>,
}

impl Intake {
    pub(crate) fn new(
        config: IntakeConfig,
        policy: PolicyHandle,
        store: DeliveryStore,
        routes: Option<Routes>,
        mirrors: Option<Mirrors>,
    ) -> Self {
        Self {
            policy,
            store,
            routes,
            mirrors,
            attempts: Mutex::new(Attempts::with_room()),
            replay_hasher: KeyHasher::default(),
            seen_signatures: Mutex::new(SeenSignatures::with_room()),
            forensics: Arc::new(tokio::sync::Semaphore::new(forensics_at_once())),
            body_memory: BodyMemory::new(config.limits.max_body_memory),
            reach: ReachProbes::default(),
            with_webhook: std::sync::OnceLock::new(),
            config,
        }
    }

    pub(crate) fn config(&self) -> &IntakeConfig {
        &self.config
    }

    /// The probes a public URL is proved with (`GET` on their path).
    pub(crate) fn reach(&self) -> &ReachProbes {
        &self.reach
    }

    /// Verify with `secret` first from now on (the registered webhook's),
    /// then the configured ones. Only the first call counts: a listener
    /// registers one webhook.
    pub(crate) fn verify_first_with(&self, secret: Secret) {
        let mut secrets = vec![secret];
        secrets.extend(self.config.secrets.iter().cloned());
        let _ = self.with_webhook.set(secrets);
    }

    /// The secrets a delivery is verified with, in order.
    fn secrets(&self) -> &[Secret] {
        self.with_webhook
            .get()
            .map_or(&self.config.secrets, Vec::as_slice)
    }

    /// Continue attempt numbering from earlier records (a restart mid-retry).
    /// Takes `(group, attempt)` pairs, so the store need not load whole
    /// records (and their bodies) to give them.
    pub(crate) fn seed_attempts(&self, earlier: impl IntoIterator<Item = (String, u32)>) {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        for (group, attempt) in earlier {
            attempts.seed(&group, attempt);
        }
    }

    fn next_attempt(&self, group: &str) -> u32 {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next(group)
    }

    /// Handle one request. For answers that are not HTTP, this asks
    /// `control` and never returns (the connection task drops it).
    /// `remote` is the peer's address as recorded (`ip:port`), `local` the
    /// listener's own on this connection.
    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
        remote: &str,
        local: &str,
        control: &ConnControl,
        shutdown: &CancellationToken,
    ) -> Response<Full<Bytes>> {
        let arrived = Instant::now();
        if let Some(refused_or_page) = self.answer_before_body(&req) {
            return refused_or_page;
        }
        // Held until the record is in the store's hands: the body is
        // this handler's to keep in memory until then.
        let mut body_memory = self.body_memory.reservation();
        let (mut record, end, replay_key) = self
            .receive(req, remote, local, control, &mut body_memory)
            .await;
        self.check_replay(&mut record, replay_key.as_ref());
        let decision = (end == BodyEnd::Complete).then(|| self.decide(&record));
        let (copies, in_flight) = self.start_beside(&record, decision.as_ref(), arrived);
        let (decision, answer, action) = self
            .choose_answer(&mut record, end, decision, control, shutdown)
            .await;
        record.response = ResponseRecord {
            action: action.into(),
            status: answer.status(),
            delay_ms: decision.step.delay.as_millis() as u64,
            // Moved, not cloned: the answer names the rule from the record.
            rule: decision.rule,
        };
        if matches!(answer, Answer::Hold) {
            // Recorded when the hold ends, so that its duration is how long
            // the connection was held.
            let held = Held {
                record,
                arrived,
                replay_key,
                copies,
                body_memory,
                in_flight,
            };
            return hold(control, held, self.config.limits.max_hold).await;
        }
        record.duration_ms = arrived.elapsed().as_secs_f64() * 1000.0;
        let stored = self.store_record(record, replay_key, copies).await;
        drop(body_memory);
        let (rule, id, answer) = answer_as_stored(&stored, answer);
        let response = answer
            .send(&rule, id, control, self.config.limits.max_hold)
            .await;
        drop(in_flight);
        response
    }

    /// The answers given before the body is read: a head over the limit is
    /// refused, and a GET or HEAD is shown a page (the reach probe's, when
    /// its path is one the probe sent). `None` for a delivery to read.
    #[inline]
    fn answer_before_body(&self, req: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
        if head_size(req) > self.config.limits.max_header_bytes {
            return Some(answer::head_too_large(self.config.limits.max_header_bytes));
        }
        if req.method() == Method::GET || req.method() == Method::HEAD {
            if self.reach.arrived(req.uri().path()) {
                return Some(answer::reached_page());
            }
            return Some(answer::info_page());
        }
        None
    }

    /// What starts beside the answer once a delivery is decided: its
    /// mirrors' copies, queued before the answer is worked out so that a
    /// mirror runs beside the delay or the forward (never waited for); and
    /// its place among the deliveries in flight, when its answer waits.
    /// That place is settled when dropped: after the record is appended,
    /// or with the request's future if that is dropped first.
    #[inline]
    fn start_beside(
        &self,
        record: &Delivery,
        decision: Option<&Decision>,
        arrived: Instant,
    ) -> (Copies, Option<InFlight>) {
        let copies = match (&self.mirrors, decision) {
            (Some(mirrors), Some(_)) => mirrors.send(record),
            _ => Copies::none(),
        };
        let in_flight = decision
            .filter(|decision| waits(decision.step))
            .map(|decision| self.store.arrive(arrival(record, arrived, decision.step)));
        (copies, in_flight)
    }

    /// Append `record` with what its mirrors have answered so far, and
    /// remember its signature for replay detection once it has an id; the
    /// mirrors that answer later are announced under that id.
    async fn store_record(
        &self,
        mut record: Delivery,
        replay_key: Option<ReplayKeys>,
        copies: Copies,
    ) -> Result<Arc<Delivery>, NotStored> {
        let (mirrors, late) = copies.settle();
        record.mirrors = mirrors;
        let stored = self.store.append(record).await;
        if let Ok(stored) = &stored {
            late.announce(&self.store, stored.id);
        }
        if let (Ok(stored), Some(key)) = (&stored, replay_key) {
            self.seen_signatures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remember_all(&key, stored.id, self.config.tolerance_s);
        }
        stored
    }

    /// Record a delivery held by `timeout` once its hold has ended (the
    /// client gave up, the longest hold passed, or shutdown): called by
    /// its connection's task, before the connection is closed. Nothing is
    /// sent, so a record that could not be written needs no 503: the store
    /// has warned.
    pub(super) async fn store_held(&self, held: Held) {
        let Held {
            mut record,
            arrived,
            replay_key,
            copies,
            body_memory,
            in_flight,
        } = held;
        record.duration_ms = arrived.elapsed().as_secs_f64() * 1000.0;
        let _ = self.store_record(record, replay_key, copies).await;
        drop(body_memory);
        drop(in_flight);
    }

    /// Read the request within the limits and fill in everything the
    /// answer does not decide: verdict, group, attempt. Also returns the
    /// key replay detection uses, from the header as `verify` parsed it.
    async fn receive(
        &self,
        req: Request<Incoming>,
        remote: &str,
        local: &str,
        control: &ConnControl,
        body_memory: &mut Reservation,
    ) -> (Delivery, BodyEnd, Option<ReplayKeys>) {
        let received_at = Utc::now();
        let (parts, body) = req.into_parts();
        let headers = Headers::of(&parts.headers);
        let read = self.read_within_limits(&headers, body, body_memory).await;
        // What follows (verifying, answering) is not the client's doing.
        control.request_received();
        let (signature, replay_key) = self.check_signature(&headers, &read).await;
        let group = delivery::group_key(&self.config.grouping, &headers.pairs, &read.bytes);
        let attempt = self.next_attempt(&group);
        let path = origin_form(&parts.uri);
        // Only a valid signature vouches for the header: from anyone else
        // it would hide a delivery that never arrived.
        let redelivery_of = (signature.verdict == Verdict::Valid)
            .then(|| headers.redelivery_of())
            .flatten();
        let end = request_end(read.end, path.is_some(), &parts.method, headers.looped);
        let (resent_from, edited) = headers.claimed_copy();
        let record = Delivery {
            id: 0,
            received_at,
            remote_addr: remote.to_owned(),
            local_addr: (!local.is_empty()).then(|| local.to_owned()),
            method: parts.method.as_str().to_owned(),
            // A refused target is kept as received, for the record; nothing
            // connects anywhere with it (forward, replay and export build
            // their URLs from origin-form paths only).
            path: path.unwrap_or_else(|| request_target(&parts.uri)),
            http_version: version_text(parts.version).to_string(),
            headers: headers.pairs,
            raw_headers: headers.raw,
            event: delivery::event_of(&read.bytes),
            body_size: read.size(headers.declared),
            body_truncated: read.end != BodyEnd::Complete,
            body: read.bytes,
            group,
            attempt,
            signature,
            replay_of: None,
            response: ResponseRecord {
                action: String::new(),
                status: None,
                delay_ms: 0,
                rule: String::new(),
            },
            forward: None,
            mirrors: Vec::new(),
            redelivery_of,
            resent_from,
            edited,
            // Named by a shared store as it writes the record.
            listener: None,
            duration_ms: 0.0,
        };
        (record, end, replay_key)
    }

    /// The body, read within the limits into memory reserved from
    /// `body_memory`. hyper sends `100 Continue` the first time the body is
    /// polled; a body announced over the limit is refused before that, so
    /// the client never sends it.
    #[inline]
    async fn read_within_limits(
        &self,
        headers: &Headers<'_>,
        body: Incoming,
        body_memory: &mut Reservation,
    ) -> ReadBody {
        let limits = &self.config.limits;
        let refused_unsent = headers.expects_continue
            && headers
                .declared
                .is_some_and(|declared| declared > limits.max_body as u64);
        if refused_unsent {
            return ReadBody {
                bytes: Vec::new(),
                seen: 0,
                end: BodyEnd::TooLarge,
            };
        }
        read_body(body, limits.max_body, limits.body_read_timeout, body_memory).await
    }

    /// The verdict on the request's `X-Danube-Signature`, and the keys
    /// replay detection looks it up and remembers it by.
    async fn check_signature(
        &self,
        headers: &Headers<'_>,
        read: &ReadBody,
    ) -> (SignatureCheck, Option<ReplayKeys>) {
        let (mut signature, parsed) = match headers.signatures() {
            // Two headers: which one a receiver reads depends on its
            // framework, so neither is taken (and neither keys a replay).
            (Some(first), Some(second)) => (signature::repeated_header(first, second), None),
            (header, _) => match signature::verify_unexplained(
                self.secrets(),
                header,
                &read.bytes,
                unix_now(),
                self.config.tolerance_s,
            ) {
                Checked::Done(check, parsed) => (check, parsed),
                Checked::Mismatch(mismatch) => self.explain(mismatch, &read.bytes).await,
            },
        };
        if read.end == BodyEnd::Complete {
            signature.hints.extend(signature::content_length_hint(
                headers.declared_length,
                read.bytes.len(),
            ));
        }
        let replay_key =
            parsed.map(|parsed| self.replay_keys(&parsed, signature.verdict, &read.bytes));
        (signature, replay_key)
    }

    /// The forensics of a mismatch, off the async workers (they cost far
    /// more than the verdict, and a stranger chooses the body): on a
    /// blocking thread, [`forensics_at_once`] at a time, within the budget
    /// of time and memory. Past that the mismatch is recorded unexplained,
    /// and a hint says why. The valid path never comes here.
    async fn explain(
        &self,
        mismatch: Mismatch,
        body: &[u8],
    ) -> (SignatureCheck, Option<ParsedHeader>) {
        let Ok(permit) = Arc::clone(&self.forensics).try_acquire_owned() else {
            let (check, parsed) = mismatch.unexplained(
                "other mismatches were being explained (the limit at once is one core fewer \
                 than the machine has); `danube-hooks verify` explains this body offline",
            );
            return (check, Some(parsed));
        };
        let fallback = mismatch.clone();
        let secrets = self.secrets().to_vec();
        // A copy, so the record keeps its body whatever becomes of the
        // task; only as many exist as explanations run at once.
        let body = body.to_vec();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let budget = ForensicsBudget::DEFAULT;
            let deadline = Instant::now() + budget.time;
            mismatch.explain(&secrets, &body, &budget, &mut || Instant::now() >= deadline)
        });
        let (check, parsed) = task
            .await
            .unwrap_or_else(|err| fallback.unexplained(&format!("the forensics failed: {err}")));
        (check, Some(parsed))
    }

    /// The keys a delivery is looked up by (every digest of its header)
    /// and remembered by: only digests that verified (all, when there is
    /// no secret to verify with). Junk digests from a stranger, alone or
    /// padding a real one, would push the real ones out of the memory, and
    /// a replay would then go unflagged.
    fn replay_keys(&self, parsed: &ParsedHeader, verdict: Verdict, body: &[u8]) -> ReplayKeys {
        let secrets = self.secrets();
        let hasher = &self.replay_hasher;
        if secrets.is_empty() || (verdict == Verdict::Valid && parsed.digests.len() == 1) {
            // With no secret every digest is remembered; and the one digest
            // of a valid header is the one that verified: no second HMAC on
            // the path every delivery takes.
            ReplayKeys::of(hasher, parsed, |_| true)
        } else if verdict == Verdict::Valid {
            let expected: Vec<_> = secrets
                .iter()
                .map(|secret| secret.digest(&parsed.t_text, body))
                .collect();
            ReplayKeys::of(hasher, parsed, |digest| expected.contains(digest))
        } else {
            ReplayKeys::of(hasher, parsed, |_| false)
        }
    }

    /// Flag a second arrival of the same `t` and digest (SPEC §6).
    fn check_replay(&self, record: &mut Delivery, keys: Option<&ReplayKeys>) {
        let Some(keys) = keys else {
            return;
        };
        record.replay_of = self
            .seen_signatures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_arrival_of_any(keys, self.config.tolerance_s);
        if let Some(first) = record.replay_of {
            record.signature.hints.push(format!(
                "same t and digest as delivery #{first}: either the sender retried without \
                 re-signing, or the request was replayed; a receiver that rejects repeated \
                 signatures would reject this one"
            ));
        }
    }

    /// The answer: a limit's, or the policy's (after its delay, and after
    /// forwarding when the step says so). Also names the recorded action.
    /// `decision` is the policy's, when it was made already.
    async fn choose_answer(
        &self,
        record: &mut Delivery,
        end: BodyEnd,
        decision: Option<Decision>,
        control: &ConnControl,
        shutdown: &CancellationToken,
    ) -> (Decision, Answer, &'static str) {
        let limit = |status: u16, why: &str| Decision {
            step: Step::now(Action::Status(status)),
            rule: format!("limit: {why}"),
        };
        match end {
            BodyEnd::TooLarge => (
                limit(413, "--max-body"),
                Answer::Status {
                    status: 413,
                    close: true,
                },
                "too-large",
            ),
            BodyEnd::OverMemory => (
                limit(503, BODY_MEMORY_RULE),
                Answer::Status {
                    status: 503,
                    close: true,
                },
                "body-memory",
            ),
            BodyEnd::TimedOut => (
                limit(408, "body read timeout"),
                Answer::Status {
                    status: 408,
                    close: true,
                },
                "slow-body",
            ),
            BodyEnd::Aborted => (
                Decision {
                    step: Step::now(Action::Close),
                    rule: "limit: client went away".into(),
                },
                Answer::Nothing,
                "aborted",
            ),
            BodyEnd::BadTarget => (
                limit(400, BAD_TARGET_RULE),
                Answer::Status {
                    status: 400,
                    close: false,
                },
                "bad-target",
            ),
            BodyEnd::NotPost => (
                limit(405, "only POST is recorded as a delivery"),
                Answer::Status {
                    status: 405,
                    close: false,
                },
                "method",
            ),
            BodyEnd::Looped => (
                limit(508, super::loops::LOOP_RULE),
                Answer::Status {
                    status: 508,
                    close: false,
                },
                "loop",
            ),
            BodyEnd::Complete => {
                let decision = decision.unwrap_or_else(|| self.decide(record));
                if self.wait(decision.step.delay, control, shutdown).await == Waited::ClientGone {
                    return (decision, Answer::Nothing, ABANDONED);
                }
                let answer = self.execute(&decision, record).await;
                let action = decision.step.action.name();
                (decision, answer, action)
            }
        }
    }

    fn decide(&self, record: &Delivery) -> Decision {
        if self.config.reject_invalid && record.signature.verdict != Verdict::Valid {
            return Decision {
                step: Step {
                    delay: Duration::ZERO,
                    action: Action::Status(401),
                },
                rule: format!("--reject-invalid ({})", record.signature.verdict),
            };
        }
        let decision = self
            .policy
            .current()
            .decide(record.event.as_deref(), record.attempt);
        if decision.step.action == Action::Forward && self.route(record).is_none() {
            return unrouted(decision);
        }
        decision
    }

    /// The receiver `record` is forwarded to: the first `--forward-to`
    /// rule that matches its event.
    fn route(&self, record: &Delivery) -> Option<&super::forward::Forwarder> {
        self.routes.as_ref()?.choose(record.event.as_deref())
    }

    /// A delay, cut short by shutdown so stopping never waits on it, or
    /// by the client going away, as Danube does at its deadline: an answer
    /// after that would reach no one, and the record says how long the
    /// client waited.
    async fn wait(
        &self,
        delay: Duration,
        control: &ConnControl,
        shutdown: &CancellationToken,
    ) -> Waited {
        if delay.is_zero() {
            return Waited::Done;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => Waited::Done,
            () = shutdown.cancelled() => Waited::Done,
            () = control.client_gone() => Waited::ClientGone,
        }
    }

    async fn execute(&self, decision: &Decision, record: &mut Delivery) -> Answer {
        match decision.step.action {
            Action::Status(status) => Answer::Status {
                status,
                close: false,
            },
            Action::Forward => match self.route(record) {
                Some(forwarder) => {
                    let ForwardOutcome {
                        record: forward,
                        answer,
                    } = forwarder.forward(record).await;
                    record.forward = Some(forward);
                    Answer::Relay(answer)
                }
                // `decide` answers a delivery no route takes as without
                // --forward-to; this is the answer if that ever changes.
                None => Answer::Status {
                    status: 502,
                    close: false,
                },
            },
            Action::Timeout => Answer::Hold,
            Action::Reset => Answer::Connection(ConnAction::Reset),
            Action::Close => Answer::Connection(ConnAction::Close),
            Action::Garbage => Answer::Connection(ConnAction::WriteAndClose(GARBAGE.to_vec())),
        }
    }
}

/// `Utc::now().timestamp()`, without making a date of it only to take the
/// seconds back out (a tenth of the verdict's cost outside the HMAC).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or_else(
            |_| Utc::now().timestamp(),
            |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        )
}

/// A `forward` step for a delivery that no `--forward-to` rule takes:
/// answered as without `--forward-to` (200), after the step's delay.
fn unrouted(decision: Decision) -> Decision {
    let Decision { step, mut rule } = decision;
    rule.push_str(delivery::NO_ROUTE);
    Decision {
        step: Step {
            delay: step.delay,
            action: Action::Status(200),
        },
        rule,
    }
}

/// How a delay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    Done,
    ClientGone,
}

/// How the request ended for the answer: a body read whole still fails a
/// target that is not a path, or a method other than POST, and one of this
/// listener's own copies come back (a loop) is not sent on again.
#[inline]
fn request_end(read: BodyEnd, path_ok: bool, method: &Method, looped: bool) -> BodyEnd {
    match read {
        BodyEnd::Complete if !path_ok => BodyEnd::BadTarget,
        BodyEnd::Complete if *method != Method::POST => BodyEnd::NotPost,
        BodyEnd::Complete if looped => BodyEnd::Looped,
        end => end,
    }
}

/// The rule, id and answer sent for a delivery once the store has it, or
/// has failed to: not stored, so never 2xx, and 503 tells the sender to
/// send it again (SPEC §9). The store has warned, naming it and why.
#[inline]
fn answer_as_stored(
    stored: &Result<Arc<Delivery>, NotStored>,
    answer: Answer,
) -> (Cow<'_, str>, u64, Answer) {
    match stored {
        Ok(stored) => (
            Cow::Borrowed(stored.response.rule.as_str()),
            stored.id,
            answer,
        ),
        Err(not_stored) => {
            let rule = format!("limit: store write failed: {}", not_stored.reason);
            let answer = Answer::Status {
                status: 503,
                close: false,
            };
            (Cow::Owned(rule), not_stored.delivery.id, answer)
        }
    }
}

/// Whether the answer of `step` waits (a delay, a hold, the developer's
/// receiver): such a delivery is announced in flight as it arrives.
fn waits(step: Step) -> bool {
    !step.delay.is_zero() || matches!(step.action, Action::Timeout | Action::Forward)
}

/// Characters of an arrival's path and event kept: a row or a line shows
/// far fewer, and a stranger's event can be most of a MiB, which the
/// record already holds once while the answer waits.
const ARRIVAL_TEXT: usize = 256;

/// What is known of `record` before its answer, for the in-flight board.
fn arrival(record: &Delivery, at: Instant, step: Step) -> Arrival {
    let cut = |text: &str| crate::display::truncate(text, ARRIVAL_TEXT).into_owned();
    Arrival {
        number: 0,
        received_at: record.received_at,
        at,
        remote_addr: record.remote_addr.clone(),
        method: record.method.clone(),
        path: cut(&record.path),
        event: record.event.as_deref().map(cut),
        verdict: record.signature.verdict,
        attempt: record.attempt,
        step: step.to_string(),
    }
}

/// A delivery held by `timeout`, waiting for its hold to end to be
/// recorded: handed to its connection's task (see [`ConnControl::hold`]).
#[derive(Debug)]
pub(super) struct Held {
    record: Delivery,
    arrived: Instant,
    replay_key: Option<ReplayKeys>,
    /// The mirrors' copies, settled when the record is written.
    copies: Copies,
    /// The body's memory stays counted until the record is written.
    body_memory: Reservation,
    in_flight: Option<InFlight>,
}

/// Hand a held delivery to the connection task, which holds the
/// connection, then records it ([`Intake::store_held`]); never returns.
async fn hold(control: &ConnControl, held: Held, max_hold: Duration) -> Response<Full<Bytes>> {
    control.hold(held);
    hang_up(control, ConnAction::Hold(max_hold)).await
}

/// Why a body was refused for the memory of bodies in flight (after `limit: `).
const BODY_MEMORY_RULE: &str = "bodies arriving at once hold --max-body-memory; try again";

/// Why a request target is refused (after `limit: `).
const BAD_TARGET_RULE: &str = "request target must be origin-form (/path) or absolute-form \
                               (http://host/path)";

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch_of(secret: &Secret, body: &[u8]) -> Mismatch {
        let header = signature::sign(&Secret::new("whsec_someoneelsessecret0000"), 5, body);
        match signature::verify_unexplained(
            std::slice::from_ref(secret),
            Some(&header),
            body,
            5,
            300,
        ) {
            Checked::Mismatch(mismatch) => mismatch,
            Checked::Done(check, _) => panic!("not a mismatch: {check:?}"),
        }
    }

    #[tokio::test]
    async fn mismatches_past_the_limit_at_once_are_recorded_unexplained() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let (store, _) =
            DeliveryStore::open(crate::store::StoreConfig::memory()).expect("a store in memory");
        let intake = Intake::new(
            IntakeConfig {
                secrets: vec![secret.clone()],
                tolerance_s: 300,
                reject_invalid: false,
                grouping: Grouping::BodyHash,
                limits: Limits::default(),
            },
            PolicyHandle::new(crate::policy::Policy::default_for(false)),
            store,
            None,
            None,
        );
        let body = br#"{"event":"workflow.completed"}"#;
        // Every permit taken, as by a flood of mismatches being explained.
        let held = Arc::clone(&intake.forensics)
            .acquire_many_owned(forensics_at_once() as u32)
            .await
            .unwrap();
        let (check, parsed) = intake.explain(mismatch_of(&secret, body), body).await;
        assert_eq!(check.verdict, Verdict::Mismatch);
        assert!(parsed.is_some());
        assert!(
            check.hints.iter().any(|h| h.starts_with(
                "forensics skipped: other mismatches were being explained (the limit at once"
            )),
            "{:#?}",
            check.hints
        );
        // A permit free: explained, on a blocking thread, and the permit
        // given back afterwards.
        drop(held);
        let (check, _) = intake.explain(mismatch_of(&secret, body), body).await;
        assert!(
            check
                .hints
                .iter()
                .any(|h| h.contains("no common alteration")),
            "{:#?}",
            check.hints
        );
        assert_eq!(intake.forensics.available_permits(), forensics_at_once());
    }

    #[test]
    fn an_arrival_keeps_what_the_record_knows_and_a_bounded_event() {
        let mut record = crate::test_support::sample(0, b"{}");
        record.event = Some("e".repeat(100_000));
        record.attempt = 3;
        let at = Instant::now();
        let step = Step {
            delay: Duration::from_secs(12),
            action: Action::Status(200),
        };
        let arrival = arrival(&record, at, step);
        assert_eq!(arrival.step, "12s+200");
        assert_eq!((arrival.attempt, arrival.at), (3, at));
        assert_eq!(arrival.verdict, record.signature.verdict);
        assert_eq!(arrival.received_at, record.received_at);
        assert_eq!(arrival.path, record.path);
        assert_eq!(
            arrival.event.as_ref().map(|e| e.chars().count()),
            Some(ARRIVAL_TEXT)
        );
    }

    #[test]
    fn only_answers_that_wait_are_shown_in_flight() {
        for (step, shown) in [
            ("200", false),
            ("reset", false),
            ("close", false),
            ("garbage", false),
            ("500", false),
            ("250ms+200", true),
            ("12s+200", true),
            ("timeout", true),
            ("forward", true),
            ("1s+reset", true),
        ] {
            let policy = crate::policy::Policy::parse(&[step.to_string()], true).unwrap();
            let decision = policy.decide(None, 1);
            assert_eq!(waits(decision.step), shown, "{step}");
        }
    }
}
