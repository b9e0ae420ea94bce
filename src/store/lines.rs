//! Lines of the store file: read backwards in growing chunks, and the id
//! of a line read without a full parse.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};

use serde::Deserialize;

use super::{FIRST_CHUNK, MAX_CHUNK};

/// Whole lines of a file, last first, read in chunks that grow while a line
/// does not fit, so the cost is the lines read, not the file's size.
pub(super) struct LinesBackward<'f> {
    file: &'f File,
    /// The file offset of `buf[0]`.
    pos: u64,
    /// `buf[..valid]` is what is left to yield: whole lines, ending in `\n`
    /// (or nothing). Bytes after `valid` were yielded already.
    buf: Vec<u8>,
    valid: usize,
    chunk: usize,
    torn: u64,
}

impl<'f> LinesBackward<'f> {
    pub(super) fn new(file: &'f File, len: u64) -> io::Result<Self> {
        Self::with_chunk(file, len, FIRST_CHUNK)
    }

    /// Start at `len`, skipping a last line that has no newline (torn).
    pub(super) fn with_chunk(file: &'f File, len: u64, chunk: usize) -> io::Result<Self> {
        let mut lines = Self {
            file,
            pos: len,
            buf: Vec::new(),
            valid: 0,
            chunk: chunk.max(1),
            torn: 0,
        };
        loop {
            if let Some(i) = lines.buf[..lines.valid].iter().rposition(|&b| b == b'\n') {
                lines.valid = i + 1;
                break;
            }
            if lines.pos == 0 {
                lines.valid = 0;
                break;
            }
            lines.grow()?;
        }
        lines.torn = len - (lines.pos + lines.valid as u64);
        Ok(lines)
    }

    /// Bytes after the last newline: a torn last line, not a record.
    pub(super) fn torn_bytes(&self) -> u64 {
        self.torn
    }

    /// Read the chunk before `pos` into the front of `buf`.
    fn grow(&mut self) -> io::Result<()> {
        let take = (self.chunk as u64).min(self.pos) as usize;
        let mut grown = vec![0; take + self.valid];
        let mut file = self.file;
        file.seek(SeekFrom::Start(self.pos - take as u64))?;
        file.read_exact(&mut grown[..take])?;
        grown[take..].copy_from_slice(&self.buf[..self.valid]);
        self.buf = grown;
        self.pos -= take as u64;
        self.valid += take;
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        Ok(())
    }

    /// The next whole, non-blank line back, with its offset, without its
    /// newline.
    pub(super) fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        Ok(match self.next_line_within(usize::MAX)? {
            Some(Back::Line(offset, line)) => Some((offset, line)),
            Some(Back::TooLong) | None => None,
        })
    }

    /// [`next_line`](Self::next_line), but a line longer than `max` bytes
    /// is not read whole into memory (at most `max` and a chunk of it are):
    /// it is [`Back::TooLong`], for a reader within a byte budget, which
    /// then stops.
    pub(super) fn next_line_within(&mut self, max: usize) -> io::Result<Option<Back<'_>>> {
        loop {
            if self.valid == 0 {
                return Ok(None);
            }
            let end = self.valid - 1; // the newline
            let start = match self.buf[..end].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if self.pos == 0 => 0,
                None if end > max => return Ok(Some(Back::TooLong)),
                None => {
                    self.grow()?;
                    continue;
                }
            };
            if end - start > max {
                return Ok(Some(Back::TooLong));
            }
            self.valid = start;
            if !is_blank(&self.buf[start..end]) {
                return Ok(Some(Back::Line(
                    self.pos + start as u64,
                    &self.buf[start..end],
                )));
            }
        }
    }
}

/// A line read backwards within a limit.
pub(super) enum Back<'a> {
    /// Its offset in the file, and the line without its newline.
    Line(u64, &'a [u8]),
    /// Longer than the limit: not read whole.
    TooLong,
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
