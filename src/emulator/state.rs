//! The emulator's state: its webhooks (with their secrets, which cannot be
//! had again; at most [`MAX_WEBHOOKS`]) and each webhook's Danube delivery
//! records, within `--keep` per webhook and a byte budget over all
//! ([`super::records`]), persisted in one JSON file (SPEC §13).
//!
//! The file is mode 0600 in a 0700 folder and is only ever replaced whole
//! (`fsutil::write_private_atomic`: temporary file, fsync, rename, fsync of
//! the folder), so a crash at any instant leaves the previous state or the
//! new one. One writer thread does the writing: a change to the webhooks
//! (an API call) is written at once and its answer waits for that write,
//! so an answered create survives a crash; delivery records, which come
//! in bursts, are written at most every [`RECORD_GAP`], so 3,000 records
//! cost a few rewrites, not 3,000, and never block a request (and a large
//! log, slow to write, is written less often still).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::deliver::{AttemptUpdate, DeliveryLog, DeliveryStatus, Target};
use super::payload::Payload;
use super::records::{LOG_BYTES, Logs, Record};
use crate::danube::model::{CreatedWebhook, Webhook};
use crate::display::escape_line;
use crate::fsutil::{self, FileError};
use crate::random::{random_alnum, uuid_v4};

/// The state file's name in the default folder.
pub(crate) const FILE_NAME: &str = "emulator.json";
/// Records kept per webhook unless `--keep` says otherwise.
pub(crate) const DEFAULT_KEEP: usize = 10_000;
/// Webhooks the emulator holds at most: each is a few KiB at most (its URL
/// and description are bounded by the API), and each event is matched
/// against every one.
pub(crate) const MAX_WEBHOOKS: usize = 1000;
/// The shortest time between two writes for delivery records alone.
pub(crate) const RECORD_GAP: Duration = Duration::from_millis(100);
/// How long a failed write waits before it is tried again.
const RETRY_GAP: Duration = Duration::from_secs(1);
/// The file's format; a file of another version is refused, not misread.
const VERSION: u32 = 1;

/// Why the state cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("no folder for the emulator's state: set XDG_DATA_HOME or HOME, or pass --state PATH")]
    NoDataDir,
    #[error("cannot {action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: String,
        cause: std::io::Error,
    },
    #[error(
        "{path} is not a state file of danube-hooks emulate ({cause}); move it aside (the \
         webhook secrets in it may still be readable by hand) or start empty with --reset"
    )]
    Corrupt { path: String, cause: String },
    #[error(
        "another `danube-hooks emulate` uses {path}; stop it, or give this one its own --state PATH"
    )]
    Locked { path: String },
}

/// `$XDG_DATA_HOME/danube-hooks/emulator.json` (when absolute), else
/// `~/.local/share/danube-hooks/emulator.json`: beside the listener's store.
pub(crate) fn default_path() -> Result<PathBuf, StateError> {
    crate::paths::data_dir()
        .map(|dir| dir.join(FILE_NAME))
        .ok_or(StateError::NoDataDir)
}

/// The state, shared by the API and the deliveries: a cheap handle.
#[derive(Clone)]
pub(crate) struct State {
    shared: Arc<Shared>,
}

struct Shared {
    /// A std mutex is enough: it is held only to read or change the maps,
    /// never across an `.await` or a write to disk.
    data: Mutex<Data>,
    writer: Writer,
}

/// A webhook and what only the emulator knows of it.
struct Hook {
    webhook: Webhook,
    secret: String,
}

struct Data {
    /// In creation order, as Danube lists them.
    hooks: Vec<Hook>,
    /// Their delivery records.
    logs: Logs,
    /// Bumped by every change; the writer writes up to one.
    generation: u64,
}

impl Data {
    fn empty(keep: usize) -> Self {
        Self {
            hooks: Vec::new(),
            logs: Logs::new(keep, LOG_BYTES),
            generation: 0,
        }
    }

    fn hook(&self, id: &str) -> Option<&Hook> {
        self.hooks.iter().find(|hook| hook.webhook.id == id)
    }

