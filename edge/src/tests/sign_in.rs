//! Sign-in over the memory store, registry and bucket: the visitor's
//! features follow them to the user, once, whatever retries, tabs, devices
//! or failures do, and the log replays to the store throughout.

use freshet_core::log::LoggedBatch;
use freshet_core::time::{MINUTE, SECOND};
use freshet_core::validate::receive;

use super::erasure::{
    admin, assert_log_replays_to_the_store, erasing_edge, everything, send_at, visit,
};
use super::*;
use crate::erasure::Registry;

const T: &str = "2026-11-22T09:59:00Z";

async fn sent(edge: &Edge<MemoryStore>, body: String) {
    let (status, answer) = send_at(edge, ingest(body), now()).await;
    assert_eq!(status, 202, "{answer}");
}

async fn clicks(edge: &Edge<MemoryStore>, id: &str) -> f64 {
    num(&feature(edge, "user", id, "clicks_product_card").await)
}

async fn pair_clicks(edge: &Edge<MemoryStore>, id: &str) -> f64 {
    num(&feature(edge, "user_product", id, "user_product_clicks").await)
}

/// `cid-a` browses lenses anonymously (two batches, three clicks), then
/// signs in as `u-1`.
async fn browse_then_sign_in(edge: &Edge<MemoryStore>) {
    sent(edge, visit("b-1", "cid-a", None, "lens", T)).await;
    sent(edge, visit("b-2", "cid-a", None, "lens", T)).await;
    sent(edge, visit("b-3", "cid-a", None, "cam", T)).await;
    sent(edge, visit("b-4", "cid-a", Some("u-1"), "lens", T)).await;
}

#[tokio::test]
async fn sign_in_moves_the_visit_to_the_user_before_the_202_and_once() {
    for pipeline in ["direct", "queue"] {
        let edge = erasing_edge(pipeline);
        browse_then_sign_in(&edge).await;
        if pipeline == "queue" {
            for m in edge.queue.drain() {
                edge.consume(&m, now()).await.unwrap();
            }
        }
        // Three anonymous clicks and the signed-in one.
        assert_eq!(clicks(&edge, "u-1").await, 4.0, "{pipeline}");
        assert_eq!(pair_clicks(&edge, "u-1|lens").await, 3.0);
        assert_eq!(pair_clicks(&edge, "u-1|cam").await, 1.0);
        let recent = feature(&edge, "user", "u-1", "recent_products").await;
        assert_eq!(recent.as_array().map(Vec::len), Some(4), "{recent}");
        // The client keeps its own documents.
        assert_eq!(clicks(&edge, "cid-a").await, 3.0);
        // The sign-in batch again (a lost 202), the settle-time pass, and
        // the job again: nothing counts twice.
        sent(&edge, visit("b-4", "cid-a", Some("u-1"), "lens", T)).await;
        if pipeline == "queue" {
            for m in edge.queue.drain() {
                edge.consume(&m, now()).await.unwrap();
            }
        }
        let later = now() + edge.settle_ms();
        assert_eq!(edge.advance_links(later).await.unwrap(), 1);
        assert_eq!(edge.advance_links(later).await.unwrap(), 0);
        assert_eq!(clicks(&edge, "u-1").await, 4.0, "{pipeline}");
        assert_eq!(pair_clicks(&edge, "u-1|lens").await, 3.0);
        assert_log_replays_to_the_store(&edge, later + MINUTE).await;
    }
}

#[tokio::test]
async fn a_tab_still_anonymous_after_sign_in_moves_its_events_to_the_user() {
    let edge = erasing_edge("direct");
    browse_then_sign_in(&edge).await;
    // The other tab has not heard of the sign-in.
    sent(&edge, visit("b-5", "cid-a", None, "lens", T)).await;
    assert_eq!(clicks(&edge, "u-1").await, 5.0);
    assert_eq!(pair_clicks(&edge, "u-1|lens").await, 4.0);
    // Its batch again: once.
    sent(&edge, visit("b-5", "cid-a", None, "lens", T)).await;
    assert_eq!(clicks(&edge, "u-1").await, 5.0);
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}

#[tokio::test]
async fn two_tabs_signing_in_at_once_link_once() {
    let edge = erasing_edge("direct");
    sent(&edge, visit("b-1", "cid-a", None, "lens", T)).await;
    let (one, two) = futures_util::future::join(
        send_at(
            &edge,
            ingest(visit("b-t1", "cid-a", Some("u-1"), "lens", T)),
            now(),
        ),
        send_at(
            &edge,
            ingest(visit("b-t2", "cid-a", Some("u-1"), "lens", T)),
            now(),
        ),
    )
    .await;
    assert_eq!((one.0, two.0), (202, 202), "{} {}", one.1, two.1);
    edge.advance_links(now() + edge.settle_ms()).await.unwrap();
    assert_eq!(clicks(&edge, "u-1").await, 3.0);
    assert_eq!(pair_clicks(&edge, "u-1|lens").await, 3.0);
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}

#[tokio::test]
async fn a_second_device_adds_its_own_visit() {
    let edge = erasing_edge("direct");
    browse_then_sign_in(&edge).await;
    sent(&edge, visit("d-1", "cid-phone", None, "lens", T)).await;
    sent(&edge, visit("d-2", "cid-phone", Some("u-1"), "bag", T)).await;
    assert_eq!(clicks(&edge, "u-1").await, 6.0);
    assert_eq!(pair_clicks(&edge, "u-1|lens").await, 4.0);
    assert_eq!(pair_clicks(&edge, "u-1|bag").await, 1.0);
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}

