//! `listen --register`: make Danube post to the tunnel, with a webhook
//! whose secret danube-hooks knows, and pause it again on exit.
//!
//! The webhook an earlier `--register` against the same API made is
//! reused (its URL re-pointed with `PATCH`, made active), so its secret
//! stays the same across tunnels and restarts; otherwise one is created
//! and saved at once (`webhooks.json`, 0600). Danube's list is read first,
//! so that a webhook already pointing at the URL is never doubled: one
//! danube-hooks did not create is never changed, and `--register` refuses
//! rather than make a second one beside it. A create is never retried; a
//! timed-out one is looked for, never made again blindly.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::{Api, ApiError};
use super::credentials::CredentialsError;
use super::model::{Webhook, WebhookChange};
use super::saved_webhooks::{self, Origin, SavedWebhook, Scope};
use crate::display::escape_line;

/// The description a registered webhook gets in Danube.
pub(crate) const DESCRIPTION: &str = "danube-hooks listen --register";
/// How long the pause (or delete) on exit may take: exiting must not hang
/// on an unreachable API.
pub(crate) const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `--register` could not set up a webhook, each said with what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegisterError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Saved(#[from] CredentialsError),
    /// `stop` came while Danube was only being asked for its list:
    /// nothing was changed.
    #[error("stopped before anything was registered")]
    Stopped,
    #[error(
        "Danube's webhook {id} already posts to {url}, and danube-hooks does not know its secret \
         (it did not create it, or the answer to its create was lost), so it will not change it; \
         a second webhook there would double every delivery. Either delete it (`danube-hooks webhooks delete {id}`) and run again, or \
         leave out --register and pass its secret with --secret"
    )]
    Foreign { id: String, url: String },
    #[error(
        "Danube did not answer the create within {within}, but it made webhook {id} for {url}: \
         its secret was only in the lost answer, so it cannot be used. Delete it \
         (`danube-hooks webhooks delete {id}`) and run again"
    )]
    CreateLost {
        id: String,
        url: String,
        within: String,
    },
    #[error(
        "Danube did not answer the create within {within}{listed}; run again (a webhook for {url} \
         made meanwhile will be named then, never doubled)"
    )]
    CreateUnanswered {
        url: String,
        within: String,
        /// What listing afterwards found (or why it failed).
        listed: String,
    },
    #[error(
        "Danube made webhook {id}, but its secret could not be saved ({cause}); {what}, since a \
         webhook whose secret is lost cannot be verified"
    )]
    SaveFailed {
        id: String,
        cause: String,
        what: String,
    },
    /// A second signal gave up the wait for Danube's answer to a change
    /// already sent; `undone` says what was paused of what it may have made
    /// active.
    #[error("stopped waiting for Danube's answer to the {change}; {undone}")]
    Abandoned {
        change: &'static str,
        undone: String,
    },
    /// A change whose answer never came (it may have been made): what it
    /// may have made active was paused, as `undone` says.
    #[error("{cause}; {undone}")]
    Undone {
        cause: Box<RegisterError>,
        undone: String,
    },
}

impl RegisterError {
    /// Whether the change may have been made in Danube although this says
    /// it failed: no answer came.
    fn may_have_changed(&self) -> bool {
        matches!(
            self,
            Self::Api(ApiError::Timeout { .. } | ApiError::Transport { .. })
                | Self::CreateLost { .. }
        )
    }
}

/// What happens to the webhook when `listen` exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExit {
    /// `is_active: false`: Danube stops posting into a dead tunnel.
    Pause,
    /// `--keep-active`: left on.
    KeepActive,
    /// `--unregister`: deleted, and forgotten in `webhooks.json`.
    Unregister,
}

/// How the webhook came to serve this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Made now.
    Created,
    /// An earlier `--register`'s, re-pointed and made active.
    Updated,
    /// One `webhooks create --save` made for this very URL: used for its
    /// secret, and left as it is (never paused or deleted by `listen`).
    Adopted,
}

