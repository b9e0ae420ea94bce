//! The dashboard's cost per frame with 10,000 deliveries in memory (the
//! history cap), and the cost of taking in one second of deliveries at
//! 5,000/s (SPEC §10: the dashboard keeps up, at most one frame per 16 ms).
//!
//! Run with `cargo bench --bench dashboard`.

mod support;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use danube_hooks::delivery::Delivery;
use danube_hooks::policy::{Policy, PolicyHandle};
use danube_hooks::tui::app::{App, HISTORY_CAP};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget as _;

/// Real records from the example store, cycled with rising ids.
fn deliveries(count: usize) -> Vec<Arc<Delivery>> {
    let store = include_str!("../fixtures/store/example.jsonl");
    let templates: Vec<Delivery> = store
        .lines()
        .map(|line| serde_json::from_str(line).expect("the example store parses"))
        .collect();
    (0..count)
        .map(|i| {
            let mut delivery = templates[i % templates.len()].clone();
            delivery.id = i as u64 + 1;
            Arc::new(delivery)
        })
        .collect()
}

fn app() -> App {
    App::new(
        support::config(PathBuf::from("/tmp/deliveries.jsonl")),
        PolicyHandle::new(Policy::default_for(false)),
    )
}

fn frame(c: &mut Criterion) {
    let mut app = app();
    for delivery in deliveries(HISTORY_CAP) {
        app.ingest(delivery);
    }
    assert_eq!(app.history_len(), HISTORY_CAP);
    let mut group = c.benchmark_group("frame_10k_deliveries");
    for (width, height) in [(80, 24), (160, 48), (250, 70)] {
        let area = Rect::new(0, 0, width, height);
        let mut buffer = Buffer::empty(area);
        group.bench_function(format!("{width}x{height}"), |b| {
            b.iter(|| {
                buffer.reset();
                black_box(&app).render(area, &mut buffer);
            });
        });
    }
    group.finish();
}

fn ingest(c: &mut Criterion) {
    let backlog = deliveries(HISTORY_CAP);
    let second = deliveries(HISTORY_CAP + 5_000).split_off(HISTORY_CAP);
    c.bench_function("ingest_5000_into_a_full_history", |b| {
        b.iter_batched(
            || {
                let mut app = app();
                for delivery in &backlog {
                    app.ingest(Arc::clone(delivery));
                }
                app
            },
            |mut app| {
                for delivery in &second {
                    app.ingest(Arc::clone(delivery));
                }
                app
            },
            criterion::BatchSize::LargeInput,
        );
    });
}

criterion_group!(benches, frame, ingest);
criterion_main!(benches);
