//! The webhooks danube-hooks made in Danube and kept the secret of:
//! `webhooks.json` next to the credentials (folder 0700, file 0600, written
//! whole and renamed, each change made under a lock on the folder to the
//! file as it is then, see `crate::fsutil`), so that two commands saving
//! at once each keep the other's secret.
//!
//! Danube shows a webhook's secret only in the answer to its create, so
//! this file is the only place it lives afterwards. It is also what tells
//! a webhook danube-hooks created (and may change, pause or delete) from
//! one it did not (which it never touches, SPEC §11).
//!
//! Each saved webhook belongs to a [`Scope`]: the API and the organization
//! (`DANUBE_ORG_ID`) it was made in. Another organization neither lists
//! nor finds it, so what is done under one scope never judges, reuses or
//! forgets a webhook of another. Nor is a 404 believed from another
//! credential than the one that saved it ([`Scope::believes_gone`]): a
//! second key can belong to another organization with no `DANUBE_ORG_ID`
//! to say so.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api::Api;
use super::credentials::{self, CredentialsError};
use super::model::CreatedWebhook;
use crate::fsutil;
use crate::signature::Secret;

/// The file's name inside the config folder.
pub(crate) const FILE_NAME: &str = "webhooks.json";

/// How a saved webhook came to be, which decides who may reuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Origin {
    /// `listen --register` made it: the next `--register` against the same
    /// API reuses it (updates its URL), pauses it on exit.
    Register,
    /// `webhooks create --save` made it: used for verification and by
    /// `deliveries`, never re-pointed by `--register`.
    Create,
}

/// Where a webhook lives: an API (`--api-url`'s origin) and an
/// organization (`DANUBE_ORG_ID`; `None`, the key's own, is a scope of its
/// own, and what a file written before organizations were kept means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) api_url: String,
    pub(crate) org_id: Option<String>,
    /// Who asks: the credential's digest (`Credential::digest`). Not part
    /// of the match; it decides only whether a 404 is believed.
    pub(crate) by: Option<String>,
}

impl Scope {
    /// The scope requests through `api` are made in.
    pub(crate) fn of(api: &Api) -> Self {
        Self {
            api_url: api.origin(),
            org_id: api.org_id().map(str::to_owned),
            by: api.credential_digest(),
        }
    }

    /// Whether `webhook` was saved in this scope.
    pub(crate) fn holds(&self, webhook: &SavedWebhook) -> bool {
        same_api(&webhook.api_url, &self.api_url) && webhook.org_id == self.org_id
    }

    /// Whether Danube's 404 for `webhook`, asked in this scope, says it is
    /// gone: only when asked with the credential that saved it. Another
    /// key may see another organization (its own, with no
    /// `DANUBE_ORG_ID`), and a webhook saved before credentials were noted
    /// may have been saved with any; neither is forgotten on a 404 alone.
    pub(crate) fn believes_gone(&self, webhook: &SavedWebhook) -> bool {
        self.holds(webhook) && webhook.saved_by.is_some() && webhook.saved_by == self.by
    }
}

/// One webhook danube-hooks created, with the secret Danube showed once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedWebhook {
    pub(crate) id: String,
    /// The API it lives in (`--api-url`), so a webhook of a test API is
    /// never taken for one of Danube's.
    pub(crate) api_url: String,
    /// The organization it was made in (`DANUBE_ORG_ID`); absent for the
    /// key's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) org_id: Option<String>,
    /// The digest of the credential that made it (`Credential::digest`,
    /// never the credential): whose 404 is believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) saved_by: Option<String>,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) secret: String,
    pub(crate) origin: Origin,
    /// When it was saved (RFC 3339).
    pub(crate) saved_at: String,
}

/// Never the secret whole, even in a debug print.
impl std::fmt::Debug for SavedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedWebhook")
            .field("id", &self.id)
            .field("api_url", &self.api_url)
            .field("org_id", &self.org_id)
            .field("saved_by", &self.saved_by)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.fingerprint())
            .field("origin", &self.origin)
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

