//! The emulator's connections: accepted up to a cap, at which the ones
//! that hold a slot without using it give way to a newcomer, in the order
//! and by the rules of the listener's registry
//! ([`crate::connections`], the one home of that rule): one that
//! never sent a byte, one idle between calls, then a head or body that has
//! trickled in past its grace. A client that opens hundreds of sockets and
//! sends nothing cannot keep an SDK's call waiting.
//!
//! Every connection's buffers are bounded: a head or an answer holds at
//! most [`MAX_BUFFER`] in hyper, so the cap bounds what connections cost.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::Emulator;
use crate::connections::{Eviction, Registry, Slot, Tracked, accept_within_cap};

/// Open connections at once; past it, one that holds its slot idle gives
/// way (or, when every one is in use, the newcomer waits in the backlog).
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// Time to send a request head (and a keep-alive connection's idle time).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a head or a slow body may arrive before it may give way at
/// the cap: an SDK writes its request in one go.
const GRACE: Duration = Duration::from_secs(3);
/// hyper's read and write buffers per connection: a head larger than this
/// is 431, and an answer is handed to the socket in pieces this size.
const MAX_BUFFER: usize = 64 * 1024;
/// How long shutdown waits for answers in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a connection asked to give way while idle may take to finish
/// an answer its client does not read, before it is reset.
const IDLE_DRAIN: Duration = Duration::from_millis(300);

/// Serve until `shutdown`, then let answers in flight finish (briefly).
pub(crate) async fn run(
    listener: TcpListener,
    emulator: Arc<Emulator>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let registry = Arc::new(Registry::new(GRACE));
    let tracker = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUFFER)
        .keep_alive(true);
    while let Some((stream, _, permit)) =
        accept_within_cap(&listener, &permits, &registry, &shutdown).await
    {
        let registered = registry.open();
        let http = http.clone();
        let emulator = Arc::clone(&emulator);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_connection(stream, http, emulator, &shutdown, &registered.slot).await;
            drop(registered);
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await;
}

async fn serve_connection(
    stream: TcpStream,
    http: http1::Builder,
    emulator: Arc<Emulator>,
    shutdown: &CancellationToken,
    slot: &Arc<Slot>,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    // A second descriptor of the socket, for the answers hyper can't give
    // (a 408 to a request cut at the cap, a reset).
    let Ok(raw) = std::os::fd::AsFd::as_fd(&stream)
        .try_clone_to_owned()
        .map(std::net::TcpStream::from)
    else {
        return;
    };
    let service = {
        let slot = Arc::clone(slot);
        service_fn(move |request| {
            let (emulator, slot) = (Arc::clone(&emulator), Arc::clone(&slot));
            async move {
                slot.request_started();
                let answer = emulator
                    .handle(request, local.ip(), || slot.request_received())
                    .await;
                slot.request_finished();
                Ok::<_, std::convert::Infallible>(answer)
            }
        })
    };
    let conn = http.serve_connection(
        TokioIo::new(Tracked::new(stream, Arc::clone(slot))),
        service,
    );
    tokio::pin!(conn);
    let drain = tokio::time::sleep(IDLE_DRAIN);
    tokio::pin!(drain);
    let (mut draining, mut drain_armed) = (false, false);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            eviction = slot.evicted(), if !draining => match eviction {
                Eviction::Silent => return,
                Eviction::Idle => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                    drain.as_mut().reset(tokio::time::Instant::now() + IDLE_DRAIN);
                    drain_armed = true;
                }
                Eviction::Slow => {
                    too_slow(&raw);
                    return;
                }
            },
            () = &mut drain, if drain_armed => {
                if !slot.handling() {
                    // Linger 0 turns the close into a reset.
                    let _ = socket2::SockRef::from(&raw).set_linger(Some(Duration::ZERO));
                    return;
                }
                drain.as_mut().reset(tokio::time::Instant::now() + IDLE_DRAIN);
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request cut at the cap while it trickled in learns why, in Danube's
/// envelope, and the connection closes.
fn too_slow(mut raw: &std::net::TcpStream) {
    use std::io::Write as _;
    let body = r#"{"detail": "Request arriving too slowly while the emulator's connections are all taken"}"#;
    let answer = format!(
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // The socket is non-blocking; these few bytes fit its send buffer.
    let _ = raw.write_all(answer.as_bytes());
    let _ = raw.shutdown(std::net::Shutdown::Write);
}
