//! A mirror's answer that came after its record was written
//! (`--mirror-to`): the store file is append-only, so the answer is a line
//! of its own, `{"mirror_of":ID,"index":I,"mirror":{…}}`, and the readers
//! fold it into the record it names. A record is always written before any
//! answer to it, so a reader going backwards meets the answers first and
//! keeps them until it meets the record; one going forwards holds a record
//! that still waits for a mirror (and those after it, to keep their order)
//! until its answers come, within a bound.
//!
//! An answer line carries no `id` of its own, so the readers that find
//! their place by ids (ids rise through the file) pass over it.

use std::collections::{HashMap, VecDeque};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Entry;
use super::lines::id_prefix;
use crate::delivery::{Delivery, MirrorRecord};

const PREFIX: &[u8] = b"{\"mirror_of\":";

/// Answers a backward reader keeps for records it has not met yet, and
/// records a forward reader holds for answers, at most: a record's answers
/// come within its mirror's timeout, so far fewer lie between a record and
/// its answers unless the file is not one this tool wrote.
const MOST_KEPT: usize = 4096;
/// Bytes of records a forward reader holds at most.
const MOST_HELD_BYTES: usize = 32 * 1024 * 1024;

/// A late answer, as the line says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LateMirror {
    pub(crate) mirror_of: u64,
    pub(crate) index: usize,
    pub(crate) mirror: MirrorRecord,
}

impl LateMirror {
    /// The line (without its newline).
    pub(crate) fn line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a mirror's answer serializes")
    }

    /// The answer a line holds, if it is an answer line; `Err(())` for one
    /// that starts as one but does not parse (skipped, not a record).
    pub(crate) fn of(line: &[u8]) -> Option<Result<LateMirror, String>> {
        line.starts_with(PREFIX)
            .then(|| serde_json::from_slice(line).map_err(|err| err.to_string()))
    }
}

/// A record type the readers parse: a late mirror's answer is folded into
/// it. Types that do not keep mirrors (a reader's few fields) take the
/// defaults, which ignore answers.
pub(crate) trait Amendable: DeserializeOwned {
    /// Take `late` if it is an answer to this record; whether it was.
    fn take_late_mirror(&mut self, _late: &LateMirror) -> bool {
        false
    }

    /// A mirror had not answered when this record was written.
    fn awaits_mirror(&self) -> bool {
        false
    }
}

impl Amendable for Delivery {
    fn take_late_mirror(&mut self, late: &LateMirror) -> bool {
        if late.mirror_of != self.id {
            return false;
        }
        match self.mirrors.get_mut(late.index) {
            Some(slot) if slot.url == late.mirror.url => {
                *slot = late.mirror.clone();
                true
            }
            _ => false,
        }
    }

    fn awaits_mirror(&self) -> bool {
        self.mirrors.iter().any(MirrorRecord::is_pending)
    }
}

/// The answers a backward reader has met, by the id of their record.
#[derive(Default)]
pub(super) struct Backward {
    waiting: HashMap<u64, Vec<LateMirror>>,
}

impl Backward {
    /// Keep `line` if it is an answer; whether it was (a line that starts
    /// as one but does not parse is left to the reader, which skips it).
    pub(super) fn took(&mut self, line: &[u8]) -> bool {
        let Some(Ok(late)) = LateMirror::of(line) else {
            return false;
        };
        if self.waiting.len() < MOST_KEPT || self.waiting.contains_key(&late.mirror_of) {
            self.waiting.entry(late.mirror_of).or_default().push(late);
        }
        true
    }

    /// `entry`, read from `line`, with the answers kept for it folded in.
    pub(super) fn folded<T: Amendable>(
        &mut self,
        mut entry: Entry<T>,
        line: Result<&[u8], u64>,
    ) -> Entry<T> {
        if let (Entry::Record(record), Some(id)) = (&mut entry, line.ok().and_then(id_prefix)) {
            self.fold(id, record);
        }
        entry
    }

    /// Fold the answers kept for record `id` into it.
    pub(super) fn fold<T: Amendable>(&mut self, id: u64, record: &mut T) {
        if let Some(answers) = self.waiting.remove(&id) {
            for late in &answers {
                record.take_late_mirror(late);
            }
        }
    }
}

/// A forward reader's records held for their answers, in file order.
pub(super) struct Forward<T> {
    held: VecDeque<(Entry<T>, usize)>,
    held_bytes: usize,
}

impl<T: Amendable> Forward<T> {
    pub(super) fn new() -> Self {
        Self {
            held: VecDeque::new(),
            held_bytes: 0,
        }
    }

    /// A record (or a skipped line) `bytes` long, in file order: what may go
    /// to the reader now, in order.
    pub(super) fn push(&mut self, entry: Entry<T>, bytes: usize, out: &mut Vec<Entry<T>>) {
        let waits = matches!(&entry, Entry::Record(record) if record.awaits_mirror());
        if self.held.is_empty() && !waits {
            out.push(entry);
            return;
        }
        self.held.push_back((entry, bytes));
        self.held_bytes += bytes;
        self.release(out);
    }

    /// An answer line: fold it into the record held for it.
    pub(super) fn answer(&mut self, late: &LateMirror, out: &mut Vec<Entry<T>>) {
        for (entry, _) in &mut self.held {
            if let Entry::Record(record) = entry
                && record.take_late_mirror(late)
            {
                break;
            }
        }
        self.release(out);
    }

