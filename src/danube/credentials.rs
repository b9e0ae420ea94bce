//! Where `login` keeps the Danube API key: `$XDG_CONFIG_HOME/danube-hooks/`
//! (else `~/.config/danube-hooks/`), a folder of mode 0700 holding
//! `credentials.json` of mode 0600, written whole to a temporary file of
//! that mode and renamed, under a lock on the folder (`crate::fsutil`), so
//! no reader ever sees half a key or a key readable by others. A file or
//! folder found open to others is used, with a warning on stderr.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FileError};

/// The file's name inside the config folder.
pub const FILE_NAME: &str = "credentials.json";

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
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
pub struct Saved {
    pub api_key: String,
    /// Danube's own short name of the key, shown instead of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Saved {
    /// The key as it may be shown: Danube's prefix (when it is one, and
    /// short: it came from the network), else its first characters.
    pub fn shown(&self) -> String {
        match &self.key_prefix {
            Some(prefix)
                if !prefix.is_empty()
                    && self.api_key.starts_with(prefix.as_str())
                    && prefix.len() * 2 <= self.api_key.len() =>
            {
                format!("{}…", crate::display::escape_line(prefix))
            }
            _ => crate::danube::api::redact(&self.api_key),
        }
    }
}

/// `$XDG_CONFIG_HOME/danube-hooks` (when absolute), else `$HOME/.config/danube-hooks`.
pub fn config_dir() -> Result<PathBuf, CredentialsError> {
    crate::paths::config_dir().ok_or(CredentialsError::NoConfigDir)
}

/// The credentials file in `dir`.
pub fn file_in(dir: &Path) -> PathBuf {
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
pub fn load(dir: &Path) -> Result<Option<Saved>, CredentialsError> {
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
pub fn save(dir: &Path, saved: &Saved) -> Result<PathBuf, CredentialsError> {
    let bytes = serde_json::to_vec_pretty(saved).expect("Saved serializes");
    Ok(fsutil::write_private_atomic_locked(dir, FILE_NAME, &bytes)?)
}

/// Remove the saved credentials; whether there were any.
pub fn remove(dir: &Path) -> Result<bool, CredentialsError> {
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
}
