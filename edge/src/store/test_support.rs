//! What the store adapters' integration tests share: ports, and a server
//! that accepts and never answers (for timeouts).

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;

use std::time::Duration;

use freshet_core::aggregate::aggregate;
use freshet_core::read::read_features;
use freshet_core::state::{Applied, EntityDelta};
use freshet_core::time::{Millis, format_rfc3339};
use freshet_core::validate::receive;
use tokio::task::JoinHandle;

use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;
use crate::store::{EntityKey, EntityRead, FeatureStore};

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server on a free port that accepts connections and never answers; it
/// holds them until the returned task is dropped with the test's runtime.
pub async fn silent_server() -> (u16, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (port, hold)
}

/// Batch `k` of a stream of many entities, received at `now`: a page view
/// and two product clicks of client `c<k % 40>` (products `p<k % 25>` and
/// `p<7k % 25>`), batch id `b-<k>`.
pub fn numbered_batch(k: usize, now: Millis) -> Vec<EntityDelta> {
    let at = |s: i64| format_rfc3339(now - 10_000 + s * 1_000);
    let body = format!(
        r#"{{"batchId":"b-{k}","sentAt":"{sent}","writeKey":"dev","events":[
        {{"id":"e{k}-1","type":"page_view","timestamp":"{t1}","clientId":"c{c}","sessionId":"s","payload":{{"path":"/p"}}}},
        {{"id":"e{k}-2","type":"product_click","timestamp":"{t2}","clientId":"c{c}","sessionId":"s","payload":{{"productId":"p{p}","component":"Card"}}}},
        {{"id":"e{k}-3","type":"product_click","timestamp":"{t3}","clientId":"c{c}","sessionId":"s","payload":{{"productId":"p{q}","component":"Card"}}}}]}}"#,
        sent = at(5),
        t1 = at(1),
        t2 = at(2),
        t3 = at(3),
        c = k % 40,
        p = k % 25,
        q = (k * 7) % 25,
    );
    let spec = compiled_spec().unwrap();
    aggregate(
        spec,
        &receive(body.as_bytes(), now, &Default::default()).unwrap(),
        None,
    )
}

/// Applies a batch until the store takes it, as a client resends a batch
/// the edge refused, under its id (`tries` at most, `pause_ms` apart), then
/// once more, which must count nothing; gives how many tries it took.
pub async fn deliver(
    store: &impl FeatureStore,
    deltas: &[EntityDelta],
    tries: usize,
    pause_ms: u64,
) -> usize {
    for attempt in 1..=tries {
        match store.apply(deltas).await {
            Ok(_) => {
                let again = store.apply(deltas).await.unwrap();
                assert!(
                    again.iter().all(|a| *a == Applied::Duplicate),
                    "a resent batch counted again: {again:?}"
                );
                return attempt;
            }
            Err(e) => {
                eprintln!("try {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            }
        }
    }
    panic!("the store never took the batch");
}

/// Every entity the batches touched reads the same from `store` as from
/// `memory` (which applied each batch once), as served at `now`.
pub async fn assert_reads_as_memory(
    store: &impl FeatureStore,
    memory: &MemoryStore,
    batches: &[Vec<EntityDelta>],
    now: Millis,
) {
    let spec = compiled_spec().unwrap();
    let mut keys: Vec<EntityKey> = batches
        .iter()
        .flatten()
        .map(|d| EntityKey::new(&d.entity, &d.id))
        .collect();
    keys.sort_by(|a, b| (&a.entity, &a.id).cmp(&(&b.entity, &b.id)));
    keys.dedup();
    let reads = EntityRead::all_of(&keys);
    let from_store = store.load(&reads).await.unwrap();
    let from_memory = memory.load(&reads).await.unwrap();
    for ((key, s), m) in keys.iter().zip(&from_store).zip(&from_memory) {
        let s = read_features(spec, &key.entity, s, None, now).unwrap();
        let m = read_features(spec, &key.entity, m, None, now).unwrap();
        assert_eq!(s, m, "{key:?}");
    }
}

/// A queue delivery of three batches of one visitor (the tracker fixture)
/// is one write per entity, as the store counts its writes (`writes`); a
/// regrouped redelivery (the second batch again, beside a fourth) counts
/// once: its fold is refused, then each delta is applied alone, the second
/// batch's as duplicates and the fourth's anew; the store then holds what
/// the memory store holds.
pub async fn assert_a_delivery_folds_and_a_regrouped_one_counts_once<W>(
    store: &impl FeatureStore,
    writes: impl Fn() -> W,
) where
    W: Future<Output = u64>,
{
    const TRACKER: &str = include_str!("../../tests/fixtures/tracker.json");
    let spec = compiled_spec().unwrap();
    let now = freshet_core::time::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let memory = MemoryStore::new(spec);
    let batch = |n: u32| -> Vec<EntityDelta> {
        let body = TRACKER.replace(
            "018f6f7e-0000-7000-8000-000000000001",
            &format!("018f6f7e-0000-7000-8000-00000000000{n}"),
        );
        let at = now + i64::from(n) * 1000;
        aggregate(
            spec,
            &receive(body.as_bytes(), at, &Default::default()).unwrap(),
            None,
        )
    };
    let per_batch = batch(1).len();
    let first: Vec<EntityDelta> = (1..=3).flat_map(batch).collect();
    let before = writes().await;
    let applied = store.apply(&first).await.unwrap();
    assert!(
        applied.iter().all(|a| *a == Applied::Applied),
        "{applied:?}"
    );
    // Three batches of the same entities: one write per entity.
    assert_eq!(writes().await - before, per_batch as u64);
    memory.apply(&first).await.unwrap();
    let regrouped: Vec<EntityDelta> = [2, 4].into_iter().flat_map(batch).collect();
    let applied = store.apply(&regrouped).await.unwrap();
    assert_eq!(
        applied,
        [
            vec![Applied::Duplicate; per_batch],
            vec![Applied::Applied; per_batch]
        ]
        .concat()
    );
    memory.apply(&regrouped).await.unwrap();
    let keys = [
        EntityKey::new("user", "cid-tracker-1"),
        EntityKey::new("product", "prod-7"),
    ];
    let from_store = store.load(&EntityRead::all_of(&keys)).await.unwrap();
    let from_memory = memory.load(&EntityRead::all_of(&keys)).await.unwrap();
    for ((key, s), m) in keys.iter().zip(&from_store).zip(&from_memory) {
        assert!(!m.features.is_empty(), "{key:?} has no features");
        assert_eq!(s.features, m.features, "{key:?}");
    }
}
