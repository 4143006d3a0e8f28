//! Cost of each aggregation per event: a 500-event batch of watch events
//! (one user, 40 items) folded into one feature of each kind, validation
//! excluded. Run: `cargo bench -p freshet-core --bench aggregations`
//! (scripts/bench-aggregations.sh writes BENCHMARKS.md's section).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use freshet_core::aggregate::aggregate;
use freshet_core::limits::Limits;
use freshet_core::spec::FeatureSpec;
use freshet_core::time::format_rfc3339;
use freshet_core::validate::receive;
use serde_json::json;

const NOW: i64 = 1_795_341_600_000;
const EVENTS: usize = 500;

/// Each aggregation's feature, as `features.toml` would have it.
pub const FEATURES: [(&str, &str); 11] = [
    ("count", "agg = \"count\""),
    ("count, 7d window", "agg = \"count\"\nwindow = \"7d\""),
    ("sum", "agg = \"sum\"\nfield = \"payload.watchDurationMin\""),
    ("last", "agg = \"last\"\nfield = \"payload.genre\""),
    (
        "distinct",
        "agg = \"distinct\"\nfield = \"payload.itemId\"\nmax = 50",
    ),
    (
        "latest_n",
        "agg = \"latest_n\"\nfield = \"payload.itemId\"\nmax = 20",
    ),
    (
        "avg, 30d window",
        "agg = \"avg\"\nfield = \"payload.watchDurationMin\"\nwindow = \"30d\"",
    ),
    (
        "decay, 14d window",
        "agg = \"decay\"\nrate = 0.1\nwindow = \"14d\"\nscale = 0.001\ncap = 1",
    ),
    (
        "mode of hour_of_day",
        "agg = \"mode\"\nfield = \"hour_of_day\"",
    ),
    (
        "mode of hour_of_day, tz",
        "agg = \"mode\"\nfield = \"hour_of_day\"\ntz = \"Europe/Berlin\"",
    ),
    (
        "vector_avg, 32 dims, weighted, 30d",
        "agg = \"vector_avg\"\nfield = \"payload.genreEmbedding\"\ndim = 32\nweight = \"payload.watchDurationMin\"\nwindow = \"30d\"",
    ),
];

fn spec(feature: &str) -> FeatureSpec {
    FeatureSpec::parse(&format!(
        "[entities.user]\nkey = [\"clientId\"]\n[[feature]]\nname = \"f\"\nentity = \"user\"\non = [\"watch\"]\n{feature}\n"
    ))
    .expect("spec")
}

fn watches() -> Vec<u8> {
    let events: Vec<_> = (0..EVENTS)
        .map(|i| {
            let genre = ["drama", "comedy", "action"][i % 3];
            let embedding: Vec<f64> = (0..32).map(|k| ((i * 7 + k) % 13) as f64 / 13.0 - 0.5).collect();
            json!({
                "id": format!("w-{i:06}"),
                "type": "watch",
                "timestamp": format_rfc3339(NOW - i as i64 * 1_200_000),
                "clientId": "u-1",
                "payload": {"itemId": format!("v-{}", i % 40), "genre": genre,
                            "genreEmbedding": embedding, "watchDurationMin": 10.0 + (i % 90) as f64, "progress": 0.5},
            })
        })
        .collect();
    serde_json::to_vec(&json!({"batchId": "b-1", "events": events})).expect("serialize")
}

fn per_aggregation(c: &mut Criterion) {
    let batch = receive(&watches(), NOW, &Limits::default()).expect("valid");
    assert_eq!(batch.events.len(), EVENTS);
    let mut group = c.benchmark_group("aggregate_500");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (name, feature) in FEATURES {
        let spec = spec(feature);
        assert_eq!(aggregate(&spec, &batch, None).len(), 1, "{name}");
        group.bench_with_input(BenchmarkId::from_parameter(name), &spec, |b, spec| {
            b.iter(|| black_box(aggregate(spec, black_box(&batch), None)));
        });
    }
    group.finish();
}

criterion_group!(benches, per_aggregation);
criterion_main!(benches);
