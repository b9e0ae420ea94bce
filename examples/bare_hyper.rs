//! The ceiling for `scripts/bench-load.sh` (SPEC §10): the least a hyper
//! server can do with a webhook — read the whole body, answer 200.
//!
//! Kept honest against `danube-hooks listen`: the same hyper and
//! hyper-util, the same runtime flavour (multi-thread tokio, one worker per
//! core), HTTP/1 with keep-alive, `TCP_NODELAY` and a header read timeout,
//! one task per connection. It verifies nothing, records nothing, prints
//! nothing per request.
//!
//! Usage: `bare_hyper [PORT]` (default 0, a free port); prints
//! `listening on 127.0.0.1:PORT` on stdout once it accepts.
//!
//! `GET /count` answers how many other requests it has answered so far (a
//! relaxed `AtomicU64`, one add per request): the bench script reads it at
//! both ends of its steady window, so that the CPU per request is CPU in the
//! window over requests in the same window, as it is for the listener
//! (counted there by the lines its store gained).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// Requests answered, `GET /count` aside.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == hyper::Method::GET && req.uri().path() == "/count" {
        let count = ANSWERED.load(Ordering::Relaxed);
        return Ok(Response::new(Full::new(Bytes::from(format!("{count}\n")))));
    }
    // The whole body, as the listener reads it; a broken body is a 400.
    let status = match req.into_body().collect().await {
        Ok(body) => {
            std::hint::black_box(body.to_bytes());
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    };
    ANSWERED.fetch_add(1, Ordering::Relaxed);
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok\n")));
    *response.status_mut() = status;
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port
            .parse()
            .map_err(|e| std::io::Error::other(format!("bad port {port:?}: {e}")))?,
        None => 0,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let http = http.clone();
            tokio::spawn(async move {
                let _ = http
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    })
}
