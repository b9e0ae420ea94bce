//! `signature::sign` and `signature::verify` on 64 B, 1 KiB and 1 MiB
//! bodies, with throughput set so criterion reports GB/s (decimal)
//! (SPEC §10: verification of a 1 MiB body at ≥ 1 GB/s).
//!
//! Run with `cargo bench --bench signature`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use danube_hooks::signature::{self, Secret};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const T: i64 = 1_795_430_047;
const SIZES: [(usize, &str); 3] = [(64, "64B"), (1024, "1KiB"), (1024 * 1024, "1MiB")];

/// A JSON-ish body of exactly `len` bytes.
fn body(len: usize) -> Vec<u8> {
    let mut body = br#"{"event":"tool.execution.completed","data":{"pad":""#.to_vec();
    body.resize(len.saturating_sub(3).max(body.len()), b'x');
    body.extend_from_slice(br#""}}"#);
    body.truncate(len);
    body
}

fn sign(c: &mut Criterion) {
    let secret = Secret::new(SECRET);
    let mut group = c.benchmark_group("sign");
    for (len, name) in SIZES {
        let body = body(len);
        group.throughput(Throughput::BytesDecimal(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| signature::sign(&secret, black_box(T), black_box(body)));
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let secrets = [Secret::new(SECRET)];
    let mut group = c.benchmark_group("verify");
    for (len, name) in SIZES {
        let body = body(len);
        let header = signature::sign(&secrets[0], T, &body);
        // `now` three seconds after `t`: the verdict is `valid`, the path
        // every genuine delivery takes.
        let check = signature::verify(&secrets, Some(&header), &body, T + 3, 300);
        assert_eq!(check.verdict, signature::Verdict::Valid, "{}", check.detail);
        group.throughput(Throughput::BytesDecimal(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                signature::verify(
                    black_box(&secrets),
                    Some(black_box(&header)),
                    black_box(body),
                    T + 3,
                    300,
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, sign, verify);
criterion_main!(benches);
