//! The webhooks danube-hooks made in Danube and kept the secret of:
//! `webhooks.json` next to the credentials (folder 0700, file 0600, written
//! whole and renamed, see [`credentials::write_private`]).
//!
//! Danube shows a webhook's secret only in the answer to its create, so
//! this file is the only place it lives afterwards. It is also what tells
//! a webhook danube-hooks created (and may change, pause or delete) from
//! one it did not (which it never touches, SPEC §11).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api::CreatedWebhook;
use super::credentials::{self, CredentialsError};
use crate::signature::Secret;

/// The file's name inside the config folder.
pub const FILE_NAME: &str = "webhooks.json";

/// How a saved webhook came to be, which decides who may reuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `listen --register` made it: the next `--register` against the same
    /// API reuses it (updates its URL), pauses it on exit.
    Register,
    /// `webhooks create --save` made it: used for verification and by
    /// `deliveries`, never re-pointed by `--register`.
    Create,
}

/// One webhook danube-hooks created, with the secret Danube showed once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedWebhook {
    pub id: String,
    /// The API it lives in (`--api-url`), so a webhook of a test API is
    /// never taken for one of Danube's.
    pub api_url: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub origin: Origin,
    /// When it was saved (RFC 3339).
    pub saved_at: String,
}

/// Never the secret whole, even in a debug print.
impl std::fmt::Debug for SavedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedWebhook")
            .field("id", &self.id)
            .field("api_url", &self.api_url)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.fingerprint())
            .field("origin", &self.origin)
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

impl SavedWebhook {
    /// What is kept of a webhook Danube just created for the API at
    /// `api_url`: its secret, shown only in that answer, and now.
    pub fn of_created(api_url: String, created: &CreatedWebhook, origin: Origin) -> Self {
        Self {
            id: created.webhook.id.clone(),
            api_url,
            url: created.webhook.url.clone(),
            events: created.webhook.events.clone(),
            secret: created.secret.clone(),
            origin,
            saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// The secret, ready to verify with.
    pub fn signing_secret(&self) -> Secret {
        Secret::new(self.secret.clone())
    }

    /// `whsec_…abcd`, as every other secret is shown.
    pub fn fingerprint(&self) -> String {
        self.signing_secret().fingerprint()
    }
}

/// A saved webhook for unit tests here and in the modules that read them.
#[cfg(test)]
impl SavedWebhook {
    pub(crate) fn for_test(id: &str, api_url: &str, url: &str, origin: Origin) -> Self {
        Self {
            id: id.into(),
            api_url: api_url.into(),
            url: url.into(),
            events: vec!["workflow.completed".into()],
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            origin,
            saved_at: "2026-11-30T16:00:00Z".into(),
        }
    }
}

/// The file in `dir`.
pub fn file_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Every saved webhook in `dir` (none when there is no file).
pub fn load(dir: &Path) -> Result<Vec<SavedWebhook>, CredentialsError> {
    let path = file_in(dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(credentials::io("read", &path)(err)),
    };
    serde_json::from_slice(&text).map_err(|err| CredentialsError::CorruptWebhooks {
        path: path.display().to_string(),
        // Where, never the text: it holds secrets.
        cause: format!("{:?} error at line {}", err.classify(), err.line()),
    })
}

fn store(dir: &Path, all: &[SavedWebhook]) -> Result<PathBuf, CredentialsError> {
    let bytes = serde_json::to_vec_pretty(all).expect("saved webhooks serialize");
    credentials::write_private(dir, FILE_NAME, &bytes)
}

/// Save `webhook`, replacing one with the same API and id.
pub fn upsert(dir: &Path, webhook: SavedWebhook) -> Result<PathBuf, CredentialsError> {
    let mut all = load(dir)?;
    all.retain(|w| !(same_api(&w.api_url, &webhook.api_url) && w.id == webhook.id));
    all.push(webhook);
    store(dir, &all)
}

/// Forget the webhook `id` of `api_url`; whether it was saved.
pub fn remove(dir: &Path, api_url: &str, id: &str) -> Result<bool, CredentialsError> {
    let mut all = load(dir)?;
    let before = all.len();
    all.retain(|w| !(same_api(&w.api_url, api_url) && w.id == id));
    if all.len() == before {
        return Ok(false);
    }
    store(dir, &all)?;
    Ok(true)
}

/// The saved webhook `id` of `api_url`.
pub fn find<'a>(all: &'a [SavedWebhook], api_url: &str, id: &str) -> Option<&'a SavedWebhook> {
    all.iter()
        .find(|w| same_api(&w.api_url, api_url) && w.id == id)
}

/// The webhook an earlier `--register` against `api_url` made, newest first.
pub fn registered<'a>(all: &'a [SavedWebhook], api_url: &str) -> Option<&'a SavedWebhook> {
    all.iter()
        .rev()
        .find(|w| same_api(&w.api_url, api_url) && w.origin == Origin::Register)
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

    #[test]
    fn upsert_find_remove_in_a_private_file() {
        let dir = std::env::temp_dir().join(format!("danube-hooks-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let api = "https://api.danubeai.com";
        assert!(load(&dir).unwrap().is_empty());
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
        assert_eq!(find(&all, api, "wh_2"), Some(&moved));
        assert_eq!(registered(&all, api), Some(&moved));
        assert_eq!(registered(&all, "http://127.0.0.1:7"), None);
        assert_eq!(find(&all, api, "wh_1").unwrap().origin, Origin::Create);
        assert_eq!(
            find(&all, "https://api.danubeai.com/", "wh_2"),
            Some(&moved)
        );
        assert_eq!(find(&all, "https://api.danubeai.com:8443", "wh_2"), None);

        assert!(remove(&dir, api, "wh_2").unwrap());
        assert!(!remove(&dir, api, "wh_2").unwrap());
        assert_eq!(registered(&load(&dir).unwrap(), api), None);
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
