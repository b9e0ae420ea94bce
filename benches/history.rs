//! The dashboard's start on a 1 GiB store (SPEC §8, §10): the time from
//! nothing to the first frame drawn with the history, that is the read of
//! the store's latest deliveries from its end (within the history's
//! record cap and 64 MiB byte budget), the history built from them, and
//! the frame. The store's size must not matter: the read stops when the
//! history is full, whatever lies before it.
//!
//! Two stores, each written once to `target/bench-history/` and kept for
//! the next run: 1 GiB of the example store's records (about 1 KiB each),
//! cycled with rising ids, where the history's record cap (10,000) ends
//! the read; and 1 GiB of records with 64 KiB bodies, where its byte
//! budget does (about 90 MB of lines read). The page cache holds it after the first read, as it does for
//! a listener started again on a store it has just written.
//!
//! Run with `cargo bench --bench history`.

mod support;

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use danube_hooks::delivery::Delivery;
use danube_hooks::policy::{Policy, PolicyHandle};
use danube_hooks::tui::app::{App, HISTORY_BYTES, HISTORY_CAP};
use danube_hooks::tui::earlier::{self, EarlierPlan};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget as _;

const STORE_BYTES: u64 = 1 << 30;

/// A store of at least [`STORE_BYTES`] in `target/bench-history/<name>/`,
/// its records' bodies padded to `body_len` bytes when that is more; the
/// id its next record would get.
fn store(name: &str, body_len: usize) -> (PathBuf, u64) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-history")
        .join(name);
    let path = dir.join("deliveries.jsonl");
    let templates: Vec<Delivery> = include_str!("../fixtures/store/example.jsonl")
        .lines()
        .map(|line| {
            let mut record: serde_json::Value =
                serde_json::from_str(line).expect("the example store parses");
            if body_len > 0 {
                let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(body_len - 14));
                record["body_b64"] = base64::engine::general_purpose::STANDARD
                    .encode(body.as_bytes())
                    .into();
                record["body_size"] = body.len().into();
            }
            serde_json::from_value::<Delivery>(record).expect("a record")
        })
        .collect();
    let ids = dir.join("next-id");
    if let (Ok(meta), Ok(next)) = (std::fs::metadata(&path), std::fs::read_to_string(&ids))
        && meta.len() >= STORE_BYTES
        && let Ok(next) = next.trim().parse()
    {
        return (path, next);
    }
    std::fs::create_dir_all(&dir).expect("the bench's folder");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).expect("the store"));
    let (mut written, mut id) = (0u64, 1u64);
    while written < STORE_BYTES {
        let mut delivery = templates[(id as usize) % templates.len()].clone();
        delivery.id = id;
        let line = serde_json::to_string(&delivery).expect("a record serializes");
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .expect("written");
        written += line.len() as u64 + 1;
        id += 1;
    }
    out.flush().expect("flushed");
    std::fs::write(&ids, id.to_string()).expect("the next id");
    (path, id)
}

fn first_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("history_1gib_store");
    group.sample_size(20);
    for (name, body_len) in [("1kib_records", 0), ("64kib_records", 64 * 1024)] {
        read_and_draw(&mut group, name, body_len);
    }
    group.finish();
}

/// The read and the first frame on one store.
fn read_and_draw(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    body_len: usize,
) {
    let (path, next_id) = store(name, body_len);
    let plan = EarlierPlan {
        records: HISTORY_CAP,
        first_id: next_id,
    };
    let area = Rect::new(0, 0, 160, 48);
    group.bench_function(format!("{name}_read_and_first_frame_160x48"), |b| {
        b.iter(|| {
            let earlier = earlier::read(&path, plan, HISTORY_BYTES, |_| {}).expect("read");
            let mut app = App::new(
                support::config(path.clone()),
                PolicyHandle::new(Policy::default_for(false)),
            );
            app.take_earlier(earlier);
            let mut buffer = Buffer::empty(area);
            (&app).render(area, &mut buffer);
            black_box((app.history_len(), buffer))
        });
    });
    let earlier = earlier::read(&path, plan, HISTORY_BYTES, |_| {}).expect("read");
    let mut app = App::new(
        support::config(path.clone()),
        PolicyHandle::new(Policy::default_for(false)),
    );
    app.take_earlier(earlier);
    eprintln!(
        "{name}: the history holds {} deliveries of a {:.2} GiB store",
        app.history_len(),
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / f64::from(1u32 << 30)
    );
}

criterion_group!(benches, first_frame);
criterion_main!(benches);
