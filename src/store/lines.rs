//! Lines of the store file: read backwards in growing chunks, and the id
//! of a line read without a full parse.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};

use serde::Deserialize;

use super::{FIRST_CHUNK, MAX_CHUNK, MAX_LINE};

/// Whole lines of a file, last first, read in chunks that grow while a line
/// does not fit. Each byte is searched for a newline once, and a held line
/// at least doubles at each grow, so the cost is linear in the bytes read,
/// not the file's size; a line past the limit is passed over a chunk at a
/// time, never held.
pub(super) struct LinesBackward<'f> {
    file: &'f File,
    /// The file offset of `buf[0]`.
    pos: u64,
    /// `buf[..valid]` is what is left to yield: whole lines, ending in `\n`
    /// (or nothing). Bytes after `valid` were yielded already.
    buf: Vec<u8>,
    valid: usize,
    /// `buf[searched..valid - 1]` was searched and holds no newline: the
    /// end of the line being looked for.
    searched: usize,
    chunk: usize,
    torn: u64,
    /// Longer lines are skipped, not read whole.
    max_line: usize,
    #[cfg(test)]
    pub(super) examined: u64,
    #[cfg(test)]
    pub(super) peak: usize,
}

impl<'f> LinesBackward<'f> {
    pub(super) fn new(file: &'f File, len: u64) -> io::Result<Self> {
        Self::with_chunk(file, len, FIRST_CHUNK, MAX_LINE)
    }

    /// Start at `len`, skipping a last line that has no newline (torn):
    /// that is searched a chunk at a time, never held whole.
    pub(super) fn with_chunk(
        file: &'f File,
        len: u64,
        chunk: usize,
        max_line: usize,
    ) -> io::Result<Self> {
        let mut lines = Self {
            file,
            pos: len,
            buf: Vec::new(),
            valid: 0,
            searched: 0,
            chunk: chunk.max(1),
            torn: 0,
            max_line,
            #[cfg(test)]
            examined: 0,
            #[cfg(test)]
            peak: 0,
        };
        lines.valid = lines.scan_back()?.map_or(0, |newline| newline + 1);
        lines.searched = lines.valid.saturating_sub(1);
        lines.torn = len - (lines.pos + lines.valid as u64);
        Ok(lines)
    }

    /// Bytes after the last newline: a torn last line, not a record.
    pub(super) fn torn_bytes(&self) -> u64 {
        self.torn
    }

    /// The last newline in `buf[..upto]`, each byte searched once.
    fn rfind(&mut self, upto: usize) -> Option<usize> {
        let found = memchr::memrchr(b'\n', &self.buf[..upto]);
        #[cfg(test)]
        {
            self.examined += (upto - found.unwrap_or(0)) as u64;
        }
        found
    }

    /// Read chunks before `pos`, holding one at a time, until one has a
    /// newline: its index in `buf`, which then holds that chunk alone.
    /// `None` at the start of the file, with `buf` empty.
    fn scan_back(&mut self) -> io::Result<Option<usize>> {
        loop {
            if self.pos == 0 {
                self.buf.clear();
                return Ok(None);
            }
            let take = self.next_take(self.chunk);
            // Fresh zeroed memory is cheap (and a held long line goes).
            self.buf = vec![0; take];
            self.pos -= take as u64;
            self.read_at_pos(0, take)?;
            self.chunk = (self.chunk * 2).min(MAX_CHUNK);
            if let Some(newline) = self.rfind(take) {
                return Ok(Some(newline));
            }
        }
    }

    fn next_take(&self, want: usize) -> usize {
        usize::try_from(self.pos).map_or(want, |pos| want.min(pos))
    }

    fn read_at_pos(&mut self, from: usize, to: usize) -> io::Result<()> {
        let mut file = self.file;
        file.seek(SeekFrom::Start(self.pos))?;
        file.read_exact(&mut self.buf[from..to])?;
        #[cfg(test)]
        {
            self.peak = self.peak.max(self.buf.capacity());
        }
        Ok(())
    }

    /// Read the chunk before `pos` into the front of `buf`: at least as
    /// much as is held (so a long line costs a few copies of itself, not
    /// one per chunk), at most `room`.
    fn grow(&mut self, room: usize) -> io::Result<()> {
        let take = self.next_take(self.chunk.max(self.valid).min(room.max(1)));
        let mut grown = vec![0; take + self.valid];
        grown[take..].copy_from_slice(&self.buf[..self.valid]);
        self.buf = grown;
        self.pos -= take as u64;
        self.read_at_pos(0, take)?;
        self.valid += take;
        self.searched = take;
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        Ok(())
    }