/// The webhook `listen` verifies with, and what happens to it on exit.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub(crate) webhook: SavedWebhook,
    pub(crate) action: Action,
    /// Whether Danube has it active now.
    pub(crate) is_active: bool,
    pub(crate) on_exit: OnExit,
    /// The URL a re-point was sent for and not seen through (cut off by
    /// the exit, or its answer lost): Danube may point the webhook there
    /// now, and it is still this run's, to pause on exit.
    pub(crate) repointing: Option<String>,
}

impl Registration {
    /// `webhook wh_1 → https://…/webhooks/danube (created; secret whsec_…abcd)`.
    pub(crate) fn describe(&self) -> String {
        let action = match self.action {
            Action::Created => "created now",
            Action::Updated => "reused: re-pointed and made active",
            Action::Adopted => "made by `webhooks create`; used as it is",
        };
        format!(
            "webhook {} → {} ({action}; secret {})",
            shown(&self.webhook.id),
            shown(&self.webhook.url),
            self.webhook.fingerprint()
        )
    }

    /// What will happen on exit, for the banner.
    pub(crate) fn exit_plan(&self) -> String {
        let mut plan = match (self.action, self.on_exit) {
            (Action::Adopted, _) => {
                "left as it is on exit (danube-hooks pauses only the webhooks --register made)"
                    .to_owned()
            }
            (_, OnExit::Pause) => "paused on exit (is_active false), so Danube does not post into \
                 a dead tunnel; --keep-active leaves it on, --unregister deletes it"
                .to_owned(),
            (_, OnExit::KeepActive) => "left active on exit (--keep-active)".to_owned(),
            (_, OnExit::Unregister) => {
                "deleted on exit (--unregister), and its secret forgotten".to_owned()
            }
        };
        if !self.is_active {
            plan.push_str(
                "; it is paused in Danube now, so nothing will be posted: `danube-hooks webhooks \
                 update ID --active true` turns it on",
            );
        }
        plan
    }
}

/// What `--register` asks for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The webhook URL: the tunnel's https origin and `--path`.
    pub(crate) url: String,
    /// `--event`s; `None` keeps a reused webhook's, and gives a new one
    /// all of Danube's event types.
    pub(crate) events: Option<Vec<String>>,
    pub(crate) on_exit: OnExit,
}

/// What to do, given what is saved and what Danube lists.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Re-point this saved `--register` webhook.
    Update(SavedWebhook),
    /// Use this saved `webhooks create --save` webhook as it is.
    Adopt(SavedWebhook, bool),
    Create,
    /// A webhook danube-hooks does not know the secret of already posts here.
    Refuse(String),
}

/// Decide from the saved webhooks and Danube's list, as made in `scope`
/// (the API and organization `listed` came from). A saved `--register`
/// webhook of that scope the list leaves out is never chosen; its id is
/// also returned when this credential saved it (the caller forgets it once
/// Danube confirms it is gone, [`Scope::believes_gone`]). A webhook saved
/// in another scope (another organization's, which this list never shows)
/// is neither chosen nor gone.
fn decide(
    saved: &[SavedWebhook],
    scope: &Scope,
    listed: &[Webhook],
    url: &str,
) -> (Plan, Vec<String>) {
    let exists = |id: &str| listed.iter().any(|w| w.id == id);
    let unlisted =
        |s: &SavedWebhook| scope.holds(s) && s.origin == Origin::Register && !exists(&s.id);
    let gone: Vec<String> = saved
        .iter()
        .filter(|s| unlisted(s) && scope.believes_gone(s))
        .map(|s| s.id.clone())
        .collect();
    let here: Vec<&Webhook> = listed.iter().filter(|w| w.url == url).collect();
    if let Some(foreign) = here
        .iter()
        .find(|w| saved_webhooks::find(saved, scope, &w.id).is_none())
    {
        return (Plan::Refuse(foreign.id.clone()), gone);
    }
    let ours = |origin: Origin| {
        here.iter().find_map(|w| {
            saved_webhooks::find(saved, scope, &w.id)
                .filter(|s| s.origin == origin)
                .map(|s| (s.clone(), w.is_active))
        })
    };
    if let Some((webhook, _)) = ours(Origin::Register) {
        return (Plan::Update(webhook), gone);
    }
    if let Some((webhook, active)) = ours(Origin::Create) {
        return (Plan::Adopt(webhook, active), gone);
    }
    let remaining: Vec<SavedWebhook> = saved.iter().filter(|s| !unlisted(s)).cloned().collect();
    match saved_webhooks::registered(&remaining, scope) {
        Some(webhook) => (Plan::Update(webhook.clone()), gone),
        None => (Plan::Create, gone),
    }
}

