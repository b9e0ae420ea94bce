//! The list's columns: which are shown and how wide, by what the rows on
//! screen hold and how wide the list is.

use ratatui::style::Style;
use ratatui::text::Span;
use unicode_width::UnicodeWidthStr as _;

use super::super::app::App;
use super::super::danube_side::DanubeMark;
use super::cells::{
    answer_label, arrival_label, attempt_label, danube_label, forward_label, listener_label,
    path_label, verdict_label, what_label,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Col {
    Time,
    Id,
    /// Whose delivery, on a shared store (the record's `listener`).
    Listener,
    What,
    Path,
    Verdict,
    Attempt,
    Answer,
    Forward,
    Danube,
    Duration,
}

/// The widest the event column gets before any other column gets room:
/// Danube's longest event type (`agent.spend.limit_approaching`, 29) and a
/// little more.
const EVENT_CAP: usize = 32;
/// The event column is cut down to this before the duration column goes…
const EVENT_KEPT: usize = 20;
/// …and to this before the time column goes.
const EVENT_FLOOR: usize = 12;
/// The path column is shown when it can have this much, or all it needs.
const PATH_MIN: usize = 12;
/// The widest the listener column gets (`user@host` names are long)…
const LISTENER_CAP: usize = 16;
/// …and what it is cut to before the time column goes.
const LISTENER_FLOOR: usize = 8;

/// What the rows on screen need of the columns whose width follows what
/// they hold; at least each column's name.
struct Needs {
    /// No row is on screen: the event column is set for Danube's event
    /// types, and there is no path to show.
    none: bool,
    id: usize,
    /// `None` while no row on screen names its listener.
    listener: Option<usize>,
    what: usize,
    path: usize,
    verdict: usize,
    attempt: usize,
    answer: usize,
    forward: usize,
    danube: usize,
}

impl Needs {
    /// Of the visible deliveries and the first `in_flight` arrivals.
    fn of(app: &App, in_flight: usize) -> Needs {
        let mut needs = Needs {
            none: true,
            id: "ID".len(),
            listener: None,
            what: "EVENT".len(),
            path: "PATH".len(),
            verdict: "VERDICT".len(),
            attempt: "#".len(),
            answer: "ANSWERED".len(),
            forward: "FORWARD".len(),
            danube: "DANUBE".len(),
        };
        let grow = |need: &mut usize, text: &str| *need = (*need).max(text.width());
        for (_, d) in app.visible() {
            needs.none = false;
            grow(&mut needs.id, &format!("#{}", d.id));
            if let Some(listener) = listener_label(d) {
                grow(needs.listener.get_or_insert("LISTENER".len()), &listener);
            }
            grow(&mut needs.what, &what_label(d));
            grow(&mut needs.path, &path_label(&d.path));
            grow(&mut needs.verdict, verdict_label(d.signature.verdict));
            grow(&mut needs.attempt, &attempt_label(d));
            grow(&mut needs.answer, &answer_label(d));
            grow(&mut needs.forward, &forward_label(d));
            if let Some(DanubeMark::Row(row)) = app.danube_mark(d.id) {
                grow(&mut needs.danube, &danube_label(row));
            }
        }
        for arrival in app.in_flight.iter().take(in_flight) {
            needs.none = false;
            grow(&mut needs.what, &arrival_label(arrival));
            grow(&mut needs.path, &path_label(&arrival.path));
            grow(&mut needs.verdict, verdict_label(arrival.verdict));
            grow(&mut needs.attempt, &arrival.attempt.to_string());
        }
        // Short words from a known set, but a status from Danube or an
        // answer's delay may be long: cut rather than crowd the event.
        needs.answer = needs.answer.min(12);
        needs.forward = needs.forward.min(12);
        needs.danube = needs.danube.min(10);
        needs.attempt = needs.attempt.min(4);
        needs.listener = needs.listener.map(|need| need.min(LISTENER_CAP));
        if needs.none {
            let danube = crate::events::EVENT_TYPES.iter().map(|e| e.width()).max();
            needs.what = danube.unwrap_or(needs.what);
        }
        needs
    }
}

/// Columns laid side by side, `gap` spaces apart.
fn columns_width(cols: &[(Col, usize)], gap: usize) -> usize {
    cols.iter()
        .map(|(_, w)| w + gap)
        .sum::<usize>()
        .saturating_sub(gap)
}

/// The list's columns and their widths, drawn `gap` spaces apart.
pub(super) struct Columns {
    pub(super) cols: Vec<(Col, usize)>,
    pub(super) gap: usize,
}

impl Columns {
    pub(super) fn width(&self) -> usize {
        columns_width(&self.cols, self.gap)
    }

    pub(super) fn what_width(&self) -> usize {
        self.cols
            .iter()
            .find(|(col, _)| *col == Col::What)
            .map_or(0, |(_, width)| *width)
    }

    /// A cell's text, already fitted to its column, and the gap after it.
    pub(super) fn cell(&self, text: String, style: Style) -> Span<'static> {
        let mut text = text;
        text.extend(std::iter::repeat_n(' ', self.gap));
        Span::styled(text, style)
    }
}

