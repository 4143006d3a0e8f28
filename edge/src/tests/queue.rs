//! The queue pipeline (`FRESHET_PIPELINE=queue`): ingest checks and sends,
//! the consumer applies; each batch counts once however often a message is
//! delivered, and the store and the log end as the direct pipeline leaves them.

use std::collections::BTreeMap;

use freshet_core::state::FeatureState;

use super::*;
use crate::store::EntityKey;

fn queue_edge() -> Edge<MemoryStore> {
    edge_with(&[
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_PIPELINE", "queue"),
    ])
}

fn direct_edge() -> Edge<MemoryStore> {
    edge_with(&[
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
    ])
}

/// Consumes every message sent so far, in the order given by `order`.
async fn consume_all(edge: &Edge<MemoryStore>, order: impl Fn(&mut Vec<Vec<u8>>)) -> usize {
    let mut messages = edge.queue.drain();
    order(&mut messages);
    let mut batches = 0;
    for m in &messages {
        batches += edge.consume(m, now()).await.unwrap();
    }
    batches
}

/// Every stored entity's features, to compare two edges' stores.
fn features(e: &Edge<MemoryStore>) -> Vec<(EntityKey, BTreeMap<String, FeatureState>)> {
    e.store
        .snapshot()
        .into_iter()
        .map(|(k, doc)| (k, doc.features))
        .collect()
}

/// The edge's log, exported and replayed by core: every entity's document.
async fn replayed(edge: &Edge<MemoryStore>) -> freshet_core::replay::Replay<'static> {
    let (_, text, _) = export(edge, "from=2026-11-01T00:00:00Z").await;
    let mut replay = freshet_core::replay::Replay::new(compiled_spec().unwrap());
    for b in freshet_core::log::parse_ndjson(text.as_bytes()).unwrap() {
        replay.apply(&b);
    }
    replay
}

/// A batch of `n` clicks whose payloads make it larger than a queue message.
fn large_batch(n: usize) -> String {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("e{i}"), "type": "product_click",
                   "timestamp": "2026-11-22T09:59:00.000Z", "clientId": format!("cid-{}", i % 7),
                   "payload": {"productId": format!("prod-{}", i % 11), "component": "Card",
                               "note": "x".repeat(800)}})
        })
        .collect();
    batch(events)
}

#[tokio::test]
async fn ingest_answers_once_the_queue_holds_the_batch_and_the_consumer_applies_it_once() {
    let edge = queue_edge();
    let (status, body, _) = send(&edge, ingest(SEED)).await;
    assert_eq!(
        (status, body),
        (202, json!({"accepted": 3, "rejected": []}))
    );
    // Nothing is in the store or the log until the consumer runs.
    assert!(edge.store.snapshot().is_empty());
    assert!(bucket(&edge).keys().is_empty());
    let messages = edge.queue.sent.borrow().clone();
    assert_eq!(messages.len(), 1);
    assert_eq!(consume_all(&edge, |_| {}).await, 1);
    // Delivered again (Queues deliver at least once), and the batch resent
    // by the tracker: still once.
    for m in &messages {
        edge.consume(m, now()).await.unwrap();
    }
    assert_eq!(send(&edge, ingest(SEED)).await.0, 202);
    consume_all(&edge, |_| {}).await;
    assert_eq!(
        num(&feature(&edge, "user", "cid-seed-1", "pageviews").await),
        1.0
    );
    // The store and the log as the direct pipeline leaves them.
    let direct = direct_edge();
    assert_eq!(send(&direct, ingest(SEED)).await.0, 202);
    assert_eq!(edge.store.snapshot(), direct.store.snapshot());
    assert_eq!(bucket(&edge).keys(), bucket(&direct).keys());
    let (_, theirs, _) = export(&direct, "from=2026-11-01T00:00:00Z").await;
    let (_, ours, _) = export(&edge, "from=2026-11-01T00:00:00Z").await;
    assert_eq!(ours, theirs);
}

