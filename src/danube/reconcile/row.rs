//! What the join reads and what it shows: a local request's summary
//! ([`LocalRecord`], its payload digested to a [`PayloadKey`]), a [`Row`]
//! of one Danube delivery (or none) with its requests and [`Finding`]s,
//! and the [`Caps`] on the requests unknown to Danube that rows keep.
//! Pure data, shared by the join (`super`) and its rows of requests
//! unknown to Danube (`super::unknown`).

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::danube::model::DeliveryRecord;
use crate::delivery::{Delivery, format_time};
use crate::signature::Verdict;

/// Rows of requests unknown to Danube that `deliveries` shows: the newest.
/// A store holds every request that ever reached the listener; a probe or
/// a flood is many rows, and the newest are the ones to act on.
pub(crate) const UNKNOWN_ROWS: usize = 100;
/// Requests one row unknown to Danube lists (the oldest): more copies of
/// one payload than this are a replay, and their number says so.
pub(crate) const ROW_REQUESTS: usize = 10;
/// Characters of a request's `event` kept for a row: Danube's event names
/// are short, and a stranger's body can make it as long as the body.
const EVENT_CHARS: usize = 100;

/// What identifies a payload: `event`, `timestamp` and `data`, digested
/// so that the dashboard can keep one per delivery at 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PayloadKey([u8; 32]);

impl PayloadKey {
    /// The key of an envelope: an object with a string `event`, a string
    /// `timestamp` and a `data` (of any kind); `None` for anything else.
    pub(crate) fn of_envelope(value: &Value) -> Option<Self> {
        let object = value.as_object()?;
        let event = object.get("event")?.as_str()?;
        let timestamp = object.get("timestamp")?.as_str()?;
        let data = object.get("data")?;
        let mut hasher = Sha256::new();
        feed_str(&mut hasher, event);
        feed_str(&mut hasher, timestamp);
        feed_value(&mut hasher, data);
        let mut key = [0; 32];
        key.copy_from_slice(&hasher.finalize());
        Some(Self(key))
    }

    /// The key of a body as received: JSON, and an envelope.
    pub(crate) fn of_body(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        Self::of_envelope(&value)
    }

    /// The key of Danube's `payload`: the envelope, or the envelope as a
    /// JSON string (some APIs keep the body as text).
    pub(crate) fn of_danube(payload: &Value) -> Option<Self> {
        match payload {
            Value::String(text) => Self::of_body(text.as_bytes()),
            other => Self::of_envelope(other),
        }
    }
}

/// Length-prefixed, so no two strings feed the same bytes.
fn feed_str(hasher: &mut Sha256, text: &str) {
    hasher.update((text.len() as u64).to_be_bytes());
    hasher.update(text.as_bytes());
}

/// `value` in a form where equal JSON feeds equal bytes: object keys in
/// sorted order (the map keeps arrival order), each kind tagged. Depth is
/// bounded by `serde_json`'s own recursion limit on parsing.
fn feed_value(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(b) => hasher.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            hasher.update(b"d");
            feed_str(hasher, &n.to_string());
        }
        Value::String(s) => {
            hasher.update(b"s");
            feed_str(hasher, s);
        }
        Value::Array(items) => {
            hasher.update(b"a");
            hasher.update((items.len() as u64).to_be_bytes());
            for item in items {
                feed_value(hasher, item);
            }
        }
        Value::Object(map) => {
            hasher.update(b"o");
            hasher.update((map.len() as u64).to_be_bytes());
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (key, item) in entries {
                feed_str(hasher, key);
                feed_value(hasher, item);
            }
        }
    }
}

/// One request that reached the listener, as a row shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LocalAttempt {
    pub(crate) id: u64,
    pub(crate) attempt: u32,
    #[serde(serialize_with = "rfc3339_millis")]
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) verdict: Verdict,
    /// The status the listener answered; `None` for timeout, reset, close
    /// and garbage.
    pub(crate) status: Option<u16>,
    /// The body's `event`, for the table of a row Danube does not know.
    #[serde(skip)]
    pub(crate) event: Option<String>,
    /// What the listener did (`status`, `forward`, `timeout`, `reset`, …).
    #[serde(skip)]
    pub(crate) action: String,
    /// How long the sender waited for the answer.
    #[serde(skip)]
    pub(crate) answered_after_ms: f64,
}

