//! Private files: a folder of mode 0700 holding files of mode 0600, each
//! replaced whole (a temporary file, synced, renamed) so that no reader
//! ever sees half of one, and changed under a lock on the folder, so that
//! two processes changing one file at once each keep the other's change.
//! Also the warning when such a file or its folder is open to others, and
//! the reading of a small file a user names ([`read_within`]), which may
//! be a FIFO.

use std::collections::HashSet;
use std::fs::{File, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a change waits for another process's change to the same
/// folder: each holds the lock for one read and one write, so a lock held
/// this long is held by something stuck (or by someone else).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting change tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// Why a private file could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {cause}")]
pub(crate) struct FileError {
    pub(crate) action: &'static str,
    pub(crate) path: String,
    pub(crate) cause: io::Error,
}

impl FileError {
    pub(crate) fn of(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.display().to_string();
        move |cause| Self {
            action,
            path,
            cause,
        }
    }
}

/// The lock on a folder of private files, held until dropped. An advisory
/// `flock` on the folder itself, so no lock file is left beside the files.
#[derive(Debug)]
pub(crate) struct FolderLock {
    _folder: File,
}

/// Make `dir` (and its parents) if need be, and set it to 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(FileError::of("create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(FileError::of("set mode 0700 on", dir))
}

/// Take the lock on `dir` (which must exist), waiting up to [`LOCK_WAIT`]
/// for another process to finish its change. A file system without locks
/// gives no lock, and the change goes ahead as it would have.
pub(crate) fn lock_folder(dir: &Path) -> Result<FolderLock, FileError> {
    let folder = File::open(dir).map_err(FileError::of("open", dir))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match folder.try_lock() {
            Ok(()) => return Ok(FolderLock { _folder: folder }),
            Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Unsupported => {
                return Ok(FolderLock { _folder: folder });
            }
            Err(TryLockError::Error(err)) => return Err(FileError::of("lock", dir)(err)),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => {
                return Err(FileError::of("lock", dir)(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another process has held its lock for {} s (a stuck danube-hooks? \
                         another user, if the folder is not 0700?)",
                        LOCK_WAIT.as_secs()
                    ),
                )));
            }
            Err(TryLockError::WouldBlock) => std::thread::sleep(LOCK_RETRY),
        }
    }
}

/// Change `dir/name` under the folder's lock: `change` gets the file's
/// bytes as they are now (`None`: no such file), read after the lock was
/// taken so that no other change is lost, and returns the bytes to write
/// whole (`None`: leave the file as it is) and what the caller wants back.
/// `dir` is made 0700, the file 0600.
pub(crate) fn update_private<T, E: From<FileError>>(
    dir: &Path,
    name: &str,
    change: impl FnOnce(Option<Vec<u8>>) -> Result<(Option<Vec<u8>>, T), E>,
) -> Result<T, E> {
    private_dir(dir)?;
    let _lock = lock_folder(dir)?;
    let path = dir.join(name);
    let current = match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(FileError::of("read", &path)(err).into()),
    };
    let (new, out) = change(current)?;
    if let Some(bytes) = new {
        write_private_atomic(dir, name, &bytes)?;
    }
    Ok(out)
}

/// Write `bytes` as `dir/name`, whole, under the folder's lock, in `dir`
/// made 0700: a file nobody else changes in between.
pub(crate) fn write_private_atomic_locked(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, FileError> {
    update_private(dir, name, |_| {
        Ok::<_, FileError>((Some(bytes.to_vec()), ()))
    })?;
    Ok(dir.join(name))
}

/// Write `bytes` to `path`, a new file only this user can read, replacing
/// an older one of ours. Not atomic (a reader may see it half-written):
/// for a file made for the user to read once, such as an exported
/// command. In a shared temp dir a file planted by someone else (a
/// symlink, say) cannot be removed, so `create_new` fails rather than
/// follow it.
pub(crate) fn write_private_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Remove `dir/name` under the folder's lock; whether it was there.
pub(crate) fn remove_private(dir: &Path, name: &str) -> Result<bool, FileError> {
    let path = dir.join(name);
    if !dir.exists() {
        return Ok(false);
    }
    let _lock = lock_folder(dir)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(FileError::of("remove", &path)(err)),
    }
}

/// Replace `dir/name` with `bytes` (and a final newline) so that a crash
/// at any instant leaves the old file or the new one whole: a temporary
/// file of mode 0600, synced, renamed over the old one, and the folder
/// synced so the rename itself survives a power loss. `dir` must exist.
/// Takes no lock: for a file with one writer, or under [`lock_folder`].
pub(crate) fn write_private_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, FileError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        // A temporary file left by a writer that died mid-write is
        // replaced, not an error (the pid is reused across boots).
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        // Some file systems cannot sync a folder; the rename is then as
        // durable as they make it.
        if let Ok(folder) = File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        FileError::of("write", &path)(err)
    })?;
    Ok(path)
}

