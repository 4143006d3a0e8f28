//! Ingest's rate limits: per client, per site, and what does not count.

use super::*;

#[tokio::test]
async fn a_client_over_its_limit_gets_429_and_its_retry_counts_once() {
    let edge = limited_edge(3, 100);
    for n in 0..3 {
        let (status, body, _) = send(&edge, ingest(click_from("cid-a", n))).await;
        assert_eq!(status, 202, "{body}");
    }
    let before = edge.store.snapshot();
    let (status, body, res) = send(&edge, ingest(click_from("cid-a", 3))).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(res.header("retry-after"), Some("10"));
    assert_eq!(
        edge.store.snapshot(),
        before,
        "a refused batch stores nothing"
    );
    // Another client of the same site is not held back.
    assert_eq!(send(&edge, ingest(click_from("cid-b", 0))).await.0, 202);
    // In the next period the refused batch, retried as is, counts once.
    edge.limiter.next_period();
    assert_eq!(send(&edge, ingest(click_from("cid-a", 3))).await.0, 202);
    assert_eq!(send(&edge, ingest(click_from("cid-a", 3))).await.0, 202);
    assert_eq!(
        num(&feature(&edge, "user", "cid-a", "clicks_product_card").await),
        4.0
    );
}

#[tokio::test]
async fn a_site_over_its_limit_gets_429_whatever_the_client_ids() {
    let edge = limited_edge(100, 5);
    for n in 0..5 {
        assert_eq!(
            send(&edge, ingest(click_from(&format!("cid-{n}"), 0)))
                .await
                .0,
            202
        );
    }
    let (status, body, _) = send(&edge, ingest(click_from("cid-new", 0))).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["message"].as_str().unwrap().contains("site"), "{body}");
}

#[tokio::test]
async fn refused_requests_do_not_use_up_the_limit() {
    let edge = limited_edge(2, 2);
    // Unknown write key, malformed body, forged identity: refused before counting.
    let bad_key = Request::new(Method::Post, "/v1/ingest")
        .with_header("content-type", "application/json")
        .with_header("x-freshet-key", "nope")
        .with_body(click_from("cid-a", 0));
    assert_eq!(send(&edge, bad_key).await.0, 401);
    assert_eq!(send(&edge, ingest("{not json")).await.0, 400);
    let forged = json!({"batchId": "b-f", "identity": "u1.9999999999.AAAA",
                        "events": [{"id": "e-f", "type": "page_view",
                                    "timestamp": "2026-11-22T09:59:59.000Z",
                                    "clientId": "cid-a"}]});
    assert_eq!(send(&edge, ingest(forged.to_string())).await.0, 401);
    for n in 0..2 {
        assert_eq!(send(&edge, ingest(click_from("cid-a", n))).await.0, 202);
    }
    assert_eq!(send(&edge, ingest(click_from("cid-a", 2))).await.0, 429);
}

#[tokio::test]
async fn a_429_reaches_a_cross_origin_tracker_with_retry_after_readable() {
    let edge = limited_edge(0, 100);
    let req = Request::new(Method::Post, "/v1/ingest")
        .with_header("content-type", "application/json")
        .with_header("x-freshet-key", "site")
        .with_header("origin", "https://shop.example")
        .with_body(click_from("cid-a", 0));
    let (status, _, res) = send(&edge, req).await;
    assert_eq!(status, 429);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let exposed = res.header("access-control-expose-headers").unwrap_or("");
    assert!(exposed.eq_ignore_ascii_case("retry-after"), "{exposed}");
}