impl SavedWebhook {
    /// What is kept of a webhook Danube just created in `scope`: its
    /// secret, shown only in that answer, and now.
    pub(crate) fn of_created(scope: &Scope, created: &CreatedWebhook, origin: Origin) -> Self {
        Self {
            id: created.webhook.id.clone(),
            api_url: scope.api_url.clone(),
            org_id: scope.org_id.clone(),
            saved_by: scope.by.clone(),
            url: created.webhook.url.clone(),
            events: created.webhook.events.clone(),
            secret: created.secret.clone(),
            origin,
            saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// The scope it was saved in, asked by the credential that saved it.
    pub(crate) fn scope(&self) -> Scope {
        Scope {
            api_url: self.api_url.clone(),
            org_id: self.org_id.clone(),
            by: self.saved_by.clone(),
        }
    }

    /// The secret, ready to verify with.
    pub(crate) fn signing_secret(&self) -> Secret {
        Secret::new(self.secret.clone())
    }

    /// `whsec_…abcd`, as every other secret is shown.
    pub(crate) fn fingerprint(&self) -> String {
        self.signing_secret().fingerprint()
    }
}

/// The credential digest [`SavedWebhook::for_test`] is saved by.
#[cfg(test)]
pub(crate) const TEST_CREDENTIAL: &str = "0123456789abcdef";

/// A saved webhook for unit tests here and in the modules that read them.
#[cfg(test)]
impl SavedWebhook {
    pub(crate) fn for_test(id: &str, api_url: &str, url: &str, origin: Origin) -> Self {
        Self {
            id: id.into(),
            api_url: api_url.into(),
            org_id: None,
            saved_by: Some(TEST_CREDENTIAL.into()),
            url: url.into(),
            events: vec!["workflow.completed".into()],
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            origin,
            saved_at: "2026-11-30T16:00:00Z".into(),
        }
    }
}

/// The file in `dir`.
pub(crate) fn file_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Every saved webhook in `dir` (none when there is no file); a warning
/// on stderr when the file or its folder is open to others.
pub(crate) fn load(dir: &Path) -> Result<Vec<SavedWebhook>, CredentialsError> {
    let path = file_in(dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(credentials::io("read", &path)(err)),
    };
    fsutil::warn_if_open_to_others(&path);
    parse(&path, &text)
}

fn parse(path: &Path, text: &[u8]) -> Result<Vec<SavedWebhook>, CredentialsError> {
    serde_json::from_slice(text).map_err(|err| CredentialsError::CorruptWebhooks {
        path: path.display().to_string(),
        // Where, never the text: it holds secrets.
        cause: format!("{:?} error at line {}", err.classify(), err.line()),
    })
}

/// Apply `edit` to the saved webhooks as they are in the file now, under
/// the folder's lock, and write them back if it says they changed: a
/// change never writes over one another process made meanwhile.
fn change(
    dir: &Path,
    edit: impl FnOnce(&mut Vec<SavedWebhook>) -> bool,
) -> Result<(PathBuf, bool), CredentialsError> {
    let path = file_in(dir);
    let changed = fsutil::update_private(dir, FILE_NAME, |now| {
        let mut all = match now {
            Some(text) => parse(&path, &text)?,
            None => Vec::new(),
        };
        let changed = edit(&mut all);
        let bytes =
            changed.then(|| serde_json::to_vec_pretty(&all).expect("saved webhooks serialize"));
        Ok::<_, CredentialsError>((bytes, changed))
    })?;
    Ok((path, changed))
}

/// Save `webhook`, replacing one with the same scope and id.
pub(crate) fn upsert(dir: &Path, webhook: SavedWebhook) -> Result<PathBuf, CredentialsError> {
    let scope = webhook.scope();
    let (path, _) = change(dir, |all| {
        all.retain(|w| !(scope.holds(w) && w.id == webhook.id));
        all.push(webhook);
        true
    })?;
    Ok(path)
}

/// Forget the webhook `id` of `scope`; whether it was saved.
pub(crate) fn remove(dir: &Path, scope: &Scope, id: &str) -> Result<bool, CredentialsError> {
    if !file_in(dir).exists() {
        return Ok(false);
    }
    let (_, removed) = change(dir, |all| {
        let before = all.len();
        all.retain(|w| !(scope.holds(w) && w.id == id));
        all.len() != before
    })?;
    Ok(removed)
}

/// The saved webhook `id` of `scope`.
pub(crate) fn find<'a>(
    all: &'a [SavedWebhook],
    scope: &Scope,
    id: &str,
) -> Option<&'a SavedWebhook> {
    all.iter().find(|w| scope.holds(w) && w.id == id)
}

/// The webhook an earlier `--register` in `scope` made, newest first.
pub(crate) fn registered<'a>(all: &'a [SavedWebhook], scope: &Scope) -> Option<&'a SavedWebhook> {
    all.iter()
        .rev()
        .find(|w| scope.holds(w) && w.origin == Origin::Register)
}

