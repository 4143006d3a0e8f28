//! Cost of the edge's pure work per batch: decode + validate + aggregate,
//! for the tracker's usual 15-event batch and the 500-event maximum, plain
//! and gzipped. Run: `cargo bench -p freshet-core --bench ingest`.

use std::hint::black_box;
use std::io::Write;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use freshet_core::aggregate::aggregate;
use freshet_core::limits::Limits;
use freshet_core::spec::FeatureSpec;
use freshet_core::time::format_rfc3339;
use freshet_core::validate::receive;
use serde_json::json;

const NOW: i64 = 1_795_341_600_000;

/// A tracker batch of `n` events over ten clients' worth of shop activity.
fn tracker_batch(n: usize) -> Vec<u8> {
    let events: Vec<_> = (0..n)
        .map(|i| {
            let (kind, payload) = match i % 5 {
                0 => (
                    "page_view",
                    json!({"path": format!("/products/prod-{}", i % 40)}),
                ),
                1 => (
                    "product_click",
                    json!({"productId": format!("prod-{}", i % 40), "component": "ProductCard"}),
                ),
                2 => (
                    "viewed_category",
                    json!({"category": format!("cat-{}", i % 7)}),
                ),
                3 => (
                    "add_to_cart",
                    json!({"productId": format!("prod-{}", i % 40), "price": 19.99, "quantity": 1}),
                ),
                _ => ("search", json!({"query": "mirrorless camera"})),
            };
            json!({
                "id": format!("019ab2c4-6a10-7000-8000-{i:012}"),
                "type": kind,
                "timestamp": format_rfc3339(NOW - 60_000 + i as i64),
                "clientId": "cid-1732269480000-k3j9x2",
                "sessionId": "s-1",
                "payload": payload,
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "batchId": "019ab2c4-7e00-7a1b-9c3d-5e6f7a8b9c0d",
        "sentAt": format_rfc3339(NOW - 50),
        "events": events,
    }))
    .expect("serialize")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("write");
    enc.finish().expect("finish")
}

fn ingest(c: &mut Criterion) {
    let spec = FeatureSpec::parse(include_str!("../../features.toml")).expect("spec");
    let limits = Limits::default();
    let mut group = c.benchmark_group("decode_validate_aggregate");
    for n in [15usize, 500] {
        let plain = tracker_batch(n);
        let gz = gzip(&plain);
        group.throughput(Throughput::Elements(n as u64));
        for (encoding, body) in [("json", &plain), ("gzip", &gz)] {
            group.bench_with_input(BenchmarkId::new(encoding, n), body, |b, body| {
                b.iter(|| {
                    let batch = receive(black_box(body), NOW, &limits).expect("valid");
                    black_box(aggregate(&spec, &batch, None))
                });
            });
        }
    }
    group.finish();

    // Where the time goes: each stage alone, for the 15-event batch.
    let mut stages = c.benchmark_group("stage_15");
    let plain = tracker_batch(15);
    let batch = receive(&plain, NOW, &limits).expect("valid");
    stages.bench_function("validate", |b| {
        b.iter(|| receive(black_box(&plain), NOW, &limits))
    });
    stages.bench_function("aggregate", |b| {
        b.iter(|| aggregate(&spec, black_box(&batch), None))
    });
    stages.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