/// Reuse, adopt or create the webhook for `target`, with the saved
/// webhooks in `dir`.
///
/// `stop` (a first signal) is heeded while only reads are under way,
/// which with their retries can take minutes against an API that stalls.
/// A change already sent is waited for, so that no webhook is left made
/// but unknown; `hurry` (a second signal) gives that wait up, and a change
/// given up, or one whose answer never came, is treated as possibly made:
/// Danube's list is read and what it may have made active is paused.
pub(crate) async fn register(
    api: &Api,
    dir: &Path,
    target: &Target,
    stop: &CancellationToken,
    hurry: &CancellationToken,
) -> Result<Registration, RegisterError> {
    let scope = Scope::of(api);
    let listed = tokio::select! {
        listed = api.list_webhooks() => listed?,
        () = stop.cancelled() => return Err(RegisterError::Stopped),
    };
    let saved = saved_webhooks::load(dir)?;
    let (plan, gone) = decide(&saved, &scope, &listed, &target.url);
    // A webhook the list leaves out is forgotten only once Danube says 404
    // for it (asked read-only, through its delivery log): a broken or
    // partial list must not throw away a secret Danube never shows again.
    // Only those this credential saved in this scope are asked about:
    // another organization answers 404 for a webhook that lives on.
    for id in &gone {
        let asked = tokio::select! {
            asked = api.list_deliveries(id, 1) => asked,
            () = stop.cancelled() => return Err(RegisterError::Stopped),
        };
        if let Err(ApiError::NotFound { .. }) = asked {
            saved_webhooks::remove(dir, &scope, id)?;
        }
    }
    match plan {
        Plan::Refuse(id) => Err(RegisterError::Foreign {
            id: escape_line(&id).into_owned(),
            url: escape_line(&target.url).into_owned(),
        }),
        Plan::Adopt(webhook, is_active) => Ok(Registration {
            webhook,
            action: Action::Adopted,
            is_active,
            on_exit: target.on_exit,
            repointing: None,
        }),
        Plan::Update(webhook) => {
            let id = webhook.id.clone();
            let change = async {
                match update(api, dir, webhook, target).await {
                    // Deleted between the list and the update: forget it,
                    // make one.
                    Err(RegisterError::Api(ApiError::NotFound { .. })) => {
                        create(api, dir, target).await
                    }
                    done => done,
                }
            };
            settle(api, target, Some(&id), "re-point", change, stop, hurry).await
        }
        Plan::Create => {
            settle(
                api,
                target,
                None,
                "create",
                create(api, dir, target),
                stop,
                hurry,
            )
            .await
        }
    }
}

/// Wait for `change` (already sent) to its end: the first signal only says
/// that the wait goes on, a second gives it up. Given up, or failed with no
/// answer, it may have been made: what it may have made active is paused.
async fn settle(
    api: &Api,
    target: &Target,
    id: Option<&str>,
    change_name: &'static str,
    change: impl Future<Output = Result<Registration, RegisterError>>,
    stop: &CancellationToken,
    hurry: &CancellationToken,
) -> Result<Registration, RegisterError> {
    tokio::pin!(change);
    let mut told = false;
    let done = loop {
        tokio::select! {
            done = &mut change => break Some(done),
            () = stop.cancelled(), if !told => {
                told = true;
                eprintln!(
                    "danube-hooks: waiting for Danube's answer to the {change_name} already sent \
                     (Ctrl-C again stops waiting; what it may have made active is then paused)"
                );
            }
            () = hurry.cancelled() => break None,
        }
    };
    match done {
        Some(Err(err)) if err.may_have_changed() => Err(RegisterError::Undone {
            undone: pause_what_may_be_active(api, target, id).await,
            cause: Box::new(err),
        }),
        Some(done) => done,
        None => Err(RegisterError::Abandoned {
            change: change_name,
            undone: pause_what_may_be_active(api, target, id).await,
        }),
    }
}