/// Whether two `--api-url`s are the same API: `https://api.danubeai.com`,
/// `https://api.danubeai.com/` (as [`hyper::Uri`] prints it) and
/// `HTTPS://API.danubeai.com` are one.
fn same_api(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn webhook(id: &str, api_url: &str, origin: Origin) -> SavedWebhook {
        SavedWebhook::for_test(id, api_url, "https://abc.ngrok.app/webhooks/danube", origin)
    }

    fn scope(api_url: &str, org_id: Option<&str>) -> Scope {
        Scope {
            api_url: api_url.into(),
            org_id: org_id.map(str::to_owned),
            by: Some(TEST_CREDENTIAL.into()),
        }
    }

    #[test]
    fn upsert_find_remove_in_a_private_file() {
        let dir = std::env::temp_dir().join(format!("danube-hooks-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let api = "https://api.danubeai.com";
        let here = scope(api, None);
        assert!(load(&dir).unwrap().is_empty());
        assert!(!remove(&dir, &here, "wh_1").unwrap());
        upsert(&dir, webhook("wh_1", api, Origin::Create)).unwrap();
        upsert(&dir, webhook("wh_2", api, Origin::Register)).unwrap();
        upsert(
            &dir,
            webhook("wh_2", "http://127.0.0.1:9", Origin::Register),
        )
        .unwrap();
        let mut moved = webhook("wh_2", api, Origin::Register);
        moved.url = "https://other.trycloudflare.com/webhooks/danube".into();
        let path = upsert(&dir, moved.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let all = load(&dir).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(find(&all, &here, "wh_2"), Some(&moved));
        assert_eq!(registered(&all, &here), Some(&moved));
        assert_eq!(registered(&all, &scope("http://127.0.0.1:7", None)), None);
        assert_eq!(find(&all, &here, "wh_1").unwrap().origin, Origin::Create);
        assert_eq!(
            find(&all, &scope("https://api.danubeai.com/", None), "wh_2"),
            Some(&moved)
        );
        assert_eq!(
            find(&all, &scope("https://api.danubeai.com:8443", None), "wh_2"),
            None
        );

        assert!(remove(&dir, &here, "wh_2").unwrap());
        assert!(!remove(&dir, &here, "wh_2").unwrap());
        assert_eq!(registered(&load(&dir).unwrap(), &here), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_organization_is_a_scope_of_its_own() {
        let dir =
            std::env::temp_dir().join(format!("danube-hooks-saved-org-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let api = "https://api.danubeai.com";
        // A file written before organizations were kept: no org_id, the
        // key's own.
        let old = r#"[{"id": "wh_own", "api_url": "https://api.danubeai.com",
            "url": "https://a.example/h", "events": ["workflow.completed"],
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "origin": "register",
            "saved_at": "2026-11-30T16:00:00Z"}]"#;
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(file_in(&dir), old).unwrap();
        let (own, org_b) = (scope(api, None), scope(api, Some("org_b")));
        let mut in_b = webhook("wh_b", api, Origin::Register);
        in_b.org_id = Some("org_b".into());
        upsert(&dir, in_b.clone()).unwrap();

        let all = load(&dir).unwrap();
        assert_eq!(registered(&all, &own).unwrap().id, "wh_own");
        assert_eq!(registered(&all, &org_b), Some(&in_b));
        assert_eq!(find(&all, &org_b, "wh_own"), None);
        assert_eq!(registered(&all, &scope(api, Some("org_c"))), None);
        // Forgetting under one organization leaves the other's.
        assert!(!remove(&dir, &org_b, "wh_own").unwrap());
        assert!(remove(&dir, &org_b, "wh_b").unwrap());
        assert_eq!(load(&dir).unwrap().len(), 1);
        // A 404 is believed only from the credential that saved it.
        let all = load(&dir).unwrap();
        let own_old = find(&all, &own, "wh_own").unwrap();
        assert!(
            !own.believes_gone(own_old),
            "saved before credentials were noted"
        );
        assert!(own.believes_gone(&webhook("wh_x", api, Origin::Register)));
        let other_key = Scope {
            by: Some("fedcba9876543210".into()),
            ..own.clone()
        };
        assert!(!other_key.believes_gone(&webhook("wh_x", api, Origin::Register)));
        assert!(!org_b.believes_gone(&webhook("wh_x", api, Origin::Register)));
        // The key's own is written as before: no org_id at all.
        upsert(&dir, webhook("wh_2", api, Origin::Create)).unwrap();
        let text = std::fs::read_to_string(file_in(&dir)).unwrap();
        assert!(!text.contains("org_id"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_secret_is_never_printed_whole() {
        let saved = webhook("wh_1", "https://api.danubeai.com", Origin::Register);
        let shown = format!("{saved:?} {}", saved.fingerprint());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("aSw"), "{shown}");
    }
}
