//! The policy picker (`p`): the presets, a field for any rules, and what
//! Enter makes of them. Keys in; the policy handle it applies to is the
//! listener's, so the next deliveries get the new answer.

use std::fmt::Write as _;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::line_input::LineInput;
use crate::policy::{Pattern, Policy, PolicyHandle, Rule};

/// One of the picker's common answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Preset {
    /// A rule as `--respond` takes it.
    pub(crate) rule: &'static str,
    pub(crate) what: &'static str,
}

/// The common answers; `forward` is offered only when forwarding is set.
pub(crate) const PRESETS: [Preset; 10] = [
    Preset {
        rule: "200",
        what: "OK: the delivery succeeds",
    },
    Preset {
        rule: "500",
        what: "server error: Danube retries",
    },
    Preset {
        rule: "503",
        what: "unavailable: Danube retries",
    },
    Preset {
        rule: "429",
        what: "too many requests",
    },
    Preset {
        rule: "timeout",
        what: "no answer, held past Danube's 10 s deadline",
    },
    Preset {
        rule: "reset",
        what: "abort the connection (TCP RST)",
    },
    Preset {
        rule: "close",
        what: "close the connection without an answer",
    },
    Preset {
        rule: "garbage",
        what: "write bytes that are not HTTP",
    },
    Preset {
        rule: "12s+200",
        what: "200 after 12 s: a success that comes too late",
    },
    Preset {
        rule: "forward",
        what: "pass each delivery to your receiver",
    },
];

/// The policy picker: the presets, then a field for any rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picker {
    pub(crate) presets: Vec<Preset>,
    /// `0..presets.len()` a preset; `presets.len()` the sequence field.
    pub(crate) selected: usize,
    /// Rules as `--respond` takes them, several separated by `;`.
    pub(crate) field: LineInput,
    pub(crate) error: Option<FieldError>,
    /// The rules in force when the picker opened (`--respond`'s, or an
    /// earlier pick): a preset replaces them all, for every event.
    pub(crate) replaces: Vec<Rule>,
}

impl Picker {
    pub(crate) fn on_field(&self) -> bool {
        self.selected == self.presets.len()
    }

    /// The rules in force that name events (`workflow.*=timeout`): the
    /// ones a developer may not expect a preset to drop.
    pub(crate) fn event_rules(&self) -> Vec<&Rule> {
        self.replaces
            .iter()
            .filter(|rule| matches!(rule.pattern, Some(Pattern::Exact(_) | Pattern::Prefix(_))))
            .collect()
    }
}

/// Why the sequence field does not parse, placed in the field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// 1-based, in characters of the whole field.
    pub(crate) column: usize,
    /// `expected …; found "…"` (unescaped).
    pub(crate) message: String,
}

/// What a key did to the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Picked {
    /// Still open.
    Open,
    /// Closed with nothing applied.
    Cancelled,
    /// Closed with a new policy in force; the sentence for the status line.
    Applied(String),
}

impl Picker {
    /// The picker on the policy in force: its one rule's preset selected,
    /// or the field, prefilled and selected whole, when no preset is it.
    pub(crate) fn open(policy: &Policy) -> Picker {
        let presets: Vec<Preset> = PRESETS
            .iter()
            .filter(|p| p.rule != "forward" || policy.forwarding())
            .copied()
            .collect();
        let rules: Vec<String> = policy.rules().iter().map(ToString::to_string).collect();
        let current = rules.join("; ");
        let selected = match rules.as_slice() {
            [] => 0,
            [one] => presets
                .iter()
                .position(|p| p.rule == one)
                .unwrap_or(presets.len()),
            _ => presets.len(),
        };
        let mut field = LineInput::new(&current);
        if selected == presets.len() {
            field.select_all();
        }
        Picker {
            presets,
            selected,
            field,
            error: None,
            replaces: policy.rules().to_vec(),
        }
    }

    /// Handle one key; Enter applies the choice to `policy`, or shows in
    /// the field why it does not parse.
    pub(crate) fn handle_key(&mut self, key: KeyEvent, policy: &PolicyHandle) -> Picked {
        let last = self.presets.len();
        let on_field = self.on_field();
        match key.code {
            KeyCode::Esc => return Picked::Cancelled,
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => self.selected = (self.selected + 1).min(last),
            KeyCode::Char('k') if !on_field => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('j') if !on_field => self.selected = (self.selected + 1).min(last),
            KeyCode::Tab => self.selected = last,
            KeyCode::BackTab => self.selected = 0,
            KeyCode::Enter => {
                if let Some(status) = self.apply(policy) {
                    return Picked::Applied(status);
                }
            }
            _ if on_field && self.field.edit(key) => self.error = None,
            _ => {}
        }
        if !on_field && self.on_field() {
            self.field.select_all();
        }
        Picked::Open
    }

    /// Enter: the preset or the field's rules in force, and the sentence
    /// that says so; `None` when the rules do not parse, the field then
    /// holding them and the error.
    fn apply(&mut self, policy: &PolicyHandle) -> Option<String> {
        let on_field = self.on_field();
        let text = if on_field {
            self.field.text().to_string()
        } else {
            self.presets[self.selected].rule.to_string()
        };
        // A typed field shows what it replaces; a preset says so once
        // applied, as the rules it replaced are off screen.
        let replaced: Vec<String> = if on_field {
            Vec::new()
        } else {
            self.replaces.iter().map(ToString::to_string).collect()
        };
        let forwarding = policy.current().forwarding();
        match parse_rules(&text, forwarding) {
            Ok(new) => {
                let mut status = format!("policy for the next deliveries: {}", new.describe());
                if !replaced.is_empty() && replaced != [text.as_str()] {
                    let _ = write!(
                        status,
                        " for every event; it replaced {} rule{}: {}",
                        replaced.len(),
                        if replaced.len() == 1 { "" } else { "s" },
                        replaced.join("; ")
                    );
                }
                policy.replace(new);
                Some(status)
            }
            Err(error) => {
                self.selected = self.presets.len();
                self.field = LineInput::new(&text);
                self.error = Some(error);
                None
            }
        }
    }
}

/// The picker's field: rules separated by `;`, each as `--respond` takes
/// it; empty means the default. An error's column counts in the whole field.
pub(crate) fn parse_rules(text: &str, forwarding: bool) -> Result<Policy, FieldError> {
    let mut rules = Vec::new();
    let mut chars_before = 0;
    for piece in text.split(';') {
        if !piece.trim().is_empty() {
            if let Err(error) = Policy::parse(&[piece.to_string()], forwarding) {
                let found = if error.found.is_empty() {
                    "nothing".to_string()
                } else {
                    format!("\"{}\"", error.found)
                };
                return Err(FieldError {
                    column: chars_before + error.column,
                    message: format!("expected {}; found {found}", error.expected),
                });
            }
            rules.push(piece.to_string());
        }
        chars_before += piece.chars().count() + 1;
    }
    Policy::parse(&rules, forwarding).map_err(|error| FieldError {
        column: 1,
        message: error.to_string(),
    })
}