/// After a change whose end is unknown: the webhooks Danube lists at
/// `target`'s URL that this tool made (`id`, or one a lost create made,
/// with this tool's description) and that are active, paused; what was
/// done, in words. Bounded by [`FINISH_TIMEOUT`].
async fn pause_what_may_be_active(api: &Api, target: &Target, id: Option<&str>) -> String {
    let work = async {
        let listed = match api.list_webhooks().await {
            Ok(listed) => listed,
            Err(err) => {
                return format!(
                    "listing Danube's webhooks to pause what it may have made active failed \
                     ({err}): look with `danube-hooks webhooks list`"
                );
            }
        };
        let ours = listed.into_iter().filter(|w| {
            w.is_active
                && (Some(w.id.as_str()) == id
                    || (w.url == target.url && w.description.as_deref() == Some(DESCRIPTION)))
        });
        let mut said = Vec::new();
        for webhook in ours {
            let shown_id = shown(&webhook.id);
            let change = WebhookChange {
                is_active: Some(false),
                ..WebhookChange::default()
            };
            said.push(match api.update_webhook(&webhook.id, &change).await {
                Ok(_) => format!("paused Danube webhook {shown_id} (is_active false)"),
                Err(err) => format!(
                    "could not pause Danube webhook {shown_id} ({err}): `danube-hooks webhooks \
                     update {shown_id} --active false`"
                ),
            });
        }
        if said.is_empty() {
            "Danube lists nothing of it active".to_owned()
        } else {
            said.join("; ")
        }
    };
    tokio::time::timeout(FINISH_TIMEOUT * 2, work)
        .await
        .unwrap_or_else(|_| {
            "Danube did not answer in time to pause what it may have made active: look with \
             `danube-hooks webhooks list`"
                .to_owned()
        })
}

async fn update(
    api: &Api,
    dir: &Path,
    mut webhook: SavedWebhook,
    target: &Target,
) -> Result<Registration, RegisterError> {
    let change = WebhookChange {
        url: Some(target.url.clone()),
        events: target.events.clone(),
        is_active: Some(true),
        description: None,
    };
    let updated = match api.update_webhook(&webhook.id, &change).await {
        Ok(updated) => updated,
        Err(err @ ApiError::NotFound { .. }) => {
            saved_webhooks::remove(dir, &webhook.scope(), &webhook.id)?;
            return Err(err.into());
        }
        Err(err) => return Err(err.into()),
    };
    webhook.url = updated.url;
    webhook.events = updated.events;
    saved_webhooks::upsert(dir, webhook.clone())?;
    Ok(Registration {
        webhook,
        action: Action::Updated,
        is_active: updated.is_active,
        on_exit: target.on_exit,
        repointing: None,
    })
}

async fn create(api: &Api, dir: &Path, target: &Target) -> Result<Registration, RegisterError> {
    let events = target.events.clone().unwrap_or_else(|| {
        crate::events::EVENT_TYPES
            .iter()
            .map(|e| (*e).to_owned())
            .collect()
    });
    let change = WebhookChange {
        url: Some(target.url.clone()),
        events: Some(events),
        is_active: None,
        description: Some(DESCRIPTION.to_owned()),
    };
    let created = match api.create_webhook(&change).await {
        Ok(created) => created,
        Err(ApiError::CreateTimeout { within, .. }) => {
            return Err(after_timeout(api, target, within).await);
        }
        Err(err) => return Err(err.into()),
    };
    let webhook = SavedWebhook::of_created(&Scope::of(api), &created, Origin::Register);
    // Saved before anything else can fail: the answer was the only time
    // Danube will show this secret.
    if let Err(err) = saved_webhooks::upsert(dir, webhook.clone()) {
        // Useless without its secret: take it away again if we can.
        let what = match api.delete_webhook(&webhook.id).await {
            Ok(()) => "it was deleted again".to_owned(),
            Err(delete) => format!(
                "deleting it failed too ({delete}): delete it with `danube-hooks webhooks delete {}`",
                escape_line(&webhook.id)
            ),
        };
        return Err(RegisterError::SaveFailed {
            id: escape_line(&webhook.id).into_owned(),
            cause: err.to_string(),
            what,
        });
    }
    Ok(Registration {
        is_active: created.webhook.is_active,
        webhook,
        action: Action::Created,
        on_exit: target.on_exit,
        repointing: None,
    })
}

