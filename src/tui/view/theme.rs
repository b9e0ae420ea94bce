//! The dashboard's styles: colour only when allowed, and never the only
//! signal (badges are words, the selected row is reversed without colour).

use ratatui::style::{Color, Modifier, Style};

use super::super::app::StatusKind;
use crate::signature::Verdict;

pub(super) struct Theme {
    /// False with `NO_COLOR`: modifiers only.
    pub(super) color: bool,
}

impl Theme {
    pub(super) fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub(super) fn bold(&self, color: Color) -> Style {
        self.fg(color).add_modifier(Modifier::BOLD)
    }

    pub(super) fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub(super) fn label(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub(super) fn verdict(&self, verdict: Verdict) -> Style {
        self.bold(match verdict {
            Verdict::Valid => Color::Green,
            Verdict::Mismatch | Verdict::Malformed => Color::Red,
            Verdict::Stale | Verdict::Missing => Color::Yellow,
            Verdict::Unchecked => Color::Gray,
        })
    }

    pub(super) fn status_code(&self, status: Option<u16>) -> Style {
        self.bold(match status {
            Some(200..=299) => Color::Green,
            Some(300..=399) => Color::Cyan,
            Some(400..=499) => Color::Yellow,
            Some(500..=599) => Color::Red,
            _ => Color::Magenta,
        })
    }

    /// A pane's title bar; the focused one stands out without colour too.
    pub(super) fn title(&self, focused: bool) -> Style {
        let style = if self.color {
            Style::new().fg(Color::White).bg(if focused {
                Color::Blue
            } else {
                Color::DarkGray
            })
        } else {
            Style::new()
        };
        if focused {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }

    pub(super) fn selected_row(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub(super) fn status(&self, kind: StatusKind) -> Style {
        match kind {
            StatusKind::Info => Style::new(),
            StatusKind::Success => self.fg(Color::Green),
            StatusKind::Error => self.bold(Color::Red),
        }
    }

    pub(super) fn json_key(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub(super) fn json_string(&self) -> Style {
        self.fg(Color::Green)
    }

    pub(super) fn json_number(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub(super) fn json_literal(&self) -> Style {
        self.fg(Color::Magenta)
    }
}
