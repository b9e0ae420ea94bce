//! The listener: accepts connections from the tunnel, enforces the limits
//! that keep one client from exhausting it, runs one task per connection,
//! and shuts down gracefully.
//!
//! Everything that reaches this socket came from the internet. Limits
//! (SPEC §9): a cap on open connections, at which the one that has held
//! its place longest without progress (silent, idle, or trickling its
//! request in) gives way to a new one ([`connections`]), a
//! first-byte timeout, a header read timeout that is also the keep-alive
//! idle timeout (hyper restarts it for every request head), a cap on header
//! bytes, and, in `server::body`, a body size cap and a body read timeout.
//!
//! Some answers of the response policy are not HTTP at all (a reset, a
//! clean close, garbage, a hold past the sender's deadline). hyper cannot
//! send those, so the request handler asks the connection task for them
//! through a [`ConnControl`], and the connection task does it on a duplicate
//! of the socket's file descriptor.

mod answer;
mod body;
pub(crate) mod body_memory;
pub(crate) mod forward;
mod head;
pub(crate) mod loops;
pub(crate) mod mirror;
pub(crate) mod reach;
mod recall;
pub(crate) mod request;
pub(crate) mod routes;

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::{Eviction, Registry, Slot, Tracked, accept_within_cap};
use crate::rare_wake::RareWake;
pub(crate) use request::{Intake, IntakeConfig};

/// The limits that keep the listener available (SPEC §9).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Bodies larger than this get 413 and a record that says so.
    pub(crate) max_body: usize,
    /// Bytes that bodies still arriving hold together, past the first
    /// [`body_memory::BodyMemory::UNCOUNTED`] of each.
    pub(crate) max_body_memory: usize,
    /// Time to send a whole request head; also how long an idle
    /// keep-alive connection is kept.
    pub(crate) header_read_timeout: Duration,
    /// Time a new connection has to send its first byte; shorter than the
    /// header read timeout. A sender (Danube, or the tunnel relaying it)
    /// writes its request as soon as it has connected, so a connection
    /// silent this long is not one; closing it sooner than one that is
    /// sending a head slowly frees its slot for those that are. Also, at
    /// the cap, the grace of a slow body: past it, it gives way.
    pub(crate) first_byte_timeout: Duration,
    /// Time to send a whole body once the head has arrived.
    pub(crate) body_read_timeout: Duration,
    /// Open connections at once. At the cap the one that has held its place
    /// longest without progress (silent since it opened, keep-alive between
    /// requests, a head trickling in, or a body slower than the floor for
    /// longer than `first_byte_timeout`) is closed to admit a new one; one
    /// not read yet never is. When none may go, new ones wait.
    pub(crate) max_connections: usize,
    /// Bytes of request head hyper buffers; more gets 431.
    pub(crate) max_header_bytes: usize,
    /// The longest a `timeout` answer holds a connection.
    pub(crate) max_hold: Duration,
    /// How long shutdown waits for answers in flight.
    pub(crate) shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_body_memory: 128 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(3),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            max_hold: Duration::from_mins(1),
            shutdown_grace: Duration::from_secs(12),
        }
    }
}

/// What a request handler can ask of its connection, beyond an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnAction {
    /// Abort with a TCP RST.
    Reset,
    /// Close cleanly (FIN) without an answer.
    Close,
    /// Write these bytes (not HTTP, or an HTTP status hyper won't send as
    /// final, such as 1xx), then close.
    WriteAndClose(Vec<u8>),
    /// Answer nothing and keep the connection open until the client gives
    /// up, the hold ends, or shutdown; then close.
    Hold(Duration),
}

/// The handle a request handler uses to ask for a [`ConnAction`], to say
/// when its request has arrived whole, and to learn that its client went
/// away.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    /// A std mutex is enough: held only to swap an `Option`, never across `.await`.
    action: Mutex<Option<ConnAction>>,
    notify: Notify,
    /// The connection's place in the registry (none outside a listener).
    slot: Option<Arc<Slot>>,
    /// The socket, for watching whether the client is still there (none
    /// outside a listener).
    peer: Option<Arc<std::net::TcpStream>>,
    /// A delivery held by `timeout`, recorded when the hold ends. A std
    /// mutex, as for `action`.
    held: Mutex<Option<request::Held>>,
}

impl ConnControl {
    fn for_connection(slot: Arc<Slot>, peer: Arc<std::net::TcpStream>) -> Self {
        Self {
            slot: Some(slot),
            peer: Some(peer),
            ..Self::default()
        }
    }

