//! The dashboard's log file: where warnings, replay errors and other
//! threads' panics go while the alternate screen is up and stderr would
//! tear the screen.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::display::escape_line;

pub(crate) struct LogFile {
    pub(crate) path: PathBuf,
    /// In the shared temp dir (`--no-store`): created fresh, never followed.
    in_temp: bool,
    file: Option<File>,
    /// Whether a line has gone in: the dashboard names the file on quit
    /// only then.
    pub(crate) written: bool,
}

impl LogFile {
    /// `danube-hooks.log` beside the store, or a file of this process in
    /// the temp dir.
    pub(crate) fn beside(store: Option<&Path>) -> Self {
        match store.and_then(Path::parent) {
            Some(dir) => Self {
                path: dir.join("danube-hooks.log"),
                in_temp: false,
                file: None,
                written: false,
            },
            None => Self {
                path: std::env::temp_dir().join(format!("danube-hooks-{}.log", std::process::id())),
                in_temp: true,
                file: None,
                written: false,
            },
        }
    }

    /// Append one line; failures are dropped (there is nowhere to say so).
    pub(crate) fn write(&mut self, message: &str) {
        if self.file.is_none() {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut options = OpenOptions::new();
            options.append(true).mode(0o600);
            if self.in_temp && !self.written {
                options.create_new(true);
            } else {
                options.create(true);
            }
            self.file = options.open(&self.path).ok();
        }
        if let Some(file) = self.file.as_mut() {
            let line = format!(
                "{} {}\n",
                crate::delivery::format_time(&chrono::Utc::now()),
                escape_line(message)
            );
            if file.write_all(line.as_bytes()).is_ok() {
                self.written = true;
            }
        }
    }
}
