//! A request's body, read within the limits: `--max-body`, the body read
//! timeout, and the memory that bodies still arriving share.

use std::future::Future as _;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use tokio::time::Sleep;

use super::body_memory::Reservation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyEnd {
    Complete,
    /// More than `--max-body`: the rest was not read.
    TooLarge,
    /// The bodies arriving at once already hold `--max-body-memory`: the
    /// rest was not read, and the sender is told to try again.
    OverMemory,
    /// The body did not arrive within the body read timeout.
    TimedOut,
    /// The client went away mid-body.
    Aborted,
    /// A whole body, but not a `POST`: recorded and answered 405.
    NotPost,
    /// A whole body, but a request target that is neither origin-form nor
    /// absolute-form: recorded and answered 400.
    BadTarget,
    /// A whole body carrying this run's `X-Danube-Hooks-Via`: this
    /// listener's own forward or mirror come back; answered 508.
    Looped,
}

pub(super) struct ReadBody {
    pub(super) bytes: Vec<u8>,
    /// Bytes seen, including those past the limit that were not kept.
    pub(super) seen: u64,
    pub(super) end: BodyEnd,
}

impl ReadBody {
    /// The size to record: what arrived, or what was announced when the
    /// body was cut short and the announcement is larger.
    pub(super) fn size(&self, declared: Option<u64>) -> u64 {
        match (self.end, declared) {
            (BodyEnd::Complete, _) | (_, None) => self.seen,
            (_, Some(declared)) => declared.max(self.seen),
        }
    }
}

pub(super) async fn read_body(
    mut body: Incoming,
    max_body: usize,
    timeout: Duration,
    memory: &mut Reservation,
) -> ReadBody {
    let deadline = tokio::time::Instant::now() + timeout;
    // Armed only once the body keeps the handler waiting: a body that
    // has arrived whole is read without a timer (a timeout around each
    // frame made one, and dropped it, two or three times a delivery).
    let mut timer = std::pin::pin!(None::<Sleep>);
    let mut read = ReadBody {
        bytes: Vec::new(),
        seen: 0,
        end: BodyEnd::Complete,
    };
    loop {
        let frame = std::future::poll_fn(|cx| {
            if let Poll::Ready(frame) = Pin::new(&mut body).poll_frame(cx) {
                return Poll::Ready(Some(frame));
            }
            if timer.is_none() {
                timer.set(Some(tokio::time::sleep_until(deadline)));
            }
            let sleep = timer.as_mut().as_pin_mut().expect("armed above");
            sleep.poll(cx).map(|()| None)
        })
        .await;
        let frame = match frame {
            None => {
                read.end = BodyEnd::TimedOut;
                return read;
            }
            Some(None) => return read,
            Some(Some(Err(_))) => {
                read.end = BodyEnd::Aborted;
                return read;
            }
            Some(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read.seen += data.len() as u64;
        let room = max_body.saturating_sub(read.bytes.len());
        let kept = &data[..data.len().min(room)];
        if !grow_within(&mut read.bytes, kept.len(), max_body, memory) {
            read.end = BodyEnd::OverMemory;
            return read;
        }
        read.bytes.extend_from_slice(kept);
        if read.seen > max_body as u64 {
            read.end = BodyEnd::TooLarge;
            return read;
        }
    }
}

/// Make room in `bytes` for `more`, growing its buffer as `Vec` would
/// (doubling, up to `max_body`) but only as far as `memory` covers: every
/// byte of capacity is counted, not only the bytes kept.
fn grow_within(
    bytes: &mut Vec<u8>,
    more: usize,
    max_body: usize,
    memory: &mut Reservation,
) -> bool {
    let needed = bytes.len() + more;
    if needed <= bytes.capacity() {
        return true;
    }
    let capacity = needed.max((bytes.capacity() * 2).min(max_body));
    if !memory.cover(capacity) {
        return false;
    }
    bytes.reserve_exact(capacity - bytes.len());
    true
}
