//! Readers: plain sync functions over the file; no writer needed, safe to
//! run while a listener appends (they stop at the last whole line).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader, Seek as _, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;

use super::StoreError;
use super::lines::{LinesBackward, id_of, id_prefix, is_blank};
use crate::delivery::Delivery;

/// A line a reader could not parse and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsable {
    /// Where the line starts in the file.
    pub offset: u64,
    pub reason: String,
}

impl fmt::Display for Unparsable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the line at byte {}: {}", self.offset, self.reason)
    }
}

/// What a reader found: the records, and the lines it skipped so the command
/// can say so on stderr.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub deliveries: Vec<Delivery>,
    /// In file order.
    pub skipped: Vec<Unparsable>,
}

impl Scan {
    fn take(&mut self, offset: u64, line: &[u8]) -> Option<u64> {
        match serde_json::from_slice::<Delivery>(line) {
            Ok(delivery) => {
                let id = delivery.id;
                self.deliveries.push(delivery);
                Some(id)
            }
            Err(err) => {
                self.skipped.push(Unparsable {
                    offset,
                    reason: err.to_string(),
                });
                None
            }
        }
    }
}

/// Every record, oldest first.
pub fn read_all(path: &Path) -> Result<Vec<Delivery>, StoreError> {
    scan_all(path).map(|scan| scan.deliveries)
}

/// The last `n` records, oldest first.
pub fn read_last(path: &Path, n: usize) -> Result<Vec<Delivery>, StoreError> {
    scan_last(path, n).map(|scan| scan.deliveries)
}

/// Up to `limit` records with ids above `after_id`, oldest first.
pub fn read_after(path: &Path, after_id: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    scan_after(path, after_id, limit).map(|scan| scan.deliveries)
}

/// [`read_all`], with the lines it skipped.
pub fn scan_all(path: &Path) -> Result<Scan, StoreError> {
    let file = open_for_read(path)?;
    let mut scan = Scan::default();
    for_each_line(path, file, 0, |offset, line| {
        scan.take(offset, line);
        ControlFlow::Continue(())
    })?;
    Ok(scan)
}

/// [`read_last`], with the lines it skipped. Reads backwards from the end,
/// so it costs the same on any size of store.
pub fn scan_last(path: &Path, n: usize) -> Result<Scan, StoreError> {
    let file = open_for_read(path)?;
    let read_error = read_error(path);
    let len = file.metadata().map_err(read_error)?.len();
    let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
    let mut scan = Scan::default();
    while scan.deliveries.len() < n {
        let Some((offset, line)) = lines.next_line().map_err(read_error)? else {
            break;
        };
        scan.take(offset, line);
    }
    scan.deliveries.reverse();
    scan.skipped.reverse();
    Ok(scan)
}

/// [`read_after`], with the lines it skipped. Finds where `after_id` ends by
/// reading only the `{"id":N,` of lines backwards from the end (ids rise
/// through the file), then parses forwards from there.
pub fn scan_after(path: &Path, after_id: u64, limit: usize) -> Result<Scan, StoreError> {
    let file = open_for_read(path)?;
    let read_error = read_error(path);
    let len = file.metadata().map_err(read_error)?.len();
    let mut start;
    {
        let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
        // Nothing after `after_id` unless a line back from the end says so.
        start = len - lines.torn_bytes();
        while let Some((offset, line)) = lines.next_line().map_err(read_error)? {
            if id_prefix(line).is_some_and(|id| id <= after_id) {
                break;
            }
            start = offset;
        }
    }
    let mut scan = Scan::default();
    if limit == 0 {
        return Ok(scan);
    }
    for_each_line(path, file, start, |offset, line| {
        if id_of(line).is_some_and(|id| id <= after_id) {
            return ControlFlow::Continue(());
        }
        if scan.take(offset, line).is_some() && scan.deliveries.len() >= limit {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(scan)
}

/// The record with `id`. Reads backwards, since the records people ask for
/// are mostly recent, and parses only the line whose `{"id":N,` matches.
pub fn find(path: &Path, id: u64) -> Result<Delivery, StoreError> {
    let file = open_for_read(path)?;
    let read_error = read_error(path);
    let len = file.metadata().map_err(read_error)?.len();
    let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
    while let Some((offset, line)) = lines.next_line().map_err(read_error)? {
        if id_of(line) != Some(id) {
            continue;
        }
        return serde_json::from_slice(line).map_err(|err| StoreError::Corrupt {
            id,
            path: path.to_path_buf(),
            offset,
            reason: err.to_string(),
        });
    }
    Err(StoreError::NotFound {
        id,
        path: path.to_path_buf(),
    })
}

fn open_for_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            StoreError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            StoreError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_error(path: &Path) -> impl Fn(io::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Call `each(offset, line)` for every whole, non-blank line from `start`,
/// without its newline. A last line with no newline is torn (or still being
/// written) and is not a record yet: it is skipped.
fn for_each_line(
    path: &Path,
    mut file: File,
    start: u64,
    mut each: impl FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let read_error = read_error(path);
    file.seek(SeekFrom::Start(start)).map_err(read_error)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut offset = start;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(read_error)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        let text = &line[..n - 1];
        if !is_blank(text) && each(offset, text).is_break() {
            return Ok(());
        }
        offset += n as u64;
    }
}
