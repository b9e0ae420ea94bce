//! Readers: plain sync functions over the store, a file or the shared
//! store's table; no writer needed, safe to run while a listener appends
//! (they stop at the last whole line, or the last committed row).
//!
//! The shared store's rows are read as a file's lines are: the same `keep`
//! byte check on the record's text, the same parse, a row that does not
//! parse skipped and told (`crate::store::postgres::read` fetches them).

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Seek as _, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::MAX_LINE;
use super::amend::{self, Amendable, LateMirror};
use super::file::rotated_files;
use super::lines::{Back, LinesBackward, id_of, id_prefix, is_blank, too_long};
use super::{Location, StoreError};
use crate::delivery::Delivery;
use crate::store::postgres::read::{Order, Row, Scan, each_row};
use crate::store::postgres::{PgError, Target};

/// A line a reader could not parse and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unparsable {
    /// The rotated file it is in; `None` for the store's current file.
    pub(crate) file: Option<PathBuf>,
    /// Where the line starts in its file.
    pub(crate) offset: u64,
    /// The shared store's row it is, by id (`file` and `offset` are then
    /// `None` and 0).
    pub(crate) row: Option<u64>,
    pub(crate) reason: String,
}

impl fmt::Display for Unparsable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = self.row {
            return write!(f, "the row with id {id}: {}", self.reason);
        }
        write!(f, "the line at byte {}", self.offset)?;
        if let Some(file) = &self.file {
            write!(f, " of {}", file.display())?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// One line of the store, as a reader met it.
#[derive(Debug)]
pub(crate) enum Entry<T = Delivery> {
    Record(T),
    Skipped(Unparsable),
}

/// The store's files, oldest first: the kept rotated ones, then `path`,
/// each opened at once (so a rotation while reading renames them under
/// this reader, not away from it). `path` must exist; a rotated file that
/// went away meanwhile is left out.
pub(super) fn open_store_files(path: &Path) -> Result<Vec<(Option<PathBuf>, File)>, StoreError> {
    let current = open_for_read(path)?;
    let mut files = Vec::new();
    for rotated in rotated_files(path).map_err(read_error(path))? {
        match File::open(&rotated) {
            Ok(file) => files.push((Some(rotated), file)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Read {
                    path: rotated,
                    source,
                });
            }
        }
    }
    files.push((None, current));
    Ok(files)
}

/// Call `each` for every record with an id above `after` (every record
/// when `None`) and every line that does not parse, oldest first, across
/// all kept files, until it breaks. One record is held at a time.
///
/// With `after`, each file is first read backwards by the `{"id":N,` of
/// its lines alone (ids rise through the store) to find where the records
/// after it start, then parsed forwards from there.
pub(crate) fn each_forward<T: Amendable>(
    store: &Location,
    after: Option<u64>,
    each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    each_forward_where(store, after, |_| true, each)
}

/// [`each_forward`] over the lines `keep` takes, judged on their bytes
/// before any parse: a line it refuses is neither parsed nor given to
/// `each`. A query's cheap byte checks skip most of a big store this way.
pub(crate) fn each_forward_where<T: Amendable>(
    store: &Location,
    after: Option<u64>,
    keep: impl FnMut(&[u8]) -> bool,
    each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    match store {
        Location::File(path) => file_forward_where(path, after, keep, each),
        Location::Postgres(target) => {
            let scan = Scan {
                after,
                ..Scan::new(Order::OldestFirst, MAX_LINE as u64)
            };
            rows_where(target, &scan, u64::MAX, keep, each)
        }
    }
}

fn file_forward_where<T: Amendable>(
    path: &Path,
    after: Option<u64>,
    mut keep: impl FnMut(&[u8]) -> bool,
    mut each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    // Records that wait for a late mirror's answer are held here until it
    // comes (`amend`), those after them too, so the order holds.
    let mut fold = amend::Forward::new();
    let mut ready = Vec::new();
    let mut give = |ready: &mut Vec<Entry<T>>| {
        for entry in ready.drain(..) {
            each(entry)?;
        }
        ControlFlow::Continue(())
    };
    for (rotated, file) in open_store_files(path)? {
        let file_path = rotated.as_deref().unwrap_or(path);
        let read_error = read_error(file_path);
        let start = match after {
            None => 0,
            Some(after) => start_after(&file, after).map_err(read_error)?,
        };
        let mut stopped = false;
        for_each_line(file_path, file, start, MAX_LINE, |offset, line| {
            match line {
                Err(len) => fold.push(
                    Entry::Skipped(Unparsable {
                        file: rotated.clone(),
                        offset,
                        row: None,
                        reason: too_long(len),
                    }),
                    0,
                    &mut ready,
                ),
                Ok(line) => match LateMirror::of(line) {
                    Some(Ok(late)) => fold.answer(&late, &mut ready),
                    Some(Err(reason)) => fold.push(
                        Entry::Skipped(Unparsable {
                            file: rotated.clone(),
                            offset,
                            row: None,
                            reason,
                        }),
                        0,
                        &mut ready,
                    ),
                    None if after
                        .is_some_and(|after| id_of(line).is_some_and(|id| id <= after)) => {}
                    None if !keep(line) => {}
                    None => fold.push(
                        parse(rotated.as_deref(), offset, Ok(line)),
                        line.len(),
                        &mut ready,
                    ),
                },
            }
            let flow = give(&mut ready);
            stopped = flow.is_break();
            flow
        })?;
        if stopped {
            return Ok(());
        }
    }
    fold.finish(&mut ready);
    let _ = give(&mut ready);
    Ok(())
}

