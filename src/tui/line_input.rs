//! A one-line text field with a cursor: the filter on the status line and
//! the picker's rules field. Keys in, text and cursor out; drawing it is
//! the view's.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A one-line text field with a cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LineInput {
    text: String,
    /// In characters, `0..=text.chars().count()`.
    cursor: usize,
    /// The whole text is selected: typing replaces it, Backspace erases it.
    /// Set when a prefilled field gets the focus, so a new rule can be
    /// typed straight away and the old one kept by moving the cursor.
    all_selected: bool,
}

impl LineInput {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            cursor: text.chars().count(),
            all_selected: false,
        }
    }

    pub(crate) fn all_selected(&self) -> bool {
        self.all_selected && !self.text.is_empty()
    }

    pub(crate) fn select_all(&mut self) {
        self.all_selected = true;
        self.cursor = self.text.chars().count();
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Edit by `key`; false when the key is not an editing key.
    pub(crate) fn edit(&mut self, key: KeyEvent) -> bool {
        if std::mem::take(&mut self.all_selected)
            && matches!(
                key.code,
                KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete
            )
        {
            self.text.clear();
            self.cursor = 0;
            if !matches!(key.code, KeyCode::Char(_)) {
                return true;
            }
        }
        let len = self.text.chars().count();
        match key.code {
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.text.clear();
                self.cursor = 0;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.text.remove(at);
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => return false,
        }
        true
    }
}