#[tokio::test]
async fn a_shared_device_gives_the_second_user_only_what_came_after() {
    let edge = erasing_edge("direct");
    browse_then_sign_in(&edge).await;
    // u-2 signs in on the same browser without u-1 signing out.
    sent(&edge, visit("s-1", "cid-a", Some("u-2"), "bag", T)).await;
    assert_eq!(clicks(&edge, "u-2").await, 1.0, "nothing of u-1's visit");
    // Anonymous again (no reset): the client follows u-2 now.
    sent(&edge, visit("s-2", "cid-a", None, "bag", T)).await;
    assert_eq!(clicks(&edge, "u-2").await, 2.0);
    assert_eq!(clicks(&edge, "u-1").await, 4.0, "u-1 keeps what it had");
    assert_eq!(pair_clicks(&edge, "u-2|bag").await, 2.0);
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}

/// A batch of `cid-a` written to the store and the log behind the gate's
/// back: one that passed the gate before the sign-in and landed after its
/// move.
async fn landed_late(edge: &Edge<MemoryStore>, batch_id: &str) {
    let body = visit(batch_id, "cid-a", None, "lens", T);
    let batch = receive(body.as_bytes(), now(), &edge.config.limits).unwrap();
    let logged = LoggedBatch::of(&batch, "dev", None, edge.spec.hash());
    let deltas = freshet_core::aggregate::aggregate(edge.spec, &batch, None);
    edge.store_and_log(&deltas, &logged).await.unwrap();
}

#[tokio::test]
async fn a_write_landing_after_the_move_moves_when_the_store_has_settled() {
    let edge = erasing_edge("direct");
    browse_then_sign_in(&edge).await;
    landed_late(&edge, "b-late").await;
    assert_eq!(clicks(&edge, "u-1").await, 4.0, "not yet");
    // Not due before the store has settled.
    assert_eq!(edge.advance_links(now() + SECOND).await.unwrap(), 0);
    assert_eq!(
        edge.advance_links(now() + edge.settle_ms()).await.unwrap(),
        1
    );
    assert_eq!(clicks(&edge, "u-1").await, 5.0);
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}

#[tokio::test]
async fn a_move_that_fails_half_way_is_finished_once_by_the_next_run() {
    let edge = erasing_edge("direct");
    browse_then_sign_in(&edge).await;
    landed_late(&edge, "b-late").await;
    let later = now() + edge.settle_ms();
    // The log fails: the move was recorded and applied to the store, not
    // logged.
    bucket(&edge).fail.set(true);
    assert!(edge.advance_links(later).await.is_err());
    bucket(&edge).fail.set(false);
    let pending = edge.registry.load_link("cid-a").await.unwrap().unwrap();
    assert!(pending.pending.is_some(), "recorded before it was applied");
    // The store is down for the next run: it stays due.
    edge.store.set_down(true);
    assert!(edge.advance_links(later).await.is_err());
    edge.store.set_down(false);
    assert_eq!(edge.advance_links(later).await.unwrap(), 1);
    assert_eq!(clicks(&edge, "u-1").await, 5.0, "once");
    assert!(
        edge.registry
            .load_link("cid-a")
            .await
            .unwrap()
            .unwrap()
            .pending
            .is_none()
    );
    assert_log_replays_to_the_store(&edge, later + MINUTE).await;
}

#[tokio::test]
async fn a_sign_in_whose_batch_fails_links_on_its_retry_and_moves_once() {
    let edge = erasing_edge("direct");
    sent(&edge, visit("b-1", "cid-a", None, "lens", T)).await;
    edge.store.set_down(true);
    let (status, _) = send_at(
        &edge,
        ingest(visit("b-2", "cid-a", Some("u-1"), "lens", T)),
        now(),
    )
    .await;
    assert_eq!(status, 503);
    edge.store.set_down(false);
    // The retry links again and moves before its 202.
    sent(&edge, visit("b-2", "cid-a", Some("u-1"), "lens", T)).await;
    assert_eq!(clicks(&edge, "u-1").await, 2.0);
    assert_eq!(pair_clicks(&edge, "u-1|lens").await, 2.0);
    edge.advance_links(now() + edge.settle_ms()).await.unwrap();
    assert_eq!(clicks(&edge, "u-1").await, 2.0);
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}

#[tokio::test]
async fn erasing_the_user_erases_what_its_clients_gave_and_their_links() {
    let edge = erasing_edge("direct");
    browse_then_sign_in(&edge).await;
    let (status, body) = send_at(
        &edge,
        admin(Method::Post, "/v1/erasures", r#"{"userId":"u-1"}"#),
        now(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    edge.advance_erasures(now() + edge.settle_ms() + SECOND)
        .await
        .unwrap();
    let all = everything(&edge).await;
    assert!(!all.contains("u-1") && !all.contains("cid-a"), "{all}");
    assert!(edge.registry.load_link("cid-a").await.unwrap().is_none());
    assert_log_replays_to_the_store(&edge, now() + MINUTE).await;
}
