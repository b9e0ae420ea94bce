//! Mirrors (`--mirror-to URL`, repeatable): a copy of each delivery (the
//! same method, path, headers and body as a forward sends) goes to each
//! mirror beside the answer; the mirror's answer is recorded, never
//! relayed to the sender, so a second receiver can be tried without
//! changing what Danube sees.
//!
//! Never in the way: a mirror has its own worker task, fed through a
//! bounded queue ([`QUEUE`] copies; a delivery that finds it full is not
//! mirrored there, and its record says so), sending at most [`AT_ONCE`]
//! copies at a time, each within `--forward-timeout` (Danube's deadline by
//! default), reading no more than [`ANSWER_BODY`] of an answer (only its
//! status is kept). The listener only ever tries to queue: it never waits
//! for a mirror.
//!
//! When a result is recorded: the record is written when the delivery is
//! answered, never later (a sender that got a 2xx can find its delivery in
//! the store), and the answer never waits for a mirror. So the record's
//! `mirrors` holds what is known at that moment: a mirror that has
//! answered or failed with its `status` or `error`; one still waiting with
//! neither, and the time it had taken so far. A mirror that answers after
//! the write is announced on the store's broadcast
//! (`StoreEvent::Mirrored`): the dashboard puts it into the delivery's
//! detail and list, and headless output prints a line for it. The store's
//! line is not rewritten (the file is append-only, one line per request),
//! so `show` and `log` keep the answer as it stood at the write. Chosen
//! over writing the record once the mirrors are done, which would hold the
//! answer or break the store-before-answer rule, and over a second kind of
//! line in the store, which every reader of it would have to learn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Uri;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::forward::url_for;
use super::loops::headers_to_send_on;
use crate::delivery::{Delivery, MirrorRecord};
use crate::http::{Outgoing, Sender, Trust};
use crate::store::DeliveryStore;

/// Copies waiting for one mirror: each holds a copy of its body, so this
/// bounds a slow mirror's memory to this many `--max-body`s (and
/// [`AT_ONCE`] more in flight).
pub(crate) const QUEUE: usize = 32;

/// Copies sent to one mirror at a time.
pub(crate) const AT_ONCE: usize = 8;

/// Bytes of a mirror's answer read; the rest is cut off. Only the status
/// is recorded, so little more than the head is needed.
const ANSWER_BODY: usize = 16 * 1024;

/// One copy to send, and where its result goes.
struct Job {
    request: Outgoing,
    done_tx: oneshot::Sender<MirrorRecord>,
}

struct Target {
    target: Uri,
    jobs_tx: mpsc::Sender<Job>,
}

/// The mirrors, each with its worker. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Mirrors {
    targets: Arc<[Target]>,
}

impl Mirrors {
    /// Start a worker for each target (checked URLs); inside a runtime.
    /// The workers stop when the last handle is dropped.
    pub(crate) fn start(targets: Vec<Uri>, timeout: Duration, trust: &Trust) -> Mirrors {
        let sender = Sender::new(trust, ANSWER_BODY).cutting_long_answers();
        let targets = targets
            .into_iter()
            .map(|target| {
                let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE);
                tokio::spawn(work(jobs_rx, sender.clone(), timeout));
                Target { target, jobs_tx }
            })
            .collect();
        Mirrors { targets }
    }

    /// Queue a copy of `delivery` for each mirror. Never waits: a full
    /// queue is a result of its own (not sent).
    pub(crate) fn send(&self, delivery: &Delivery) -> Copies {
        let copies = self
            .targets
            .iter()
            .map(|target| copy(target, delivery))
            .collect();
        Copies { copies }
    }
}

fn copy(target: &Target, delivery: &Delivery) -> Copy {
    let not_sent = |url: String, why: String| Copy::Done(not_sent(url, why));
    // Built from parts, as a forward's: the path never moves the host.
    let url = match url_for(&target.target, &delivery.path) {
        Ok(url) => url.to_string(),
        Err(err) => return not_sent(target.target.to_string(), err.to_string()),
    };
    // Room first, so a full queue costs no copy of the body.
    let permit = match target.jobs_tx.try_reserve() {
        Ok(permit) => permit,
        Err(TrySendError::Full(())) => {
            return not_sent(
                url,
                format!(
                    "not sent: {QUEUE} copies were already waiting for this mirror \
                     (it answers more slowly than deliveries arrive)"
                ),
            );
        }
        Err(TrySendError::Closed(())) => {
            return not_sent(url, "not sent: the listener is stopping".into());
        }
    };
    let (done_tx, done_rx) = oneshot::channel();
    permit.send(Job {
        request: Outgoing {
            method: delivery.method.clone(),
            url: url.clone(),
            headers: headers_to_send_on(delivery),
            body: delivery.body.clone(),
        },
        done_tx,
    });
    Copy::Waiting {
        url,
        queued: Instant::now(),
        done_rx,
    }
}

fn not_sent(url: String, why: String) -> MirrorRecord {
    MirrorRecord {
        url,
        status: None,
        error: Some(why),
        duration_ms: 0,
    }
}

/// One mirror's worker: its copies, [`AT_ONCE`] at a time.
async fn work(mut jobs_rx: mpsc::Receiver<Job>, sender: Sender, timeout: Duration) {
    let at_once = Arc::new(Semaphore::new(AT_ONCE));
    while let Some(job) = jobs_rx.recv().await {
        let Ok(permit) = Arc::clone(&at_once).acquire_owned().await else {
            return;
        };
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let attempt = sender.send(&job.request, timeout).await;
            let (status, error) = match attempt.result {
                Ok(answer) => (Some(answer.status), None),
                Err(err) => (None, Some(err.to_string())),
            };
            let _ = job.done_tx.send(MirrorRecord {
                url: job.request.url,
                status,
                error,
                duration_ms: attempt.duration.as_millis() as u64,
            });
        });
    }
}