    /// Everything held, at the end of the store.
    pub(super) fn finish(&mut self, out: &mut Vec<Entry<T>>) {
        out.extend(self.held.drain(..).map(|(entry, _)| entry));
        self.held_bytes = 0;
    }

    /// Let go, in order, what no longer waits, and what is over the bounds.
    fn release(&mut self, out: &mut Vec<Entry<T>>) {
        while let Some((front, bytes)) = self.held.front() {
            let waits = matches!(front, Entry::Record(record) if record.awaits_mirror());
            let over = self.held.len() > MOST_KEPT || self.held_bytes > MOST_HELD_BYTES;
            if waits && !over {
                return;
            }
            self.held_bytes -= bytes;
            let (entry, _) = self.held.pop_front().expect("a front");
            out.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample;

    fn waiting(id: u64) -> Delivery {
        let mut record = sample(id, b"{}");
        record.mirrors = vec![MirrorRecord {
            url: "http://127.0.0.1:9/".into(),
            status: None,
            error: None,
            duration_ms: 1,
        }];
        record
    }

    fn answer(id: u64) -> LateMirror {
        LateMirror {
            mirror_of: id,
            index: 0,
            mirror: MirrorRecord {
                url: "http://127.0.0.1:9/".into(),
                status: Some(204),
                error: None,
                duration_ms: 900,
            },
        }
    }

    fn ids(entries: &[Entry<Delivery>]) -> Vec<(u64, bool)> {
        entries
            .iter()
            .map(|entry| match entry {
                Entry::Record(record) => (record.id, record.awaits_mirror()),
                Entry::Skipped(_) => (0, false),
            })
            .collect()
    }

    #[test]
    fn an_answer_line_is_read_back_as_written_and_is_no_record() {
        let late = answer(7);
        let line = late.line();
        assert!(line.starts_with(PREFIX));
        assert_eq!(LateMirror::of(&line).unwrap().unwrap(), late);
        assert!(LateMirror::of(br#"{"id":7,"mirror_of":1}"#).is_none());
        assert!(LateMirror::of(br#"{"mirror_of":"x"}"#).unwrap().is_err());
        // The readers' id scan passes over it.
        assert_eq!(crate::store::lines::id_of(&line), None);
    }

    #[test]
    fn an_answer_only_fills_its_own_records_mirror() {
        let mut record = waiting(7);
        assert!(!record.take_late_mirror(&answer(8)), "another record's");
        let mut elsewhere = answer(7);
        elsewhere.mirror.url = "http://127.0.0.1:10/".into();
        assert!(!record.take_late_mirror(&elsewhere), "another mirror's");
        elsewhere.index = 5;
        assert!(!record.take_late_mirror(&elsewhere), "no such mirror");
        assert!(record.awaits_mirror());
        assert!(record.take_late_mirror(&answer(7)));
        assert_eq!(record.mirrors[0].status, Some(204));
        assert!(!record.awaits_mirror());
    }

    #[test]
    fn forwards_a_waiting_record_and_those_after_it_wait_for_its_answer() {
        let mut fold = Forward::new();
        let mut out = Vec::new();
        fold.push(Entry::Record(sample(1, b"{}")), 10, &mut out);
        assert_eq!(ids(&out), [(1, false)], "nothing waits: at once");
        out.clear();
        fold.push(Entry::Record(waiting(2)), 10, &mut out);
        fold.push(Entry::Record(sample(3, b"{}")), 10, &mut out);
        assert!(out.is_empty(), "3 keeps its place behind 2");
        fold.answer(&answer(2), &mut out);
        assert_eq!(ids(&out), [(2, false), (3, false)]);
        out.clear();
        fold.push(Entry::Record(waiting(4)), 10, &mut out);
        fold.finish(&mut out);
        assert_eq!(
            ids(&out),
            [(4, true)],
            "never answered: as written, at the end"
        );
    }

    #[test]
    fn a_forward_reader_holds_at_most_its_bounds() {
        let mut fold = Forward::new();
        let mut out = Vec::new();
        fold.push(Entry::Record(waiting(1)), MOST_HELD_BYTES, &mut out);
        assert!(out.is_empty());
        fold.push(Entry::Record(sample(2, b"{}")), 1, &mut out);
        assert_eq!(ids(&out), [(1, true), (2, false)], "over the bytes: let go");
        out.clear();
        for id in 0..=MOST_KEPT as u64 {
            fold.push(Entry::Record(waiting(id + 10)), 1, &mut out);
        }
        assert_eq!(out.len(), 1, "over the count: the oldest let go");
    }

    #[test]
    fn backwards_the_answers_met_first_fill_the_record_met_later() {
        let mut answers = Backward::default();
        assert!(answers.took(&answer(3).line()));
        assert!(!answers.took(br#"{"id":3,"event":null}"#));
        let line = br#"{"id":3,"#;
        let folded = answers.folded(Entry::Record(waiting(3)), Ok(line.as_slice()));
        assert_eq!(ids(&[folded]), [(3, false)]);
        let again = answers.folded(Entry::Record(waiting(3)), Ok(line.as_slice()));
        assert_eq!(ids(&[again]), [(3, true)], "an answer is used once");
    }
}
