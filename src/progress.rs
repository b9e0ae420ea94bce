//! Long work shown while it goes on (a tunnel starting, a URL being
//! proved): on a terminal, one line on stderr rewritten each second with
//! what is being waited for and the seconds so far; when stdout or stderr
//! is not a terminal, nothing until the work says how it ended.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How often the line is rewritten.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// One piece of long work, shown.
pub(crate) struct Progress {
    live: bool,
    started: Instant,
    what: String,
    /// Whether a live line is on the screen now.
    shown: bool,
}

impl Progress {
    /// Start showing `what` (e.g. "starting cloudflared").
    pub(crate) fn new(what: impl Into<String>) -> Self {
        Self::with_live(
            what,
            std::io::stderr().is_terminal() && std::io::stdout().is_terminal(),
        )
    }

    fn with_live(what: impl Into<String>, live: bool) -> Self {
        let mut progress = Self {
            live,
            started: Instant::now(),
            what: what.into(),
            shown: false,
        };
        progress.tick();
        progress
    }

    /// Go on with another step of the same work; the seconds count on.
    pub(crate) fn set(&mut self, what: impl Into<String>) {
        self.what = what.into();
        self.tick();
    }

    /// Rewrite the line with the seconds so far.
    pub(crate) fn tick(&mut self) {
        if self.live {
            let line = self.line();
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K{line}");
            let _ = stderr.flush();
            self.shown = true;
        }
    }

    /// Seconds since the work started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn line(&self) -> String {
        format!(
            "danube-hooks: {}… {} s",
            self.what,
            self.started.elapsed().as_secs()
        )
    }

    /// Take the live line away, so what follows starts on a clean line.
    pub(crate) fn clear(&mut self) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_and_how_long() {
        let mut progress = Progress::with_live("starting cloudflared", false);
        assert_eq!(progress.line(), "danube-hooks: starting cloudflared… 0 s");
        progress.set("waiting for its public URL");
        assert!(
            progress
                .line()
                .starts_with("danube-hooks: waiting for its public URL… ")
        );
        // Off a terminal nothing is written, so nothing is to be cleared.
        progress.tick();
        assert!(!progress.shown);
    }
}
