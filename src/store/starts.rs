//! The starts of the listener on a store: a side file, `deliveries.jsonl.starts`
//! beside the records, with one line per start, `<first id> <time>`, written
//! when the store is opened for writing. The dashboard draws a divider
//! above the first record of each start it shows.
//!
//! A side file rather than a field of the records:
//! - the records keep their format (SPEC §5, one record per line), and a
//!   store written before starts were kept is read as it always was: its
//!   records simply have no divider above them;
//! - a start is known when it happens, with its time, even if no delivery
//!   follows, and is never tied to whichever delivery happens to come first;
//! - the listener's path per delivery does not grow by a byte.
//!
//! The file is bounded: past [`MAX_BYTES`] it is rewritten, atomically,
//! with its newest half. Losing it (or failing to write it) costs dividers,
//! never a record, so a failure is not an error of the store.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// Past this size the file keeps its newest half: about 800 starts.
const MAX_BYTES: u64 = 32 * 1024;

/// One start of the listener: the id its first record got (or would have
/// got), and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub(crate) first_id: u64,
    pub(crate) at: DateTime<Utc>,
    /// The address the listener of that start listened on, where known
    /// (a line from before addresses were noted has none).
    pub(crate) listener: Option<SocketAddr>,
}

/// The starts file next to the store at `path`.
pub(crate) fn starts_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".starts");
    path.with_file_name(name)
}

/// Note a start whose first record gets `first_id`. Called by the one
/// writer of the store, under its lock.
pub(super) fn mark(
    path: &Path,
    first_id: u64,
    at: DateTime<Utc>,
    listener: Option<SocketAddr>,
) -> io::Result<()> {
    let starts = starts_path(path);
    let mut line = format!("{first_id} {}", crate::delivery::format_time(&at));
    if let Some(listener) = listener {
        line = format!("{line} {listener}");
    }
    line.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&starts)?;
    file.write_all(line.as_bytes())?;
    if file.metadata()?.len() > MAX_BYTES {
        let kept = tail_text(&starts, MAX_BYTES / 2)?;
        let dir = starts.parent().unwrap_or(Path::new("."));
        let name = starts.file_name().unwrap_or_default().to_string_lossy();
        // The atomic writer ends the file with a newline of its own.
        crate::fsutil::write_private_atomic(dir, &name, kept.trim_end().as_bytes())
            .map_err(io::Error::other)?;
    }
    Ok(())
}

/// The starts noted for `store`, oldest first; none when there is no file
/// (a store from before starts were kept) or it cannot be read, and none for
/// the shared store, whose listeners note none. Lines that do not parse,
/// and lines whose id does not rise, are left out.
pub(crate) fn read(store: &super::Location) -> Vec<Start> {
    let Some(path) = store.file() else {
        return Vec::new();
    };
    let Ok(text) = tail_text(&starts_path(path), MAX_BYTES * 2) else {
        return Vec::new();
    };
    let mut starts: Vec<Start> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split(' ');
        let (Some(id), Some(at)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(first_id), Ok(at)) = (id.parse::<u64>(), DateTime::parse_from_rfc3339(at)) else {
            continue;
        };
        let listener = fields.next().and_then(|addr| addr.parse().ok());
        if starts.last().is_some_and(|last| last.first_id > first_id) {
            continue;
        }
        starts.push(Start {
            first_id,
            at: at.with_timezone(&Utc),
            listener,
        });
    }
    starts
}

/// The whole lines among the last `max` bytes of the file.
fn tail_text(path: &Path, max: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let from = len.saturating_sub(max);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if from > 0 {
        // The first line was cut by the seek.
        text = text
            .split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::store::Location;
    use crate::store::tests::TempDir;

    fn at(second: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + i64::from(second), 0).unwrap()
    }

    #[test]
    fn starts_are_kept_in_order_and_bad_lines_are_left_out() {
        let dir = TempDir::new("starts");
        let store = dir.0.join("deliveries.jsonl");
        assert!(
            read(&Location::File(store.clone())).is_empty(),
            "no file: no starts"
        );
        mark(&store, 1, at(0), None).unwrap();
        let listener: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        mark(&store, 5, at(10), Some(listener)).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(starts_path(&store))
            .unwrap();
        file.write_all(b"garbage\n3 2026-12-06T18:00:00.000Z\n")
            .unwrap();
        mark(&store, 9, at(20), None).unwrap();
        let ids: Vec<u64> = read(&Location::File(store.clone()))
            .iter()
            .map(|s| s.first_id)
            .collect();
        assert_eq!(
            ids,
            [1, 5, 9],
            "the garbage and the falling id are left out"
        );
        assert_eq!(read(&Location::File(store.clone()))[1].at, at(10));
        assert_eq!(
            read(&Location::File(store.clone()))
                .iter()
                .map(|s| s.listener)
                .collect::<Vec<_>>(),
            [None, Some(listener), None],
            "the listener's address where it was noted; a line without one reads as before"
        );
        let mode = std::fs::metadata(starts_path(&store))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_file_is_bounded_and_keeps_the_newest_starts() {
        let dir = TempDir::new("starts-bound");
        let store = dir.0.join("deliveries.jsonl");
        for n in 0..3_000u32 {
            mark(&store, u64::from(n) * 10 + 1, at(n), None).unwrap();
        }
        let len = std::fs::metadata(starts_path(&store)).unwrap().len();
        assert!(len <= MAX_BYTES, "{len} bytes");
        let starts = read(&Location::File(store.clone()));
        assert_eq!(
            starts.last().unwrap().first_id,
            29_991,
            "the newest is kept"
        );
        assert!(starts.len() > 300, "{} kept", starts.len());
        assert!(
            starts.windows(2).all(|w| w[0].first_id < w[1].first_id),
            "whole lines, in order"
        );
    }
}
