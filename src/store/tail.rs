//! The store's latest records, read from its end: the history the
//! dashboard opens with.
//!
//! The cost is what is kept, never the store's size: the current file is
//! read backwards in chunks ([`LinesBackward`]), lines are parsed newest
//! first, and the read stops as soon as the record count or the byte
//! budget is full. The rotated files are read (newest first) only when the
//! current one holds too few. Memory is bounded by the budget: a line too
//! long for what is left of it is not read whole, and ends the read, as a
//! record too large for it does; so what is kept is always the newest
//! records without a gap.
//!
//! The shared store's rows are read the same way, newest first by id, by
//! pages (`crate::store::postgres::read`), under the same limits.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use super::MAX_LINE;
use super::amend;
use super::lines::{Back, LinesBackward, id_prefix};
use super::readers::{open_store_files, shared_error};
use super::{Location, StoreError};
use crate::delivery::{Delivery, memory};
use crate::store::postgres::Target;
use crate::store::postgres::read::{Order, Scan, each_row};

/// How much of the store's end to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TailLimits {
    /// Records kept at most.
    pub(crate) records: usize,
    /// Bytes of records kept at most, by [`memory::estimate`].
    pub(crate) bytes: usize,
    /// Records with this id or above are left out: they were written by
    /// this run of the listener, which announces them itself.
    pub(crate) below_id: u64,
    /// Only this listener's records (`--name`), where the store keeps
    /// several listeners' (the shared store); `None`: every one's.
    pub(crate) listener: Option<String>,
}

/// What [`read_tail`] kept.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// The newest records below the limits, oldest first.
    pub(crate) records: Vec<Delivery>,
    /// Lines among them that did not parse, left out.
    pub(crate) unparsable: usize,
    /// The read stopped at a limit, with older records left in the store.
    pub(crate) more: bool,
}

/// The newest records within `limits`, read from the end of `store` (and
/// of its rotated files when needed); `progress` is told how many are kept
/// so far, after each.
pub(crate) fn read_tail(
    store: &Location,
    limits: TailLimits,
    progress: impl FnMut(usize),
) -> Result<Tail, StoreError> {
    match store {
        Location::File(path) => read_tail_in_chunks(path, &limits, None, progress),
        Location::Postgres(target) => read_tail_rows(target, limits, progress),
    }
}

/// [`read_tail`] on the shared store: its newest rows below the limits.
fn read_tail_rows(
    target: &Arc<Target>,
    limits: TailLimits,
    progress: impl FnMut(usize),
) -> Result<Tail, StoreError> {
    let TailLimits {
        records,
        bytes,
        below_id,
        listener,
    } = limits;
    let scan = Scan {
        below: Some(below_id),
        listener,
        // A record's text is about 4/3 of its estimate (base64), so one
        // over twice the budget cannot fit, and is not fetched.
        ..Scan::new(
            Order::NewestFirst,
            bytes.saturating_mul(2).try_into().unwrap_or(u64::MAX),
        )
    };
    let mut keeper = Keeper::new(records, bytes, progress);
    each_row(target, &scan, |row| keeper.offer(row.id, row.record))
        .map_err(|err| shared_error(target, err))?;
    Ok(keeper.finish())
}

/// What the shared store's rows, newest first, keep of a tail: the same
/// limits as the file's lines, a record too large for what is left of the
/// budget ending the read (no gap in the history).
struct Keeper<P> {
    tail: Tail,
    held: usize,
    records: usize,
    bytes: usize,
    progress: P,
}

impl<P: FnMut(usize)> Keeper<P> {
    fn new(records: usize, bytes: usize, progress: P) -> Self {
        Keeper {
            tail: Tail::default(),
            held: 0,
            records,
            bytes,
            progress,
        }
    }

    /// Keep the next older record (its text, or its length when it was
    /// too long to fetch), or end the read.
    fn offer(&mut self, id: u64, record: Result<String, u64>) -> ControlFlow<()> {
        let tail = &mut self.tail;
        if tail.records.len() >= self.records {
            tail.more = true;
            return ControlFlow::Break(());
        }
        let room = self.bytes.saturating_sub(self.held);
        let Some(text) = record
            .ok()
            .filter(|text| text.len() <= room.saturating_mul(2))
        else {
            tail.more = true;
            return ControlFlow::Break(());
        };
        // One that names another id than its row is someone else's row.
        let Some(record) = serde_json::from_str::<Delivery>(&text)
            .ok()
            .filter(|record| record.id == id)
        else {
            tail.unparsable += 1;
            return ControlFlow::Continue(());
        };
        let cost = memory::estimate(&record);
        if cost > room {
            tail.more = true;
            return ControlFlow::Break(());
        }
        self.held += cost;
        tail.records.push(record);
        (self.progress)(tail.records.len());
        ControlFlow::Continue(())
    }

    /// The records kept, oldest first.
    fn finish(mut self) -> Tail {
        self.tail.records.reverse();
        self.tail
    }
}

