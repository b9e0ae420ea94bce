//! The dashboard's `e`: the selected delivery's body, pretty-printed, in
//! the user's editor (`$VISUAL`, else `$EDITOR`, else `vi`) in a private
//! temp file; what comes back, when it is JSON and changed, goes re-signed
//! as a changed copy to where `r` sends (the `Replayer`), and the status
//! line says what changed.
//!
//! The terminal is the editor's while it runs: the event stream is
//! dropped so that nothing here reads its keys, raw mode and the
//! alternate screen are left, and both are taken back, with a full redraw,
//! whatever the editor did. Only this loop waits on the editor, as on any
//! other event: the listener's tasks go on, and the deliveries that arrive
//! meanwhile are read back from the store after.
//!
//! The command is the user's own environment's, never a received byte's:
//! one word is run as a program; more words go through `sh -c` (as git
//! does), the file passed as `"$@"`, never spliced into the text.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use ratatui::crossterm::event::EventStream;
use serde_json::Value;
use tokio::sync::mpsc;

use super::app::{App, StatusKind};
use super::{Loop, ReplayMode, Term};
use crate::delivery::Delivery;
use crate::resend::{Edited, diff};

/// Whether the editor has the terminal: a Ctrl-C typed in it reaches this
/// process too (the terminal signals its whole foreground group), and is
/// the editor's, not a request to stop listening.
static EDITING: AtomicBool = AtomicBool::new(false);

/// See [`EDITING`]; read by `listen`'s signal handling.
pub(crate) fn editor_has_terminal() -> bool {
    EDITING.load(Ordering::SeqCst)
}

/// What the user's editing came to.
#[derive(Debug, PartialEq, Eq)]
enum Judged {
    /// Send this body; `changes` says how it differs, in a line.
    Send { body: Vec<u8>, changes: String },
    /// Nothing is sent, and the status line says why.
    Nothing { kind: StatusKind, text: String },
}

impl Loop {
    /// `e` on `delivery`: edit, then send the copy or say why not. An
    /// error is the terminal's alone (it could not be taken back), and
    /// ends the dashboard.
    pub(super) async fn edit(
        &mut self,
        terminal: &mut Term,
        app: &mut App,
        delivery: Arc<Delivery>,
        term_events: &mut EventStream,
        replay_tx: &mpsc::UnboundedSender<(u64, ReplayMode, Result<String, String>)>,
    ) -> anyhow::Result<()> {
        let shown = match pretty_body(&delivery) {
            Ok(shown) => shown,
            Err(why) => {
                app.set_status(StatusKind::Error, why);
                return Ok(());
            }
        };
        let file = match TempFile::create(delivery.id, shown.as_bytes()) {
            Ok(file) => file,
            Err(err) => {
                let message = format!("cannot write the file to edit: {err}; nothing sent");
                self.log.write(&message);
                app.set_status(StatusKind::Error, message);
                return Ok(());
            }
        };
        // A new stream reads nothing until it is polled, after the editor:
        // the old one, dropped, stops reading the editor's keys. Its drop
        // wakes crossterm's reader, and a wake left pending would cut
        // short the next read that waits on the terminal: taken here.
        *term_events = EventStream::new();
        let _ = ratatui::crossterm::event::poll(std::time::Duration::ZERO);
        super::terminal::suspend();
        EDITING.store(true, Ordering::SeqCst);
        let ran = run_editor(&editor_command(), &file.path).await;
        EDITING.store(false, Ordering::SeqCst);
        super::terminal::resume(terminal)
            .context("cannot take the terminal back from the editor")?;
        let edited = std::fs::read(&file.path);
        drop(file);
        match judge(delivery.id, &delivery.body, &shown, ran, edited) {
            Judged::Send { body, changes } => {
                app.set_status(
                    StatusKind::Info,
                    format!("sending the edited copy of #{} (re-signed)…", delivery.id),
                );
                let edited = Edited {
                    body: Some(body),
                    ..Edited::default()
                };
                self.replay(
                    delivery,
                    ReplayMode::Resigned,
                    Some((edited, changes)),
                    replay_tx.clone(),
                );
            }
            Judged::Nothing { kind, text } => app.set_status(kind, text),
        }
        Ok(())
    }
}