/// What is wrong with the modes of the private file `path` and its folder,
/// one line each, with the fix: a file another user can read or write
/// (not 0600), a folder another user can enter, list or write (not 0700).
/// Nothing for a file that is not there.
pub(crate) fn open_to_others(path: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode());
    let Some(file_mode) = mode(path) else {
        return Vec::new();
    };
    let shown = |p: &Path| crate::display::escape_path(p);
    let mut problems = Vec::new();
    if let Some(dir) = path.parent()
        && let Some(dir_mode) = mode(dir)
        && dir_mode & 0o077 != 0
    {
        problems.push(format!(
            "folder {} (holding {}) is open to group or others (mode {:04o}); chmod 700 it",
            shown(dir),
            path.file_name().unwrap_or_default().to_string_lossy(),
            dir_mode & 0o7777
        ));
    }
    if file_mode & 0o077 != 0 {
        problems.push(format!(
            "{} can be read or written by group or others (mode {:04o}); chmod 600 it",
            shown(path),
            file_mode & 0o7777
        ));
    }
    problems
}

/// Say on stderr, once per process for each, what [`open_to_others`]
/// finds: the commands that read a private file warn as `--secret-file`
/// does, and go on.
pub(crate) fn warn_if_open_to_others(path: &Path) {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    for problem in open_to_others(path) {
        // A poisoned set only means a warning may repeat.
        let first = WARNED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(HashSet::new)
            .insert(problem.clone());
        if first {
            eprintln!("danube-hooks: warning: {problem}");
        }
    }
}

/// How long a pipe given as a file (`--cacert <(…)`) may take to give all
/// of it.
const PIPE_WAIT: Duration = Duration::from_secs(5);

/// Up to `limit` bytes of the file at `path`. Opened without waiting, so a
/// FIFO nobody writes to reads as empty rather than hanging the open; a
/// pipe that is written to is read for up to [`PIPE_WAIT`].
pub(crate) fn read_within(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let deadline = Instant::now() + PIPE_WAIT;
    let mut bytes = Vec::new();
    let mut reader = file.take(limit);
    loop {
        match reader.read_to_end(&mut bytes) {
            Ok(_) => return Ok(bytes),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("danube-hooks-fsutil-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn changes_from_many_threads_each_keep_the_others() {
        let dir = temp_dir("update");
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        update_private(&dir, "list", |now| {
                            let mut text = String::from_utf8(now.unwrap_or_default()).unwrap();
                            text.truncate(text.trim_end().len());
                            // Widen the window a lost update needs.
                            std::thread::sleep(Duration::from_micros(200));
                            let _ = write!(text, " {n}.{i}");
                            Ok::<_, FileError>((Some(text.into_bytes()), ()))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let text = std::fs::read_to_string(dir.join("list")).unwrap();
        assert_eq!(text.split_whitespace().count(), 80, "{text}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("list")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // No temporary file left beside it.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_change_that_fails_leaves_the_file_and_the_lock() {
        let dir = temp_dir("fails");
        write_private_atomic_locked(&dir, "f", b"kept").unwrap();
        let err = update_private(&dir, "f", |_| {
            Err::<(Option<Vec<u8>>, ()), _>(FileError::of("parse", &dir)(io::Error::other("no")))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"kept\n");
        // The lock went with the failed change.
        assert!(remove_private(&dir, "f").unwrap());
        assert!(!remove_private(&dir, "f").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_or_folder_open_to_others_is_named_with_its_fix() {
        let dir = temp_dir("modes");
        let path = write_private_atomic_locked(&dir, "credentials.json", b"{}").unwrap();
        assert_eq!(open_to_others(&path), Vec::<String>::new());
        assert_eq!(open_to_others(&dir.join("absent")), Vec::<String>::new());
        set_mode(&path, 0o644);
        set_mode(&dir, 0o755);
        let problems = open_to_others(&path);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains(&dir.display().to_string())
                && problems[0].contains("mode 0755")
                && problems[0].ends_with("chmod 700 it"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains(&path.display().to_string())
                && problems[1].contains("mode 0644")
                && problems[1].ends_with("chmod 600 it"),
            "{problems:?}"
        );
        set_mode(&dir, 0o700);
        set_mode(&path, 0o620);
        assert_eq!(open_to_others(&path).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_read_when_written_and_empty_when_not() {
        use std::io::Write as _;
        let fifo = std::env::temp_dir().join(format!("danube-hooks-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        assert_eq!(read_within(&fifo, 100).unwrap(), b"", "nobody writes");
        // Opened to read and write, it does not wait for a reader.
        let mut writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        writer.write_all(b"-----BEGIN ").unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            writer.write_all(b"rest").unwrap();
        });
        assert_eq!(read_within(&fifo, 100).unwrap(), b"-----BEGIN rest");
        writer.join().unwrap();
        std::fs::remove_file(&fifo).unwrap();
    }
}
