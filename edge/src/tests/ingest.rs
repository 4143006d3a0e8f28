//! `POST /v1/ingest` and its preflight: payloads, duplicates, bad input,
//! identity, CORS and the body limit.

use super::*;

#[tokio::test]
async fn no_write_keys_refuses_ingest_as_misconfigured_and_says_so_in_health() {
    let edge = edge_with(&[("FRESHET_READ_TOKEN", READ_TOKEN)]);
    for req in [
        ingest(SEED),
        Request::new(Method::Options, "/v1/ingest").with_header("origin", "https://a.example"),
    ] {
        let (status, body, _) = send(&edge, req).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"], "misconfigured");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("FRESHET_WRITE_KEYS: no write key"),
            "{message}"
        );
    }
    let (_, body, _) = send(&edge, Request::new(Method::Get, "/health")).await;
    assert_eq!(body["ingest"], "misconfigured");
    // Nothing was stored, and reads still work.
    let (status, body, _) = send(&edge, get("/v1/features/user/cid-seed-1?names=pageviews")).await;
    assert_eq!(status, 200);
    assert_eq!(body["features"]["pageviews"]["updatedAt"], Value::Null);
}

#[tokio::test]
async fn the_seed_payload_becomes_features() {
    let edge = edge();
    let (status, body, _) = send(&edge, ingest(SEED)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"accepted": 3, "rejected": []}));
    assert_eq!(
        num(&feature(&edge, "user", "cid-seed-1", "pageviews").await),
        1.0
    );
    assert_eq!(
        num(&feature(&edge, "user", "cid-seed-1", "clicks_product_card").await),
        1.0
    );
    assert_eq!(
        feature(&edge, "user", "cid-seed-1", "last_interacted_product").await,
        "prod-1"
    );
    assert_eq!(
        feature(&edge, "user", "cid-seed-1", "viewed_categories").await,
        json!(["cameras"])
    );
    assert_eq!(
        num(&feature(&edge, "product", "prod-1", "popularity_7d").await),
        1.0
    );
}

#[tokio::test]
async fn the_tracker_payload_with_its_body_key_becomes_features() {
    let edge = edge();
    let req = Request::new(Method::Post, "/v1/ingest")
        .with_header("content-type", "text/plain;charset=UTF-8")
        .with_body(TRACKER);
    let (status, body, _) = send(&edge, req).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 4);
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "clicks_product_card").await),
        2.0
    );
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "searches").await),
        1.0
    );
    assert_eq!(
        feature(&edge, "user", "cid-tracker-1", "last_interacted_product").await,
        "prod-9"
    );
}

#[tokio::test]
async fn a_retried_batch_changes_nothing() {
    let edge = edge();
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    let before = edge.store.snapshot();
    let (status, body, _) = send(&edge, ingest(TRACKER)).await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(4)));
    assert_eq!(edge.store.snapshot(), before);
    // The seed shape has no batchId: the body's hash is its idempotency key.
    assert_eq!(send(&edge, ingest(SEED)).await.0, 202);
    let before = edge.store.snapshot();
    assert_eq!(send(&edge, ingest(SEED)).await.0, 202);
    assert_eq!(edge.store.snapshot(), before);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn a_gzipped_batch_is_accepted() {
    let edge = edge();
    let (status, body, _) = send(&edge, ingest(gzip(TRACKER.as_bytes()))).await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(4)));
}

