//! Runs validate and/or aggregate of the tracker fixture (5 events) N times,
//! for counting instructions, which unlike time is repeatable on a shared
//! machine: `valgrind --tool=callgrind target/release/examples/ingest_cost 1000 [validate|aggregate]`.

use freshet_core::aggregate::aggregate;
use freshet_core::limits::Limits;
use freshet_core::spec::FeatureSpec;
use freshet_core::validate::receive;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let stage = std::env::args().nth(2).unwrap_or_default();
    let spec = FeatureSpec::parse(include_str!("../../features.toml")).expect("spec");
    let body = include_bytes!("../tests/fixtures/tracker_payload.json");
    let now = freshet_core::time::parse_rfc3339("2026-11-22T10:00:00Z").expect("time");
    let limits = Limits::default();
    let batch = receive(body, now, &limits).expect("valid");
    let mut deltas = 0;
    for _ in 0..n {
        if stage != "aggregate" {
            let batch = receive(std::hint::black_box(body), now, &limits).expect("valid");
            std::hint::black_box(&batch);
        }
        if stage != "validate" {
            deltas += aggregate(&spec, std::hint::black_box(&batch), None).len();
        }
    }
    println!(
        "{n} batches of {} events, {deltas} deltas",
        batch.events.len()
    );
}
