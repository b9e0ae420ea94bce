//! Drawing the dashboard: `impl Widget for &App`, and a file per pane
//! (header, list, detail and its tabs, status line, footer, the picker and
//! help boxes). Reads the state and never changes it.
//!
//! Every piece of text that came with a delivery (path, headers, body,
//! event, the receiver's answer) and every path or message goes through
//! [`crate::display`] before it reaches a cell, so no byte of it can drive
//! the terminal. Colour is an addition, never the only signal: badges are
//! words (`VALID`, `MISMATCH`, `500`, `RESET`), the selected tab is in
//! brackets, the selected row is reversed without colour, and with
//! `NO_COLOR` no colour is used at all.
//!
//! The detail's rows are built once a frame ([`DetailRows`]): the event
//! loop lays the frame out with them (the scroll is fitted to how many
//! there are) and draws them as they were built.

mod cells;
mod columns;
mod detail;
mod footer;
mod header;
mod help;
mod in_flight;
mod list;
mod picker;
mod status;
mod text;
mod theme;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Widget;

use super::app::{App, Mode};
pub(crate) use detail::DetailRows;
use theme::Theme;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
struct Areas {
    header: Rect,
    list: Rect,
    detail: Rect,
    status: Rect,
    footer: Rect,
}

fn areas(app: &App, area: Rect) -> Areas {
    let header_rows = header::HEADER_ROWS + header::header_rows(app).count() as u16;
    let [header, body, status, footer] = Layout::vertical([
        Constraint::Length(header_rows),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(40), Constraint::Fill(1)]).areas(body);
    Areas {
        header,
        list,
        detail,
        status,
        footer,
    }
}

/// Delivery rows that fit in the list: its height less the title and the
/// column names.
pub(crate) fn list_rows(app: &App, area: Rect) -> usize {
    usize::from(areas(app, area).list.height.saturating_sub(2))
}

/// One frame of the dashboard: the state, and the detail's rows built for
/// it by the event loop when it laid the frame out.
pub(crate) struct Screen<'a> {
    pub(crate) app: &'a App,
    pub(crate) detail: &'a DetailRows,
}

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = Theme {
            color: app.config.color,
        };
        let areas = areas(app, area);
        // Rows built for another screen (the terminal was resized between
        // the layout and the draw) are built again for this one.
        let rebuilt;
        let detail = if self.detail.fits(areas.detail) {
            self.detail
        } else {
            rebuilt = DetailRows::build(app, area);
            &rebuilt
        };
        header::render_header(app, &theme, areas.header, buf);
        list::render_list(app, &theme, areas.list, buf);
        detail::render_detail(app, &theme, areas.detail, detail, buf);
        status::render_status(app, &theme, areas.status, buf);
        footer::render_footer(app, &theme, areas.footer, buf);
        match &app.mode {
            Mode::Picker(picker) => picker::render_picker(app, picker, &theme, area, buf),
            Mode::Help => help::render_help(app, &theme, area, buf),
            Mode::Normal | Mode::Filter => {}
        }
    }
}

/// A frame on its own, its detail rows built as it is drawn: for a draw
/// outside the event loop's layout (the last frame, the benches).
impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let detail = DetailRows::build(self, area);
        Screen {
            app: self,
            detail: &detail,
        }
        .render(area, buf);
    }
}

/// A box of at most `width` × `height`, centred in `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