#[tokio::test]
async fn every_bad_input_gets_its_status_and_leaves_the_store_untouched() {
    let limit = freshet_core::limits::Limits::default();
    let mut bomb = br#"{"events":[{"type":"a","timestamp":"2026-11-22T10:00:00Z","clientId":"c","payload":{"p":""#.to_vec();
    bomb.extend(std::iter::repeat_n(b'a', limit.max_body_bytes + 1));
    bomb.extend(br#""}}]}"#);
    let too_many: Vec<Value> = (0..=limit.max_events)
        .map(|i| event(i, "page_view", "2026-11-22T09:59:00Z"))
        .collect();
    let expired = issue_token(
        SECRET,
        "user-1",
        now() / 1000 - crate::routes::IDENTITY_GRACE_S - 1,
    );
    let forged = issue_token(b"another-secret", "user-1", now() / 1000 + 600);
    let with_identity = |token: &str| {
        json!({"batchId": "b-id", "identity": token,
               "events": [{"type": "page_view", "timestamp": "2026-11-22T09:59:00Z",
                           "clientId": "cid-x", "userId": "user-1"}]})
        .to_string()
    };
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        ("malformed json", ingest(MALFORMED), 400, "malformed_json"),
        ("not json", ingest(NOT_JSON), 400, "malformed_json"),
        (
            "empty batch",
            ingest(r#"{"events":[]}"#),
            400,
            "empty_batch",
        ),
        (
            "too big",
            {
                let mut r = ingest("");
                r.body = Body::TooLarge;
                r
            },
            413,
            "body_too_large",
        ),
        ("gzip bomb", ingest(gzip(&bomb)), 413, "body_too_large"),
        (
            "bad gzip",
            ingest(vec![0x1f, 0x8b, 1, 2, 3]),
            400,
            "bad_gzip",
        ),
        (
            "too many events",
            ingest(batch(too_many)),
            400,
            "too_many_events",
        ),
        (
            "unknown write key",
            ingest(SEED).with_header("x-freshet-key", "nope"),
            401,
            "unknown_write_key",
        ),
        (
            "missing write key",
            Request::new(Method::Post, "/v1/ingest").with_body(SEED),
            401,
            "missing_write_key",
        ),
        (
            "disallowed origin",
            ingest(SEED)
                .with_header("x-freshet-key", "site")
                .with_header("origin", "https://evil.example"),
            403,
            "origin_not_allowed",
        ),
        (
            "forged identity",
            ingest(with_identity(&forged)),
            401,
            "identity_bad_signature",
        ),
        (
            "expired identity",
            ingest(with_identity(&expired)),
            401,
            "identity_expired",
        ),
        (
            "bad content type",
            ingest(SEED).with_header("content-type", "application/xml"),
            415,
            "unsupported_media_type",
        ),
    ];
    let edge = edge();
    for (name, mut req, status, code) in cases {
        // `ingest()` set a key header first; a later one is meant to win.
        if let Some(pos) = req.headers.iter().rposition(|(n, _)| n == "x-freshet-key") {
            let last = req.headers[pos].clone();
            req.headers.retain(|(n, _)| n != "x-freshet-key");
            req.headers.push(last);
        }
        if let Some(pos) = req.headers.iter().rposition(|(n, _)| n == "content-type") {
            let last = req.headers[pos].clone();
            req.headers.retain(|(n, _)| n != "content-type");
            req.headers.push(last);
        }
        let (got, body, _) = send(&edge, req).await;
        assert_eq!(
            (got, body["error"].as_str().unwrap_or("")),
            (status, code),
            "{name}: {body}"
        );
        assert!(body["message"].is_string(), "{name}");
        assert!(
            edge.store.snapshot().is_empty(),
            "{name} wrote to the store"
        );
    }
}

#[tokio::test]
async fn bad_events_are_rejected_one_by_one() {
    let edge = edge();
    let body = batch(vec![
        event(0, "Bad-Type", "2026-11-22T09:59:00Z"),
        event(1, "page_view", "yesterday"),
    ]);
    let (status, answer, _) = send(&edge, ingest(body)).await;
    assert_eq!(status, 202);
    assert_eq!(
        answer,
        json!({"accepted": 0, "rejected": [{"index": 0, "reason": "bad_type"},
                                            {"index": 1, "reason": "bad_timestamp"}]})
    );
    assert!(edge.store.snapshot().is_empty());
}

#[tokio::test]
async fn the_bad_events_fixture_is_rejected_event_by_event() {
    let edge = edge();
    let (status, answer, _) = send(&edge, ingest(BAD_EVENTS)).await;
    assert_eq!(status, 202);
    assert_eq!(answer["accepted"], 0);
    assert_eq!(answer["rejected"][0]["reason"], "bad_type");
    assert_eq!(answer["rejected"][1]["reason"], "bad_timestamp");
    assert!(edge.store.snapshot().is_empty());
}

#[tokio::test]
async fn a_valid_identity_keys_features_by_user_id() {
    let edge = edge();
    let token = issue_token(SECRET, "user-42", now() / 1000 + 600);
    let body = json!({"batchId": "b-2", "identity": token, "events": [
        {"type": "page_view", "timestamp": "2026-11-22T09:59:00Z", "clientId": "cid-y", "userId": "user-42"},
        {"type": "page_view", "timestamp": "2026-11-22T09:59:01Z", "clientId": "cid-y", "userId": "user-other"}
    ]});
    assert_eq!(send(&edge, ingest(body.to_string())).await.0, 202);
    // Its own page view, and cid-y's, which follows it at sign-in
    // (`tests::sign_in`).
    assert_eq!(
        num(&feature(&edge, "user", "user-42", "pageviews").await),
        2.0
    );
    // A userId the token does not vouch for falls back to the clientId.
    assert_eq!(
        num(&feature(&edge, "user", "cid-y", "pageviews").await),
        1.0
    );
    assert_eq!(
        num(&feature(&edge, "user", "user-other", "pageviews").await),
        0.0
    );
}

#[tokio::test]
async fn store_down_is_503_and_a_retry_counts_once() {
    let edge = edge();
    edge.store.set_down(true);
    let (status, body, res) = send(&edge, ingest(TRACKER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    assert_eq!(res.header("retry-after"), Some("1"));
    edge.store.set_down(false);
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    assert_eq!(
        num(&feature(&edge, "user", "cid-tracker-1", "clicks_product_card").await),
        2.0
    );
}

#[tokio::test]
async fn cors_follows_the_write_keys() {
    let edge = edge_with(&[("FRESHET_WRITE_KEYS", "site=https://shop.example")]);
    let preflight = |origin: &str| {
        Request::new(Method::Options, "/v1/ingest")
            .with_header("origin", origin)
            .with_header("access-control-request-method", "POST")
    };
    let (status, _, res) = send(&edge, preflight("https://shop.example")).await;
    assert_eq!(status, 204);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(
        res.header("access-control-allow-headers")
            .unwrap()
            .contains("x-freshet-key")
    );
    let (status, _, res) = send(&edge, preflight("https://evil.example")).await;
    assert_eq!(status, 403);
    assert_eq!(res.header("access-control-allow-origin"), None);

    let req = ingest(TRACKER.replace("\"dev\"", "\"site\""))
        .with_header("origin", "https://shop.example");
    let req = Request {
        headers: req
            .headers
            .into_iter()
            .filter(|(n, _)| n != "x-freshet-key")
            .collect(),
        ..req
    };
    let (status, _, res) = send(&edge, req).await;
    assert_eq!(status, 202);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(res.header("vary"), Some("Origin"));
    assert_eq!(
        res.header("access-control-expose-headers"),
        Some("Retry-After"),
        "a cross-origin tracker must be able to read Retry-After"
    );
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_is_read_and_one_over_is_413() {
    let edge = edge();
    let limit = edge.config.limits.max_body_bytes;
    let body = TRACKER.as_bytes();
    // Padding after the JSON keeps it valid: whitespace.
    let mut at = body.to_vec();
    at.resize(limit, b' ');
    let mut capped = crate::http::CappedBody::new(limit, Some(at.len()));
    assert!(capped.push(&at));
    let mut req = ingest(Vec::new());
    req.body = capped.finish();
    let (status, answer, _) = send(&edge, req).await;
    assert_eq!(status, 202, "{answer}");

    let mut over = crate::http::CappedBody::new(limit, None);
    over.push(&at);
    over.push(b" ");
    let mut req = ingest(Vec::new());
    req.body = over.finish();
    let (status, answer, _) = send(&edge, req).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("body_too_large"))
    );
}

#[tokio::test]
async fn an_identity_is_honoured_for_the_grace_after_its_expiry() {
    let edge = edge();
    let at = |expiry: i64, n: usize| {
        json!({"batchId": format!("b-grace-{n}"), "identity": issue_token(SECRET, "user-g", expiry),
               "events": [{"id": format!("e-grace-{n}"), "type": "page_view",
                           "timestamp": "2026-11-22T09:59:00Z", "clientId": "cid-g", "userId": "user-g"}]})
        .to_string()
    };
    let now_s = now() / 1000;
    let grace = crate::routes::IDENTITY_GRACE_S;
    assert_eq!(send(&edge, ingest(at(now_s - grace, 1))).await.0, 202);
    let (status, body, _) = send(&edge, ingest(at(now_s - grace - 1, 2))).await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("identity_expired"))
    );
    assert_eq!(
        num(&feature(&edge, "user", "user-g", "pageviews").await),
        1.0
    );
}

#[tokio::test]
async fn the_ingest_route_answers_post_and_its_preflight() {
    assert_allow("/v1/ingest", "POST, OPTIONS").await;
}
