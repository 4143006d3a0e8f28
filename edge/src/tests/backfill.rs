//! `POST /v1/backfill` of a new feature version across the deploy that adds it.

use super::*;

const ADMIN: &str = "admin-test-token";

/// The compiled-in spec plus `pageviews@2` (page views and product clicks),
/// marked for backfill: the spec of the deploy that adds the version.
fn spec_v2() -> &'static freshet_core::spec::FeatureSpec {
    let text = format!(
        "{}\n[[feature]]\nname = \"pageviews\"\nversion = 2\nentity = \"user\"\n\
         on = [\"page_view\", \"product_click\"]\nagg = \"count\"\nbackfill = true\n",
        crate::spec::SPEC_TOML
    );
    Box::leak(Box::new(
        freshet_core::spec::FeatureSpec::parse(&text).unwrap(),
    ))
}

/// One page view and one click by `cid-bf`, as batch `id`.
fn visit(id: &str, minute: u32) -> String {
    let at = format!("2026-11-22T09:{minute:02}:00.000Z");
    json!({"batchId": id, "sentAt": "2026-11-22T10:00:00.000Z", "events": [
        {"id": format!("{id}-v"), "type": "page_view", "timestamp": at, "clientId": "cid-bf", "payload": {}},
        {"id": format!("{id}-c"), "type": "product_click", "timestamp": at, "clientId": "cid-bf",
         "payload": {"productId": "prod-bf"}}]})
    .to_string()
}

fn backfill_request(feature: &str, token: &str, body: &str) -> Request {
    Request::new(Method::Post, &format!("/v1/backfill?feature={feature}"))
        .with_header("authorization", &format!("Bearer {token}"))
        .with_body(body.as_bytes().to_vec())
}

