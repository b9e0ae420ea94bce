//! Danube credentials: who requests to Danube's API are made as
//! ([`Credential`]: a key or a token from the environment, else the key
//! `login` saved), and where `login` keeps the key:
//! `$XDG_CONFIG_HOME/danube-hooks/` (else `~/.config/danube-hooks/`), a
//! folder of mode 0700 holding `credentials.json` of mode 0600, written
//! whole to a temporary file of that mode and renamed, under a lock on the
//! folder (`crate::fsutil`), so no reader ever sees half a key or a key
//! readable by others. A file or folder found open to others is used, with
//! a warning on stderr. A credential is only ever shown as its fingerprint
//! (`super::scrub::redact`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::scrub::redact;
use crate::fsutil::{self, FileError};

/// The file's name inside the config folder.
pub(crate) const FILE_NAME: &str = "credentials.json";

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error(
        "no config folder for the credentials: set XDG_CONFIG_HOME or HOME, or pass the key in \
         DANUBE_API_KEY"
    )]
    NoConfigDir,
    #[error("cannot {action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: String,
        cause: std::io::Error,
    },
    #[error(
        "{path} is not a credentials file danube-hooks wrote ({cause}); run `danube-hooks logout` \
         and log in again"
    )]
    Corrupt { path: String, cause: String },
    #[error(
        "{path} is not a webhooks file danube-hooks wrote ({cause}); move it aside (the secrets \
         in it may still be readable by hand) and save the webhooks again"
    )]
    CorruptWebhooks { path: String, cause: String },
}

/// What `login` saved.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) api_key: String,
    /// Danube's own short name of the key, shown instead of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_prefix: Option<String>,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Saved {
    /// The key as it may be shown: Danube's prefix (when it is one, and
    /// short: it came from the network), else its first characters.
    pub(crate) fn shown(&self) -> String {
        match &self.key_prefix {
            Some(prefix)
                if !prefix.is_empty()
                    && self.api_key.starts_with(prefix.as_str())
                    && prefix.len() * 2 <= self.api_key.len() =>
            {
                format!("{}…", crate::display::escape_line(prefix))
            }
            _ => redact(&self.api_key),
        }
    }
}

/// Who the requests are made as.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `danube-api-key: KEY` (the SDKs' way, and what `login` saves).
    ApiKey { key: String, org_id: Option<String> },
    /// `Authorization: Bearer TOKEN` (the API reference's way).
    Bearer {
        token: String,
        org_id: Option<String>,
    },
}

impl std::fmt::Debug for Credential {
    /// Never the credential whole, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Credential {
    /// `DANUBE_API_KEY`, else `DANUBE_API_TOKEN`, else the key `login`
    /// saved; `DANUBE_ORG_ID` goes with any of them. Blank values count as
    /// unset.
    pub(crate) fn resolve(
        env: impl Fn(&str) -> Option<String>,
        saved: Option<&Saved>,
    ) -> Option<Self> {
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let org_id = var("DANUBE_ORG_ID");
        if let Some(key) = var("DANUBE_API_KEY") {
            return Some(Self::ApiKey { key, org_id });
        }
        if let Some(token) = var("DANUBE_API_TOKEN") {
            return Some(Self::Bearer { token, org_id });
        }
        saved.map(|saved| Self::ApiKey {
            key: saved.api_key.clone(),
            org_id,
        })
    }

    /// The organization (`DANUBE_ORG_ID`) requests are made for; `None`
    /// for the credential's own.
    pub(crate) fn org_id(&self) -> Option<&str> {
        match self {
            Self::ApiKey { org_id, .. } | Self::Bearer { org_id, .. } => org_id.as_deref(),
        }
    }

    /// The credential as it may be shown: its first few characters.
    pub(crate) fn shown(&self) -> String {
        match self {
            Self::ApiKey { key, .. } => format!("key {}", redact(key)),
            Self::Bearer { token, .. } => format!("token {}", redact(token)),
        }
    }

    /// Who saved a webhook, without the credential: the first 8 bytes of
    /// SHA-256 over a fixed label, the kind and the key or token, in hex.
    /// The same credential gives the same digest, and nothing leads back
    /// from it to the credential.
    pub(crate) fn digest(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let kind = match self {
            Self::ApiKey { .. } => "key",
            Self::Bearer { .. } => "token",
        };
        let mut hasher = Sha256::new();
        for part in ["danube-hooks saved-by", kind, self.secret()] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..8])
    }

    /// The key or token itself, to hide wherever a server echoes it.
    pub(super) fn secret(&self) -> &str {
        match self {
            Self::ApiKey { key, .. } => key,
            Self::Bearer { token, .. } => token,
        }
    }

    /// The headers that carry it, and the organization asked for.
    pub(super) fn headers(&self) -> Vec<(&'static str, String)> {
        let (mut headers, org_id) = match self {
            Self::ApiKey { key, org_id } => (vec![("danube-api-key", key.clone())], org_id),
            Self::Bearer { token, org_id } => {
                (vec![("authorization", format!("Bearer {token}"))], org_id)
            }
        };
        if let Some(org) = org_id {
            headers.push(("danube-org-id", org.clone()));
        }
        headers
    }
}

/// `$XDG_CONFIG_HOME/danube-hooks` (when absolute), else `$HOME/.config/danube-hooks`.
pub(crate) fn config_dir() -> Result<PathBuf, CredentialsError> {
    crate::paths::config_dir().ok_or(CredentialsError::NoConfigDir)
}

