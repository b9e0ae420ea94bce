//! `listen --tunnel`'s child, kept running: started, watched until it
//! prints its public URL (within `--tunnel-timeout`), and started again
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
use super::child::{Output, TunnelChild};
use super::program::{Launch, Program};
use crate::http::Client;

/// The first wait before a start again; each next one doubles.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before a start again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A program that ran this long before it ended was healthy: the next
/// wait starts again from [`FIRST_BACKOFF`].
const HEALTHY_RUN: Duration = Duration::from_mins(1);
/// How often the program's output is looked at while it has no URL.
const ASK_EVERY: Duration = Duration::from_millis(250);
/// How long a URL the program printed waits for it to say its connection
/// is up, before it is taken anyway.
const READY_GRACE: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Supervised {
    pub(crate) program: Program,
    pub(crate) bin: PathBuf,
    /// The listener the tunnel goes to.
    pub(crate) local: SocketAddr,
    /// How long a start may take to give its URL.
    pub(crate) url_timeout: Duration,
}

/// One step of the supervision.
#[derive(Debug)]
pub(crate) enum TunnelEvent {
    /// The program runs.
    Started { pid: u32 },
    /// It gave its public URL.
    Up { url: PublicUrl },
    /// It ended, or gave no URL in time and was stopped. It starts again
    /// after `restart_in`; `None` on a first start: nothing is retried.
    Down {
        why: String,
        last_lines: Vec<String>,
        restart_in: Option<Duration>,
    },
}

/// Run `supervised` until `stop`; its events come on the receiver. The
/// program is ended (SIGTERM, then SIGKILL) before the task returns.
pub(crate) fn supervise(
    supervised: Supervised,
    client: Client,
    stop: CancellationToken,
) -> (mpsc::Receiver<TunnelEvent>, tokio::task::JoinHandle<()>) {
    let (events_tx, events_rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut backoff = Backoff::default();
        let mut ever_up = false;
        loop {
            // `run_once` heeds `stop` itself, ending the program in order
            // (SIGTERM, its grace, SIGKILL): dropped half-way, it would
            // only be killed.
            let Some(ran) = run_once(&supervised, &client, &events_tx, &stop).await else {
                return;
            };
            ever_up |= ran.was_up;
            if ran.lasted >= HEALTHY_RUN {
                backoff = Backoff::default();
            }
            let restart_in = ever_up.then(|| backoff.next());
            let down = TunnelEvent::Down {
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

/// The program's arguments for this start, and the program started with
/// them; or why it could not be started.
fn spawn(supervised: &Supervised) -> Result<(Launch, TunnelChild), String> {
    let launch = supervised
        .program
        .launch(supervised.local)
        .map_err(|err| format!("cannot prepare its start: {err}"))?;
    let child = TunnelChild::spawn(
        &supervised.bin,
        &launch.args,
        supervised.program.announcement(),
    )
    .map_err(|err| format!("cannot start {}: {err}", supervised.bin.display()))?;
    Ok((launch, child))
}

/// One start, to its end; `None` when `stop` came (the program is ended
/// then) or nobody listens any more.
async fn run_once(
    supervised: &Supervised,
    client: &Client,
    events_tx: &mpsc::Sender<TunnelEvent>,
    stop: &CancellationToken,
) -> Option<Ran> {
    let started = Instant::now();
    let (launch, mut child) = match spawn(supervised) {
        Ok(spawned) => spawned,
        Err(why) => {
            return Some(Ran {
                why,
                last_lines: Vec::new(),
                lasted: started.elapsed(),
                was_up: false,
            });
        }
    };
    let pid = child.pid();
    if events_tx.send(TunnelEvent::Started { pid }).await.is_err() {
        child.stop().await;
        return None;
    }
    let output = child.output();
    let asked = tokio::select! {
        asked = url_within(&launch, &output, client, supervised) => asked,
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
    if events_tx.send(TunnelEvent::Up { url }).await.is_err() {
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

/// Wait for the program to print its URL (and, for cloudflared, to say
/// its connection is up), or say why it gave none within the timeout.
async fn url_within(
    launch: &Launch,
    output: &Output,
    client: &Client,
    supervised: &Supervised,
) -> Result<PublicUrl, String> {
    let deadline = Instant::now() + supervised.url_timeout;
    let mut announced_at = None;
    loop {
        let last = match output.announced() {
            None => "it has not printed a public URL yet".to_owned(),
            Some(announced) => {
                let at = *announced_at.get_or_insert_with(Instant::now);
                match launch.public_url(&announced) {
                    Err(why) => why,
                    Ok(url) => match launch.ready(client).await {
                        Ok(()) => return Ok(url),
                        // Readiness only decides when: a metrics port taken
                        // by another process must not hold the URL back.
                        Err(_) if at.elapsed() >= READY_GRACE => return Ok(url),
                        Err(why) => why,
                    },
                }
            }
        };
        if Instant::now() + ASK_EVERY >= deadline {
            return Err(format!(
                "it gave no public URL within {} s ({last})",
                supervised.url_timeout.as_secs_f64().round(),
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

    /// `stop` gives the program SIGTERM and its grace, not SIGKILL at once
    /// (a tunnel program tells its edge it is going).
    #[tokio::test]
    async fn stop_ends_the_program_with_sigterm_first() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!(
            "danube-hooks-supervisor-term-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let bin = dir.join("cloudflared");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\ntrap 'echo TERM >> {0}; exit 0' TERM\necho up >> {0}\nwhile :; do sleep 0.05; done\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let stop = CancellationToken::new();
        let (mut events, task) = supervise(
            Supervised {
                program: Program::Cloudflared,
                bin,
                local: "127.0.0.1:9".parse().unwrap(),
                url_timeout: Duration::from_secs(30),
            },
            crate::http::Trust::default().client(),
            stop.clone(),
        );
        assert!(matches!(
            events.recv().await,
            Some(TunnelEvent::Started { .. })
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.cancel();
        task.await.unwrap();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            text.contains("TERM"),
            "the program never saw SIGTERM: {text:?}"
        );
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| backoff.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
