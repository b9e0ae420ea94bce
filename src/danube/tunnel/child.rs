//! A tunnel program running as this listener's child. It runs in a
//! process group of its own, so that a Ctrl-C at the terminal reaches the
//! listener alone, which then ends the child itself, in order; it gets the
//! parent-death signal (Linux), so that even a `kill -9` of the listener
//! takes it along; and the listener's runtime kills it when dropped (a
//! panic). What it prints is kept as its last lines, bounded, for when it
//! fails, and read for the public URL it announces: its own pipe is the
//! one place no other process can speak for it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Lines of output kept.
const KEPT_LINES: usize = 20;
/// A longer line is cut to this many bytes: the program is the user's,
/// but what it prints is not bounded by anything else.
const MAX_LINE: usize = 400;
/// The environment this tool reads (`DANUBE_API_KEY`,
/// `DANUBE_WEBHOOK_SECRET`, …), kept from the tunnel program.
const DANUBE_ENV_PREFIX: &str = "DANUBE_";
/// How long the program has to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Finds the public URL a program announces in one line of its output.
pub(crate) type Announcement = fn(&str) -> Option<String>;

/// What a program printed: its last lines, stdout and stderr together,
/// and the last public URL it announced. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Output {
    /// A std mutex: held to push or copy a few lines, never across `.await`.
    seen: Arc<Mutex<Seen>>,
    announcement: Announcement,
}

#[derive(Default)]
struct Seen {
    lines: VecDeque<String>,
    announced: Option<String>,
}

impl Output {
    fn new(announcement: Announcement) -> Self {
        Self {
            seen: Arc::default(),
            announcement,
        }
    }

    fn push(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return;
        }
        let announced = (self.announcement)(line);
        let mut seen = self.lock();
        if seen.lines.len() == KEPT_LINES {
            seen.lines.pop_front();
        }
        seen.lines.push_back(line.to_owned());
        if announced.is_some() {
            seen.announced = announced;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lines as printed (not yet escaped for a terminal).
    pub(crate) fn last_lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }

    /// The public URL it announced last, as printed (not yet checked).
    pub(crate) fn announced(&self) -> Option<String> {
        self.lock().announced.clone()
    }
}

/// The running program.
pub(crate) struct TunnelChild {
    child: tokio::process::Child,
    pid: u32,
    output: Output,
}