/// After a create that timed out: did Danube make it? Never create again.
async fn after_timeout(api: &Api, target: &Target, within: String) -> RegisterError {
    let url = escape_line(&target.url).into_owned();
    match api.list_webhooks().await {
        Ok(listed) => match listed.iter().find(|w| w.url == target.url) {
            Some(made) => RegisterError::CreateLost {
                id: escape_line(&made.id).into_owned(),
                url,
                within,
            },
            None => RegisterError::CreateUnanswered {
                url,
                within,
                listed: ", and Danube lists no webhook for this URL since".to_owned(),
            },
        },
        Err(err) => RegisterError::CreateUnanswered {
            url,
            within,
            listed: format!(", and listing its webhooks afterwards failed too ({err})"),
        },
    }
}

/// Point the webhook `--register` set up at `url`, the tunnel's new one
/// (a quick tunnel started again gets a new name): a `PATCH` of its URL
/// alone, saved. `Ok` with what was done, `Err` with what failed and what
/// to do by hand. A webhook made by `webhooks create` is never changed.
pub(crate) async fn repoint(
    api: &Api,
    dir: &Path,
    registration: &mut Registration,
    url: &str,
) -> Result<String, String> {
    let id = shown(&registration.webhook.id);
    let by_hand = format!("`danube-hooks webhooks update {id} --url {}`", shown(url));
    if registration.action == Action::Adopted {
        return Err(format!(
            "Danube webhook {id} was made by `webhooks create`, so listen leaves it as it is; \
             point it at the new URL with {by_hand}"
        ));
    }
    // Its URL alone: `is_active` is left as the run set it, so a re-point
    // that lands after the pause on exit cannot turn it on again.
    let change = WebhookChange {
        url: Some(url.to_owned()),
        ..WebhookChange::default()
    };
    // Before the request: if the exit cuts it off, or its answer is lost,
    // the webhook may point here, and is still ours to pause.
    registration.repointing = Some(url.to_owned());
    let updated = api
        .update_webhook(&registration.webhook.id, &change)
        .await
        .map_err(|err| format!("could not re-point Danube webhook {id}: {err}; run {by_hand}"))?;
    registration.repointing = None;
    registration.webhook.url = updated.url;
    registration.is_active = updated.is_active;
    saved_webhooks::upsert(dir, registration.webhook.clone()).map_err(|err| {
        format!("re-pointed Danube webhook {id}, but could not save its new URL: {err}")
    })?;
    Ok(format!(
        "re-pointed Danube webhook {id} to {}",
        shown(&registration.webhook.url)
    ))
}

/// Do what `registration.on_exit` says, within [`FINISH_TIMEOUT`]: `Ok` with
/// what was done, `Err` with what failed and what to do by hand. Never
/// touches a webhook `--register` did not make.
pub(crate) async fn finish(
    api: &Api,
    dir: &Path,
    registration: &Registration,
) -> Result<String, String> {
    let webhook = &registration.webhook;
    let id = shown(&webhook.id);
    if registration.action == Action::Adopted {
        return Ok(format!(
            "left Danube webhook {id} as it is (made by `webhooks create`)"
        ));
    }
    let work = async {
        if registration.on_exit != OnExit::KeepActive
            && let Some(now) = taken_over(api, webhook, registration.repointing.as_deref()).await
        {
            return Ok(format!(
                "left Danube webhook {id} as it is: it now posts to {} (another `listen \
                 --register` re-pointed it), so pausing or deleting it would cut that one off",
                shown(&now)
            ));
        }
        match registration.on_exit {
            OnExit::KeepActive => Ok(format!("left Danube webhook {id} active (--keep-active)")),
            OnExit::Pause => {
                let change = WebhookChange {
                    is_active: Some(false),
                    ..WebhookChange::default()
                };
                match api.update_webhook(&webhook.id, &change).await {
                    Ok(_) => Ok(format!(
                        "paused Danube webhook {id} (is_active false); the next `listen --register` \
                         (or `--tunnel`) turns it on again"
                    )),
                    Err(ApiError::NotFound { .. }) => {
                        forget(dir, webhook);
                        Ok(format!("Danube webhook {id} no longer exists; forgot it"))
                    }
                    Err(err) => Err(format!(
                        "could not pause Danube webhook {id}: {err}; pause it with `danube-hooks \
                         webhooks update {id} --active false`"
                    )),
                }
            }
            OnExit::Unregister => match api.delete_webhook(&webhook.id).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => {
                    forget(dir, webhook);
                    Ok(format!(
                        "deleted Danube webhook {id} and forgot its secret (--unregister)"
                    ))
                }
                Err(err) => Err(format!(
                    "could not delete Danube webhook {id}: {err}; delete it with `danube-hooks \
                     webhooks delete {id}`"
                )),
            },
        }
    };
    match tokio::time::timeout(FINISH_TIMEOUT, work).await {
        Ok(done) => done,
        Err(_) => Err(format!(
            "Danube did not answer within {} s, so webhook {id} is still as it was (active): \
             pause it with `danube-hooks webhooks update {id} --active false`",
            FINISH_TIMEOUT.as_secs()
        )),
    }
}