    fn hook_mut(&mut self, id: &str) -> Option<&mut Hook> {
        self.hooks.iter_mut().find(|hook| hook.webhook.id == id)
    }
}

/// What a create takes (checked by the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewWebhook {
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) description: Option<String>,
}

/// What an update changes: only the fields given (checked by the API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) url: Option<String>,
    pub(crate) events: Option<Vec<String>>,
    pub(crate) is_active: Option<bool>,
    /// `Some(None)`: the description set to null.
    #[allow(clippy::option_option)] // PATCH's three cases: keep, clear, set
    pub(crate) description: Option<Option<String>>,
}

/// A change made in memory, to be waited for on disk with [`State::saved`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an API answer waits for its change to be saved"]
pub(crate) struct Generation(u64);

impl State {
    /// Open the state at `path` (empty with `reset`, or when there is no
    /// file yet), lock it against a second emulator, write it once (so an
    /// unwritable place is an error now, not later) and start the writer.
    pub(crate) fn open(path: &Path, reset: bool, keep: usize) -> Result<Self, StateError> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| StateError::Io {
                action: "use",
                path: path.display().to_string(),
                cause: std::io::Error::other("the path names no file"),
            })?
            .to_string_lossy()
            .into_owned();
        create_private_dir(&dir)?;
        let lock = lock(&dir, &name)?;
        let mut data = Data::empty(keep);
        if !reset {
            load(path, &mut data)?;
        }
        data.generation = 1;
        let shared = Arc::new(Shared {
            data: Mutex::new(data),
            writer: Writer::new(dir, name, lock),
        });
        // The first write, here and now: its error is the start's.
        let snapshot = Snapshot::of(&shared.lock());
        shared
            .writer
            .write(&snapshot)
            .map_err(|err| StateError::Io {
                action: err.action,
                path: err.path,
                cause: err.cause,
            })?;
        shared.writer.done(1);
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("emulator-state".into())
            .spawn(move || thread_shared.writer.run(&thread_shared))
            .map_err(io("start the writer of", path))?;
        *lock_ignoring_poison(&shared.writer.thread) = Some(handle);
        Ok(Self { shared })
    }

    /// Write what is not written yet and stop the writer. Blocks: call it
    /// off the async workers (`spawn_blocking`) or after the runtime.
    pub(crate) fn close(&self) {
        self.shared.writer.close();
    }

    /// Returns once the change `generation` is on disk (or its write
    /// failed, which the writer has said on stderr).
    pub(crate) async fn saved(&self, generation: Generation) {
        let mut written = self.shared.writer.written.subscribe();
        let _ = written.wait_for(|done| *done >= generation.0).await;
    }

    /// The webhooks, in creation order.
    pub(crate) fn list(&self) -> Vec<Webhook> {
        self.shared
            .lock()
            .hooks
            .iter()
            .map(|hook| hook.webhook.clone())
            .collect()
    }

    pub(crate) fn get(&self, id: &str) -> Option<Webhook> {
        self.shared.lock().hook(id).map(|hook| hook.webhook.clone())
    }

    /// Make a webhook with a fresh id and secret; `None` when the emulator
    /// holds [`MAX_WEBHOOKS`] already.
    pub(crate) fn create(&self, new: NewWebhook) -> Option<(CreatedWebhook, Generation)> {
        let now = crate::events::timestamp(chrono::Utc::now());
        let created = CreatedWebhook {
            webhook: Webhook {
                id: uuid_v4(),
                url: new.url,
                events: new.events,
                is_active: true,
                description: new.description,
                created_at: Some(now.clone()),
                updated_at: Some(now),
            },
            secret: format!("whsec_{}", random_alnum(32)),
        };
        let mut data = self.shared.lock();
        if data.hooks.len() >= MAX_WEBHOOKS {
            return None;
        }
        data.logs.add_hook(&created.webhook.id);
        data.hooks.push(Hook {
            webhook: created.webhook.clone(),
            secret: created.secret.clone(),
        });
        let generation = self.shared.changed(&mut data, true);
        Some((created, generation))
    }

    /// Change the fields given; `None` for an unknown id.
    pub(crate) fn update(&self, id: &str, change: Change) -> Option<(Webhook, Generation)> {
        let mut data = self.shared.lock();
        let hook = data.hook_mut(id)?;
        let webhook = &mut hook.webhook;
        if let Some(url) = change.url {
            webhook.url = url;
        }
        if let Some(events) = change.events {
            webhook.events = events;
        }
        if let Some(is_active) = change.is_active {
            webhook.is_active = is_active;
        }
        if let Some(description) = change.description {
            webhook.description = description;
        }
        webhook.updated_at = Some(crate::events::timestamp(chrono::Utc::now()));
        let webhook = webhook.clone();
        let generation = self.shared.changed(&mut data, true);
        Some((webhook, generation))
    }

    /// Delete a webhook and its delivery log; `None` for an unknown id.
    pub(crate) fn delete(&self, id: &str) -> Option<Generation> {
        let mut data = self.shared.lock();
        let at = data.hooks.iter().position(|hook| hook.webhook.id == id)?;
        let hook = data.hooks.remove(at);
        data.logs.remove_hook(&hook.webhook.id);
        Some(self.shared.changed(&mut data, true))
    }

    /// The ids of a webhook's newest `limit` records, newest first;
    /// `None` for an unknown id.
    pub(crate) fn delivery_ids(&self, id: &str, limit: usize) -> Option<Vec<String>> {
        self.shared.lock().logs.newest_ids(id, limit)
    }

    /// A delivery record, while it is kept.
    pub(crate) fn record(&self, delivery_id: &str) -> Option<Arc<Record>> {
        self.shared.lock().logs.get(delivery_id)
    }

    /// The webhooks' ids, in creation order.
    pub(crate) fn webhook_ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .hooks
            .iter()
            .map(|hook| hook.webhook.id.clone())
            .collect()
    }

    /// The active webhooks subscribed to `event`, with their secrets.
    pub(crate) fn targets(&self, event: &str) -> Vec<Target> {
        self.shared
            .lock()
            .hooks
            .iter()
            .filter(|hook| hook.webhook.is_active && hook.webhook.events.iter().any(|e| e == event))
            .map(|hook| Target {
                webhook_id: hook.webhook.id.clone(),
                url: hook.webhook.url.clone(),
                secret: crate::signature::Secret::new(hook.secret.clone()),
            })
            .collect()
    }

    /// Records kept in memory, over every webhook (tests, and the bound).
    pub(crate) fn record_count(&self) -> usize {
        self.shared.lock().logs.len()
    }
}