impl TunnelChild {
    /// Start `bin` with `args`: stdin closed, its output kept and read
    /// for what `announcement` finds.
    pub(crate) fn spawn(
        bin: &Path,
        args: &[OsString],
        announcement: Announcement,
    ) -> std::io::Result<Self> {
        let mut command = tokio::process::Command::new(bin);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // The program has no use for Danube's key or a webhook's secret,
        // and no business seeing them.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(DANUBE_ENV_PREFIX) {
                command.env_remove(&name);
            }
        }
        // The parent-death signal goes when the thread that forked ends:
        // this runs on a runtime worker (never the blocking pool, whose
        // threads end when idle), which lives as long as the listener.
        let mut child = ur_taking_me_with_you::spawn_dying_with_parent_async(command)?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the program ended before it could be watched"))?;
        let output = Output::new(announcement);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(keep_lines(stdout, output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(keep_lines(stderr, output.clone()));
        }
        Ok(Self { child, pid, output })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn last_lines(&self) -> Vec<String> {
        self.output.last_lines()
    }

    /// What it printed, as it goes on printing.
    pub(crate) fn output(&self) -> Output {
        self.output.clone()
    }

    /// Returns when the program has ended, saying how. What it started
    /// and left behind in its group is ended with it.
    pub(crate) async fn exited(&mut self) -> String {
        let status = match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(err) => format!("cannot be waited for: {err}"),
        };
        self.kill_leftovers();
        status
    }

    /// SIGKILL to the group of a leader already reaped. While members of the
    /// group remain, its id cannot go to a new process; once none remain,
    /// it could only name another group if the pid were handed out again
    /// and made a group leader between the reap just done and this call.
    fn kill_leftovers(&self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// End it: SIGTERM to its group, then SIGKILL after [`STOP_GRACE`];
    /// what is left of its group goes too.
    pub(crate) async fn stop(mut self) {
        self.signal_group(Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            self.signal_group(Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        self.kill_leftovers();
    }

    fn signal_group(&mut self, signal: Signal) {
        // Only while the leader is not yet reaped: its pid, which names the
        // group, cannot have gone to another process then.
        if matches!(self.child.try_wait(), Ok(None))
            && let Ok(pid) = i32::try_from(self.pid)
        {
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }
}

impl Drop for TunnelChild {
    fn drop(&mut self) {
        // `kill_on_drop` ends the program itself; this ends what it started.
        self.signal_group(Signal::SIGKILL);
    }
}

/// Read `stream` to its end, keeping its last lines, each cut to
/// [`MAX_LINE`] bytes.
async fn keep_lines(mut stream: impl AsyncRead + Unpin, lines: Output) {
    let mut chunk = [0u8; 4096];
    let mut line = Vec::with_capacity(MAX_LINE);
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for &byte in &chunk[..read] {
            if byte == b'\n' {
                lines.push(&line);
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(byte);
            }
        }
    }
    lines.push(&line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // Gone, or a zombie nobody waits for yet.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    fn sh(script: &str) -> TunnelChild {
        TunnelChild::spawn(Path::new("/bin/sh"), &["-c".into(), script.into()], |_| {
            None
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_last_url_it_announces_is_kept() {
        let announcement: Announcement = |line| line.strip_prefix("url ").map(str::to_owned);
        let mut child = TunnelChild::spawn(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo url a; echo other; echo url b >&2; echo more".into(),
            ],
            announcement,
        )
        .unwrap();
        let output = child.output();
        child.exited().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(output.announced().as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn its_output_is_kept_last_lines_first_cut_and_bounded() {
        let mut child = sh(
            "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done; \
             head -c 5000 /dev/zero | tr '\\0' x >&2; echo >&2; echo done >&2",
        );
        let status = child.exited().await;
        assert!(status.contains('0'), "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lines = child.last_lines();
        assert_eq!(lines.len(), KEPT_LINES);
        assert!(lines.iter().all(|line| line.len() <= MAX_LINE));
        assert!(lines.contains(&"done".to_owned()), "{lines:?}");
        assert!(!lines.contains(&"line 0".to_owned()), "{lines:?}");
    }

    #[tokio::test]
    async fn stop_ends_the_program_and_what_it_started() {
        // A program that ignores SIGTERM, and a grandchild of it.
        let child = sh("trap '' TERM; sleep 60 & echo $!; wait");
        let pid = child.pid();
        let grandchild = loop {
            if let Some(line) = child.last_lines().first() {
                break line.parse::<u32>().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(alive(pid) && alive(grandchild));
        child.stop().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!alive(pid), "the program outlived stop");
        assert!(!alive(grandchild), "its child outlived stop");
    }

    #[tokio::test]
    async fn a_dropped_child_is_killed_with_its_group() {
        let child = sh("sleep 60 & echo $!; wait");
        let pid = child.pid();
        let grandchild = loop {
            if let Some(line) = child.last_lines().first() {
                break line.parse::<u32>().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // What a panic that unwinds through the supervisor does.
        drop(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (alive(pid) || alive(grandchild)) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(pid) && !alive(grandchild));
    }

    /// A program whose first process ends, leaving one it started behind
    /// (a wrapper script): that one ends too.
    #[tokio::test]
    async fn what_an_ended_program_left_behind_ends_with_it() {
        let mut child = sh("sleep 60 & echo $!; exit 3");
        let status = child.exited().await;
        assert!(status.contains('3'), "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let left: u32 = child.last_lines()[0].parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(left) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(left), "the program's child outlived it");
    }

    #[tokio::test]
    async fn it_runs_in_a_process_group_of_its_own() {
        let mut child = sh("cut -d' ' -f5 /proc/$$/stat");
        let pid = child.pid();
        child.exited().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let group: u32 = child.last_lines()[0].trim().parse().unwrap();
        assert_eq!(group, pid);
    }
}