/// Where the records with an id above `after` start in `file`: found by
/// reading it backwards by the `{"id":N,` of its lines alone (ids rise
/// through the store).
fn start_after(file: &File, after: u64) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut lines = LinesBackward::new(file, len)?;
    // Nothing after `after` unless a line back from the end says so.
    let mut start = len - lines.torn_bytes();
    while let Some(back) = lines.next_line()? {
        let offset = match back {
            Back::Line(_, line) if id_prefix(line).is_some_and(|id| id <= after) => break,
            Back::Line(offset, _) | Back::Skipped(offset, _) => offset,
            Back::TooLong => unreachable!("next_line has no limit of its own"),
        };
        start = offset;
    }
    Ok(start)
}

/// Call `each` for every record and every line that does not parse, newest
/// first, across all kept files, until it breaks. Reads backwards in
/// chunks, so the cost is the lines read, not the store's size.
pub(crate) fn each_backward<T: Amendable>(
    store: &Location,
    each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    each_backward_within(store, u64::MAX, each)
}

/// [`each_backward`] over the lines `keep` takes, as
/// [`each_forward_where`] does.
pub(crate) fn each_backward_where<T: Amendable>(
    store: &Location,
    mut keep: impl FnMut(&[u8]) -> bool,
    mut each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let path = match store {
        Location::File(path) => path,
        Location::Postgres(target) => {
            let scan = Scan::new(Order::NewestFirst, MAX_LINE as u64);
            return rows_where(target, &scan, u64::MAX, keep, each);
        }
    };
    let mut answers = amend::Backward::default();
    each_line_backward(path, u64::MAX, |rotated, offset, line| match line {
        Ok(line) if answers.took(line) || !keep(line) => ControlFlow::Continue(()),
        line => each(answers.folded(parse(rotated, offset, line), line)),
    })?;
    Ok(())
}

/// [`each_backward`], stopping once `max_bytes` of lines have been read
/// (or at a line longer than what is left of them): for a look at the
/// recent records that costs the same whatever their size.
pub(crate) fn each_backward_within<T: Amendable>(
    store: &Location,
    max_bytes: u64,
    mut each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let path = match store {
        Location::File(path) => path,
        Location::Postgres(target) => {
            let scan = Scan::new(Order::NewestFirst, MAX_LINE as u64);
            return rows_where(target, &scan, max_bytes, |_| true, each);
        }
    };
    let mut answers = amend::Backward::default();
    each_line_backward(path, max_bytes, |rotated, offset, line| match line {
        Ok(line) if answers.took(line) => ControlFlow::Continue(()),
        line => each(answers.folded(parse(rotated, offset, line), line)),
    })?;
    Ok(())
}

/// Call `each(rotated, offset, line)` for every whole line, newest first,
/// across all kept files (`rotated` is the rotated file the line is in,
/// `None` for the current one), until it breaks with a value or
/// `max_bytes` of lines are read. A line longer than any record comes as
/// `Err(its length)`, unread.
fn each_line_backward<R>(
    path: &Path,
    max_bytes: u64,
    mut each: impl FnMut(Option<&Path>, u64, Result<&[u8], u64>) -> ControlFlow<R>,
) -> Result<Option<R>, StoreError> {
    let mut read = 0u64;
    for (rotated, file) in open_store_files(path)?.into_iter().rev() {
        let read_error = read_error(rotated.as_deref().unwrap_or(path));
        let len = file.metadata().map_err(read_error)?.len();
        let mut lines = LinesBackward::new(&file, len).map_err(read_error)?;
        loop {
            let room = usize::try_from(max_bytes - read).unwrap_or(usize::MAX);
            let (offset, line, len) = match lines.next_line_within(room).map_err(read_error)? {
                None => break,
                Some(Back::TooLong) => return Ok(None),
                Some(Back::Line(offset, line)) => (offset, Ok(line), line.len() as u64),
                Some(Back::Skipped(offset, len)) => (offset, Err(len), len),
            };
            if let ControlFlow::Break(value) = each(rotated.as_deref(), offset, line) {
                return Ok(Some(value));
            }
            read = read.saturating_add(len + 1);
            if read >= max_bytes {
                return Ok(None);
            }
        }
    }
    Ok(None)
}

