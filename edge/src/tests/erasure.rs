//! Erasure over the memory store, registry and bucket: what it removes,
//! what it keeps, what can never come back, and its bad requests.

use freshet_core::erasure::Principal;
use freshet_core::time::MINUTE;

use super::*;
use crate::store::EntityKey;

pub(super) const ADMIN: &str = "admin-token-0123";

pub(super) fn erasing_edge(pipeline: &str) -> Edge<MemoryStore> {
    edge_with(&[
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_ADMIN_TOKEN", ADMIN),
        ("FRESHET_IDENTITY_SECRET", "identity-secret"),
        ("FRESHET_PIPELINE", pipeline),
    ])
}

pub(super) fn admin(method: Method, path: &str, body: &str) -> Request {
    Request::new(method, path)
        .with_header("authorization", &format!("Bearer {ADMIN}"))
        .with_body(body.as_bytes().to_vec())
}

/// A batch from `client` (signed in as `user` when given) at `t`: a page
/// view and a click on `product`.
pub(super) fn visit(
    batch_id: &str,
    client: &str,
    user: Option<&str>,
    product: &str,
    t: &str,
) -> String {
    let mut body = json!({"batchId": batch_id, "events": [
        {"id": format!("{batch_id}-v"), "type": "page_view", "timestamp": t, "clientId": client},
        {"id": format!("{batch_id}-c"), "type": "product_click", "timestamp": t, "clientId": client,
         "payload": {"productId": product}},
    ]});
    if let Some(user) = user {
        body["identity"] = json!(issue_token(SECRET, user, now() / 1000 + 600));
        for e in body["events"].as_array_mut().unwrap() {
            e["userId"] = json!(user);
        }
    }
    body.to_string()
}

pub(super) async fn send_at(edge: &Edge<MemoryStore>, req: Request, at: Millis) -> (u16, Value) {
    let res = edge.handle(&req, at).await.response;
    (res.status, res.body_json().unwrap_or(Value::Null))
}

