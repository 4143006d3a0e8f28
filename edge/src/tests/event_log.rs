//! The event log: each accepted batch logged once, and `GET /v1/events`.

use super::*;

#[tokio::test]
async fn each_accepted_batch_is_logged_once_and_exported_in_receive_order() {
    let edge = edge();
    for (i, body) in [SEED, TRACKER, SEED].into_iter().enumerate() {
        let res = edge
            .handle(&ingest(body), now() + i as Millis)
            .await
            .response;
        assert_eq!(res.status, 202);
    }
    let keys = bucket(&edge).keys();
    assert_eq!(
        keys.len(),
        2,
        "the retried seed batch is logged once: {keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.starts_with("events/2026/11/2") && k.ends_with(".ndjson.gz"))
    );
    let (status, text, res) = export(&edge, "from=2026-11-01T00:00:00Z").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(res.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(res.header("freshet-batches"), Some("2"));
    let batches = freshet_core::log::parse_ndjson(text.as_bytes()).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].events.len(), 3, "the seed's three events");
    assert_eq!(batches[0].write_key, "dev");
    // Replaying the export gives what the store serves.
    let spec = compiled_spec().unwrap();
    let mut replay = freshet_core::replay::Replay::new(spec);
    batches.iter().for_each(|b| replay.apply(b));
    let (_, served, _) = send(&edge, get("/v1/features/user/cid-seed-1")).await;
    let replayed = freshet_core::read::read_features(
        spec,
        "user",
        &replay.doc("user", "cid-seed-1"),
        None,
        now(),
    )
    .unwrap();
    assert_eq!(served["features"], serde_json::to_value(&replayed).unwrap());
}

#[tokio::test]
async fn a_failed_log_write_is_a_503_and_the_retry_completes_it_without_counting_twice() {
    let edge = edge();
    bucket(&edge).fail.set(true);
    let (status, body, res) = send(&edge, ingest(SEED)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "log_unavailable");
    assert_eq!(res.header("retry-after"), Some("1"));
    bucket(&edge).fail.set(false);
    let (status, _, _) = send(&edge, ingest(SEED)).await;
    assert_eq!(status, 202);
    assert_eq!(
        bucket(&edge).keys().len(),
        1,
        "the retry wrote the log entry"
    );
    let (_, body, _) = send(&edge, get("/v1/features/user/cid-seed-1?names=pageviews")).await;
    assert_eq!(
        body["features"]["pageviews"]["value"], 1,
        "the store applied it once"
    );
}

#[tokio::test]
async fn the_log_can_be_off_and_export_asks_clearly() {
    let off = Edge {
        log: EventLog::<MemoryBucket>::Off,
        ..edge_with(&[
            ("FRESHET_WRITE_KEYS", "dev=*"),
            ("FRESHET_READ_TOKEN", READ_TOKEN),
            ("FRESHET_EVENT_LOG", "off"),
        ])
    };
    assert!(!off.config.event_log);
    let (status, _, _) = send(&off, ingest(SEED)).await;
    assert_eq!(status, 202);
    let (_, health, _) = send(&off, Request::new(Method::Get, "/health")).await;
    assert_eq!(health["log"], "off");
    let res = off.handle(&get("/v1/events?from=0"), now()).await.response;
    assert_eq!(res.status, 404);

    let edge = edge();
    for (query, why) in [
        ("", "`from` is required"),
        ("from=yesterday", "`from` must be"),
        (
            "from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z",
            "`from` is after `to`",
        ),
        ("from=2026-01-01T00:00:00Z", "at most 31 days"),
        ("from=2026-11-21T00:00:00Z&limit=0", "`limit` must be"),
    ] {
        let (status, text, _) = export(&edge, query).await;
        assert_eq!(status, 400, "{query}: {text}");
        assert!(text.contains(why), "{query}: {text}");
    }
    let res = edge
        .handle(&Request::new(Method::Get, "/v1/events?from=0"), now())
        .await
        .response;
    assert_eq!(res.status, 401, "the export needs the read token");
    assert!(Config::from_lookup(|n| (n == "FRESHET_EVENT_LOG").then(|| "maybe".into())).is_err());
}

#[tokio::test]
async fn a_cut_export_page_goes_on_from_the_next_receive_time() {
    let edge = edge();
    for i in 0..3 {
        let body = batch(vec![json!({"id": format!("e{i}"), "type": "page_view",
            "timestamp": "2026-11-22T09:59:00.000Z", "clientId": "cid-page", "payload": {}})])
        .replace("b-1", &format!("b-page-{i}"));
        let req = ingest(body);
        let res = edge.handle(&req, now() + i64::from(i)).await.response;
        assert_eq!(res.status, 202);
    }
    let (_, text, res) = export(&edge, "from=2026-11-21T00:00:00Z&limit=2").await;
    assert_eq!(res.header("freshet-batches"), Some("2"));
    let next = res.header("freshet-next-from").unwrap().to_owned();
    assert_eq!(next, (now() + 2).to_string());
    assert_eq!(text.lines().count(), 2);
    let (_, rest, res) = export(&edge, &format!("from={next}&to={}", now() + 5)).await;
    assert!(res.header("freshet-next-from").is_none());
    assert!(
        rest.contains("b-page-2") && !rest.contains("b-page-1"),
        "{rest}"
    );
}

#[tokio::test]
async fn the_export_route_answers_get() {
    assert_allow("/v1/events", "GET").await;
}
