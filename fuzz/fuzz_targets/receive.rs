//! Fuzzes decode + validate + aggregate: any bytes must give a batch or a
//! typed error, never a panic, and every accepted event must be within the
//! limits. Run: `cargo +nightly fuzz run receive` (from the repo root).
#![no_main]

use freshet_core::aggregate::aggregate;
use freshet_core::limits::Limits;
use freshet_core::spec::FeatureSpec;
use freshet_core::validate::receive;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_795_341_600_000;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(batch) = receive(data, NOW, &limits) {
        assert!(batch.events.len() + batch.rejected.len() <= limits.max_events);
        for event in &batch.events {
            assert!(event.time <= NOW + limits.max_future && event.time >= NOW - limits.max_past);
        }
        let spec = FeatureSpec::parse(include_str!("../../features.toml")).expect("spec");
        let _ = aggregate(&spec, &batch, None);
    }
});