impl DeliveryLog for State {
    fn begin(&self, webhook_id: &str, event: &str, payload: &Payload) -> String {
        let id = format!("dlv_{}", random_alnum(24));
        let record = Record {
            id: id.clone(),
            webhook_id: webhook_id.to_owned(),
            event_type: event.to_owned(),
            payload: payload.clone(),
            status: DeliveryStatus::Pending,
            response_status: None,
            response_body: None,
            attempts: 0,
            delivered_at: None,
            created_at: Some(crate::events::timestamp(chrono::Utc::now())),
        };
        let mut data = self.shared.lock();
        // A webhook deleted since the targets were picked: the record has
        // nowhere to live, as in Danube, and its attempts are not logged.
        if data.logs.push(record) {
            // Records never wait for the disk: the writer gathers them.
            let _ = self.shared.changed(&mut data, false);
        }
        id
    }

    fn attempted(&self, delivery_id: &str, update: &AttemptUpdate) {
        let mut data = self.shared.lock();
        let changed = data.logs.update(delivery_id, |record| {
            record.attempts = update.attempts;
            record.status = update.status;
            record.response_status = update.response_status;
            record.response_body.clone_from(&update.response_body);
            record.delivered_at.clone_from(&update.delivered_at);
        });
        if changed {
            let _ = self.shared.changed(&mut data, false);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        lock_ignoring_poison(&self.data)
    }

    /// Note a change for the writer; `urgent` ones are written at once.
    fn changed(&self, data: &mut Data, urgent: bool) -> Generation {
        data.generation += 1;
        self.writer.want(data.generation, urgent);
        Generation(data.generation)
    }
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The state as written: the webhooks with their secrets and records.
struct Snapshot {
    generation: u64,
    hooks: Vec<(Webhook, String, Vec<Arc<Record>>)>,
    /// About the bytes it takes as JSON, so that writing it costs one
    /// buffer of its size, not twice that as the buffer grows.
    size: usize,
}

impl Snapshot {
    /// Taken under the lock: clones of a few webhooks and a reference
    /// count per record; the serializing happens after.
    fn of(data: &Data) -> Self {
        let hooks: Vec<_> = data
            .hooks
            .iter()
            .map(|hook| {
                (
                    hook.webhook.clone(),
                    hook.secret.clone(),
                    data.logs.newest_first(&hook.webhook.id),
                )
            })
            .collect();
        let webhooks: usize = hooks
            .iter()
            .map(|(webhook, secret, _)| {
                256 + webhook.url.len()
                    + webhook.description.as_ref().map_or(0, String::len)
                    + secret.len()
                    + webhook.events.iter().map(|e| e.len() + 3).sum::<usize>()
            })
            .sum();
        Self {
            generation: data.generation,
            hooks,
            // A record's weight is more than its JSON: the text it holds,
            // escaped now and then, and an overhead beside.
            size: 64 + webhooks + data.logs.bytes(),
        }
    }

    fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct FileOut<'a> {
            version: u32,
            webhooks: Vec<HookOut<'a>>,
        }
        #[derive(Serialize)]
        struct HookOut<'a> {
            #[serde(flatten)]
            webhook: &'a Webhook,
            secret: &'a str,
            /// Newest first, as the API lists them.
            deliveries: Vec<&'a Record>,
        }
        let file = FileOut {
            version: VERSION,
            webhooks: self
                .hooks
                .iter()
                .map(|(webhook, secret, log)| HookOut {
                    webhook,
                    secret,
                    deliveries: log.iter().map(AsRef::as_ref).collect(),
                })
                .collect(),
        };
        let mut json = Vec::with_capacity(self.size);
        serde_json::to_writer(&mut json, &file).expect("the state serializes");
        json
    }
}