fn rfc3339_millis<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_time(time))
}

/// What is known of a local request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    Envelope(PayloadKey),
    /// Not JSON, or JSON but no envelope: matches nothing.
    NotEnvelope,
    /// The body was not at hand (a summary whose body was dropped): it can
    /// neither match nor be called unknown.
    Unread,
}

/// A local request ready to be joined.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LocalRecord {
    pub(crate) attempt: LocalAttempt,
    pub(crate) payload: Payload,
    /// Danube's id of the delivery this request redelivers from its log;
    /// only on a request whose signature was valid.
    pub(crate) redelivery_of: Option<String>,
}

impl LocalRecord {
    /// The summary of `delivery`, its body digested.
    pub(crate) fn of(delivery: &Delivery) -> Self {
        let payload = if delivery.body.is_empty() && delivery.body_size > 0 {
            Payload::Unread
        } else if delivery.body_truncated {
            // A cut body is not the payload Danube sent.
            Payload::NotEnvelope
        } else {
            PayloadKey::of_body(&delivery.body).map_or(Payload::NotEnvelope, Payload::Envelope)
        };
        #[allow(clippy::cast_precision_loss)] // a delay in ms is far below 2^52
        let delay_ms = delivery.response.delay_ms as f64;
        Self {
            attempt: LocalAttempt {
                id: delivery.id,
                attempt: delivery.attempt,
                received_at: delivery.received_at,
                verdict: delivery.signature.verdict,
                status: delivery.response.status,
                event: delivery
                    .event
                    .as_deref()
                    .map(|event| crate::display::truncate(event, EVENT_CHARS).into_owned()),
                action: delivery.response.action.clone(),
                answered_after_ms: delivery.duration_ms.max(delay_ms),
            },
            payload,
            // The listener keeps the field only for a valid signature; a
            // record written otherwise (by hand, say) vouches for nothing.
            redelivery_of: delivery
                .redelivery_of
                .clone()
                .filter(|_| delivery.signature.verdict == Verdict::Valid),
        }
    }
}

/// The four things that can fail to add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FindingKind {
    /// Danube made more attempts than reached the listener.
    MissingAttempts,
    /// Nothing matching reached the listener.
    NeverArrived,
    /// Danube recorded another status than the listener answered.
    AnswerDiffers,
    /// A request in the window that matches no Danube delivery.
    UnknownToDanube,
}

impl FindingKind {
    /// Requests of Danube's that never reached the listener: what a
    /// redelivery from Danube's log makes up for.
    pub(crate) fn is_missing(self) -> bool {
        matches!(self, Self::NeverArrived | Self::MissingAttempts)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::MissingAttempts => "missing_attempts",
            Self::NeverArrived => "never_arrived",
            Self::AnswerDiffers => "answer_differs",
            Self::UnknownToDanube => "unknown_to_danube",
        }
    }
}

/// One thing that does not add up, and a sentence on what it means and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub(crate) kind: FindingKind,
    pub(crate) detail: String,
}

/// One Danube delivery and the requests that match it; or, with `danube`
/// `None`, requests that match no Danube delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Row {
    pub(crate) danube: Option<DeliveryRecord>,
    pub(crate) local: Vec<LocalAttempt>,
    /// Requests of this row that `local` leaves out (a row unknown to
    /// Danube lists at most [`Caps::row_requests`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) unlisted: u64,
    /// The request that redelivered this Danube delivery from its log (the
    /// first, when there were several): it stands for the attempts that
    /// never arrived, so none is missing any more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redelivered: Option<LocalAttempt>,
    pub(crate) findings: Vec<Finding>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How much of the requests unknown to Danube a [`super::Join`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Rows kept: the newest, by their latest request.
    pub(crate) unknown_rows: usize,
    /// Requests one row lists: the oldest; the rest are counted.
    pub(crate) row_requests: usize,
}

impl Caps {
    /// What `deliveries` shows, whatever the store holds.
    pub(crate) const SHOWN: Caps = Caps {
        unknown_rows: UNKNOWN_ROWS,
        row_requests: ROW_REQUESTS,
    };
    /// Everything offered: for a caller whose requests are bounded
    /// already (the dashboard's history), and which marks each of them.
    pub(crate) const ALL: Caps = Caps {
        unknown_rows: usize::MAX,
        row_requests: usize::MAX,
    };
}

pub(super) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