#[tokio::test]
async fn backfill_counts_every_batch_once_across_the_deploy_that_adds_a_version() {
    let v2 = spec_v2();
    let vars = [
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_ADMIN_TOKEN", ADMIN),
    ];
    // The old deploy, on a store that will outlive it.
    let old = Edge {
        store: MemoryStore::new(v2),
        ..edge_with(&vars)
    };
    for (id, minute) in [
        ("bf-a", 1),
        ("bf-b", 2),
        ("bf-c", 3),
        ("bf-d", 4),
        ("bf-f", 5),
    ] {
        let bucket = bucket(&old);
        match id {
            // The store applied it, the log write failed: the retry comes to the new deploy.
            "bf-d" => bucket.fail.set(true),
            // Logged, the store down: the retry comes to the new deploy.
            "bf-f" => old.store.set_down(true),
            _ => {}
        }
        let (status, body, _) = send(&old, ingest(visit(id, minute))).await;
        let expected = if matches!(id, "bf-d" | "bf-f") {
            503
        } else {
            202
        };
        assert_eq!(status, expected, "{id}: {body}");
        bucket.fail.set(false);
        old.store.set_down(false);
    }
    // The new deploy: same store and log, the spec with pageviews@2.
    let new = Edge { spec: v2, ..old };
    // bf-c: answered 202, retried anyway (a lost answer) across the deploy.
    for (id, minute) in [("bf-c", 3), ("bf-d", 4), ("bf-f", 5), ("bf-g", 6)] {
        let (status, body, _) = send(&new, ingest(visit(id, minute))).await;
        assert_eq!(status, 202, "{id}: {body}");
    }
    let (_, log, _) = export(&new, "from=2026-11-01T00:00:00Z").await;
    assert_eq!(
        freshet_core::log::parse_ndjson(log.as_bytes())
            .unwrap()
            .len(),
        6
    );

    // Bad requests change nothing.
    let before = new.store.snapshot();
    for (req, status, error) in [
        (
            backfill_request("pageviews@2", "wrong", &log),
            401,
            "unauthorized",
        ),
        (
            backfill_request("pageviews@1", ADMIN, &log),
            400,
            "bad_request",
        ),
        (backfill_request("nope@2", ADMIN, &log), 400, "bad_request"),
        (
            backfill_request("pageviews@2", ADMIN, &format!("{log}{{\"batchId\":1}}\n")),
            400,
            "bad_request",
        ),
        (
            Request::new(Method::Get, "/v1/backfill"),
            405,
            "method_not_allowed",
        ),
    ] {
        let (got, body, _) = send(&new, req).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{body}"
        );
    }
    let (_, body, _) = send(&new, backfill_request("pageviews@1", ADMIN, &log)).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("backfill = true"),
        "{body}"
    );
    let (_, body, _) = send(
        &new,
        backfill_request("pageviews@2", ADMIN, &format!("{log}{{\"batchId\":1}}\n")),
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("line 13"),
        "{body}"
    );
    assert_eq!(new.store.snapshot(), before);

    // bf-a, bf-b: logged by the old spec, applied by backfill. bf-c: its
    // retry applied the new version live. bf-d: logged by the new spec, whose
    // live write applied the new version. bf-f: logged by the old spec, its
    // retry applied everything live. bf-g: new. Each counts once.
    let (status, body, _) = send(&new, backfill_request("pageviews@2", ADMIN, &log)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"feature": "pageviews@2", "batches": 6, "live": 2, "applied": 2, "duplicates": 2})
    );
    let (_, served, _) = send(
        &new,
        get("/v1/features/user/cid-bf?names=pageviews@1,pageviews"),
    )
    .await;
    assert_eq!(served["features"]["pageviews@1"]["value"], 6, "as before");
    assert_eq!(served["features"]["pageviews"]["value"], 12, "the latest");
    let replayed = {
        let mut replay = freshet_core::replay::Replay::new(v2);
        for b in freshet_core::log::parse_ndjson(log.as_bytes()).unwrap() {
            replay.apply(&b);
        }
        replay.doc("user", "cid-bf")
    };
    let stored = new.store.snapshot()[&crate::store::EntityKey::new("user", "cid-bf")].clone();
    assert_eq!(
        stored.features["pageviews@2"], replayed.features["pageviews@2"],
        "the store's new version equals a replay from scratch"
    );
    assert_eq!(
        stored.features["pageviews@2"].value,
        freshet_core::state::Agg::Count(freshet_core::state::Cells::Total(12))
    );
    // Running it again applies nothing.
    let (_, again, _) = send(&new, backfill_request("pageviews@2", ADMIN, &log)).await;
    assert_eq!(
        (again["applied"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(
        new.store.snapshot()[&crate::store::EntityKey::new("user", "cid-bf")],
        stored
    );

    // Without an admin token configured, backfill is off.
    let (status, body, _) = send(&edge(), backfill_request("pageviews@2", ADMIN, &log)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("backfill_disabled"))
    );
}

#[tokio::test]
async fn the_backfill_route_answers_post() {
    assert_allow("/v1/backfill", "POST").await;
}

#[tokio::test]
async fn backfill_leaves_out_an_erased_persons_events_from_a_log_read_before_the_rewrite() {
    let vars = [
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_ADMIN_TOKEN", ADMIN),
    ];
    let old = edge_with(&vars);
    assert_eq!(send(&old, ingest(visit("bf-e", 1))).await.0, 202);
    // The log's lines, as `freshet backfill` read them from S3 before the rewrite.
    let (_, lines, _) = export(&old, "from=2026-11-01T00:00:00Z").await;
    let new = Edge {
        store: MemoryStore::new(spec_v2()),
        spec: spec_v2(),
        ..old
    };
    let erase = Request::new(Method::Post, "/v1/erasures")
        .with_header("authorization", &format!("Bearer {ADMIN}"))
        .with_body(br#"{"clientId":"cid-bf"}"#.to_vec());
    assert_eq!(send(&new, erase).await.0, 202);
    let (status, body, _) = send(&new, backfill_request("pageviews@2", ADMIN, &lines)).await;
    // Ungated, pageviews@2 of user:cid-bf would be applied here.
    assert_eq!((status, &body["applied"]), (200, &json!(0)), "{body}");
    assert!(new.store.snapshot().is_empty());
}