/// The body as the editor shows it: pretty JSON and a last newline. Only
/// a whole JSON body is edited here (`replay --header` changes headers).
fn pretty_body(delivery: &Delivery) -> Result<String, String> {
    let id = delivery.id;
    if delivery.body_truncated {
        return Err(format!(
            "#{id}'s body was cut short at --max-body: only a whole body can be edited"
        ));
    }
    let value: Value = serde_json::from_slice(&delivery.body).map_err(|_| {
        format!(
            "#{id}'s body is not JSON: only JSON is edited here (`danube-hooks replay {id} \
             --header …` changes headers)"
        )
    })?;
    let mut shown = serde_json::to_string_pretty(&value).expect("a Value serializes");
    shown.push('\n');
    Ok(shown)
}

/// What to do with what the editor left. `ran` is the editor's outcome
/// (an error says what went wrong), `edited` the file read back.
fn judge(
    id: u64,
    original: &[u8],
    shown: &str,
    ran: Result<(), String>,
    edited: io::Result<Vec<u8>>,
) -> Judged {
    let nothing = |kind, text: String| Judged::Nothing { kind, text };
    if let Err(why) = ran {
        // First: the editor's name may be a long path.
        return nothing(StatusKind::Error, format!("nothing sent: {why}"));
    }
    let edited = match edited {
        Ok(edited) => edited,
        Err(err) => {
            return nothing(
                StatusKind::Error,
                format!("cannot read the edited file back: {err}; nothing sent"),
            );
        }
    };
    if edited == shown.as_bytes() {
        return nothing(StatusKind::Info, format!("#{id} not changed: nothing sent"));
    }
    let value: Value = match serde_json::from_slice(&edited) {
        Ok(value) => value,
        Err(err) => {
            let cause = err.to_string();
            let cause = cause.split(" at line ").next().unwrap_or_default();
            return nothing(
                StatusKind::Error,
                format!(
                    "the edit of #{id} is not JSON: line {}, column {}: {cause}; nothing sent",
                    err.line(),
                    err.column()
                ),
            );
        }
    };
    let body = serde_json::to_vec(&value).expect("a Value serializes");
    let lines = diff::lines(&diff::bodies(original, &body), &diff::HeaderDiff::default());
    if lines.is_empty() {
        return nothing(
            StatusKind::Info,
            format!("#{id} not changed (the same JSON): nothing sent"),
        );
    }
    Judged::Send {
        body,
        changes: diff::summary(&lines, 2),
    }
}

/// The editor: `$VISUAL`, else `$EDITOR`, else `vi`; the words to run,
/// to which the file's path is added.
fn editor_command() -> Vec<OsString> {
    command_of(
        std::env::var_os("VISUAL").as_deref(),
        std::env::var_os("EDITOR").as_deref(),
    )
}

fn command_of(visual: Option<&OsStr>, editor: Option<&OsStr>) -> Vec<OsString> {
    let chosen = [visual, editor]
        .into_iter()
        .flatten()
        .find(|value| !value.to_string_lossy().trim().is_empty())
        .unwrap_or(OsStr::new("vi"));
    match chosen.to_str() {
        Some(text) if text.trim().contains(char::is_whitespace) => vec![
            "sh".into(),
            "-c".into(),
            format!("{} \"$@\"", text.trim()).into(),
            // `$0` of the script.
            "editor".into(),
        ],
        _ => vec![chosen.to_os_string()],
    }
}

/// Run `command` on `path` with the terminal, to its end.
async fn run_editor(command: &[OsString], path: &Path) -> Result<(), String> {
    let shown = command.get(2).unwrap_or(&command[0]).to_string_lossy();
    let shown = shown.trim_end_matches(" \"$@\"");
    let status = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .arg(path)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|err| {
            format!("cannot start the editor {shown:?}: {err} (set $VISUAL or $EDITOR)")
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the editor {shown:?} ended with {status}"))
    }
}

