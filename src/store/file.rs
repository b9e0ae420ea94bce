//! The store's files: open (create 0600 in a 0700 folder, lock), recovery
//! of a torn tail and the next id, a write that leaves whole lines or
//! none, rotation at `--store-max`, and the id file that keeps ids from
//! being given out twice.
//!
//! The files of a store at `deliveries.jsonl`:
//! - `deliveries.jsonl`: the records being appended to;
//! - `deliveries.1.jsonl`, `deliveries.2.jsonl`, …: the rotated ones, the
//!   higher the number the older; at most `keep` of them, the oldest
//!   deleted when one more would be kept;
//! - `deliveries.jsonl.ids`: the highest id given to a record whose write
//!   failed (21 bytes, overwritten in place, so it needs no new disk space
//!   on a full disk), and the advisory lock of the listener that owns the
//!   store (it does not move on rotation, as the records file does);
//! - `deliveries.jsonl.starts`: when each listener started on the store,
//!   and the id its first record got (`store::starts`, for the
//!   dashboard's dividers).

use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::lines::{Back, LinesBackward, id_of};
use super::{OpenReport, StoreError};

/// Width of the id file's one line: 20 digits (any u64) and a newline.
const ID_FILE_LEN: usize = 21;

/// When to rotate and how many rotated files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rotation {
    pub(super) max_bytes: u64,
    pub(super) keep: usize,
}

/// `deliveries.jsonl` → `deliveries.<n>.jsonl` (a name without an
/// extension gets `.<n>` at the end).
pub(super) fn rotated_path(path: &Path, n: usize) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let rotated = match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => {
            format!("{}.{n}.{}", stem.to_string_lossy(), ext.to_string_lossy())
        }
        _ => format!("{name}.{n}"),
    };
    path.with_file_name(rotated)
}

/// The id file next to the store.
pub(super) fn id_file_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".ids");
    path.with_file_name(name)
}

/// The rotated files that exist, oldest first (highest number first). Gaps
/// in the numbers are skipped: every kept file is read.
pub(super) fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let first = rotated_path(path, 1);
    let first_name = first.file_name().unwrap_or_default().to_string_lossy();
    // The name is `<prefix>1<suffix>`: the number sits where the 1 is.
    let Some(at) = first_name.rfind(".1").map(|i| i + 1) else {
        return Ok(Vec::new());
    };
    let (prefix, suffix) = (&first_name[..at], &first_name[at + 1..]);
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        else {
            continue;
        };
        if !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && !number.starts_with('0')
            && let Ok(n) = number.parse::<usize>()
        {
            found.push((n, entry.path()));
        }
    }
    found.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

fn create_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true).mode(0o600);
    options
}

/// Open, lock and repair the file; find the next id.
pub(super) fn open_file(
    path: &Path,
    rotation: Rotation,
    listener: Option<std::net::SocketAddr>,
) -> Result<(StoreFile, OpenReport), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Folders the store creates are the person's alone: deliveries
        // carry signatures and bodies.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(open_error)?;
    }
    let file = create_options().open(path).map_err(open_error)?;
    let (ids, failed_id) = open_id_file(path)?;
    let read_error = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(read_error)?.len();
    let (last_id, torn) = last_id_in(&file, len).map_err(read_error)?;
    // Just rotated, the records file holds nothing yet: the last id is in
    // the newest rotated file that has one.
    let mut last_id = last_id;
    if last_id.is_none() {
        for older in rotated_files(path).map_err(read_error)?.iter().rev() {
            let Ok(older) = File::open(older) else {
                continue;
            };
            let older_len = older.metadata().map_err(read_error)?.len();
            if let (Some(id), _) = last_id_in(&older, older_len).map_err(read_error)? {
                last_id = Some(id);
                break;
            }
        }
    }
    let end = len - torn;
    if torn > 0 {
        file.set_len(end).map_err(open_error)?;
        file.sync_data().map_err(open_error)?;
    }
    let report = OpenReport {
        path: Some(path.to_path_buf()),
        next_id: last_id.unwrap_or(0).max(failed_id).saturating_add(1),
        torn_bytes_cut: (torn > 0).then_some(torn),
    };
    // Under the lock, once the next id is known. Losing a start costs a
    // divider in the dashboard, never a record: not an error of the store.
    let _ = super::starts::mark(path, report.next_id, chrono::Utc::now(), listener);
    let store_file = StoreFile {
        file,
        path: path.to_path_buf(),
        len: end,
        fragment: false,
        ids,
        rotation,
        syncer_tx: None,
    };
    Ok((store_file, report))
}

/// The last id in a file, from the last line that carries one, even if
/// the rest of it is damaged (that id was given out, so it must not be
/// given again); and the bytes of a torn last line.
fn last_id_in(file: &File, len: u64) -> io::Result<(Option<u64>, u64)> {
    let mut lines = LinesBackward::new(file, len)?;
    let torn = lines.torn_bytes();
    // A line too long to be a record was never given an id.
    while let Some(back) = lines.next_line()? {
        if let Back::Line(_, line) = back
            && let Some(id) = id_of(line)
        {
            return Ok((Some(id), torn));
        }
    }
    Ok((None, torn))
}