    /// Keep `held` for the connection task to record when the hold it is
    /// about to be asked for ends.
    fn hold(&self, held: request::Held) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(held);
    }

    fn take_held(&self) -> Option<request::Held> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Returns when the client has closed or reset the connection; pends
    /// for ever when that cannot be watched, or when the client sends more
    /// (a pipelined request: it is still there). Called while an answer
    /// waits, once the request has been read: hyper is not reading then, so
    /// what is peeked at here is the client's next move. A client that
    /// only shuts its sending side looks gone too: Danube and the tunnels
    /// close both ways when they give up, and a delayed answer would reach
    /// no one.
    pub(crate) async fn client_gone(&self) {
        let watch = self
            .peer
            .as_deref()
            .and_then(|peer| peer.try_clone().ok())
            .and_then(|dup| TcpStream::from_std(dup).ok());
        if let Some(watch) = watch {
            let mut byte = [0u8; 1];
            // EOF, or a reset: the client has gone.
            if matches!(watch.peek(&mut byte).await, Ok(0) | Err(_)) {
                return;
            }
        }
        std::future::pending::<()>().await;
    }

    /// The request's body has been read (whole, or up to a limit): from
    /// now on its connection is being answered and never gives way at the
    /// cap, however long the answer takes.
    pub(crate) fn request_received(&self) {
        if let Some(slot) = &self.slot {
            slot.request_received();
        }
    }

    /// Ask for `action`. The handler then never answers: its future stays
    /// pending until the connection task drops it.
    pub(crate) fn request(&self, action: ConnAction) {
        *self
            .action
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(action);
        self.notify.notify_one();
    }

    async fn wait(&self) -> ConnAction {
        loop {
            self.notify.notified().await;
            if let Some(action) = self
                .action
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                return action;
            }
        }
    }
}

