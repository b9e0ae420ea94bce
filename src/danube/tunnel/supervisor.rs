//! `listen --tunnel`'s child, kept running: started, asked for its public
//! URL until it gives one (within `--tunnel-timeout`), and started again
//! with backoff (1, 2, 4 … 30 s) whenever it ends or gives no URL. Each
//! step is told on a channel; the listener proves and registers the URLs
//! and says what happened. A first start that fails is not retried: the
//! listener gives up then, with the program's last lines.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::PublicUrl;
use super::child::TunnelChild;
use super::program::{Launch, Program};
use crate::http::Client;

/// The first wait before a start again; each next one doubles.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before a start again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A program that ran this long before it ended was healthy: the next
/// wait starts again from [`FIRST_BACKOFF`].
const HEALTHY_RUN: Duration = Duration::from_mins(1);
/// How often the program is asked for its URL while it has none.
const ASK_EVERY: Duration = Duration::from_millis(250);

/// What to run.
#[derive(Debug, Clone)]
pub struct Supervised {
    pub program: Program,
    pub bin: PathBuf,
    /// The listener the tunnel goes to.
    pub local: SocketAddr,
    /// How long a start may take to give its URL.
    pub url_timeout: Duration,
}

/// One step of the supervision. `start` counts starts from 0.
#[derive(Debug)]
pub enum TunnelEvent {
    /// The program runs.
    Started { start: u32, pid: u32 },
    /// It gave its public URL.
    Up { start: u32, url: PublicUrl },
    /// It ended, or gave no URL in time and was stopped. It starts again
    /// after `restart_in`; `None` on a first start: nothing is retried.
    Down {
        start: u32,
        why: String,
        last_lines: Vec<String>,
        restart_in: Option<Duration>,
    },
}

/// Run `supervised` until `stop`; its events come on the receiver. The
/// program is ended (SIGTERM, then SIGKILL) before the task returns.
pub fn supervise(
    supervised: Supervised,
    client: Client,
    stop: CancellationToken,
) -> (mpsc::Receiver<TunnelEvent>, tokio::task::JoinHandle<()>) {
    let (events_tx, events_rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut backoff = Backoff::default();
        let mut start = 0;
        let mut ever_up = false;
        loop {
            let ran = tokio::select! {
                ran = run_once(&supervised, &client, start, &events_tx, &stop) => ran,
                () = stop.cancelled() => return,
            };
            let Some(ran) = ran else { return };
            ever_up |= ran.was_up;
            if ran.lasted >= HEALTHY_RUN {
                backoff = Backoff::default();
            }
            let restart_in = ever_up.then(|| backoff.next());
            let down = TunnelEvent::Down {
                start,
                why: ran.why,
                last_lines: ran.last_lines,
                restart_in,
            };
            if events_tx.send(down).await.is_err() {
                return;
            }
            let Some(wait) = restart_in else { return };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
            start += 1;
        }
    });
    (events_rx, task)
}

/// How one start ended.
struct Ran {
    why: String,
    last_lines: Vec<String>,
    lasted: Duration,
    was_up: bool,
}

/// One start, to its end; `None` when `stop` came (the program is ended
/// then) or nobody listens any more.
async fn run_once(
    supervised: &Supervised,
    client: &Client,
    start: u32,
    events_tx: &mpsc::Sender<TunnelEvent>,
    stop: &CancellationToken,
) -> Option<Ran> {
    let started = Instant::now();
    let failed = |why: String| Ran {
        why,
        last_lines: Vec::new(),
        lasted: started.elapsed(),
        was_up: false,
    };
    let launch = match supervised.program.launch(supervised.local) {
        Ok(launch) => launch,
        Err(err) => return Some(failed(format!("cannot prepare its start: {err}"))),
    };
    let mut child = match TunnelChild::spawn(&supervised.bin, &launch.args) {
        Ok(child) => child,
        Err(err) => {
            return Some(failed(format!(
                "cannot start {}: {err}",
                supervised.bin.display()
            )));
        }
    };
    let pid = child.pid();
    if events_tx
        .send(TunnelEvent::Started { start, pid })
        .await
        .is_err()
    {
        child.stop().await;
        return None;
    }
    let asked = tokio::select! {
        asked = url_within(&launch, client, supervised) => asked,
        status = child.exited() => Err(format!("it ended ({status}) before it gave a public URL")),
        () = stop.cancelled() => {
            child.stop().await;
            return None;
        }
    };
    let url = match asked {
        Ok(url) => url,
        Err(why) => {
            let last_lines = child.last_lines();
            child.stop().await;
            return Some(Ran {
                why,
                last_lines,
                lasted: started.elapsed(),
                was_up: false,
            });
        }
    };
    if events_tx
        .send(TunnelEvent::Up { start, url })
        .await
        .is_err()
    {
        child.stop().await;
        return None;
    }
    tokio::select! {
        status = child.exited() => Some(Ran {
            why: format!("it ended ({status})"),
            last_lines: child.last_lines(),
            lasted: started.elapsed(),
            was_up: true,
        }),
        () = stop.cancelled() => {
            child.stop().await;
            None
        }
    }
}

/// Ask the program for its URL until it gives one, or say why it gave
/// none within the timeout.
async fn url_within(
    launch: &Launch,
    client: &Client,
    supervised: &Supervised,
) -> Result<PublicUrl, String> {
    let deadline = Instant::now() + supervised.url_timeout;
    loop {
        let last = match launch.public_url(client, supervised.local).await {
            Ok(url) => return Ok(url),
            Err(why) => why,
        };
        if Instant::now() + ASK_EVERY >= deadline {
            return Err(format!(
                "it gave no public URL within {} s (asked at {}: {last})",
                supervised.url_timeout.as_secs_f64().round(),
                launch.control
            ));
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}

/// The waits before starting again: 1, 2, 4 … 30 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| backoff.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