/// The credentials file in `dir`.
pub(crate) fn file_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

pub(crate) fn io(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> CredentialsError {
    let path = path.display().to_string();
    move |cause| CredentialsError::Io {
        action,
        path,
        cause,
    }
}

impl From<FileError> for CredentialsError {
    fn from(err: FileError) -> Self {
        Self::Io {
            action: err.action,
            path: err.path,
            cause: err.cause,
        }
    }
}

/// The saved credentials in `dir`, if any; a warning on stderr when the
/// file or its folder is open to others.
pub(crate) fn load(dir: &Path) -> Result<Option<Saved>, CredentialsError> {
    let path = file_in(dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io("read", &path)(err)),
    };
    fsutil::warn_if_open_to_others(&path);
    let saved: Saved = serde_json::from_slice(&text).map_err(|err| CredentialsError::Corrupt {
        path: path.display().to_string(),
        // Where, never the text: it holds a key.
        cause: format!("{:?} error at line {}", err.classify(), err.line()),
    })?;
    Ok(Some(saved))
}

/// Save `saved` in `dir` (made 0700 if new, and set to 0700), the file 0600,
/// whole and under the folder's lock (`fsutil::write_private_atomic_locked`).
pub(crate) fn save(dir: &Path, saved: &Saved) -> Result<PathBuf, CredentialsError> {
    let bytes = serde_json::to_vec_pretty(saved).expect("Saved serializes");
    Ok(fsutil::write_private_atomic_locked(dir, FILE_NAME, &bytes)?)
}

/// Remove the saved credentials; whether there were any.
pub(crate) fn remove(dir: &Path) -> Result<bool, CredentialsError> {
    Ok(fsutil::remove_private(dir, FILE_NAME)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("danube-hooks-cred-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn save_load_remove_with_private_modes() {
        let base = temp_dir("roundtrip");
        let dir = base.join("danube-hooks");
        assert_eq!(load(&dir).unwrap(), None);
        let saved = Saved {
            api_key: "dk_live_0123456789abcdef".into(),
            key_prefix: Some("dk_live_01".into()),
        };
        let path = save(&dir, &saved).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(load(&dir).unwrap(), Some(saved.clone()));
        // Saved again over the old one: still 0600, no temp file left.
        save(&dir, &saved).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(remove(&dir).unwrap());
        assert!(!remove(&dir).unwrap());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_named_without_its_text() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(file_in(&dir), "{\"api_key\": 7, \"dk_secret_text\"").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("logout"), "{err}");
        assert!(!err.contains("dk_secret_text"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shown_never_whole() {
        let saved = Saved {
            api_key: "dk_abcdefghijklmnop".into(),
            key_prefix: None,
        };
        assert_eq!(saved.shown(), "dk_abc…");
        let with_prefix = |prefix: &str| Saved {
            key_prefix: Some(prefix.into()),
            ..saved.clone()
        };
        assert_eq!(with_prefix("dk_ab").shown(), "dk_ab…");
        // A "prefix" that is the key, or not its prefix, is not shown.
        assert_eq!(with_prefix("dk_abcdefghijklmnop").shown(), "dk_abc…");
        assert_eq!(with_prefix("other").shown(), "dk_abc…");
        assert!(!format!("{saved:?}").contains("ghij"));
    }

    #[test]
    fn credentials_in_order_and_never_whole() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let saved = Saved {
            api_key: "dk_saved_key_0123".into(),
            key_prefix: None,
        };
        let both = env(&[
            ("DANUBE_API_KEY", "dk_env_key_0123456"),
            ("DANUBE_API_TOKEN", "eyJtoken"),
            ("DANUBE_ORG_ID", "org_1"),
        ]);
        let got = Credential::resolve(both, Some(&saved)).unwrap();
        assert_eq!(
            got.headers(),
            [
                ("danube-api-key", "dk_env_key_0123456".to_owned()),
                ("danube-org-id", "org_1".to_owned())
            ]
        );
        let token = Credential::resolve(
            env(&[("DANUBE_API_TOKEN", "eyJtoken.abc.def")]),
            Some(&saved),
        );
        assert_eq!(
            token.unwrap().headers(),
            [("authorization", "Bearer eyJtoken.abc.def".to_owned())]
        );
        let blank = env(&[("DANUBE_API_KEY", "  ")]);
        let got = Credential::resolve(blank, Some(&saved)).unwrap();
        assert_eq!(got.headers()[0].1, "dk_saved_key_0123");
        assert_eq!(format!("{got:?}"), "key dk_sa…");
        assert!(Credential::resolve(env(&[]), None).is_none());
        assert_eq!(redact("abc"), "a…");
        assert_eq!(redact(""), "…");
    }

    #[test]
    fn a_digest_tells_credentials_apart_and_never_holds_one() {
        let key = |key: &str, org: Option<&str>| Credential::ApiKey {
            key: key.into(),
            org_id: org.map(str::to_owned),
        };
        let one = key("dk_live_one", None).digest();
        assert_eq!(one.len(), 16);
        assert_eq!(one, key("dk_live_one", Some("org_b")).digest());
        assert_ne!(one, key("dk_live_two", None).digest());
        let token = Credential::Bearer {
            token: "dk_live_one".into(),
            org_id: None,
        };
        assert_ne!(one, token.digest());
        assert!(!one.contains("one"));
    }
}