#[derive(Deserialize)]
struct FileIn {
    version: u32,
    webhooks: Vec<HookIn>,
}

#[derive(Deserialize)]
struct HookIn {
    #[serde(flatten)]
    webhook: Webhook,
    secret: String,
    /// Newest first.
    #[serde(default)]
    deliveries: Vec<Record>,
}

/// Read the state in `path` into `data` (left empty when there is no
/// file). A record left `pending` was in flight when the emulator stopped;
/// no attempt of it will follow, so it is `failed` now, as Danube would
/// record a delivery it gave up on. Records are taken back oldest first
/// over all webhooks, so the bounds keep the newest, as they did.
fn load(path: &Path, data: &mut Data) -> Result<(), StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(cause) => return Err(io("read", path)(cause)),
    };
    let corrupt = |cause: String| StateError::Corrupt {
        path: path.display().to_string(),
        cause,
    };
    // Where, never serde's text: it can quote a secret.
    let file: FileIn = serde_json::from_slice(&bytes).map_err(|err| {
        corrupt(format!(
            "{:?} error at line {} column {}",
            err.classify(),
            err.line(),
            err.column()
        ))
    })?;
    drop(bytes);
    if file.version != VERSION {
        return Err(corrupt(format!(
            "version {} where this danube-hooks reads version {VERSION}",
            file.version
        )));
    }
    let mut records = Vec::new();
    for hook in file.webhooks {
        if data.hook(&hook.webhook.id).is_some() {
            return Err(corrupt(format!(
                "the webhook id {} appears twice",
                escape_line(&hook.webhook.id)
            )));
        }
        data.logs.add_hook(&hook.webhook.id);
        records.extend(hook.deliveries.into_iter().rev().map(|mut record| {
            // Its webhook is the one it was filed under.
            record.webhook_id.clone_from(&hook.webhook.id);
            if record.status == DeliveryStatus::Pending {
                record.status = DeliveryStatus::Failed;
            }
            record
        }));
        data.hooks.push(Hook {
            webhook: hook.webhook,
            secret: hook.secret,
        });
    }
    // RFC 3339 times of one format sort as text; the sort is stable, so
    // each webhook's own order stands among equal times.
    records.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    for record in records {
        data.logs.push(record);
    }
    Ok(())
}

