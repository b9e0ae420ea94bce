//! Headless output: one human line, or one JSON record, per delivery on
//! stdout; store warnings on stderr.
//!
//! The printer follows the store's broadcast and never holds the listener
//! up. When it falls behind (a slow pipe), it reads what it missed back from
//! the store file, so `--json | tool` still sees every record.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Local;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::delivery::{Delivery, format_duration_ms, format_ms};
use crate::display::{escape_line, truncate};
use crate::store::{self, StoreEvent};

/// What each delivery prints as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// One delivery as `format` prints it (no trailing newline).
pub fn render(delivery: &Delivery, format: Format) -> String {
    match format {
        Format::Json => delivery.to_json_line(),
        Format::Human => human_line(delivery),
    }
}

/// Time, id, event, verdict, attempt, answer, forward result, duration;
/// untrusted text escaped.
pub fn human_line(delivery: &Delivery) -> String {
    let time = delivery
        .received_at
        .with_timezone(&Local)
        .format("%H:%M:%S%.3f");
    let what = if delivery.method == "POST" {
        delivery
            .event
            .as_deref()
            .unwrap_or("(no event)")
            .to_string()
    } else {
        format!("{} {}", delivery.method, delivery.path)
    };
    let what = truncate(&escape_line(&what), 34).into_owned();
    let mut line = format!(
        "{time}  #{:<5} {what:<34} {:<9} attempt {:<2} → {}",
        delivery.id, delivery.signature.verdict, delivery.attempt, delivery.response,
    );
    if let Some(forward) = &delivery.forward {
        let _ = match (&forward.status, &forward.error) {
            (Some(status), _) => {
                write!(line, "  fwd {status} in {}", format_ms(forward.duration_ms))
            }
            (None, Some(error)) => {
                write!(line, "  fwd failed: {}", truncate(&escape_line(error), 60))
            }
            (None, None) => write!(line, "  fwd -"),
        };
    }
    if let Some(first) = delivery.replay_of {
        let _ = write!(line, "  replay of #{first}");
    }
    let _ = write!(line, "  {}", format_duration_ms(delivery.duration_ms));
    line
}

/// Print every delivery from `events` until `done` is cancelled, then
/// drain what is left. Returns early if stdout goes away.
pub async fn print(
    mut events: broadcast::Receiver<StoreEvent>,
    store_path: Option<PathBuf>,
    format: Format,
    done: CancellationToken,
) {
    let mut last_id = 0;
    // Not a lock: a `StdoutLock` can't live across `.await` in a task.
    let mut out = std::io::stdout();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = done.cancelled() => break,
        };
        let keep_going = match event {
            Ok(event) => emit(&mut out, &event, format, &mut last_id),
            Err(RecvError::Lagged(missed)) => {
                catch_up(&mut out, store_path.as_ref(), format, &mut last_id, missed)
            }
            Err(RecvError::Closed) => return,
        };
        if !keep_going {
            return;
        }
    }
    loop {
        match events.try_recv() {
            Ok(event) => {
                if !emit(&mut out, &event, format, &mut last_id) {
                    return;
                }
            }
            Err(TryRecvError::Lagged(missed)) => {
                if !catch_up(&mut out, store_path.as_ref(), format, &mut last_id, missed) {
                    return;
                }
            }
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

/// Print one event; false when stdout is gone.
fn emit(out: &mut impl Write, event: &StoreEvent, format: Format, last_id: &mut u64) -> bool {
    match event {
        StoreEvent::Delivery(delivery) => {
            if delivery.id <= *last_id {
                return true; // already printed during a catch-up
            }
            *last_id = delivery.id;
            writeln!(out, "{}", render(delivery, format))
                .and_then(|()| out.flush())
                .is_ok()
        }
        StoreEvent::Warning(message) => {
            eprintln!("danube-hooks: warning: {}", escape_line(message));
            true
        }
    }
}

/// After a lag, print what was missed from the store file.
fn catch_up(
    out: &mut impl Write,
    store_path: Option<&PathBuf>,
    format: Format,
    last_id: &mut u64,
    missed: u64,
) -> bool {
    let Some(path) = store_path else {
        eprintln!(
            "danube-hooks: warning: output fell behind; {missed} deliveries not printed (--no-store keeps no log to catch up from)"
        );
        return true;
    };
    match store::read_after(path, *last_id, usize::MAX) {
        Ok(records) => records.into_iter().all(|record| {
            emit(
                out,
                &StoreEvent::Delivery(Arc::new(record)),
                format,
                last_id,
            )
        }),
        Err(err) => {
            eprintln!(
                "danube-hooks: warning: output fell behind and the store could not be read: {err}"
            );
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ForwardRecord;
    use crate::delivery::tests::sample;

    #[test]
    fn human_line_has_every_column_and_escapes() {
        let mut delivery = sample(12, br#"{"event":"tool.execution.completed"}"#);
        delivery.attempt = 2;
        let line = human_line(&delivery);
        for part in [
            "#12",
            "tool.execution.completed",
            "valid",
            "attempt 2",
            "→ 200",
            "400µs",
        ] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
        delivery.event = Some("evil\x1b]0;pwned\x07\u{202e}".into());
        delivery.forward = Some(ForwardRecord {
            url: "http://127.0.0.1:3000/".into(),
            status: Some(201),
            headers: vec![],
            error: None,
            duration_ms: 12,
            body_preview: None,
        });
        let line = human_line(&delivery);
        assert!(!line.chars().any(crate::display::is_dangerous), "{line:?}");
        assert!(line.contains("\\x1b]0;pwned"), "{line}");
        assert!(line.contains("fwd 201 in 12ms"), "{line}");
    }

    #[test]
    fn other_methods_show_method_and_path() {
        let mut delivery = sample(3, b"");
        delivery.method = "PUT".into();
        assert!(human_line(&delivery).contains("PUT /webhooks/danube?x=1"));
    }
}
