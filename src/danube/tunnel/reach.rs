//! The proof that a public URL reaches this listener, before it is
//! registered: a `GET` of a random token's path goes out to the URL and
//! must arrive at the listener ([`crate::server::reach`]). Whatever
//! answers at that URL, only an arrival proves it: a squatter on an agent's
//! port can name any URL, but cannot make a token it never saw arrive.
//! A new tunnel takes a moment to route, so the probe is sent again for a
//! few seconds.

use std::time::{Duration, Instant};

use hyper::Uri;

use crate::http::{Outgoing, Sender, url_at};
use crate::server::reach::ReachProbes;

/// How long a new URL may take to reach the listener.
pub(crate) const REACH_WINDOW: Duration = Duration::from_secs(20);
/// For tests of the binary only, never documented for users: the window
/// in milliseconds instead of [`REACH_WINDOW`], so a test of a URL that
/// never reaches the listener does not wait 20 s.
pub(crate) const TEST_WINDOW_ENV: &str = "DANUBE_HOOKS_REACH_WINDOW_MS";

/// [`REACH_WINDOW`], unless a test set [`TEST_WINDOW_ENV`].
pub(crate) fn window() -> Duration {
    std::env::var(TEST_WINDOW_ENV)
        .ok()
        .and_then(|millis| millis.trim().parse().ok())
        .map_or(REACH_WINDOW, Duration::from_millis)
}
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait between probes.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// An arrival is seen before its answer leaves the listener; this covers
/// the wake-up of the waiter, nothing more.
const ARRIVAL_GRACE: Duration = Duration::from_millis(200);

/// Prove that `origin` reaches the listener whose probes are `probes`,
/// within `window`; the time it took, or what the last probe met.
pub(crate) async fn prove(
    sender: &Sender,
    probes: &ReachProbes,
    origin: &Uri,
    window: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut probe = probes.expect();
    let url = url_at(origin, &probe.path())
        .map_err(|err| err.to_string())?
        .to_string();
    let request = Outgoing {
        method: "GET".into(),
        url,
        headers: vec![
            (
                "User-Agent".into(),
                concat!(
                    "danube-hooks/",
                    env!("CARGO_PKG_VERSION"),
                    " (reachability probe)"
                )
                .into(),
            ),
            // ngrok's free plan shows browsers a warning page instead;
            // this header, documented for API clients, skips it.
            ("ngrok-skip-browser-warning".into(), b"1".to_vec()),
        ],
        body: Vec::new(),
    };
    let mut last;
    loop {
        let remaining = window.saturating_sub(started.elapsed());
        let attempt = tokio::select! {
            () = probe.arrived() => return Ok(started.elapsed()),
            attempt = sender.send(&request, PROBE_TIMEOUT.min(remaining.max(Duration::from_millis(1)))) => attempt,
        };
        if tokio::time::timeout(ARRIVAL_GRACE, probe.arrived())
            .await
            .is_ok()
        {
            return Ok(started.elapsed());
        }
        last = match &attempt.result {
            Ok(answer) => format!(
                "{} answered {} but the probe never arrived here",
                crate::http::origin(origin),
                answer.status
            ),
            Err(err) => err.to_string(),
        };
        if started.elapsed() + PROBE_EVERY >= window {
            return Err(format!(
                "it did not reach this listener within {} s: {last}",
                window.as_secs_f64().round()
            ));
        }
        tokio::select! {
            () = probe.arrived() => return Ok(started.elapsed()),
            () = tokio::time::sleep(PROBE_EVERY) => {}
        }
    }
}