    /// The next whole, non-blank line back, as [`next_line_within`]
    /// gives it with no limit but the reader's.
    ///
    /// [`next_line_within`]: Self::next_line_within
    pub(super) fn next_line(&mut self) -> io::Result<Option<Back<'_>>> {
        self.next_line_within(usize::MAX)
    }

    /// The next whole, non-blank line back, with its offset, without its
    /// newline. A line longer than the reader's limit is
    /// [`Back::Skipped`]; one longer than `max` (below that limit) is
    /// [`Back::TooLong`], for a reader within a byte budget, which then
    /// stops. Neither is read whole into memory.
    pub(super) fn next_line_within(&mut self, max: usize) -> io::Result<Option<Back<'_>>> {
        let limit = max.min(self.max_line);
        Ok(match self.next_range(limit)? {
            None => None,
            Some(Found::Line(start, end)) => {
                Some(Back::Line(self.pos + start as u64, &self.buf[start..end]))
            }
            Some(Found::TooLong) if limit < self.max_line => Some(Back::TooLong),
            Some(Found::TooLong) => {
                let (offset, len) = self.skip_line()?;
                Some(Back::Skipped(offset, len))
            }
        })
    }

    /// Where the next non-blank line back lies in `buf`, holding at most
    /// `max` and two bytes of it.
    fn next_range(&mut self, max: usize) -> io::Result<Option<Found>> {
        loop {
            if self.valid == 0 {
                return Ok(None);
            }
            let end = self.valid - 1; // the newline
            let start = if let Some(newline) = self.rfind(self.searched) {
                newline + 1
            } else {
                self.searched = 0;
                if self.pos == 0 {
                    0
                } else if end > max {
                    return Ok(Some(Found::TooLong));
                } else {
                    self.grow(max.saturating_sub(end).saturating_add(1))?;
                    continue;
                }
            };
            if end - start > max {
                self.searched = start;
                return Ok(Some(Found::TooLong));
            }
            self.valid = start;
            self.searched = start.saturating_sub(1);
            if !is_blank(&self.buf[start..end]) {
                return Ok(Some(Found::Line(start, end)));
            }
        }
    }

    /// Pass over the line [`next_range`](Self::next_range) found too long,
    /// a chunk at a time: its offset and length.
    fn skip_line(&mut self) -> io::Result<(u64, u64)> {
        let end = self.pos + (self.valid - 1) as u64;
        let newline = match self.rfind(self.searched) {
            Some(newline) => Some(newline),
            None => self.scan_back()?,
        };
        self.valid = newline.map_or(0, |newline| newline + 1);
        self.searched = self.valid.saturating_sub(1);
        let start = self.pos + self.valid as u64;
        Ok((start, end - start))
    }
}

enum Found {
    Line(usize, usize),
    TooLong,
}

/// A line read backwards.
pub(super) enum Back<'a> {
    /// Its offset in the file, and the line without its newline.
    Line(u64, &'a [u8]),
    /// Longer than any record ([`MAX_LINE`]): passed over unread; its
    /// offset and length.
    Skipped(u64, u64),
    /// Longer than the limit the reader asked for: not read.
    TooLong,
}

/// Why a reader skipped a line of `len` bytes.
pub(super) fn too_long(len: u64) -> String {
    format!("{len} bytes long, longer than any record ({MAX_LINE} bytes): not read")
}

