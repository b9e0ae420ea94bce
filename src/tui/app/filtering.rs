//! The `/` filter's keys: what is typed is parsed as it changes, a term
//! that does not parse is shown and the last good filter kept, and the
//! list is rebuilt from the history whenever the filter changes.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::{App, Mode};
use crate::tui::filter::Filter;
use crate::tui::line_input::LineInput;

/// Typing in the filter, and what changes with it.
impl App {
    pub(crate) fn filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {
                self.clear_filter();
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => {
                if self.filter_error.is_none() {
                    self.mode = Mode::Normal;
                }
            }
            _ => {
                if self.filter_input.edit(key) {
                    match Filter::parse(self.filter_input.text()) {
                        Ok(filter) => {
                            self.filter_error = None;
                            if filter != self.filter {
                                self.filter = filter;
                                self.refilter();
                            }
                        }
                        Err(error) => self.filter_error = Some(error),
                    }
                }
            }
        }
    }

    pub(crate) fn clear_filter(&mut self) {
        self.filter_input = LineInput::default();
        self.filter_error = None;
        if self.filter_active() {
            self.filter = Filter::default();
            self.refilter();
        }
    }

    /// Rebuild the list after the filter changed, keeping the selected
    /// delivery (or the nearest older one) unless following the newest.
    pub(crate) fn refilter(&mut self) {
        let keep = self.anchor;
        self.list = self
            .history
            .iter()
            .filter(|d| self.filter.matches(d))
            .cloned()
            .collect();
        self.selected = None;
        self.detail_scroll = 0;
        if self.list.is_empty() {
            self.top = 0;
            return;
        }
        let index = match keep {
            Some(id) if self.paused => self.list.partition_point(|d| d.id <= id).saturating_sub(1),
            _ => self.list.len() - 1,
        };
        self.select(index);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{app_with, press};
    use super::*;

    #[test]
    fn a_bad_filter_term_shows_an_error_and_keeps_the_last_good_filter() {
        let mut app = app_with(6);
        press(&mut app, "/event:tool.* verdict:nope");
        assert_eq!(app.mode, Mode::Filter);
        assert!(app.filter_error().unwrap().contains("\"nope\""));
        press(&mut app, "<Enter>");
        assert_eq!(app.mode, Mode::Filter, "Enter does not accept an error");
        press(&mut app, "<BS><BS><BS><BS>valid<Enter>");
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.filter_error(), None);
        assert_eq!(app.list_len(), 2);
    }
}