/// A line as a record, or why it was skipped (`Err(len)`: too long to be
/// one, not read).
fn parse<T: DeserializeOwned>(
    rotated: Option<&Path>,
    offset: u64,
    line: Result<&[u8], u64>,
) -> Entry<T> {
    let reason = match line.map(serde_json::from_slice::<T>) {
        Ok(Ok(record)) => return Entry::Record(record),
        Ok(Err(err)) => err.to_string(),
        Err(len) => too_long(len),
    };
    Entry::Skipped(Unparsable {
        file: rotated.map(Path::to_path_buf),
        offset,
        row: None,
        reason,
    })
}

/// The shared store's rows `scan` takes, as [`Entry`]s, the records that
/// `keep` takes parsed, until `each` breaks or `max_bytes` of records are
/// read (a record longer than what is left of them ends the read), as the
/// file's readers do.
fn rows_where<T: DeserializeOwned>(
    target: &Arc<Target>,
    scan: &Scan,
    max_bytes: u64,
    mut keep: impl FnMut(&[u8]) -> bool,
    mut each: impl FnMut(Entry<T>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let mut read = 0u64;
    let rows = each_row(target, scan, |Row { id, record }| {
        let len = record
            .as_ref()
            .map_or_else(|len| *len, |text| text.len() as u64);
        if len > max_bytes - read {
            return ControlFlow::Break(());
        }
        let flow = match record {
            Ok(text) if !keep(text.as_bytes()) => ControlFlow::Continue(()),
            Ok(text) => each(parse_row(id, Ok(&text))),
            Err(len) => each(parse_row(id, Err(len))),
        };
        read = read.saturating_add(len + 1);
        if read >= max_bytes {
            return ControlFlow::Break(());
        }
        flow
    });
    rows.map(|_| ()).map_err(|err| shared_error(target, err))
}

/// A row's record parsed, or why it was skipped: one that names another
/// id than its row's is someone else's row, not read as a second delivery
/// of that id.
pub(super) fn parse_row<T: DeserializeOwned>(id: u64, record: Result<&str, u64>) -> Entry<T> {
    let reason = match record {
        Ok(text) if id_of(text.as_bytes()) != Some(id) => not_its_id(id),
        Ok(text) => match serde_json::from_str::<T>(text) {
            Ok(record) => return Entry::Record(record),
            Err(err) => err.to_string(),
        },
        Err(len) => too_long(len),
    };
    Entry::Skipped(Unparsable {
        file: None,
        offset: 0,
        row: Some(id),
        reason,
    })
}

/// The shared store's error as the store's: no schema yet reads as a file
/// not there yet.
pub(super) fn shared_error(target: &Arc<Target>, err: PgError) -> StoreError {
    match err {
        PgError::NoSchema { .. } => StoreError::Missing {
            store: Location::Postgres(Arc::clone(target)),
        },
        err => StoreError::Shared(err),
    }
}

/// The record with `id`. Reads backwards, since the records people ask for
/// are mostly recent, and parses only the line whose `{"id":N,` matches;
/// stops at the first smaller id (ids rise through the store).
pub(crate) fn find(store: &Location, id: u64) -> Result<Delivery, StoreError> {
    let not_found = || StoreError::NotFound {
        id,
        store: store.clone(),
    };
    let path = match store {
        Location::File(path) => path,
        Location::Postgres(target) => {
            return find_row(target, id).unwrap_or_else(|| Err(not_found()));
        }
    };
    // A late mirror's answers to it come after it in the file: met first.
    let mut answers = Vec::new();
    let found = each_line_backward(path, u64::MAX, |rotated, offset, line| {
        // A line too long to be a record holds none.
        let Ok(line) = line else {
            return ControlFlow::Continue(());
        };
        if let Some(late) = LateMirror::of(line) {
            answers.extend(late.ok().filter(|late| late.mirror_of == id));
            return ControlFlow::Continue(());
        }
        match id_of(line) {
            Some(found) if found == id => ControlFlow::Break(
                serde_json::from_slice::<Delivery>(line)
                    .map(|mut record| {
                        for late in answers.iter().rev() {
                            record.take_late_mirror(late);
                        }
                        record
                    })
                    .map_err(|err| StoreError::Corrupt {
                        id,
                        path: rotated.unwrap_or(path).to_path_buf(),
                        offset,
                        reason: err.to_string(),
                    }),
            ),
            Some(found) if found < id => ControlFlow::Break(Err(not_found())),
            _ => ControlFlow::Continue(()),
        }
    })?;
    found.unwrap_or_else(|| Err(not_found()))
}

/// The shared store's row with `id`, parsed; `None` when there is none.
fn find_row(target: &Arc<Target>, id: u64) -> Option<Result<Delivery, StoreError>> {
    let scan = Scan {
        after: id.checked_sub(1),
        below: id.checked_add(1),
        ..Scan::new(Order::OldestFirst, u64::MAX)
    };
    let found = each_row(target, &scan, |Row { record, .. }| {
        ControlFlow::Break(record.unwrap_or_default())
    });
    let record = match found {
        Ok(found) => found?,
        Err(err) => return Some(Err(shared_error(target, err))),
    };
    let damaged = |reason: String| StoreError::DamagedRow {
        id,
        store: Location::Postgres(Arc::clone(target)),
        reason,
    };
    Some(match serde_json::from_str::<Delivery>(&record) {
        Ok(record) if record.id == id => Ok(record),
        Ok(_) => Err(damaged(not_its_id(id))),
        Err(err) => Err(damaged(err.to_string())),
    })
}

/// Why a row whose record names another id is not read.
pub(super) fn not_its_id(id: u64) -> String {
    format!("its record names another id than its row's ({id})")
}

fn open_for_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            StoreError::Missing {
                store: Location::File(path.to_path_buf()),
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
/// without its newline; a line longer than `max_line` comes as
/// `Err(its length)`, passed over without being held. A last line with no
/// newline is torn (or still being written) and is not a record yet: it is
/// skipped.
fn for_each_line(
    path: &Path,
    mut file: File,
    start: u64,
    max_line: usize,
    mut each: impl FnMut(u64, Result<&[u8], u64>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let read_error = read_error(path);
    file.seek(SeekFrom::Start(start)).map_err(read_error)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut offset = start;
    loop {
        line.clear();
        let Some(n) = read_line_within(&mut reader, &mut line, max_line).map_err(read_error)?
        else {
            return Ok(());
        };
        let text = if n > line.len() as u64 + 1 {
            Err(n - 1)
        } else {
            Ok(&line[..line.len()])
        };
        let blank = text.is_ok_and(is_blank);
        if !blank && each(offset, text).is_break() {
            return Ok(());
        }
        offset += n;
    }
}

/// Read one line into `line`, without its newline, keeping at most
/// `max_line` bytes of it: the bytes it took, newline included; `None` at
/// the end of the file with no newline. A longer line leaves `line` empty.
pub(super) fn read_line_within(
    reader: &mut impl io::BufRead,
    line: &mut Vec<u8>,
    max_line: usize,
) -> io::Result<Option<u64>> {
    let mut n = 0u64;
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(None);
        }
        let newline = memchr::memchr(b'\n', available);
        let part = &available[..newline.unwrap_or(available.len())];
        too_long = too_long || line.len() + part.len() > max_line;
        if too_long {
            line.clear();
        } else {
            line.extend_from_slice(part);
        }
        let used = newline.map_or(part.len(), |newline| newline + 1);
        reader.consume(used);
        n += used as u64;
        if newline.is_some() {
            return Ok(Some(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use super::{Entry, parse_row, read_line_within};
    use crate::delivery::Delivery;
    use crate::test_support::sample;

    #[test]
    fn a_row_whose_record_names_another_id_is_skipped() {
        let line = sample(5, b"{}").to_json_line();
        assert!(matches!(parse_row::<Delivery>(5, Ok(&line)), Entry::Record(r) if r.id == 5));
        let Entry::Skipped(skipped) = parse_row::<Delivery>(6, Ok(&line)) else {
            panic!("row 6 read as a second delivery 5");
        };
        assert_eq!(skipped.row, Some(6));
        assert!(skipped.reason.contains("another id"), "{}", skipped.reason);
    }

    #[test]
    fn a_line_read_forwards_past_the_limit_is_passed_over_without_being_held() {
        let long = 10 * 1024 * 1024;
        let mut text = b"a\n".to_vec();
        text.resize(2 + long, b'x');
        text.extend_from_slice(b"\nb\ntorn");
        let mut reader = BufReader::with_capacity(64 * 1024, Cursor::new(text));
        let mut line = Vec::new();
        let mut next = |line: &mut Vec<u8>| {
            line.clear();
            read_line_within(&mut reader, line, 1024).unwrap()
        };
        assert_eq!((next(&mut line), line.as_slice()), (Some(2), &b"a"[..]));
        assert_eq!(next(&mut line), Some(long as u64 + 1));
        assert!(
            line.is_empty() && line.capacity() <= 64 * 1024,
            "{}",
            line.capacity()
        );
        assert_eq!((next(&mut line), line.as_slice()), (Some(2), &b"b"[..]));
        assert_eq!(next(&mut line), None);
    }
}
