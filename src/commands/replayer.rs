//! The dashboards' replays (`r`, `R`, `e`): `listen`'s and a shared
//! store's viewer's differ only in where a delivery goes.

use std::sync::Arc;
use std::time::Duration;

use crate::commands::unix_now;
use crate::delivery::Delivery;
use crate::http::{self, Sender, Trust};
use crate::signature::Secret;
use crate::tui::Replayer;

/// How long a replay's target may take: as long as Danube would wait.
pub(crate) const REPLAY_TIMEOUT: Duration = crate::facts::DEADLINE;

/// Replays sent to the URL `target_of` gives each delivery (or not sent,
/// with its reason), signed with `secret`, within [`REPLAY_TIMEOUT`].
pub(crate) fn replayer(
    secret: Option<Secret>,
    trust: &Trust,
    target_of: impl Fn(&Delivery) -> Result<String, String> + Send + Sync + 'static,
) -> Replayer {
    let sender = Sender::new(trust, http::MAX_ANSWER_BODY);
    Arc::new(move |delivery, mode, edited| {
        let url = target_of(&delivery);
        let request = url.clone().and_then(|url| {
            crate::sender::replay_request(
                &delivery,
                &url,
                mode,
                secret.as_ref(),
                unix_now(),
                edited.as_ref(),
            )
        });
        let sender = sender.clone();
        Box::pin(async move {
            let url = url?;
            let attempt = sender.send(&request?, REPLAY_TIMEOUT).await;
            match &attempt.result {
                Ok(_) => Ok(format!("{url} answered {}", attempt.summary())),
                Err(err) => Err(err.to_string()),
            }
        })
    })
}
