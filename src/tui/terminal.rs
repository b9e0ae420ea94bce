//! The terminal lent to the dashboard and always given back: raw mode and
//! the alternate screen under a Drop guard, a panic hook that restores
//! them for a panic of the dashboard's thread and only logs one of a
//! listener task's, and the hand-over to `e`'s editor and back.

use std::fs::OpenOptions;
use std::io::{self, Stdout, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use crate::display::escape_line;

/// Whether the terminal is in raw mode on the alternate screen; restoring
/// swaps it off, so the hook and the guard restore once between them.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Panics of other threads while the dashboard was up.
pub(crate) static OTHER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// The dashboard's terminal: ratatui on crossterm, drawing to stdout.
pub(crate) type Term = Terminal<CrosstermBackend<Stdout>>;

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Raw mode and the alternate screen while alive; the terminal as it was
/// once dropped, or once the dashboard's thread panics.
pub(crate) struct TerminalGuard {
    pub(crate) terminal: Term,
    /// The panic hook that was in place before, put back on drop.
    previous_hook: Arc<PanicHook>,
}

impl TerminalGuard {
    pub(crate) fn enter(log_path: PathBuf) -> io::Result<Self> {
        let previous_hook: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let hook = Arc::clone(&previous_hook);
        let dashboard_thread = std::thread::current().id();
        std::panic::set_hook(Box::new(move |info| {
            if !ACTIVE.load(Ordering::SeqCst) || std::thread::current().id() == dashboard_thread {
                restore();
                hook(info);
            } else {
                // A listener task: tokio contains the panic and listening
                // goes on, so the screen stays and the panic is logged.
                OTHER_PANICS.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut file) = OpenOptions::new().append(true).open(&log_path) {
                    let _ = writeln!(file, "panic: {}", escape_line(&info.to_string()));
                }
            }
        }));
        // From here on, an error restores what was done so far.
        let guard_or_restore = || -> io::Result<Term> {
            enable_raw_mode()?;
            ACTIVE.store(true, Ordering::SeqCst);
            execute!(io::stdout(), EnterAlternateScreen)?;
            let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
            terminal.hide_cursor()?;
            terminal.clear()?;
            Ok(terminal)
        };
        match guard_or_restore() {
            Ok(terminal) => Ok(Self {
                terminal,
                previous_hook,
            }),
            Err(err) => {
                restore();
                put_back_hook(&previous_hook);
                Err(err)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        put_back_hook(&self.previous_hook);
    }
}

fn put_back_hook(previous: &Arc<PanicHook>) {
    let previous = Arc::clone(previous);
    // Called only where no panic is in progress, as `set_hook` requires.
    if !std::thread::panicking() {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// Give the terminal to another program (`e`'s editor): as on quit, so a
/// panic meanwhile leaves it as it is; [`resume`] takes it back.
pub(crate) fn suspend() {
    restore();
}

/// Take the terminal back after [`suspend`], and draw the next frame
/// whole. An error leaves the rest to the guard's restore. Not
/// `Terminal::clear`, which asks the terminal where its cursor is and
/// waits for the answer: both buffers emptied instead, so the next frame
/// is drawn cell by cell on the cleared screen.
pub(crate) fn resume(terminal: &mut Term) -> io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        ratatui::crossterm::terminal::Clear(ratatui::crossterm::terminal::ClearType::All)
    )?;
    terminal.hide_cursor()?;
    terminal.swap_buffers();
    terminal.swap_buffers();
    Ok(())
}

/// Leave the alternate screen, show the cursor, end raw mode; once.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(
            io::stdout(),
            LeaveAlternateScreen,
            ratatui::crossterm::cursor::Show
        );
        let _ = disable_raw_mode();
    }
}