/// The file the editor is given: new, this user's only (0600), in the
/// temp dir under a name no one can guess, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create(id: u64, text: &[u8]) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = std::env::temp_dir().join(format!(
            "danube-hooks-edit-{id}-{}.json",
            crate::random::random_alnum(12)
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // Made first, so that a failed write removes the file.
        let made = Self { path };
        file.write_all(text)?;
        Ok(made)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsString {
        text.into()
    }

    #[test]
    fn the_editor_is_visual_then_editor_then_vi_and_words_go_through_sh() {
        assert_eq!(command_of(None, None), [os("vi")]);
        assert_eq!(command_of(Some(OsStr::new(" ")), None), [os("vi")]);
        assert_eq!(
            command_of(Some(OsStr::new("nano")), Some(OsStr::new("vim"))),
            [os("nano")]
        );
        assert_eq!(command_of(None, Some(OsStr::new("vim"))), [os("vim")]);
        assert_eq!(
            command_of(None, Some(OsStr::new("code --wait"))),
            [os("sh"), os("-c"), os("code --wait \"$@\""), os("editor")]
        );
    }

    #[test]
    fn what_comes_back_is_sent_only_when_it_is_changed_json() {
        let original = br#"{"event":"x","data":{"status":"ok"}}"#;
        let shown = "{\n  \"event\": \"x\",\n  \"data\": {\n    \"status\": \"ok\"\n  }\n}\n";
        let judged = |ran: Result<(), String>, edited: &str| {
            judge(7, original, shown, ran, Ok(edited.as_bytes().to_vec()))
        };
        assert_eq!(
            judged(Ok(()), &shown.replace("\"ok\"", "\"failed\"")),
            Judged::Send {
                body: br#"{"event":"x","data":{"status":"failed"}}"#.to_vec(),
                changes: r#"~ data.status: "ok" → "failed""#.into(),
            }
        );
        let Judged::Nothing { kind, text } = judged(Ok(()), "{\n  \"event\": \"x\",\n  oops\n}")
        else {
            panic!("sent what is not JSON")
        };
        assert_eq!(kind, StatusKind::Error);
        assert!(
            text.starts_with("the edit of #7 is not JSON: line 3, column 3: "),
            "{text}"
        );
        assert!(text.ends_with("nothing sent"), "{text}");
        assert!(matches!(
            judged(Ok(()), shown),
            Judged::Nothing { kind: StatusKind::Info, text } if text.contains("not changed")
        ));
        assert!(matches!(
            judged(Ok(()), &shown.replace("  ", " ")),
            Judged::Nothing { kind: StatusKind::Info, text } if text.contains("the same JSON")
        ));
        assert!(matches!(
            judged(Err("the editor \"vi\" ended with exit status: 1".into()), "{}"),
            Judged::Nothing { kind: StatusKind::Error, text } if text == "nothing sent: the editor \"vi\" ended with exit status: 1"
        ));
    }

    #[test]
    fn only_a_whole_json_body_is_edited_and_its_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mut delivery = crate::test_support::sample(3, br#"{"a":[1]}"#);
        let shown = pretty_body(&delivery).unwrap();
        assert_eq!(shown, "{\n  \"a\": [\n    1\n  ]\n}\n");
        let file = TempFile::create(3, shown.as_bytes()).unwrap();
        let mode = std::fs::metadata(&file.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = file.path.clone();
        drop(file);
        assert!(!path.exists());
        delivery.body = b"plain".to_vec();
        assert!(pretty_body(&delivery).unwrap_err().contains("not JSON"));
        delivery.body = b"{}".to_vec();
        delivery.body_truncated = true;
        assert!(pretty_body(&delivery).unwrap_err().contains("cut short"));
    }
}