#[tokio::test]
async fn a_batch_larger_than_a_message_goes_in_parts_that_each_count_once_in_any_order() {
    let body = large_batch(400);
    assert!(body.len() > 300_000, "{}", body.len());
    let edge = queue_edge();
    assert_eq!(send(&edge, ingest(body.as_str())).await.0, 202);
    let messages = edge.queue.sent.borrow().clone();
    assert!(messages.len() >= 3, "{} messages", messages.len());
    for m in &messages {
        assert!(m.len() <= 128 * 1024, "a message of {} bytes", m.len());
    }
    // Sent again by the tracker: the same parts.
    assert_eq!(send(&edge, ingest(body.as_str())).await.0, 202);
    assert_eq!(edge.queue.sent.borrow()[messages.len()..], messages[..]);
    // Delivered last part first, each twice.
    let applied = consume_all(&edge, |m| {
        m.reverse();
    })
    .await;
    assert_eq!(applied, 2 * messages.len());
    // Every feature as the direct pipeline has it (the markers are the parts').
    let direct = direct_edge();
    assert_eq!(send(&direct, ingest(body.as_str())).await.0, 202);
    assert!(
        features(&edge) == features(&direct),
        "the parts counted otherwise"
    );
    // The log holds each part once, under its own id; replayed, it gives the store.
    let keys = bucket(&edge).keys();
    assert_eq!(keys.len(), messages.len(), "{keys:?}");
    assert!(keys[0].ends_with("/b-1.1.ndjson.gz"), "{keys:?}");
    let spec = compiled_spec().unwrap();
    let replay = replayed(&edge).await;
    for client in 0..7 {
        let id = format!("cid-{client}");
        let (_, served, _) = send(&edge, get(&format!("/v1/features/user/{id}"))).await;
        let replayed =
            freshet_core::read::read_features(spec, "user", &replay.doc("user", &id), None, now())
                .unwrap();
        assert_eq!(served["features"], serde_json::to_value(&replayed).unwrap());
    }
}

#[tokio::test]
async fn a_delivery_is_one_store_apply_and_a_regrouped_redelivery_counts_each_batch_once() {
    let (edge, direct) = (queue_edge(), direct_edge());
    let large = large_batch(400);
    for body in [SEED, TRACKER, large.as_str()] {
        assert_eq!(send(&edge, ingest(body)).await.0, 202);
        assert_eq!(send(&direct, ingest(body)).await.0, 202);
    }
    let messages = edge.queue.drain();
    assert!(messages.len() >= 4, "{} messages", messages.len());
    // The first delivery: every message but the last, in one store apply.
    let (first, last) = messages.split_at(messages.len() - 1);
    let before = edge.store.applies.get();
    let batches = edge.consume_delivery(first, now()).await.unwrap();
    assert_eq!(
        (batches, edge.store.applies.get() - before),
        (first.len(), 1)
    );
    // Redelivered regrouped: the last message with two already applied.
    let regrouped = vec![first[0].clone(), last[0].clone(), first[2].clone()];
    assert_eq!(edge.consume_delivery(&regrouped, now()).await.unwrap(), 3);
    assert!(
        features(&edge) == features(&direct),
        "a batch counted otherwise than in the direct pipeline"
    );
    // The log holds each message's batch once (a part under its own id).
    assert_eq!(bucket(&edge).keys().len(), messages.len());
}