pub(super) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The id of a line as the store writes it: `{"id":N,` first. Cheap: no
/// JSON parse.
pub(super) fn id_prefix(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"id\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !matches!(rest.get(digits), Some(b',' | b'}')) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The id of a line: its prefix, else (a line some other tool rewrote with
/// `id` elsewhere) a parse of the `id` field alone.
pub(super) fn id_of(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: u64,
    }
    id_prefix(line).or_else(|| serde_json::from_slice::<IdOnly>(line).ok().map(|r| r.id))
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write as _;

    use super::*;
    use crate::store::tests::TempDir;

    /// Every line back, a skipped one as its offset and length.
    fn all(lines: &mut LinesBackward<'_>) -> Vec<(u64, Result<Vec<u8>, u64>)> {
        let mut got = Vec::new();
        while let Some(back) = lines.next_line().unwrap() {
            got.push(match back {
                Back::Line(offset, line) => (offset, Ok(line.to_vec())),
                Back::Skipped(offset, len) => (offset, Err(len)),
                Back::TooLong => panic!("no limit was asked for"),
            });
        }
        got
    }

    /// A file of `head`, then `zeros` zero bytes (sparse: cheap on disk),
    /// then `rest`.
    fn file_of(dir: &TempDir, head: &[u8], zeros: u64, rest: &[u8]) -> (File, u64) {
        let path = dir.0.join("lines");
        std::fs::write(&path, head).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.set_len(head.len() as u64 + zeros).unwrap();
        file.write_all(rest).unwrap();
        let len = file.metadata().unwrap().len();
        (File::open(&path).unwrap(), len)
    }

    #[test]
    fn lines_split_across_chunks_come_back_whole_and_long_ones_are_skipped() {
        let dir = TempDir::new("lines-chunks");
        let content = b"one\ntwo two\n\nthe third line\nlonger than ten bytes\nx\ntorn";
        let (file, len) = file_of(&dir, content, 0, b"");
        for chunk in 1..=9 {
            let mut lines = LinesBackward::with_chunk(&file, len, chunk, 10).unwrap();
            assert_eq!(lines.torn_bytes(), 4, "chunk {chunk}");
            let got = all(&mut lines);
            let expected: Vec<(u64, Result<Vec<u8>, u64>)> = vec![
                (50, Ok(b"x".to_vec())),
                (28, Err(21)),
                (13, Err(14)),
                (4, Ok(b"two two".to_vec())),
                (0, Ok(b"one".to_vec())),
            ];
            assert_eq!(got, expected, "chunk {chunk}");
        }
    }

    #[test]
    fn a_line_past_the_limit_is_passed_over_without_being_held() {
        let dir = TempDir::new("lines-long");
        let long = 40 * MAX_CHUNK as u64;
        let (file, len) = file_of(&dir, b"a\n", long, b"\nb\n");
        let mut lines = LinesBackward::with_chunk(&file, len, FIRST_CHUNK, 1024).unwrap();
        let got = all(&mut lines);
        assert_eq!(
            got,
            [
                (long + 3, Ok(b"b".to_vec())),
                (2, Err(long)),
                (0, Ok(b"a".to_vec()))
            ]
        );
        assert!(lines.peak <= 2 * MAX_CHUNK, "held {} bytes", lines.peak);
        assert!(
            lines.examined <= len,
            "searched {} of {len} bytes",
            lines.examined
        );

        // A torn tail as long: measured, not held.
        let (file, len) = file_of(&dir, b"a\n", long, b"");
        let mut lines = LinesBackward::with_chunk(&file, len, FIRST_CHUNK, 1024).unwrap();
        assert_eq!(lines.torn_bytes(), long);
        assert_eq!(all(&mut lines), [(0, Ok(b"a".to_vec()))]);
        assert!(lines.peak <= 2 * MAX_CHUNK, "held {} bytes", lines.peak);

        // Within a budget, a longer line stops the reader unread.
        let (file, len) = file_of(&dir, b"a\n", long, b"\nb\n");
        let mut lines = LinesBackward::with_chunk(&file, len, FIRST_CHUNK, MAX_LINE).unwrap();
        assert!(matches!(
            lines.next_line_within(1024).unwrap(),
            Some(Back::Line(_, b"b"))
        ));
        assert!(matches!(
            lines.next_line_within(1024).unwrap(),
            Some(Back::TooLong)
        ));
        assert!(lines.peak <= 2 * MAX_CHUNK, "held {} bytes", lines.peak);
    }

    #[test]
    fn a_64_mib_line_is_read_back_in_linear_work() {
        let dir = TempDir::new("lines-64");
        let long = 64 * 1024 * 1024;
        let (file, len) = file_of(&dir, b"a\n", long, b"\n");
        let mut lines = LinesBackward::new(&file, len).unwrap();
        match lines.next_line().unwrap() {
            Some(Back::Line(2, line)) => assert_eq!(line.len() as u64, long),
            _ => panic!("the long line comes back whole"),
        }
        assert!(matches!(
            lines.next_line().unwrap(),
            Some(Back::Line(0, b"a"))
        ));
        assert!(lines.next_line().unwrap().is_none());
        // Each byte searched once, and the buffer at most doubles past the
        // line: quadratic work would search it once per chunk.
        assert!(
            lines.examined <= len,
            "searched {} of {len} bytes",
            lines.examined
        );
        assert!(
            lines.peak as u64 <= 2 * long + 2 * MAX_CHUNK as u64,
            "held {}",
            lines.peak
        );
    }
}