/// Several visitors, anonymous and signed in, with pairs: `cid-a` browses
/// anonymously then signs in as `u-1`; `cid-b` and `cid-c` stay anonymous.
async fn traffic(edge: &Edge<MemoryStore>) {
    for (id, client, user, product) in [
        ("b-a1", "cid-a", None, "p-1"),
        ("b-a2", "cid-a", Some("u-1"), "p-2"),
        ("b-b1", "cid-b", None, "p-1"),
        ("b-c1", "cid-c", None, "p-2"),
        ("b-b2", "cid-b", None, "p-3"),
    ] {
        let (status, body) = send_at(
            edge,
            ingest(visit(id, client, user, product, "2026-11-22T09:59:00Z")),
            now(),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
}

fn keys_of(edge: &Edge<MemoryStore>) -> Vec<EntityKey> {
    edge.store.snapshot().into_keys().collect()
}

/// Every stored key and log byte, as text, to look for a person's ids in.
pub(super) async fn everything(edge: &Edge<MemoryStore>) -> String {
    use crate::event_log::Bucket;
    let mut all = format!("{:?}", edge.store.snapshot());
    for key in bucket(edge).keys() {
        all.push_str(&key);
        let body = bucket(edge).get(&key).await.unwrap().unwrap();
        for b in freshet_core::log::parse_ndjson(&body).unwrap() {
            all.push_str(&String::from_utf8(b.to_ndjson()).unwrap());
        }
    }
    all
}

/// The log exported and replayed equals the store, entity by entity.
pub(super) async fn assert_log_replays_to_the_store(edge: &Edge<MemoryStore>, at: Millis) {
    let res = edge
        .handle(&get("/v1/events?from=2026-11-01T00:00:00Z"), at)
        .await
        .response;
    assert_eq!(res.status, 200);
    let mut replay = freshet_core::replay::Replay::new(compiled_spec().unwrap());
    for b in freshet_core::log::parse_ndjson(&res.body).unwrap() {
        replay.apply(&b);
    }
    let stored = edge.store.snapshot();
    for (key, doc) in &stored {
        assert_eq!(
            replay.doc(&key.entity, &key.id).features,
            doc.features,
            "{key:?}"
        );
    }
    for (entity, id) in replay.docs().keys() {
        assert!(
            stored.contains_key(&EntityKey::new(entity.as_str(), id.as_str())),
            "replay has {entity}:{id}, the store does not"
        );
    }
}

/// The traffic, then `cid-b` erased at `now()`: the 202's receipt.
async fn erase_b(edge: &Edge<MemoryStore>) -> Value {
    traffic(edge).await;
    let (status, receipt) = send_at(
        edge,
        admin(Method::Post, "/v1/erasures", r#"{"clientId":"cid-b"}"#),
        now(),
    )
    .await;
    assert_eq!(status, 202, "{receipt}");
    receipt
}

#[tokio::test]
async fn erasing_a_user_removes_them_their_clients_and_pairs_and_keeps_everyone_else() {
    let edge = erasing_edge("direct");
    traffic(&edge).await;
    let before = edge.store.snapshot();
    let (status, receipt) = send_at(
        &edge,
        admin(Method::Post, "/v1/erasures", r#"{"userId":"u-1"}"#),
        now(),
    )
    .await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["store"]["state"], "done");
    assert_eq!(receipt["log"]["state"], "pending");
    // The user and the client it signed in from, and their pairs: gone at once.
    let gone = |k: &EntityKey| k.id.contains("u-1") || k.id.contains("cid-a");
    assert!(!keys_of(&edge).iter().any(gone), "{:?}", keys_of(&edge));
    assert_eq!(receipt["store"]["entities"], 2, "{receipt}");
    // cid-a|p-1, and u-1's pairs: p-2, and p-1 from cid-a's visit (moved at
    // sign-in).
    assert_eq!(receipt["composites"]["entities"], 3, "{receipt}");
    // Everyone else is unchanged to the last value; the products keep the
    // person's clicks as anonymous counts.
    for (key, doc) in edge.store.snapshot() {
        assert_eq!(before[&key], doc, "{key:?}");
    }
    // Before the log's rewrite, the export already leaves them out, and
    // replays to the store.
    assert_log_replays_to_the_store(&edge, now() + 1).await;
    let export = edge
        .handle(&get("/v1/events?from=2026-11-01T00:00:00Z"), now() + 1)
        .await
        .response;
    let text = String::from_utf8(export.body).unwrap();
    assert!(!text.contains("u-1") && !text.contains("cid-a"), "{text}");
    assert!(
        everything(&edge).await.contains("cid-a"),
        "not rewritten yet"
    );

    // Settled: the GET finishes it.
    let id = receipt["id"].as_str().unwrap();
    let later = now() + edge.settle_ms();
    let (status, done) = send_at(
        &edge,
        admin(Method::Get, &format!("/v1/erasures/{id}"), ""),
        later,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "done", "{done}");
    // Their two visits, and the move of cid-a's visit to u-1 at sign-in
    // (its user and its pair: two `$link` events, one object).
    assert_eq!(done["log"]["events"], 6, "{done}");
    assert_eq!(done["log"]["objects"], 3, "{done}");
    assert!(done.get("nothingFound").is_none());
    let all = everything(&edge).await;
    assert!(!all.contains("u-1") && !all.contains("cid-a"), "{all}");
    assert_log_replays_to_the_store(&edge, later).await;
    // The receipt keeps no id of the person.
    assert!(!done.to_string().contains("u-1"));
    // The registry forgot what it indexed of them.
    assert_eq!(
        edge.registry.indexed(&Principal::User("u-1".into())),
        Default::default()
    );
}

#[tokio::test]
async fn nothing_of_an_erased_visitor_comes_back_and_what_comes_after_counts_from_zero() {
    let edge = erasing_edge("direct");
    let receipt = erase_b(&edge).await;
    // A retried batch, a saved queue sent again, a late beacon: dropped,
    // and the 202 says why.
    for (id, t) in [
        ("b-b1", "2026-11-22T09:59:00Z"),
        ("b-old", "2026-11-20T08:00:00Z"),
    ] {
        let (status, body) = send_at(
            &edge,
            ingest(visit(id, "cid-b", None, "p-1", t)),
            now() + 2 * MINUTE,
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            body["skipped"],
            json!([{"index": 0, "reason": "erased"}, {"index": 1, "reason": "erased"}])
        );
    }
    assert!(!keys_of(&edge).iter().any(|k| k.id.contains("cid-b")));
    // A batch mixing others' events passes with those.
    let mixed = json!({"batchId": "b-mix", "events": [
        {"id": "m1", "type": "page_view", "timestamp": "2026-11-22T09:59:30Z", "clientId": "cid-b"},
        {"id": "m2", "type": "page_view", "timestamp": "2026-11-22T09:59:30Z", "clientId": "cid-c"},
    ]});
    let (status, body) = send_at(&edge, ingest(mixed.to_string()), now() + 1).await;
    assert_eq!(
        (status, &body["skipped"]),
        (202, &json!([{"index": 0, "reason": "erased"}]))
    );
    assert_eq!(
        num(&feature(&edge, "user", "cid-c", "pageviews").await),
        2.0
    );
    // The erasure takes effect once it has settled (6 s here): an event
    // dated before then is its too.
    let (status, body) = send_at(
        &edge,
        ingest(visit(
            "b-soon",
            "cid-b",
            None,
            "p-1",
            "2026-11-22T10:00:04Z",
        )),
        now() + 1_000,
    )
    .await;
    assert_eq!(
        (status, body["skipped"][0]["reason"].as_str()),
        (202, Some("erased")),
        "{body}"
    );
    // After it, while it settles: wait, and nothing is written.
    let after = "2026-11-22T10:00:07Z";
    let (status, body) = send_at(
        &edge,
        ingest(visit("b-new", "cid-b", None, "p-1", after)),
        now() + 1_000,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("erasing")),
        "{body}"
    );
    assert!(!keys_of(&edge).iter().any(|k| k.id.contains("cid-b")));
    // Settled, but until the job's last sweep it still waits.
    let settled = now() + edge.settle_ms();
    let resend = || ingest(visit("b-new", "cid-b", None, "p-1", after));
    let (status, body) = send_at(&edge, resend(), settled).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("erasing")),
        "{body}"
    );
    // The job runs; then the same batch counts, from zero.
    assert_eq!(edge.advance_erasures(settled).await.unwrap(), 1);
    let (status, body) = send_at(&edge, resend(), settled + 1).await;
    assert_eq!(status, 202, "{body}");
    assert!(body.get("skipped").is_none(), "{body}");
    let (_, served) = send_at(
        &edge,
        get("/v1/features/user/cid-b?names=pageviews"),
        settled + 1,
    )
    .await;
    assert_eq!(served["features"]["pageviews"]["value"], 1, "{served}");
    // Sent again: once.
    assert_eq!(send_at(&edge, resend(), settled + 2).await.0, 202);
    assert_eq!(
        num(&feature(&edge, "user", "cid-b", "pageviews").await),
        1.0
    );
    // The rewritten log replays to the store, the new visit in.
    assert_log_replays_to_the_store(&edge, settled + 3).await;
    let id = receipt["id"].as_str().unwrap();
    let (_, done) = send_at(
        &edge,
        admin(Method::Get, &format!("/v1/erasures/{id}"), ""),
        settled,
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    // The erased page views are gone; their clicks stay as anonymous
    // events for the products.
    let all = everything(&edge).await;
    assert!(
        !all.contains("b-b1-v") && all.contains("b-b1.anon"),
        "{all}"
    );
}

#[tokio::test]
async fn a_message_queued_before_an_erasure_is_dropped_by_the_consumer() {
    let edge = erasing_edge("queue");
    traffic(&edge).await;
    // Consume all but the last message: cid-b's second batch waits in the queue.
    let mut messages = edge.queue.drain();
    let waiting = messages.pop().unwrap();
    for m in &messages {
        edge.consume(m, now()).await.unwrap();
    }
    let (status, _) = send_at(
        &edge,
        admin(Method::Post, "/v1/erasures", r#"{"clientId":"cid-b"}"#),
        now() + 1,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(edge.consume(&waiting, now() + 2).await.unwrap(), 1);
    assert!(!keys_of(&edge).iter().any(|k| k.id.contains("cid-b")));
    assert!(
        !everything(&edge).await.contains("b-b2-c"),
        "the waiting batch was logged"
    );
    edge.advance_erasures(now() + edge.settle_ms() + 2)
        .await
        .unwrap();
    assert!(!everything(&edge).await.contains("cid-b"));
    assert_log_replays_to_the_store(&edge, now() + edge.settle_ms() + 3).await;
}

#[tokio::test]
async fn an_unknown_subject_completes_with_nothing_found() {
    let edge = erasing_edge("direct");
    traffic(&edge).await;
    let before = edge.store.snapshot();
    let (status, receipt) = send_at(
        &edge,
        admin(
            Method::Post,
            "/v1/erasures",
            r#"{"userId":"nobody","clientId":"cid-z"}"#,
        ),
        now(),
    )
    .await;
    assert_eq!(status, 202);
    let id = receipt["id"].as_str().unwrap();
    let later = now() + edge.settle_ms();
    let (_, done) = send_at(
        &edge,
        admin(Method::Get, &format!("/v1/erasures/{id}"), ""),
        later,
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["nothingFound"].as_bool()),
        (Some("done"), Some(true)),
        "{done}"
    );
    assert_eq!(edge.store.snapshot(), before);
}

#[tokio::test]
async fn bad_erasure_requests_change_nothing_and_say_why() {
    let edge = erasing_edge("direct");
    traffic(&edge).await;
    let before = (edge.store.snapshot(), bucket(&edge).keys());
    let body = r#"{"userId":"u-1"}"#;
    let no_token = Request::new(Method::Post, "/v1/erasures").with_body(body.as_bytes().to_vec());
    let wrong = Request::new(Method::Post, "/v1/erasures")
        .with_header("authorization", "Bearer not-the-token")
        .with_body(body.as_bytes().to_vec());
    let read_token = get("/v1/erasures/e-1");
    for req in [no_token, wrong, read_token] {
        let (status, answer) = send_at(&edge, req, now()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("unauthorized")),
            "{answer}"
        );
    }
    for (bad, why) in [
        ("{}", "name a userId"),
        (r#"{"userId":""}"#, "1 to 128 bytes"),
        (r#"{"user":"u-1"}"#, "unknown field"),
        ("not json", "the body is"),
    ] {
        let (status, answer) =
            send_at(&edge, admin(Method::Post, "/v1/erasures", bad), now()).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(why),
            "{bad}: {answer}"
        );
    }
    let (status, answer) =
        send_at(&edge, admin(Method::Get, "/v1/erasures/e-nope", ""), now()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_erasure"))
    );
    let (status, _) = send_at(&edge, admin(Method::Get, "/v1/erasures", ""), now()).await;
    assert_eq!(status, 405);
    assert_eq!((edge.store.snapshot(), bucket(&edge).keys()), before);
    // Without an admin token configured, erasure is off and says so.
    let (status, answer) = send_at(
        &super::edge(),
        admin(Method::Post, "/v1/erasures", body),
        now(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("erasure_disabled"))
    );
}

#[tokio::test]
async fn the_registry_down_fails_ingest_as_a_store_outage_and_loses_nothing() {
    let edge = erasing_edge("direct");
    edge.registry.fail.set(true);
    let (status, body) = send_at(
        &edge,
        ingest(visit("b-x", "cid-x", None, "p-1", "2026-11-22T09:59:00Z")),
        now(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    assert!(edge.store.snapshot().is_empty() && bucket(&edge).keys().is_empty());
    edge.registry.fail.set(false);
    let (status, _) = send_at(
        &edge,
        ingest(visit("b-x", "cid-x", None, "p-1", "2026-11-22T09:59:00Z")),
        now(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        num(&feature(&edge, "user", "cid-x", "pageviews").await),
        1.0
    );
}

#[tokio::test]
async fn a_job_that_dies_half_way_is_finished_by_the_next_and_sweeps_the_store_once() {
    let edge = erasing_edge("direct");
    let receipt = erase_b(&edge).await;
    let settled = now() + edge.settle_ms();
    // The log is down: the sweep is done and recorded, the rewrite fails.
    bucket(&edge).fail.set(true);
    assert!(edge.advance_erasures(settled).await.is_err());
    bucket(&edge).fail.set(false);
    // The visitor's later events count already, and a second runner does
    // not sweep them away.
    let later = visit("b-later", "cid-b", None, "p-1", "2026-11-22T10:00:30Z");
    assert_eq!(send_at(&edge, ingest(later), settled + 1).await.0, 202);
    assert_eq!(edge.advance_erasures(settled + 2).await.unwrap(), 1);
    let (_, served) = send_at(
        &edge,
        get("/v1/features/user/cid-b?names=pageviews"),
        settled + 3,
    )
    .await;
    assert_eq!(served["features"]["pageviews"]["value"], 1, "{served}");
    let id = receipt["id"].as_str().unwrap();
    let (_, done) = send_at(
        &edge,
        admin(Method::Get, &format!("/v1/erasures/{id}"), ""),
        settled + 3,
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), &done["log"]["events"]),
        (Some("done"), &json!(4)),
        "{done}"
    );
    assert!(!everything(&edge).await.contains("b-b1-v"));
    assert_log_replays_to_the_store(&edge, settled + 4).await;
}

#[tokio::test]
async fn a_second_runner_leaves_a_claimed_sweep_alone_until_the_claim_is_stale() {
    use crate::erasure::Registry;
    let edge = erasing_edge("direct");
    let receipt = erase_b(&edge).await;
    let id = receipt["id"].as_str().unwrap();
    let settled = now() + edge.settle_ms();
    // A runner claimed it and died before sweeping.
    let mut claimed = edge.registry.load(id).await.unwrap().unwrap();
    claimed.claimed_at = Some(settled);
    let read = claimed.version;
    claimed.version += 1;
    assert!(edge.registry.save_if(&claimed, read).await.unwrap());
    assert_eq!(edge.advance_erasures(settled + 1).await.unwrap(), 0);
    // Later events still wait: nothing was swept.
    let later = visit("b-later", "cid-b", None, "p-1", "2026-11-22T10:00:30Z");
    assert_eq!(
        send_at(&edge, ingest(later.clone()), settled + 1).await.0,
        503
    );
    // Stale: taken over and finished.
    let stale = settled + crate::routes::ERASURE_CLAIM_MS;
    assert_eq!(edge.advance_erasures(stale).await.unwrap(), 1);
    assert_eq!(send_at(&edge, ingest(later), stale + 1).await.0, 202);
    // A saved record that changed under a runner is not overwritten.
    let done = edge.registry.load(id).await.unwrap().unwrap();
    assert!(
        !edge
            .registry
            .save_if(&done, done.version - 1)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_log_written_before_the_index_is_found_by_a_scan_of_its_days() {
    use crate::event_log::Bucket;
    let edge = erasing_edge("direct");
    traffic(&edge).await;
    // An object of the log before this edge indexed each person's objects:
    // cid-b's visit two days ago, in no index.
    let at = now() - 2 * 86_400_000;
    let body = visit("b-old", "cid-b", None, "p-1", "2026-11-20T09:00:00Z");
    let batch = freshet_core::validate::receive(body.as_bytes(), at, &edge.config.limits).unwrap();
    let old = freshet_core::log::LoggedBatch::of(&batch, "dev", None, "old-spec");
    let key = old.object_keys().0;
    bucket(&edge)
        .put(&key, old.to_object(), old.received_at)
        .await
        .unwrap();
    // Without a scan, the indexed objects are rewritten and the old one is
    // not: the README says so.
    let (_, first) = send_at(
        &edge,
        admin(Method::Post, "/v1/erasures", r#"{"clientId":"cid-b"}"#),
        now(),
    )
    .await;
    let settled = now() + edge.settle_ms();
    edge.advance_erasures(settled).await.unwrap();
    let kept = bucket(&edge).get(&key).await.unwrap().unwrap();
    assert_eq!(
        freshet_core::log::parse_ndjson(&kept).unwrap(),
        vec![old.clone()]
    );
    // With one, over the days it names: found and rewritten.
    for bad in [
        r#"{"clientId":"cid-b","scanLogDays":-1}"#,
        r#"{"clientId":"cid-b","scanLogDays":99999}"#,
    ] {
        let (status, answer) =
            send_at(&edge, admin(Method::Post, "/v1/erasures", bad), settled).await;
        assert_eq!(status, 400, "{answer}");
    }
    let (status, second) = send_at(
        &edge,
        admin(
            Method::Post,
            "/v1/erasures",
            r#"{"clientId":"cid-b","scanLogDays":10}"#,
        ),
        settled + 1,
    )
    .await;
    assert_eq!(status, 202, "{second}");
    let later = settled + 1 + edge.settle_ms();
    // Seven days a run: two runs.
    assert_eq!(edge.advance_erasures(later).await.unwrap(), 0);
    assert_eq!(edge.advance_erasures(later).await.unwrap(), 1);
    let id = second["id"].as_str().unwrap();
    let (_, done) = send_at(
        &edge,
        admin(Method::Get, &format!("/v1/erasures/{id}"), ""),
        later,
    )
    .await;
    assert_eq!(
        (&done["log"]["daysScanned"], &done["log"]["events"]),
        (&json!(10), &json!(2)),
        "{done}"
    );
    assert!(!everything(&edge).await.contains("cid-b"));
    assert!(first["id"] != second["id"]);
}

#[tokio::test]
async fn a_request_that_fails_half_way_is_finished_by_the_job() {
    use crate::erasure::Registry;
    let edge = erasing_edge("direct");
    traffic(&edge).await;
    // The store goes down after the record and the tombstone are written.
    edge.store.set_down(true);
    let (status, answer) = send_at(
        &edge,
        admin(Method::Post, "/v1/erasures", r#"{"clientId":"cid-b"}"#),
        now(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    edge.store.set_down(false);
    assert_eq!(edge.registry.open().await.unwrap().len(), 1);
    // Nothing of the erased visitor's comes back meanwhile.
    let (status, body) = send_at(
        &edge,
        ingest(visit("b-b1", "cid-b", None, "p-1", "2026-11-22T09:59:00Z")),
        now() + 1,
    )
    .await;
    assert_eq!(
        (status, body["skipped"][0]["reason"].as_str()),
        (202, Some("erased"))
    );
    let settled = now() + edge.settle_ms();
    assert_eq!(edge.advance_erasures(settled).await.unwrap(), 1);
    assert!(edge.registry.open().await.unwrap().is_empty());
    assert!(!keys_of(&edge).iter().any(|k| k.id.contains("cid-b")));
    assert!(!everything(&edge).await.contains("cid-b"));
    let later = visit("b-later", "cid-b", None, "p-1", "2026-11-22T10:00:30Z");
    assert_eq!(send_at(&edge, ingest(later), settled + 1).await.0, 202);
    assert_eq!(
        num(&feature(&edge, "user", "cid-b", "pageviews").await),
        1.0
    );
}