/// The copies of one delivery.
#[derive(Debug)]
pub(crate) struct Copies {
    copies: Vec<Copy>,
}

#[derive(Debug)]
enum Copy {
    Done(MirrorRecord),
    Waiting {
        url: String,
        queued: Instant,
        done_rx: oneshot::Receiver<MirrorRecord>,
    },
}

impl Copies {
    /// No mirrors, or nothing mirrored (a request that is no delivery).
    pub(crate) fn none() -> Copies {
        Copies { copies: Vec::new() }
    }

    /// What is known now, for the record, and the copies still waiting:
    /// those are announced once the record has its id ([`Late::announce`]).
    pub(crate) fn settle(self) -> (Vec<MirrorRecord>, Late) {
        let mut known = Vec::with_capacity(self.copies.len());
        let mut late = Vec::new();
        for (index, copy) in self.copies.into_iter().enumerate() {
            match copy {
                Copy::Done(record) => known.push(record),
                Copy::Waiting {
                    url,
                    queued,
                    mut done_rx,
                } => match done_rx.try_recv() {
                    Ok(record) => known.push(record),
                    Err(oneshot::error::TryRecvError::Closed) => {
                        known.push(dropped(url, queued));
                    }
                    Err(oneshot::error::TryRecvError::Empty) => {
                        known.push(MirrorRecord {
                            url: url.clone(),
                            status: None,
                            error: None,
                            duration_ms: queued.elapsed().as_millis() as u64,
                        });
                        late.push(LateCopy {
                            index,
                            url,
                            queued,
                            done_rx,
                        });
                    }
                },
            }
        }
        (known, Late(late))
    }
}

fn dropped(url: String, queued: Instant) -> MirrorRecord {
    MirrorRecord {
        url,
        status: None,
        error: Some("no result: the copy was dropped (the listener is stopping)".into()),
        duration_ms: queued.elapsed().as_millis() as u64,
    }
}

struct LateCopy {
    index: usize,
    url: String,
    queued: Instant,
    done_rx: oneshot::Receiver<MirrorRecord>,
}

/// The copies of one delivery that had not answered when it was recorded.
pub(crate) struct Late(Vec<LateCopy>);

impl Late {
    /// Announce each late result for record `id` as it comes, from a task
    /// of its own (each ends within its mirror's timeout); never waits.
    pub(crate) fn announce(self, store: &DeliveryStore, id: u64) {
        if self.0.is_empty() {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let each = self.0.into_iter().map(|copy| {
                let store = store.clone();
                async move {
                    let record = match copy.done_rx.await {
                        Ok(record) => record,
                        Err(_) => dropped(copy.url, copy.queued),
                    };
                    store.mirrored(id, copy.index, record);
                }
            });
            futures_util::future::join_all(each).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreConfig, StoreEvent};
    use crate::test_servers::{OK_EMPTY, closed_port, serve};

    fn mirrors(addrs: &[std::net::SocketAddr], timeout: Duration) -> Mirrors {
        let targets = addrs
            .iter()
            .map(|addr| crate::http::check_url(&format!("http://{addr}/copy")).unwrap())
            .collect();
        Mirrors::start(targets, timeout, &Trust::default())
    }

    /// On this runtime's one thread nothing runs between the sends, so the
    /// worker takes none: the queue's room is exactly [`QUEUE`].
    #[tokio::test]
    async fn a_full_queue_is_recorded_as_not_sent_and_never_waited_for() {
        let (silent, _) = serve(None);
        let mirrors = mirrors(&[silent], Duration::from_secs(30));
        let delivery = crate::test_support::sample(1, b"{}");
        let started = Instant::now();
        let settled: Vec<MirrorRecord> = (0..QUEUE + 3)
            .flat_map(|_| mirrors.send(&delivery).settle().0)
            .collect();
        assert!(started.elapsed() < Duration::from_secs(5), "a send waited");
        assert!(settled[..QUEUE].iter().all(MirrorRecord::is_pending));
        for refused in &settled[QUEUE..] {
            let error = refused.error.as_deref().unwrap_or_default();
            assert!(
                error.starts_with("not sent: 32 copies were already waiting"),
                "{error}"
            );
            assert_eq!(refused.url, format!("http://{silent}/copy"));
        }
    }

    /// What is not known when the record is written is announced under its
    /// id once it is: an answer, and a mirror that is not there.
    #[tokio::test]
    async fn a_late_result_is_announced_under_the_records_id() {
        let (answering, _) = serve(Some(OK_EMPTY.to_vec()));
        let dead = closed_port();
        let mirrors = mirrors(&[answering, dead], Duration::from_secs(10));
        let (store, _) = DeliveryStore::open(StoreConfig::memory()).unwrap();
        let mut events_rx = store.subscribe();
        let (known, late) = mirrors
            .send(&crate::test_support::sample(1, b"{}"))
            .settle();
        assert!(known.iter().all(MirrorRecord::is_pending), "{known:?}");
        late.announce(&store, 7);
        let mut results = Vec::new();
        while results.len() < 2 {
            let event = tokio::time::timeout(Duration::from_secs(10), events_rx.recv())
                .await
                .expect("announced within the timeout")
                .unwrap();
            if let StoreEvent::Mirrored { id, index, mirror } = event {
                assert_eq!(id, 7);
                results.push((index, mirror));
            }
        }
        results.sort_by_key(|(index, _)| *index);
        assert_eq!(results[0].1.status, Some(200), "{:?}", results[0]);
        let error = results[1].1.error.as_deref().unwrap_or_default();
        assert!(error.starts_with("cannot connect to"), "{error}");
    }
}