/// `map_err` for an I/O failure: what was being done, and to which path.
fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.display().to_string();
    move |cause| StateError::Io {
        action,
        path,
        cause,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt as _;
    // Made 0700 when new; a folder the user named that exists keeps its
    // mode (it may be their project folder); the file itself is 0600.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))
}

/// An advisory lock on `dir/.NAME.lock`, held for the emulator's life:
/// the state file itself is replaced by every write, so it cannot hold
/// one. Some file systems have no locks; the emulator then runs without.
fn lock(dir: &Path, name: &str) -> Result<std::fs::File, StateError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(format!(".{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io("open", &path))?;
    match file.try_lock() {
        Ok(()) | Err(std::fs::TryLockError::Error(_)) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked {
            path: dir.join(name).display().to_string(),
        }),
    }
}

/// The one writer: a thread, since a write is a blocking fsync of a file
/// that grows with the log.
struct Writer {
    dir: PathBuf,
    name: String,
    /// A std mutex and condvar: the thread sleeps on them; holders only
    /// flip flags.
    wanted: Mutex<Wanted>,
    wake: Condvar,
    /// The newest generation whose write is over (done or failed).
    written: tokio::sync::watch::Sender<u64>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held until [`Writer::close`] has written the last state.
    lock: Mutex<Option<std::fs::File>>,
}

#[derive(Default)]
struct Wanted {
    generation: u64,
    urgent: bool,
    closing: bool,
}

impl Writer {
    fn new(dir: PathBuf, name: String, lock: std::fs::File) -> Self {
        Self {
            dir,
            name,
            wanted: Mutex::new(Wanted::default()),
            wake: Condvar::new(),
            written: tokio::sync::watch::Sender::new(0),
            thread: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
        }
    }

    fn want(&self, generation: u64, urgent: bool) {
        let mut wanted = lock_ignoring_poison(&self.wanted);
        wanted.generation = wanted.generation.max(generation);
        wanted.urgent |= urgent;
        drop(wanted);
        self.wake.notify_one();
    }

    fn done(&self, generation: u64) {
        self.written.send_if_modified(|done| {
            let newer = generation > *done;
            *done = (*done).max(generation);
            newer
        });
    }

    fn write(&self, snapshot: &Snapshot) -> Result<PathBuf, FileError> {
        fsutil::write_private_atomic(&self.dir, &self.name, &snapshot.to_json())
    }

    fn close(&self) {
        lock_ignoring_poison(&self.wanted).closing = true;
        self.wake.notify_one();
        let handle = lock_ignoring_poison(&self.thread).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // Done with the file: another emulator may have it now.
        lock_ignoring_poison(&self.lock).take();
    }

