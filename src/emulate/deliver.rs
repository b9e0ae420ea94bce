//! The seam with helper B's deliveries (docs: emulate-interface): only the
//! types and the trait the state implements, until `emu-deliver` is merged
//! and its whole `deliver.rs` takes this file's place.

use serde_json::Value;

/// One webhook to deliver to.
#[derive(Clone, Debug)]
pub struct Target {
    pub webhook_id: String,
    pub url: String,
    pub secret: crate::signature::Secret,
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
    /// The status of the attempt's answer; `None` when nothing came back.
    pub response_status: Option<u16>,
    /// The first 2000 characters of the answer's body.
    pub response_body: Option<String>,
    /// When it was delivered or given up on; `None` while pending.
    pub delivered_at: Option<String>,
}

/// Where the records go: the emulator's state.
pub trait DeliveryLog: Send + Sync + 'static {
    /// A new delivery record (status pending, attempts 0, `created_at` now); returns its id (`dlv_…`).
    fn begin(&self, webhook_id: &str, event: &str, payload: &Value) -> String;
    /// After each attempt (and once more when it is final).
    fn attempted(&self, delivery_id: &str, update: &AttemptUpdate);
}