/// The URL `webhook` posts to now, if Danube lists it pointing elsewhere
/// than this run set (its URL, or one a re-point of this run was sent
/// for): a second `listen --register` with the same config (another
/// tunnel) re-points the same saved webhook, and the first one's exit must
/// not pause or delete it under the second. A list that fails says
/// nothing: the pause goes ahead as planned.
async fn taken_over(api: &Api, webhook: &SavedWebhook, repointing: Option<&str>) -> Option<String> {
    let listed = api.list_webhooks().await.ok()?;
    listed
        .into_iter()
        .find(|w| w.id == webhook.id && w.url != webhook.url && Some(w.url.as_str()) != repointing)
        .map(|w| w.url)
}

/// An id or URL from Danube's answer, for a message: escaped, and cut so
/// that an answer cannot flood the terminal.
fn shown(text: &str) -> String {
    escape_line(&crate::display::truncate(text, 200)).into_owned()
}

/// Forget `webhook` in `webhooks.json`; a failure only means a stale entry,
/// which the next `--register` forgets when Danube no longer lists it.
fn forget(dir: &Path, webhook: &SavedWebhook) {
    let _ = saved_webhooks::remove(dir, &webhook.scope(), &webhook.id);
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "https://api.danubeai.com";
    const URL: &str = "https://abc.ngrok.app/webhooks/danube";

    fn scope() -> Scope {
        Scope {
            api_url: API.into(),
            org_id: None,
            by: Some(saved_webhooks::TEST_CREDENTIAL.into()),
        }
    }

    fn saved(id: &str, url: &str, origin: Origin) -> SavedWebhook {
        SavedWebhook::for_test(id, API, url, origin)
    }

    fn listed(id: &str, url: &str) -> Webhook {
        Webhook {
            id: id.into(),
            url: url.into(),
            events: vec!["workflow.completed".into()],
            is_active: false,
            description: None,
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn what_to_do_from_what_is_saved_and_listed() {
        let old = "https://old.ngrok.app/webhooks/danube";
        let reg = saved("wh_reg", old, Origin::Register);
        let made = saved("wh_made", URL, Origin::Create);
        let mut other_api = saved("wh_far", old, Origin::Register);
        other_api.api_url = "http://127.0.0.1:9".into();

        // Nothing saved, nothing listed: create.
        assert_eq!(decide(&[], &scope(), &[], URL), (Plan::Create, vec![]));
        // An earlier --register's webhook, now elsewhere: re-point it.
        assert_eq!(
            decide(
                std::slice::from_ref(&reg),
                &scope(),
                &[listed("wh_reg", old)],
                URL
            ),
            (Plan::Update(reg.clone()), vec![])
        );
        // Deleted in Danube meanwhile: forget it, create.
        assert_eq!(
            decide(&[reg.clone(), other_api.clone()], &scope(), &[], URL),
            (Plan::Create, vec!["wh_reg".to_owned()])
        );
        // Another API's webhook is never used here.
        assert_eq!(
            decide(
                &[other_api.clone()],
                &scope(),
                &[listed("wh_far", old)],
                URL
            ),
            (Plan::Create, vec![])
        );
        // Another organization's webhook is neither used nor gone here,
        // though this organization's list leaves it out.
        let mut in_b = saved("wh_b", old, Origin::Register);
        in_b.org_id = Some("org_b".into());
        assert_eq!(
            decide(std::slice::from_ref(&in_b), &scope(), &[], URL),
            (Plan::Create, vec![])
        );
        let org_b = Scope {
            org_id: Some("org_b".into()),
            ..scope()
        };
        assert_eq!(
            decide(
                &[reg.clone(), in_b.clone()],
                &org_b,
                &[listed("wh_b", old)],
                URL
            ),
            (Plan::Update(in_b.clone()), vec![])
        );
        // Saved by another credential (which may see another
        // organization), or before credentials were noted: not chosen, and
        // not asked about, so never forgotten on a 404.
        let mut by_other = reg.clone();
        by_other.saved_by = Some("fedcba9876543210".into());
        let mut unnoted = reg.clone();
        unnoted.saved_by = None;
        for unsure in [by_other, unnoted] {
            assert_eq!(
                decide(std::slice::from_ref(&unsure), &scope(), &[], URL),
                (Plan::Create, vec![])
            );
            assert_eq!(
                decide(
                    std::slice::from_ref(&unsure),
                    &scope(),
                    &[listed("wh_reg", old)],
                    URL
                ),
                (Plan::Update(unsure.clone()), vec![])
            );
        }
        // A webhook nobody saved already posts here: refuse, touch nothing.
        assert_eq!(
            decide(
                std::slice::from_ref(&reg),
                &scope(),
                &[listed("wh_reg", old), listed("wh_x", URL)],
                URL
            ),
            (Plan::Refuse("wh_x".into()), vec![])
        );
        // One `webhooks create --save` made for this URL: used as it is.
        assert_eq!(
            decide(
                std::slice::from_ref(&made),
                &scope(),
                &[listed("wh_made", URL)],
                URL
            ),
            (Plan::Adopt(made.clone(), false), vec![])
        );
        // An older --register webhook already here wins over the newest.
        let here = saved("wh_here", URL, Origin::Register);
        assert_eq!(
            decide(
                &[here.clone(), reg.clone()],
                &scope(),
                &[listed("wh_here", URL), listed("wh_reg", old)],
                URL
            ),
            (Plan::Update(here), vec![])
        );
    }

    #[test]
    fn a_change_with_no_answer_may_have_been_made() {
        let timeout = RegisterError::Api(ApiError::Timeout {
            url: API.into(),
            within: "30 s".into(),
            tries: 4,
        });
        assert!(timeout.may_have_changed());
        let lost = RegisterError::CreateLost {
            id: "wh_1".into(),
            url: URL.into(),
            within: "30 s".into(),
        };
        assert!(lost.may_have_changed());
        let refused = RegisterError::Foreign {
            id: "wh_1".into(),
            url: URL.into(),
        };
        assert!(!refused.may_have_changed());
        assert!(!RegisterError::Stopped.may_have_changed());
    }

    #[test]
    fn the_banner_says_what_happens_on_exit() {
        let mut registration = Registration {
            webhook: saved("wh_1", URL, Origin::Register),
            action: Action::Created,
            is_active: true,
            on_exit: OnExit::Pause,
            repointing: None,
        };
        let line = registration.describe();
        assert!(
            line.contains("wh_1 → https://abc.ngrok.app/webhooks/danube"),
            "{line}"
        );
        assert!(
            line.contains("whsec_…") && !line.contains("MfKQ9r8GKYqr"),
            "{line}"
        );
        assert!(registration.exit_plan().starts_with("paused on exit"));
        registration.on_exit = OnExit::Unregister;
        assert!(registration.exit_plan().starts_with("deleted on exit"));
        registration.on_exit = OnExit::KeepActive;
        assert!(registration.exit_plan().starts_with("left active"));
        registration.action = Action::Adopted;
        registration.is_active = false;
        let plan = registration.exit_plan();
        assert!(
            plan.starts_with("left as it is") && plan.contains("--active true"),
            "{plan}"
        );
    }
}