    /// Wait for a change, let records gather for up to [`RECORD_GAP`]
    /// since the last write (an urgent change or closing cuts it short),
    /// then write everything changed so far.
    fn run(&self, shared: &Shared) {
        let mut written = 1;
        let mut last_write = Instant::now();
        let mut last_took = Duration::ZERO;
        let mut last_error: Option<String> = None;
        loop {
            let mut wanted = lock_ignoring_poison(&self.wanted);
            loop {
                let pending = wanted.generation > written;
                if wanted.closing || (pending && wanted.urgent) {
                    break;
                }
                // A log of many records takes a while to write: waiting
                // four times as long between writes keeps the writer to a
                // fifth of a core however large the log has grown.
                let gap = if last_error.is_some() {
                    RETRY_GAP
                } else {
                    RECORD_GAP.max(last_took * 4)
                };
                let due = last_write + gap;
                let now = Instant::now();
                if pending && now >= due {
                    break;
                }
                let wait = if pending {
                    due - now
                } else {
                    Duration::from_hours(1)
                };
                wanted = self
                    .wake
                    .wait_timeout(wanted, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let closing = wanted.closing;
            let pending = wanted.generation > written;
            wanted.urgent = false;
            drop(wanted);
            if pending {
                let snapshot = Snapshot::of(&shared.lock());
                last_write = Instant::now();
                let written_now = self.write(&snapshot);
                last_took = last_write.elapsed();
                match written_now {
                    Ok(_) => {
                        if last_error.take().is_some() {
                            eprintln!("danube-hooks: the emulator's state is written again");
                        }
                        written = snapshot.generation;
                    }
                    Err(err) => {
                        let text = err.to_string();
                        if last_error.as_deref() != Some(&text) {
                            eprintln!(
                                "danube-hooks: warning: {text}; the emulator keeps going and \
                                 tries again"
                            );
                        }
                        last_error = Some(text);
                    }
                }
                // Waiters are let go either way: a failed write is said
                // above, and is tried again.
                self.done(snapshot.generation);
            }
            if closing
                && (written >= lock_ignoring_poison(&self.wanted).generation
                    || last_error.is_some())
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "danube-hooks-emu-state-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl State {
        fn create_ok(&self, new: NewWebhook) -> (CreatedWebhook, Generation) {
            self.create(new).expect("room for a webhook")
        }

        /// A webhook's newest `limit` records, newest first.
        fn records_of(&self, id: &str, limit: usize) -> Option<Vec<Arc<Record>>> {
            let ids = self.delivery_ids(id, limit)?;
            Some(ids.iter().filter_map(|id| self.record(id)).collect())
        }
    }

    fn payload() -> Payload {
        let data = serde_json::value::RawValue::from_string("{}".to_owned()).unwrap();
        Payload::envelope("workflow.failed", chrono::Utc::now(), &data)
    }

    fn new_hook(url: &str, events: &[&str]) -> NewWebhook {
        NewWebhook {
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            description: None,
        }
    }

    fn update(attempts: u32, status: DeliveryStatus, code: Option<u16>) -> AttemptUpdate {
        AttemptUpdate {
            attempts,
            status,
            response_status: code,
            response_body: code.map(|c| format!("answer {c}")),
            delivered_at: (status != DeliveryStatus::Pending)
                .then(|| "2026-11-30T10:00:00Z".into()),
        }
    }

    #[test]
    fn webhooks_change_only_where_asked_and_survive_a_reopen() {
        let dir = Dir::new("reopen");
        let path = dir.0.join("sub").join("emulator.json");
        let state = State::open(&path, false, 10).unwrap();
        let (created, _) = state.create_ok(new_hook("https://a.example/h", &["workflow.failed"]));
        assert!(created.secret.starts_with("whsec_"));
        assert_eq!(created.secret.len(), 6 + 32);
        let (other, _) = state.create_ok(new_hook("https://b.example/h", &["workflow.completed"]));
        let (changed, _) = state
            .update(
                &created.webhook.id,
                Change {
                    is_active: Some(false),
                    ..Change::default()
                },
            )
            .unwrap();
        assert!(!changed.is_active);
        assert_eq!(changed.url, "https://a.example/h");
        assert_eq!(changed.events, ["workflow.failed"]);
        assert!(state.update("nope", Change::default()).is_none());
        assert!(state.delete(&other.webhook.id).is_some());
        assert!(state.delete(&other.webhook.id).is_none());
        state.close();

        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // While one emulator has it, a second is refused.
        let again = State::open(&path, false, 10).unwrap();
        assert!(matches!(
            State::open(&path, false, 10),
            Err(StateError::Locked { .. })
        ));
        assert_eq!(again.list(), vec![changed]);
        // The secret is kept: a target carries it.
        assert!(again.targets("workflow.failed").is_empty(), "paused");
        again.update(
            &created.webhook.id,
            Change {
                is_active: Some(true),
                ..Change::default()
            },
        );
        let targets = again.targets("workflow.failed");
        assert_eq!(targets.len(), 1);
        assert_eq!(
            targets[0].secret,
            crate::signature::Secret::new(created.secret)
        );
        again.close();
        let reset = State::open(&path, true, 10).unwrap();
        assert!(reset.list().is_empty());
        reset.close();
    }

    #[test]
    fn records_are_newest_first_bounded_and_updated_in_place() {
        let dir = Dir::new("records");
        let path = dir.0.join("emulator.json");
        let state = State::open(&path, false, 3).unwrap();
        let (hook, _) = state.create_ok(new_hook("https://a.example/h", &["workflow.failed"]));
        let id = hook.webhook.id;
        let payload = payload();
        let ids: Vec<String> = (0..5)
            .map(|_| state.begin(&id, "workflow.failed", &payload))
            .collect();
        let listed = state.records_of(&id, 20).unwrap();
        let listed_ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(listed_ids, [&ids[4], &ids[3], &ids[2]].map(String::as_str));
        assert_eq!(state.record_count(), 3);
        assert!(
            listed
                .iter()
                .all(|r| r.status == DeliveryStatus::Pending && r.attempts == 0)
        );
        assert_eq!(state.records_of(&id, 1).unwrap().len(), 1);

        state.attempted(&ids[3], &update(1, DeliveryStatus::Pending, Some(500)));
        state.attempted(&ids[3], &update(2, DeliveryStatus::Success, Some(200)));
        // A dropped record's attempts go nowhere.
        state.attempted(&ids[0], &update(1, DeliveryStatus::Success, Some(200)));
        let record = state
            .records_of(&id, 20)
            .unwrap()
            .into_iter()
            .find(|r| r.id == ids[3])
            .unwrap();
        assert_eq!(record.status, DeliveryStatus::Success);
        assert_eq!(record.attempts, 2);
        assert_eq!(record.response_status, Some(200));
        assert_eq!(record.response_body.as_deref(), Some("answer 200"));
        assert!(state.records_of("nope", 20).is_none());
        state.close();

        // On a reopen, the pending ones (in flight when it stopped) are failed.
        let again = State::open(&path, false, 2).unwrap();
        let records = again.records_of(&id, 20).unwrap();
        assert_eq!(records.len(), 2, "--keep applies to a loaded log");
        assert_eq!(records[0].id, ids[4]);
        assert_eq!(records[0].status, DeliveryStatus::Failed);
        assert_eq!(records[1].status, DeliveryStatus::Success);
        // New records continue after the loaded ones.
        let next = again.begin(&id, "workflow.failed", &payload);
        again.attempted(&next, &update(1, DeliveryStatus::Failed, None));
        let records = again.records_of(&id, 20).unwrap();
        assert_eq!(records[0].id, next);
        assert_eq!(records[0].status, DeliveryStatus::Failed);
        assert_eq!(records.len(), 2);
        again.close();
    }

    #[test]
    fn a_torn_or_foreign_file_is_refused_without_its_text() {
        let dir = Dir::new("corrupt");
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("emulator.json");
        std::fs::write(
            &path,
            br#"{"version":1,"webhooks":[{"id":"a","secret":"whsec_leak"#,
        )
        .unwrap();
        let err = State::open(&path, false, 10).err().unwrap().to_string();
        assert!(err.contains("--reset"), "{err}");
        assert!(!err.contains("whsec_leak"), "{err}");
        std::fs::write(&path, br#"{"version":99,"webhooks":[]}"#).unwrap();
        let err = State::open(&path, false, 10).err().unwrap().to_string();
        assert!(err.contains("version 99"), "{err}");
        // --reset starts empty over it.
        let state = State::open(&path, true, 10).unwrap();
        assert!(state.list().is_empty());
        state.close();
    }

    #[test]
    fn a_burst_of_records_is_written_in_few_writes_and_whole_on_close() {
        let dir = Dir::new("burst");
        let path = dir.0.join("emulator.json");
        let state = State::open(&path, false, 10_000).unwrap();
        let (hook, _) = state.create_ok(new_hook("https://a.example/h", &["workflow.failed"]));
        let payload = payload();
        for _ in 0..3000 {
            let id = state.begin(&hook.webhook.id, "workflow.failed", &payload);
            state.attempted(&id, &update(1, DeliveryStatus::Success, Some(200)));
        }
        state.close();
        let again = State::open(&path, false, 10_000).unwrap();
        let records = again.records_of(&hook.webhook.id, 10_000).unwrap();
        assert_eq!(records.len(), 3000);
        assert!(records.iter().all(|r| r.status == DeliveryStatus::Success));
        again.close();
    }
}