/// Open (or create) and lock the id file; read the highest failed id.
fn open_id_file(path: &Path) -> Result<(File, u64), StoreError> {
    let ids_path = id_file_path(path);
    let open_error = |source| StoreError::Open {
        path: ids_path.clone(),
        source,
    };
    let mut ids = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&ids_path)
        .map_err(open_error)?;
    match ids.try_lock() {
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
    let mut text = String::new();
    ids.read_to_string(&mut text).map_err(open_error)?;
    let failed_id = text.trim().parse::<u64>().unwrap_or(0);
    if text.len() != ID_FILE_LEN {
        // Written now, at its full width, so raising it later overwrites
        // bytes the file already has: that works on a full disk.
        write_id(&ids, failed_id).map_err(open_error)?;
        ids.set_len(ID_FILE_LEN as u64).map_err(open_error)?;
    }
    Ok((ids, failed_id))
}

/// Whether a listener holds the store at `path`: its lock tried without
/// waiting, on the id file opened read-only (never created, written or
/// cut), shared, and let go at once by closing it, so a listener never
/// finds the store taken by the question. `None` where the file system
/// has no locks, so nobody can tell.
pub(crate) fn held_by_listener(path: &Path) -> io::Result<Option<bool>> {
    let ids = match File::open(id_file_path(path)) {
        Ok(ids) => ids,
        // No id file: no listener ever opened this store.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Some(false)),
        Err(err) => return Err(err),
    };
    let held = match ids.try_lock_shared() {
        Ok(()) => Some(false),
        Err(TryLockError::WouldBlock) => Some(true),
        Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Unsupported => None,
        Err(TryLockError::Error(err)) => return Err(err),
    };
    drop(ids);
    Ok(held)
}

fn write_id(ids: &File, id: u64) -> io::Result<()> {
    ids.write_all_at(format!("{id:020}\n").as_bytes(), 0)
}

/// What the fsync thread (`super::syncer`) is asked. Written here, where
/// a rotation hands over its files, so the file does not import the thread
/// that imports it.
pub(super) enum SyncRequest {
    /// A write was made: fsync within the interval.
    Soon,
    /// fsync now, and say when it is done.
    Now(oneshot::Sender<Result<(), StoreError>>),
    /// The store rotated: fsync the old file (the first) now, then keep
    /// the new one in sync.
    Switch(File, File),
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
    /// The id file: the lock, and the highest id of a failed write.
    ids: File,
    rotation: Rotation,
    /// Where a rotation hands the new file to the fsync thread (set once
    /// the thread runs).
    pub(super) syncer_tx: Option<mpsc::Sender<SyncRequest>>,
}

impl StoreFile {
    /// Write `lines`, the lines of records up to `last_id`, whole or not at
    /// all; on failure, keep `last_id` in the id file so no later open
    /// gives it out again.
    pub(super) fn write(&mut self, lines: &[u8], last_id: u64) -> io::Result<()> {
        let written = self.rotate_if_full(lines.len() as u64).and_then(|()| {
            if self.fragment {
                self.file.write_all(b"\n")?;
                self.fragment = false;
                self.len = self.file.metadata()?.len();
            }
            self.file.write_all(lines)
        });
        match written {
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
                // A batch of answer lines alone (`amend`) gave no id.
                if last_id == 0 {
                    return Err(err);
                }
                if let Err(id_err) = write_id(&self.ids, last_id) {
                    return Err(io::Error::new(
                        err.kind(),
                        format!(
                            "{err}; and the id file {} could not be updated ({id_err}), \
                             so a restart may give ids up to {last_id} out again",
                            id_file_path(&self.path).display()
                        ),
                    ));
                }
                Err(err)
            }
        }
    }

    /// Rotate before a write that would take a non-empty file past the
    /// limit (a batch larger than the limit still goes whole into a fresh
    /// file).
    fn rotate_if_full(&mut self, adding: u64) -> io::Result<()> {
        if self.len == 0 || self.len.saturating_add(adding) <= self.rotation.max_bytes {
            return Ok(());
        }
        let keep = self.rotation.keep;
        let oldest = rotated_path(&self.path, keep.max(1));
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            match std::fs::remove_file(&oldest) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
            for n in (1..keep).rev() {
                match std::fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1))
                {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
        }
        let file = create_options().open(&self.path)?;
        let old = std::mem::replace(&mut self.file, file);
        self.len = 0;
        self.fragment = false;
        match &self.syncer_tx {
            // The fsync thread syncs the old file before it takes the new
            // one, so a record written before the rotation is still synced
            // within the interval (or before a durable append returns).
            Some(syncer_tx) => {
                let _ = syncer_tx.send(SyncRequest::Switch(old, self.file.try_clone()?));
            }
            None => old.sync_data()?,
        }
        Ok(())
    }

    /// fsync the records file and the id file (on close).
    pub(super) fn sync_all(&self) -> io::Result<()> {
        self.file.sync_data()?;
        self.ids.sync_data()
    }
}
