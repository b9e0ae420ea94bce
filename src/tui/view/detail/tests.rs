//! The detail's rows: a row said to fit is no wider than said, and the
//! rows counted off screen are the rows that would be built.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::super::super::app::App;
use super::overview::{timeline, timeline_width};
use super::rows::Rows;
use super::*;
use crate::delivery::ForwardRecord;
use crate::policy::{Policy, PolicyHandle};
use crate::test_support::sample;

/// One group of `n` attempts with every kind of answer and gaps from
/// milliseconds to hours.
fn app_with_group(n: u64) -> App {
    let mut config = crate::test_support::app_config();
    config.history_cap = 10_000;
    let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
    let mut at = sample(1, b"{}").received_at;
    for id in 1..=n {
        let mut d = sample(id, br#"{"event":"workflow.failed"}"#);
        at += chrono::Duration::milliseconds([7, 1_500, 61_000, 40_000_000][id as usize % 4]);
        d.received_at = at;
        d.attempt = u32::try_from(id).unwrap();
        d.replay_of = (id % 5 == 0).then_some(1);
        match id % 6 {
            0 => (d.response.action, d.response.status) = ("reset".into(), None),
            1 => d.response.delay_ms = 12_345,
            2 => {
                d.response.action = "forward".into();
                d.response.status = Some(201);
                d.forward = Some(ForwardRecord {
                    url: "http://localhost:3000/".into(),
                    status: Some(201),
                    headers: Vec::new(),
                    error: None,
                    duration_ms: 12,
                    body_preview: None,
                });
            }
            3 => (d.response.action, d.response.status) = ("ＷＩＤＥ".into(), None),
            _ => d.response.status = Some(503),
        }
        app.ingest(Arc::new(d));
    }
    app
}

#[test]
fn a_timeline_row_is_never_wider_than_its_width_says() {
    let app = app_with_group(24);
    let selected = app.selected().unwrap();
    let group = app.group_of(selected);
    let mut rows = Rows::new(10_000, 0, 1_000);
    timeline(&app, &Theme { color: true }, selected, &group, &mut rows);
    assert_eq!(rows.out.len(), group.len());
    let mut previous: Option<DateTime<Utc>> = None;
    for (attempt, line) in group.iter().zip(&rows.out) {
        let gap = previous.map(|p| (attempt.received_at - p).num_milliseconds());
        previous = Some(attempt.received_at);
        let said = timeline_width(attempt, gap);
        assert!(
            said >= line.width(),
            "#{}: said {said}, drew {}",
            attempt.id,
            line.width()
        );
        // Near enough that an 80-column screen counts every row.
        assert!(said <= 80, "#{}: said {said}", attempt.id);
    }
}

#[test]
fn the_rows_counted_off_screen_are_the_rows_built() {
    let mut app = app_with_group(300);
    let selected = Arc::clone(app.selected().unwrap());
    for tab in [Tab::Overview, Tab::Response] {
        app.tab = tab;
        for width in [12, 40, 66, 70, 80, 160] {
            let (total, all) = detail_content(&app, &selected, width, 0, usize::MAX);
            assert_eq!(total, all.len());
            for (skip, take) in [(0, 20), (7, 20), (150, 45), (total - 3, 20), (total, 5)] {
                let (counted, lines) = detail_content(&app, &selected, width, skip, take);
                assert_eq!(counted, total, "width {width}, from {skip}");
                assert_eq!(
                    lines,
                    all[skip.min(total)..(skip + take).min(total)],
                    "width {width}, from {skip}"
                );
            }
        }
    }
}
