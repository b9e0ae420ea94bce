//! The store's file: open (create, lock), recovery of a torn tail and the
//! next id, and a write that leaves whole lines or none.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::lines::{LinesBackward, id_of};
use super::{OpenReport, StoreError};

/// Open, lock and repair the file; find the next id.
pub(super) fn open_file(path: &Path) -> Result<(StoreFile, OpenReport), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(open_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StoreError::InUse {
                path: path.to_path_buf(),
            });
        }
        // Some file systems have no locks; the store works without one, as
        // long as the person runs one listener on it.
        Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Unsupported => {}
        Err(TryLockError::Error(err)) => return Err(open_error(err)),
    }
    let read_error = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(read_error)?.len();
    let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
    let torn = lines.torn_bytes();
    let mut last_id = 0;
    while let Some((_, line)) = lines.next_line().map_err(read_error)? {
        // The last line that carries an id, even if the rest of it is
        // damaged: that id was given out, so it must not be given again.
        if let Some(id) = id_of(line) {
            last_id = id;
            break;
        }
    }
    let end = len - torn;
    if torn > 0 {
        file.set_len(end).map_err(open_error)?;
        file.sync_data().map_err(open_error)?;
    }
    let report = OpenReport {
        path: Some(path.to_path_buf()),
        next_id: last_id.saturating_add(1),
        torn_bytes_cut: (torn > 0).then_some(torn),
    };
    let store_file = StoreFile {
        file,
        path: path.to_path_buf(),
        len: end,
        fragment: false,
    };
    Ok((store_file, report))
}

/// The open, locked file and what the store knows about its end.
pub(super) struct StoreFile {
    pub(super) file: File,
    pub(super) path: PathBuf,
    /// Bytes of whole lines in the file: where the next line starts.
    len: u64,
    /// A failed write left bytes that could not be cut; the next write ends
    /// them with a newline first, so they cost a line of garbage, never a
    /// whole record.
    fragment: bool,
}

impl StoreFile {
    pub(super) fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.fragment {
            self.file.write_all(b"\n")?;
            self.fragment = false;
            self.len = self.file.metadata()?.len();
        }
        match self.file.write_all(lines) {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(err) => {
                // A short write (a full disk) leaves half a line: cut it, so
                // the next record starts on a line of its own.
                if self.file.set_len(self.len).is_err() {
                    self.fragment = true;
                }
                Err(err)
            }
        }
    }
}