/// Accept and serve until `shutdown` is cancelled, then let answers in
/// flight finish (up to `limits.shutdown_grace`) and return.
pub(crate) async fn run(listener: TcpListener, intake: Arc<Intake>, shutdown: CancellationToken) {
    let limits = intake.config().limits.clone();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // A body arriving slower than the floor for longer than a silent
    // connection may stay silent is not a sender's (see `connections`).
    let registry = Arc::new(Registry::new(limits.first_byte_timeout));
    let tracker = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        // A client may send its whole request and then shut its write side
        // while it waits for the answer. Without this, hyper reads that
        // EOF while the answer is being made, takes it for a client gone
        // mid-request and drops the request unanswered and unrecorded.
        .half_close(true)
        .keep_alive(true);

    while let Some((stream, remote, permit)) =
        accept_within_cap(&listener, &permits, &registry, &shutdown).await
    {
        let registered = registry.open();
        let http = http.clone();
        let intake = Arc::clone(&intake);
        let shutdown = shutdown.clone();
        let (max_hold, first_byte_timeout) = (limits.max_hold, limits.first_byte_timeout);
        tracker.spawn(async move {
            let conn = Conn {
                slot: Arc::clone(&registered.slot),
                first_byte_timeout,
                max_hold,
            };
            serve_connection(stream, remote, http, intake, shutdown, conn).await;
            drop(registered);
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let _ = tokio::time::timeout(limits.shutdown_grace, tracker.wait()).await;
}

/// How long a keep-alive connection asked to give way at the cap may take
/// to finish writing an answer. hyper's graceful shutdown waits for the
/// answer in flight, and a stranger who pipelines requests and never reads
/// the answers keeps one in flight for ever: without a bound, a few such
/// connections held the cap and a delivery waited past Danube's deadline.
/// An answer to a client that reads it is written in far less.
const IDLE_DRAIN: Duration = Duration::from_millis(300);

/// The answer to a request evicted at the cap while it trickled in.
fn too_slow() -> Vec<u8> {
    let why = "request arriving too slowly while the connection cap is full\n";
    format!(
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{why}",
        why.len()
    )
    .into_bytes()
}

/// What a connection's task needs beyond hyper's: its slot in the
/// registry and its own limits.
struct Conn {
    slot: Arc<Slot>,
    first_byte_timeout: Duration,
    max_hold: Duration,
}

/// What each request on one connection shares.
struct PerConn {
    intake: Arc<Intake>,
    control: ConnControl,
    shutdown: CancellationToken,
    remote: String,
    local: String,
    slot: Arc<Slot>,
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    http: http1::Builder,
    intake: Arc<Intake>,
    shutdown: CancellationToken,
    conn: Conn,
) {
    // A second descriptor for the same socket, for the answers hyper can't
    // give. Socket options set through it apply to the socket itself.
    let Ok(raw) = stream
        .as_fd()
        .try_clone_to_owned()
        .map(std::net::TcpStream::from)
    else {
        return;
    };
    // Shared with the requests, which watch it while their answer waits.
    let raw = Arc::new(raw);
    // Everything a request needs of its connection, behind one handle: one
    // reference count per request rather than one per part (and the
    // shutdown token's clone takes a lock).
    let per_conn = Arc::new(PerConn {
        intake,
        control: ConnControl::for_connection(Arc::clone(&conn.slot), Arc::clone(&raw)),
        shutdown: shutdown.clone(),
        // Written once per connection rather than per request: every
        // request on it has the same peer, and formatting an address costs
        // far more than copying the text.
        remote: remote.to_string(),
        // Recorded so an export goes back to the port the delivery came in on.
        local: stream
            .local_addr()
            .map_or_else(|_| String::new(), |local| local.to_string()),
        slot: Arc::clone(&conn.slot),
    });
    let service = {
        let per_conn = Arc::clone(&per_conn);
        service_fn(move |req| {
            let shared = Arc::clone(&per_conn);
            async move {
                shared.slot.request_started();
                let response = shared
                    .intake
                    .handle(
                        req,
                        &shared.remote,
                        &shared.local,
                        &shared.control,
                        &shared.shutdown,
                    )
                    .await;
                shared.slot.request_finished();
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let io = TokioIo::new(Tracked::new(stream, Arc::clone(&conn.slot)));
    let served = http.serve_connection(io, service);
    tokio::pin!(served);
    let Some(action) = watch(served.as_mut(), &per_conn.control, &shutdown, &conn).await else {
        return;
    };
    let held = per_conn.control.take_held();
    let held = held.map(|held| (&*per_conn.intake, held));
    perform(action, served, &raw, conn.max_hold, &shutdown, held).await;
}

/// Serve the connection until hyper is done with it (`None`), or until it
/// must be closed some other way: an answer hyper can't give, or a
/// request trickling in when the cap asks it to give way.
///
/// What else can end a connection (the first-byte timeout, the cap,
/// shutdown, the drain of an evicted one) happens once in its life, if
/// ever, but its futures were polled again at every wake-up of the task:
/// two or three per delivery, a fifth of the connection's own cost. They
/// are polled with a waker of their own ([`RareWake`]), and only after
/// one of them woke the task.
async fn watch<I, B, S>(
    mut served: Pin<&mut http1::Connection<I, S>>,
    control: &ConnControl,
    shutdown: &CancellationToken,
    conn: &Conn,
) -> Option<ConnAction>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slot = &*conn.slot;
    let rare = Arc::new(RareWake::default());
    let rare_waker = Waker::from(Arc::clone(&rare));
    let mut waits = Waits {
        action: std::pin::pin!(control.wait()),
        evicted: std::pin::pin!(slot.evicted()),
        cancelled: std::pin::pin!(shutdown.cancelled()),
        first_byte: std::pin::pin!(tokio::time::sleep(conn.first_byte_timeout)),
        // Armed when an idle connection is asked to give way: see IDLE_DRAIN.
        drain: std::pin::pin!(tokio::time::sleep(IDLE_DRAIN)),
        first_byte_armed: true,
        drain_armed: false,
        draining: false,
    };
    loop {
        let event = std::future::poll_fn(|cx| {
            if served.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Served);
            }
            if !rare.take(cx.waker()) {
                return Poll::Pending;
            }
            waits.poll(&mut Context::from_waker(&rare_waker))
        })
        .await;
        // What fired is done, or armed again: poll them all next time.
        rare.again();
        match event {
            // Done, or never sent a byte: nothing to answer.
            Event::Served | Event::Evicted(Eviction::Silent) => return None,
            Event::Action(action) => return Some(action),
            Event::FirstByte => {
                waits.first_byte_armed = false;
                if slot.expire_if_silent() {
                    return None; // nothing was sent: nothing to answer
                }
            }
            Event::Evicted(Eviction::Idle) => {
                waits.draining = true;
                served.as_mut().graceful_shutdown();
                waits.arm_drain();
            }
            // Nothing of an answer has gone out on this request: a client
            // that is not a stranger learns why it was cut.
            Event::Evicted(Eviction::Slow) => return Some(ConnAction::WriteAndClose(too_slow())),
            // Still open: an answer is being written to a client that does
            // not read it. Reset, unless a request that arrived as it was
            // asked is still being answered; look again later then.
            Event::Drain => {
                if !slot.handling() {
                    return Some(ConnAction::Reset);
                }
                waits.arm_drain();
            }
            Event::Shutdown => {
                waits.draining = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What ended a wait of [`watch`].
enum Event {
    /// hyper is done with the connection.
    Served,
    /// A request handler asked for an answer hyper can't give.
    Action(ConnAction),
    /// The first-byte timeout passed.
    FirstByte,
    /// The cap asked it to give way.
    Evicted(Eviction),
    /// The drain of an idle connection asked to give way ran out.
    Drain,
    /// Shutdown began.
    Shutdown,
}

/// The rare events' futures, and which of them can still fire.
struct Waits<'a, A, E, C> {
    action: Pin<&'a mut A>,
    evicted: Pin<&'a mut E>,
    cancelled: Pin<&'a mut C>,
    first_byte: Pin<&'a mut Sleep>,
    drain: Pin<&'a mut Sleep>,
    first_byte_armed: bool,
    drain_armed: bool,
    /// Evicted or shutting down: hyper is finishing; neither can fire again.
    draining: bool,
}

impl<A, E, C> Waits<'_, A, E, C>
where
    A: Future<Output = ConnAction>,
    E: Future<Output = Eviction>,
    C: Future<Output = ()>,
{
    /// Give an idle connection asked to give way [`IDLE_DRAIN`] (again).
    fn arm_drain(&mut self) {
        self.drain
            .as_mut()
            .reset(tokio::time::Instant::now() + IDLE_DRAIN);
        self.drain_armed = true;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if let Poll::Ready(action) = self.action.as_mut().poll(cx) {
            return Poll::Ready(Event::Action(action));
        }
        if self.first_byte_armed && self.first_byte.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Event::FirstByte);
        }
        if !self.draining
            && let Poll::Ready(eviction) = self.evicted.as_mut().poll(cx)
        {
            return Poll::Ready(Event::Evicted(eviction));
        }
        if self.drain_armed && self.drain.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Event::Drain);
        }
        if !self.draining && self.cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Event::Shutdown);
        }
        Poll::Pending
    }
}

/// Carry out an answer hyper can't give. `conn` is dropped here, which
/// closes hyper's descriptor; the socket closes when `raw` goes too. A
/// delivery `held` by `timeout` is recorded when the hold ends, before the
/// connection is closed.
async fn perform<C>(
    action: ConnAction,
    conn: C,
    mut raw: &std::net::TcpStream,
    max_hold: Duration,
    shutdown: &CancellationToken,
    to_record: Option<(&Intake, request::Held)>,
) {
    match action {
        ConnAction::Reset => {
            // Linger 0 turns the close into an RST.
            let _ = socket2::SockRef::from(raw).set_linger(Some(Duration::ZERO));
            drop(conn);
        }
        ConnAction::Close => {
            let _ = raw.shutdown(std::net::Shutdown::Write);
            drop(conn);
        }
        ConnAction::WriteAndClose(bytes) => {
            // The socket is non-blocking; these few bytes fit the send buffer.
            let _ = raw.write_all(&bytes);
            let _ = raw.shutdown(std::net::Shutdown::Write);
            drop(conn);
        }
        ConnAction::Hold(hold) => {
            // hyper is not polled while holding, so nothing is answered.
            let hold = hold.min(max_hold);
            let _ = tokio::time::timeout(hold, wait_for_peer_close(raw, shutdown)).await;
            if let Some((intake, held)) = to_record {
                intake.store_held(held).await;
            }
            let _ = raw.shutdown(std::net::Shutdown::Write);
            drop(conn);
        }
    }
}

/// Returns when the client closes its side (or on shutdown), so a held
/// connection is released as soon as the sender gives up.
async fn wait_for_peer_close(raw: &std::net::TcpStream, shutdown: &CancellationToken) {
    let Ok(watch) = raw.try_clone().and_then(|dup| TcpStream::from_std(dup)) else {
        shutdown.cancelled().await;
        return;
    };
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            ready = watch.readable() => {
                if ready.is_err() {
                    return;
                }
                match watch.try_read(&mut scratch) {
                    // EOF, or a reset: the client has given up.
                    Ok(0) => return,
                    Err(err) if err.kind() != std::io::ErrorKind::WouldBlock => return,
                    // Bytes after the request (pipelined), or a spurious
                    // wake-up: keep holding.
                    Ok(_) | Err(_) => {}
                }
            }
        }
    }
}
