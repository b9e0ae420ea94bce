//! The wire types of Danube's API (SPEC §1, §11), plain data: a webhook,
//! what a create or an update sends, the device flow's answers, and
//! Danube's record of a delivery, the one type that `deliveries`, the
//! dashboard and `trigger`'s report all read and write. Pure: no I/O.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::scrub::redact;

/// A delivery's `status` as Danube records it: `pending` while it will
/// still try, then `success` or `failed` (SPEC §1). A word SPEC §1 does not
/// list is kept as sent, so a record is shown rather than refused if
/// Danube ever adds one; on the wire and in `--json` it is the word alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeliveryStatus {
    Pending,
    Success,
    Failed,
    /// Any other word, as Danube sent it.
    Unknown(String),
}

impl DeliveryStatus {
    /// The word, as Danube writes it.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Unknown(word) => word,
        }
    }
}

impl From<&str> for DeliveryStatus {
    fn from(word: &str) -> Self {
        match word {
            "pending" => Self::Pending,
            "success" => Self::Success,
            "failed" => Self::Failed,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// The word as Danube wrote it: text from the network, to be escaped
/// wherever a terminal shows it.
impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(Self::from(word.as_ref()))
    }
}

/// One entry of Danube's delivery log (`GET /v1/webhooks/{id}/deliveries`,
/// SPEC §1), and `trigger`'s report of a delivery in the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub(crate) id: String,
    pub(crate) webhook_id: String,
    pub(crate) event_type: String,
    #[serde(default)]
    pub(crate) payload: serde_json::Value,
    pub(crate) status: DeliveryStatus,
    #[serde(default)]
    pub(crate) response_status: Option<u16>,
    /// The first [`crate::facts::RESPONSE_BODY_CHARS`] characters of the
    /// last answer's body.
    #[serde(default)]
    pub(crate) response_body: Option<String>,
    pub(crate) attempts: u32,
    #[serde(default)]
    pub(crate) delivered_at: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
}

impl DeliveryRecord {
    /// Danube will still try again (or is trying now).
    pub(crate) fn is_pending(&self) -> bool {
        self.status == DeliveryStatus::Pending
    }
}

/// A time as Danube writes one: RFC 3339, or an ISO time without an
/// offset (taken as UTC, as Python's `isoformat()` of a naive UTC time
/// writes it).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// A webhook as Danube lists it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Webhook {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) is_active: bool,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
}

impl Webhook {
    /// When Danube created it, if it says in a form that can be read.
    pub(crate) fn created(&self) -> Option<DateTime<Utc>> {
        self.created_at.as_deref().and_then(parse_time)
    }
}

/// The answer to a create: the webhook and its secret, shown only here.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CreatedWebhook {
    #[serde(flatten)]
    pub(crate) webhook: Webhook,
    pub(crate) secret: String,
}

impl std::fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &redact(&self.secret))
            .finish()
    }
}

/// What a create or an update sends: only the fields given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct WebhookChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) is_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
}

/// A delivery a local Danube (`emulate`) made of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EmittedDelivery {
    pub(crate) id: String,
    pub(crate) webhook_id: String,
}

/// The emulator's answer to an event: one delivery per subscribed webhook.
#[derive(Deserialize)]
pub(crate) struct Emitted {
    pub(crate) deliveries: Vec<EmittedDelivery>,
}

/// The start of the device flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[allow(clippy::struct_field_names)] // the API's own names
pub(crate) struct DeviceCode {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) verification_url: String,
    pub(crate) expires_in: u64,
    pub(crate) interval: u64,
}

/// The key a completed device flow hands over.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct DeviceToken {
    pub(crate) api_key: String,
    #[serde(default)]
    pub(crate) key_prefix: Option<String>,
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceToken")
            .field("api_key", &redact(&self.api_key))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_reads_and_writes_as_the_word_danube_sent() {
        for (word, status) in [
            ("pending", DeliveryStatus::Pending),
            ("success", DeliveryStatus::Success),
            ("failed", DeliveryStatus::Failed),
            ("Success", DeliveryStatus::Unknown("Success".into())),
            ("retrying", DeliveryStatus::Unknown("retrying".into())),
        ] {
            let read: DeliveryStatus = serde_json::from_value(json!(word)).unwrap();
            assert_eq!(read, status, "{word}");
            assert_eq!(serde_json::to_value(&read).unwrap(), json!(word));
            assert_eq!(read.to_string(), word);
        }
        assert!(serde_json::from_value::<DeliveryStatus>(json!(1)).is_err());
    }

    #[test]
    fn a_record_goes_back_out_as_it_came_in() {
        let wire = json!({
            "id": "dlv_1", "webhook_id": "wh_1", "event_type": "workflow.failed",
            "payload": {"event": "workflow.failed"}, "status": "failed",
            "response_status": 500, "response_body": "no", "attempts": 3,
            "delivered_at": null, "created_at": "2026-11-30T16:00:00.000Z"
        });
        let record: DeliveryRecord = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(record.status, DeliveryStatus::Failed);
        assert!(!record.is_pending());
        assert_eq!(serde_json::to_value(&record).unwrap(), wire);
    }

    #[test]
    fn danube_times_with_or_without_an_offset() {
        let utc = parse_time("2026-11-30T16:00:00Z").unwrap();
        assert_eq!(parse_time("2026-11-30T16:00:00"), Some(utc));
        assert_eq!(parse_time("2026-11-30 16:00:00.000"), Some(utc));
        assert_eq!(parse_time("2026-11-30T17:00:00+01:00"), Some(utc));
        assert_eq!(parse_time("yesterday"), None);
    }
}