#[tokio::test]
async fn a_consumer_that_dies_between_the_store_and_the_log_loses_and_doubles_nothing() {
    let (edge, direct) = (queue_edge(), direct_edge());
    let large = large_batch(400);
    for body in [SEED, TRACKER, large.as_str()] {
        assert_eq!(send(&edge, ingest(body)).await.0, 202);
        assert_eq!(send(&direct, ingest(body)).await.0, 202);
    }
    let mut messages = edge.queue.drain();
    // The store takes the whole delivery, then the worker dies after two of
    // its log writes: no message was acknowledged.
    bucket(&edge).puts_left.set(Some(2));
    let e = edge.consume_delivery(&messages, now()).await.unwrap_err();
    assert_eq!(e.code(), "log_unavailable");
    assert_eq!(bucket(&edge).keys().len(), 2);
    bucket(&edge).puts_left.set(None);
    // Every message again, regrouped into two deliveries in another order.
    messages.reverse();
    let (a, b) = messages.split_at(messages.len() / 2);
    for delivery in [a, b] {
        edge.consume_delivery(delivery, now()).await.unwrap();
    }
    assert!(features(&edge) == features(&direct), "counted otherwise");
    assert_eq!(bucket(&edge).keys().len(), messages.len());
    // The log replayed gives the store.
    let replay = replayed(&edge).await;
    for (key, doc) in edge.store.snapshot() {
        let replayed = replay.doc(&key.entity, &key.id);
        assert_eq!(replayed.features, doc.features, "{key:?}");
    }
}

#[tokio::test]
async fn a_delivery_with_a_message_that_cannot_apply_fails_whole_and_its_messages_then_apply_alone()
{
    let edge = queue_edge();
    assert_eq!(send(&edge, ingest(SEED)).await.0, 202);
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    let mut messages = edge.queue.drain();
    messages.insert(1, b"not ndjson".to_vec());
    // Refused before any write: nothing of the good messages is in.
    let e = edge.consume_delivery(&messages, now()).await.unwrap_err();
    assert_eq!(e.code(), "bad_message");
    assert!(edge.store.snapshot().is_empty());
    assert!(bucket(&edge).keys().is_empty());
    // One by one, as the consumer goes on: the two batches apply, the bad
    // message alone fails (towards the dead-letter queue).
    let outcomes: Vec<bool> = futures_util::future::join_all(
        messages
            .iter()
            .map(|m| async { edge.consume(m, now()).await.is_ok() }),
    )
    .await;
    assert_eq!(outcomes, [true, false, true]);
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "clicks_product_card").await),
        2.0
    );
    assert_eq!(bucket(&edge).keys().len(), 2);
}

#[tokio::test]
async fn a_queue_that_refuses_is_a_503_and_the_resend_counts_once() {
    let edge = queue_edge();
    edge.queue.fail.set(true);
    let (status, body, res) = send(&edge, ingest(TRACKER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("queue_unavailable"))
    );
    assert_eq!(res.header("retry-after"), Some("1"));
    edge.queue.fail.set(false);
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    consume_all(&edge, |_| {}).await;
    // The tracker fixture's two clicks, once.
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "clicks_product_card").await),
        2.0
    );
}

#[tokio::test]
async fn a_consumer_that_fails_leaves_the_message_and_its_redelivery_completes_it() {
    let edge = queue_edge();
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    let message = edge.queue.drain().remove(0);
    // The store down: the message fails (and is delivered again).
    edge.store.set_down(true);
    let e = edge.consume(&message, now()).await.unwrap_err();
    assert_eq!(e.code(), "store_unavailable");
    edge.store.set_down(false);
    // The log down after the store took it: fails, and the redelivery
    // writes the log without counting the batch again.
    bucket(&edge).fail.set(true);
    assert_eq!(
        edge.consume(&message, now()).await.unwrap_err().code(),
        "log_unavailable"
    );
    bucket(&edge).fail.set(false);
    assert_eq!(edge.consume(&message, now()).await.unwrap(), 1);
    assert_eq!(bucket(&edge).keys().len(), 1);
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "clicks_product_card").await),
        2.0
    );
}

#[tokio::test]
async fn a_message_that_is_no_logged_batch_fails_every_time_and_changes_nothing() {
    let edge = queue_edge();
    for body in [
        &b"not ndjson"[..],
        b"{\"batchId\":1}\n",
        &[0x1f, 0x8b, 0, 1][..],
    ] {
        let e = edge.consume(body, now()).await.unwrap_err();
        assert_eq!(e.code(), "bad_message", "{e}");
        assert!(e.is_server_fault());
    }
    assert!(edge.store.snapshot().is_empty());
    assert!(bucket(&edge).keys().is_empty());
}