/// What a list too narrow for all its columns gives up, in turn.
#[derive(Clone, Copy)]
enum GiveUp {
    Milliseconds,
    /// The listener's tail, down to [`LISTENER_FLOOR`].
    Listener,
    /// The event's tail, down to this many columns.
    EventTo(usize),
    Column(Col),
}

const GIVE_UP: [GiveUp; 7] = [
    GiveUp::Milliseconds,
    GiveUp::EventTo(EVENT_KEPT),
    GiveUp::Column(Col::Duration),
    GiveUp::EventTo(EVENT_FLOOR),
    GiveUp::Listener,
    GiveUp::Column(Col::Time),
    GiveUp::EventTo("EVENT".len()),
];

/// The columns of a list `width` wide and their widths, by what the rows
/// on screen hold: the event gets what they need (up to [`EVENT_CAP`]);
/// then the path what it needs and the columns two spaces apart rather
/// than one (the path first); then a longer event the rest. What is left
/// stays empty at the right. Too narrow, the least needed goes first
/// ([`GIVE_UP`]). The forward column only when forwarding is set, Danube's
/// when a webhook is known.
pub(super) fn columns(app: &App, width: u16, in_flight: usize) -> Columns {
    let needs = Needs::of(app, in_flight);
    let width = usize::from(width);
    let mut cols = vec![
        (Col::Time, 12),
        (Col::Id, needs.id),
        (Col::What, needs.what.min(EVENT_CAP)),
        (Col::Verdict, needs.verdict),
        (Col::Attempt, needs.attempt),
        (Col::Answer, needs.answer),
    ];
    if let Some(listener) = needs.listener {
        cols.insert(2, (Col::Listener, listener));
    }
    if app.config.forward_url.is_some() && !app.config.viewer {
        cols.push((Col::Forward, needs.forward));
    }
    if app.danube().is_some() {
        cols.push((Col::Danube, needs.danube));
    }
    cols.push((Col::Duration, 8));
    let what = |cols: &[(Col, usize)]| cols.iter().position(|(c, _)| *c == Col::What);
    for give_up in GIVE_UP {
        let over = columns_width(&cols, 1).saturating_sub(width);
        if over == 0 {
            break;
        }
        match give_up {
            GiveUp::Milliseconds => {
                if let Some(time) = cols.iter_mut().find(|(col, _)| *col == Col::Time) {
                    time.1 = 8;
                }
            }
            GiveUp::Listener => {
                if let Some(listener) = cols.iter_mut().find(|(col, _)| *col == Col::Listener) {
                    listener.1 = listener
                        .1
                        .saturating_sub(over)
                        .max(LISTENER_FLOOR.min(listener.1));
                }
            }
            GiveUp::EventTo(floor) => {
                if let Some(at) = what(&cols) {
                    let now = cols[at].1;
                    cols[at].1 = now.saturating_sub(over).max(floor.min(now));
                }
            }
            GiveUp::Column(gone) => cols.retain(|(col, _)| *col != gone),
        }
    }
    let Some(at) = what(&cols) else {
        return Columns { cols, gap: 1 };
    };
    // What was cut comes back when a later step made room.
    let spare = width.saturating_sub(columns_width(&cols, 1));
    cols[at].1 += spare.min(needs.what.min(EVENT_CAP).saturating_sub(cols[at].1));
    // Two spaces apart, unless only one leaves the path all it needs.
    let path = (!needs.none).then_some(needs.path);
    let fits = |gap: usize, path: Option<usize>| {
        columns_width(&cols, gap) + path.map_or(0, |path| gap + path) <= width
    };
    let gap = if fits(2, path) || !fits(1, path) && fits(2, None) {
        2
    } else {
        1
    };
    let mut spare = width.saturating_sub(columns_width(&cols, gap));
    if path.is_some() && spare >= needs.path.min(PATH_MIN) + gap {
        let path = needs.path.min(spare - gap);
        cols.insert(at + 1, (Col::Path, path));
        spare -= path + gap;
    }
    cols[at].1 += spare.min(needs.what.saturating_sub(cols[at].1));
    Columns { cols, gap }
}