/// [`read_tail`], its first chunk `chunk` bytes (the tests' small chunks
/// split lines at every place).
fn read_tail_in_chunks(
    path: &Path,
    limits: &TailLimits,
    chunk: Option<usize>,
    mut progress: impl FnMut(usize),
) -> Result<Tail, StoreError> {
    let mut tail = Tail::default();
    let mut held = 0usize;
    let mut answers = amend::Backward::default();
    'files: for (rotated, file) in open_store_files(path)?.into_iter().rev() {
        let read_error = |source| StoreError::Read {
            path: rotated.clone().unwrap_or_else(|| path.to_path_buf()),
            source,
        };
        let len = file.metadata().map_err(read_error)?.len();
        let mut lines = match chunk {
            Some(chunk) => LinesBackward::with_chunk(&file, len, chunk, MAX_LINE),
            None => LinesBackward::new(&file, len),
        }
        .map_err(read_error)?;
        loop {
            if tail.records.len() >= limits.records {
                tail.more = true;
                break 'files;
            }
            let room = limits.bytes.saturating_sub(held);
            // A record's line is about 4/3 of its estimate (base64), so a
            // line over twice the room cannot fit.
            let line = match lines.next_line_within(room.saturating_mul(2)) {
                Ok(None) => break,
                Ok(Some(Back::TooLong)) => {
                    tail.more = true;
                    break 'files;
                }
                Ok(Some(Back::Skipped(..))) => {
                    tail.unparsable += 1;
                    continue;
                }
                Ok(Some(Back::Line(_, line))) => line,
                Err(source) => return Err(read_error(source)),
            };
            if answers.took(line) || id_prefix(line).is_some_and(|id| id >= limits.below_id) {
                continue;
            }
            let Ok(mut record) = serde_json::from_slice::<Delivery>(line) else {
                tail.unparsable += 1;
                continue;
            };
            if record.id >= limits.below_id {
                continue;
            }
            answers.fold(record.id, &mut record);
            let cost = memory::estimate(&record);
            if cost > room {
                tail.more = true;
                break 'files;
            }
            held += cost;
            tail.records.push(record);
            progress(tail.records.len());
        }
    }
    tail.records.reverse();
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write as _;

    use super::*;
    use crate::store::file::rotated_path;
    use crate::store::tests::TempDir;
    use crate::test_support::sample;

    const ALL: TailLimits = TailLimits {
        records: usize::MAX,
        bytes: usize::MAX,
        below_id: u64::MAX,
        listener: None,
    };

    fn line(id: u64, body_len: usize) -> String {
        let mut line = sample(id, &vec![b'x'; body_len]).to_json_line();
        line.push('\n');
        line
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    fn ids(tail: &Tail) -> Vec<u64> {
        tail.records.iter().map(|d| d.id).collect()
    }

    #[test]
    fn lines_split_at_every_chunk_boundary_read_back_whole() {
        let dir = TempDir::new("tail-chunks");
        let path = dir.0.join("deliveries.jsonl");
        let text: String = (1..=7).map(|id| line(id, id as usize * 13)).collect();
        write(&path, &text);
        for chunk in [1, 2, 3, 7, 64, 100, 4096] {
            let tail = read_tail_in_chunks(&path, &ALL, Some(chunk), |_| {}).unwrap();
            assert_eq!(ids(&tail), [1, 2, 3, 4, 5, 6, 7], "chunk {chunk}");
            assert_eq!(tail.records[3].body.len(), 4 * 13, "chunk {chunk}");
            assert!(!tail.more);
        }
        let newest_three = TailLimits { records: 3, ..ALL };
        let mut told = Vec::new();
        let tail = read_tail_in_chunks(&path, &newest_three, Some(5), |n| told.push(n)).unwrap();
        assert_eq!(ids(&tail), [5, 6, 7]);
        assert_eq!(told, [1, 2, 3], "progress after each record");
        assert!(tail.more);
        let before_six = TailLimits { below_id: 6, ..ALL };
        let tail = read_tail(&Location::File(path.clone()), before_six, |_| {}).unwrap();
        assert_eq!(
            ids(&tail),
            [1, 2, 3, 4, 5],
            "this run's records are left out"
        );
    }

    #[test]
    fn a_last_line_being_written_and_a_bad_line_are_left_out() {
        let dir = TempDir::new("tail-torn");
        let path = dir.0.join("deliveries.jsonl");
        let third = line(3, 10);
        let text = format!(
            "{}not json\n\n{}{}",
            line(1, 10),
            line(2, 10),
            &third[..third.len() / 2]
        );
        write(&path, &text);
        for chunk in [1, 16, 8192] {
            let tail = read_tail_in_chunks(&path, &ALL, Some(chunk), |_| {}).unwrap();
            assert_eq!(ids(&tail), [1, 2], "chunk {chunk}");
            assert_eq!(tail.unparsable, 1);
        }
    }

    #[test]
    fn an_empty_store_and_a_missing_one() {
        let dir = TempDir::new("tail-empty");
        let path = dir.0.join("deliveries.jsonl");
        write(&path, "");
        let tail = read_tail(&Location::File(path.clone()), ALL, |_| {}).unwrap();
        assert!(tail.records.is_empty() && !tail.more);
        let missing = dir.0.join("none.jsonl");
        assert!(matches!(
            read_tail(&Location::File(missing), ALL, |_| {}),
            Err(StoreError::Missing { .. })
        ));
    }

    #[test]
    fn the_byte_budget_stops_the_read_and_a_huge_line_is_not_held() {
        let dir = TempDir::new("tail-budget");
        let path = dir.0.join("deliveries.jsonl");
        let small = memory::estimate(&sample(1, &[b'x'; 100]));
        // #1 and #2 small, #3 a line of 4 MiB, #4 and #5 small again.
        let text = format!(
            "{}{}{}{}{}",
            line(1, 100),
            line(2, 100),
            line(3, 4 << 20),
            line(4, 100),
            line(5, 100)
        );
        write(&path, &text);
        let budget = TailLimits {
            bytes: small * 2 + small / 2,
            ..ALL
        };
        let tail = read_tail_in_chunks(&path, &budget, Some(64), |_| {}).unwrap();
        assert_eq!(ids(&tail), [4, 5], "two fit; the third is over");
        assert!(tail.more);
        // Room for the small ones, not for #3: the read stops at it (no
        // gap in the history), having held at most the room and a chunk.
        let room = TailLimits {
            bytes: 64 * 1024,
            ..ALL
        };
        let tail = read_tail_in_chunks(&path, &room, Some(64), |_| {}).unwrap();
        assert_eq!(ids(&tail), [4, 5]);
        assert!(tail.more);
        // Enough for it, it is read whole.
        let tail = read_tail(&Location::File(path.clone()), ALL, |_| {}).unwrap();
        assert_eq!(ids(&tail), [1, 2, 3, 4, 5]);
        assert_eq!(tail.records[2].body.len(), 4 << 20);
    }

    #[test]
    fn rotated_files_are_read_only_when_the_current_one_holds_too_few() {
        let dir = TempDir::new("tail-rotated");
        let path = dir.0.join("deliveries.jsonl");
        write(
            &rotated_path(&path, 2),
            &(1..=2).map(|id| line(id, 5)).collect::<String>(),
        );
        write(
            &rotated_path(&path, 1),
            &(3..=5).map(|id| line(id, 5)).collect::<String>(),
        );
        write(&path, &line(6, 5));
        let newest = |records| {
            let limits = TailLimits { records, ..ALL };
            ids(&read_tail(&Location::File(path.clone()), limits, |_| {}).unwrap())
        };
        assert_eq!(newest(1), [6]);
        assert_eq!(newest(3), [4, 5, 6]);
        assert_eq!(newest(10), [1, 2, 3, 4, 5, 6]);
        // Just rotated: the current file is empty.
        write(&path, "");
        assert_eq!(newest(2), [4, 5]);
        // A rotated file that does not parse at all is passed over.
        let mut file = OpenOptions::new()
            .append(true)
            .open(rotated_path(&path, 1))
            .unwrap();
        file.write_all(b"{\"id\":99,\n").unwrap();
        assert_eq!(newest(2), [4, 5]);
    }

    #[test]
    fn rows_newest_first_are_kept_within_the_same_limits_as_lines() {
        let row =
            |id: u64, body_len: usize| (id, Ok(sample(id, &vec![b'x'; body_len]).to_json_line()));
        let keep = |records, bytes, rows: Vec<(u64, Result<String, u64>)>| {
            let mut told = Vec::new();
            let mut keeper = Keeper::new(records, bytes, |n| told.push(n));
            let mut offered = 0;
            for (id, row) in rows {
                offered += 1;
                if keeper.offer(id, row).is_break() {
                    break;
                }
            }
            let tail = keeper.finish();
            (ids(&tail), tail.more, tail.unparsable, offered, told)
        };
        // Newest first in, oldest first out; a row that does not parse is
        // counted and passed over.
        let rows = vec![
            row(5, 10),
            (4, Ok("not json".into())),
            row(3, 10),
            row(2, 10),
        ];
        assert_eq!(
            keep(usize::MAX, usize::MAX, rows.clone()),
            (vec![2, 3, 5], false, 1, 4, vec![1, 2, 3])
        );
        // So is one whose record names another id than its row's.
        let (_, other) = row(2, 10);
        assert_eq!(
            keep(usize::MAX, usize::MAX, vec![row(5, 10), (3, other)]),
            (vec![5], false, 1, 2, vec![1])
        );
        // The record count ends it at the next row.
        assert_eq!(keep(2, usize::MAX, rows).0, [3, 5]);
        // A record over the budget ends it (no gap), as does one too long
        // to have been fetched.
        let small = memory::estimate(&sample(1, &[b'x'; 100]));
        let rows = vec![row(9, 100), row(8, 100), row(7, 4096), row(6, 100)];
        let (kept, more, ..) = keep(usize::MAX, small * 2 + small / 2, rows);
        assert_eq!((kept, more), (vec![8, 9], true));
        let rows = vec![row(9, 100), (8, Err(1 << 30)), row(7, 100)];
        let (kept, more, ..) = keep(usize::MAX, usize::MAX, rows);
        assert_eq!((kept, more), (vec![9], true));
    }
}