#[tokio::test]
async fn the_pipeline_is_named_in_health_and_a_bad_one_is_refused() {
    let (_, body, _) = send(&queue_edge(), Request::new(Method::Get, "/health")).await;
    assert_eq!(body["pipeline"], "queue");
    let (_, body, _) = send(&direct_edge(), Request::new(Method::Get, "/health")).await;
    assert_eq!(body["pipeline"], "direct");
    let e = Config::from_lookup(|n| match n {
        "FRESHET_PIPELINE" => Some("kafka".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(e.to_string().contains("FRESHET_PIPELINE"), "{e}");
}

#[tokio::test]
async fn a_dead_letter_is_kept_counted_and_applied_again_once_the_cause_is_fixed() {
    let edge = edge_with(&[
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_ADMIN_TOKEN", "admin-token-1"),
        ("FRESHET_PIPELINE", "queue"),
    ]);
    let admin = |method: Method| {
        Request::new(method, "/v1/dead-letters")
            .with_header("authorization", "Bearer admin-token-1")
    };
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    let message = edge.queue.drain().remove(0);
    // The store refused it max_retries times: the dead-letter queue's
    // consumer keeps it, once however often it comes.
    edge.keep_dead_letter("m-1", message.clone(), now())
        .await
        .unwrap();
    edge.keep_dead_letter("m-1", message.clone(), now())
        .await
        .unwrap();
    let (_, health, _) = send(&edge, Request::new(Method::Get, "/health")).await;
    assert_eq!(health["deadLetters"], 1);
    let (status, listed, _) = send(&edge, admin(Method::Get)).await;
    assert_eq!(
        (status, &listed["keys"]),
        (200, &json!(["dead-letters/m-1.ndjson.gz"]))
    );
    let (status, body, _) = send(&edge, Request::new(Method::Post, "/v1/dead-letters")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    // Applied again while the store is still down: kept, and said why.
    edge.store.set_down(true);
    let (status, body, _) = send(&edge, admin(Method::Post)).await;
    assert_eq!((status, &body["applied"]), (200, &json!(0)), "{body}");
    assert!(
        body["failed"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("store_unavailable")
    );
    edge.store.set_down(false);
    let (_, body, _) = send(&edge, admin(Method::Post)).await;
    assert_eq!(body, json!({"applied": 1, "failed": []}));
    let (_, health, _) = send(&edge, Request::new(Method::Get, "/health")).await;
    assert_eq!(health["deadLetters"], 0);
    // The same message kept and applied once more (it had applied before
    // it died, say): still counted once.
    edge.keep_dead_letter("m-2", message, now()).await.unwrap();
    let (_, body, _) = send(&edge, admin(Method::Post)).await;
    assert_eq!(body["applied"], 1);
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "clicks_product_card").await),
        2.0
    );
    // Without an admin token the route is off.
    let (status, body, _) = send(&queue_edge(), admin(Method::Get)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("dead_letters_disabled"))
    );
}

#[test]
fn only_an_unreachable_store_or_log_holds_up_the_rest_of_a_consumer_batch() {
    use crate::error::EdgeError;
    use crate::event_log::LogError;
    use crate::queue::is_outage;
    use crate::store::StoreError;
    assert!(is_outage(&EdgeError::StoreUnavailable(
        StoreError::Timeout { ms: 1 }
    )));
    assert!(is_outage(&EdgeError::StoreUnavailable(StoreError::Io(
        "reset".into()
    ))));
    assert!(is_outage(&EdgeError::LogUnavailable(LogError("r2".into()))));
    // The store refusing this message's write, or a message that is no batch.
    assert!(!is_outage(&EdgeError::StoreUnavailable(
        StoreError::Server("WRONGTYPE".into())
    )));
    assert!(!is_outage(&EdgeError::BadMessage("line 1".into())));
}
