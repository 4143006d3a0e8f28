//! Routing, CORS, auth and error mapping over the memory store, with a fixed
//! clock. The same cases run against the real worker in `scripts/test-edge.sh`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;

use freshet_core::identity::issue_token;
use freshet_core::time::{Millis, parse_rfc3339};
use serde_json::{Value, json};

use crate::config::Config;
use crate::event_log::{EventLog, MemoryBucket};
use crate::http::{Body, Method, Request, Response};
use crate::rate_limit::{MemoryLimit, RateLimit, Unlimited};
use crate::routes::Edge;
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;

const SEED: &str = include_str!("../tests/fixtures/seed.json");
const TRACKER: &str = include_str!("../tests/fixtures/tracker.json");
const MALFORMED: &str = include_str!("../tests/fixtures/malformed.json");
const NOT_JSON: &str = include_str!("../tests/fixtures/not-json.txt");
const BAD_EVENTS: &str = include_str!("../tests/fixtures/bad-events.json");
const READ_TOKEN: &str = "rt-test";
const SECRET: &[u8] = b"identity-secret";

fn now() -> Millis {
    parse_rfc3339("2026-11-22T10:00:00.000Z").unwrap()
}

fn edge_with(vars: &[(&str, &str)]) -> Edge<MemoryStore> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    let config = Config::from_lookup(|n| map.get(n).map(|v| (*v).to_owned())).unwrap();
    let spec = compiled_spec().unwrap();
    Edge {
        config,
        spec,
        store: MemoryStore::new(spec),
        limiter: Unlimited,
        log: EventLog::On(MemoryBucket::default()),
    }
}

/// The test edge with a client and a site limit per period.
fn limited_edge(client: u32, site: u32) -> Edge<MemoryStore, MemoryLimit> {
    let Edge {
        config,
        spec,
        store,
        log,
        ..
    } = edge();
    Edge {
        config,
        spec,
        store,
        limiter: MemoryLimit::new(Some(client), Some(site)),
        log,
    }
}

fn edge() -> Edge<MemoryStore> {
    edge_with(&[
        ("FRESHET_WRITE_KEYS", "dev=*,site=https://shop.example"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_IDENTITY_SECRET", "identity-secret"),
    ])
}

fn ingest(body: impl Into<Vec<u8>>) -> Request {
    Request::new(Method::Post, "/v1/ingest")
        .with_header("content-type", "application/json")
        .with_header("x-freshet-key", "dev")
        .with_body(body)
}

fn get(path: &str) -> Request {
    Request::new(Method::Get, path).with_header("authorization", &format!("Bearer {READ_TOKEN}"))
}

async fn send<L: RateLimit>(edge: &Edge<MemoryStore, L>, req: Request) -> (u16, Value, Response) {
    let res = edge.handle(&req, now()).await.response;
    let body = res.body_json().unwrap_or(Value::Null);
    (res.status, body, res)
}

async fn feature<L: RateLimit>(
    edge: &Edge<MemoryStore, L>,
    entity: &str,
    id: &str,
    name: &str,
) -> Value {
    let (status, body, _) = send(
        edge,
        get(&format!("/v1/features/{entity}/{id}?names={name}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["features"][name]["value"].clone()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn event(i: usize, event_type: &str, timestamp: &str) -> Value {
    json!({"id": format!("e{i}"), "type": event_type, "timestamp": timestamp,
           "clientId": "cid-x", "payload": {"productId": "prod-x"}})
}

/// A batch of one click from `client`, with its own batch and event ids.
fn click_from(client: &str, n: usize) -> String {
    json!({"batchId": format!("b-{client}-{n}"), "sentAt": "2026-11-22T10:00:00.000Z",
           "events": [{"id": format!("e-{client}-{n}"), "type": "product_click",
                       "timestamp": "2026-11-22T09:59:59.000Z", "clientId": client,
                       "payload": {"productId": "prod-x", "component": "ProductCard"}}]})
    .to_string()
}

fn batch(events: Vec<Value>) -> String {
    json!({"batchId": "b-1", "sentAt": "2026-11-22T10:00:00.000Z", "events": events}).to_string()
}

#[tokio::test]
async fn health_names_the_store() {
    let (status, body, _) = send(&edge(), Request::new(Method::Get, "/health")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ok", "store": "memory", "spec": compiled_spec().unwrap().hash(), "ingest": "ok", "log": "memory"})
    );
}

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
    assert_eq!(
        num(&feature(&edge, "user", "user-42", "pageviews").await),
        1.0
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
async fn serving_needs_the_read_token() {
    let edge = edge();
    let path = "/v1/features/user/cid-1";
    let cases = [
        (Request::new(Method::Get, path), "unauthorized"),
        (
            Request::new(Method::Get, path).with_header("authorization", "Bearer wrong"),
            "unauthorized",
        ),
        (
            Request::new(Method::Get, path).with_header("authorization", READ_TOKEN),
            "unauthorized",
        ),
    ];
    for (req, code) in cases {
        let (status, body, _) = send(&edge, req).await;
        assert_eq!((status, body["error"].as_str()), (401, Some(code)));
    }
    let no_token = edge_with(&[("FRESHET_WRITE_KEYS", "dev=*")]);
    let (status, body, _) = send(&no_token, get(path)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("serving_disabled"))
    );
}

#[tokio::test]
async fn serving_answers_defaults_and_refuses_unknown_names() {
    let edge = edge();
    let (status, body, _) = send(&edge, get("/v1/features/user/nobody?names=pageviews")).await;
    assert_eq!(status, 200);
    assert_eq!(body["entity"], "user");
    assert_eq!(body["id"], "nobody");
    assert_eq!(body["features"]["pageviews"]["stale"], false);
    assert_eq!(num(&body["features"]["pageviews"]["value"]), 0.0);
    let (status, body, _) = send(&edge, get("/v1/features/user/nobody")).await;
    assert_eq!(status, 200);
    assert!(body["features"].as_object().unwrap().len() > 3);
    let (status, body, _) = send(&edge, get("/v1/features/user/x?names=nope")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unknown_feature"))
    );
    let (status, body, _) = send(&edge, get("/v1/features/ghost/x")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_entity"))
    );
    let (status, _, _) = send(&edge, get("/v1/features/user/x/extra")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn batch_read_answers_one_user_and_many_items() {
    let edge = edge();
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    let req = batch_read(
        json!({"userId": "cid-tracker-1", "userFeatures": ["clicks_product_card"],
               "itemIds": ["prod-7", "prod-9", "prod-none"], "itemFeatures": ["popularity_7d"]}),
    );
    let (status, body, _) = send(&edge, req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        num(&body["user"]["features"]["clicks_product_card"]["value"]),
        2.0
    );
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["id"], "prod-7");
    assert_eq!(num(&items[0]["features"]["popularity_7d"]["value"]), 1.0);
    assert_eq!(num(&items[2]["features"]["popularity_7d"]["value"]), 0.0);

    let bad = batch_read(json!({"users": []}));
    assert_eq!(send(&edge, bad).await.0, 400);
}

fn batch_read(body: Value) -> Request {
    Request::new(Method::Post, "/v1/features/batch")
        .with_header("authorization", &format!("Bearer {READ_TOKEN}"))
        .with_body(body.to_string())
}

#[tokio::test]
async fn a_composite_entity_is_served_by_its_escaped_id() {
    let edge = edge();
    let click = |n: usize, product: &str| {
        json!({"id": format!("e{n}"), "type": "product_click", "timestamp": "2026-11-22T09:59:00.000Z",
               "clientId": "cid|1", "payload": {"productId": product}})
    };
    let body = batch(vec![click(1, "p%1"), click(2, "p%1"), click(3, "p2")]);
    assert_eq!(send(&edge, ingest(body)).await.0, 202);
    // `cid|1` and `p%1` joined: `cid%7C1|p%251`, percent-encoded in the path.
    let id = freshet_core::spec::composite_id(&["cid|1", "p%1"]);
    assert_eq!(id, "cid%7C1|p%251");
    let (status, body, _) = send(
        &edge,
        get("/v1/features/user_product/cid%257C1%7Cp%25251?names=user_product_clicks"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(num(&body["features"]["user_product_clicks"]["value"]), 2.0);
    // `|` unencoded in a path works too.
    assert_eq!(
        num(&feature(&edge, "user_product", "cid%257C1|p2", "user_product_clicks").await),
        1.0
    );
    for bad in ["cid-1", "a|b|c", "a%257Cb", "a|b%25zz", "a%7C%7Cb"] {
        let (status, body, _) = send(&edge, get(&format!("/v1/features/user_product/{bad}"))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("a `user_product` id is the ids of user, product joined by `|`"),
            "{body}"
        );
    }
    let long = format!("/v1/features/user_product/{}|p", "u".repeat(257));
    assert_eq!(send(&edge, get(&long)).await.0, 400);
}

#[tokio::test]
async fn batch_read_gives_each_item_its_pair_in_one_round_trip() {
    let edge = edge();
    assert_eq!(send(&edge, ingest(TRACKER)).await.0, 202);
    let items = ["prod-7", "prod-9", "prod-none"];
    let (status, body, _) = send(
        &edge,
        batch_read(
            json!({"userId": "cid-tracker-1", "userFeatures": ["clicks_product_card"],
                          "itemIds": items, "itemFeatures": ["popularity_7d"],
                          "pairFeatures": ["user_product_clicks", "user_product_last_seen"]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The user and the items as without pairs (the test above); each item's pair:
    let answered = body["items"].as_array().unwrap();
    assert_eq!(answered.len(), 3);
    for (item, id) in answered.iter().zip(items) {
        assert_eq!(item["id"], id);
        assert_eq!(item["pair"]["entity"], "user_product");
        assert_eq!(
            item["pair"]["id"].as_str(),
            Some(format!("cid-tracker-1|{id}").as_str())
        );
        let features = item["pair"]["features"].as_object().unwrap();
        assert_eq!(features.len(), 2, "only the features asked for");
    }
    let clicks = |i: usize| num(&answered[i]["pair"]["features"]["user_product_clicks"]["value"]);
    assert_eq!((clicks(0), clicks(1), clicks(2)), (1.0, 1.0, 0.0));
    let seen = &answered[1]["pair"]["features"]["user_product_last_seen"];
    assert_eq!(seen["updatedAt"], "2026-11-22T09:59:50.000Z");
    assert_eq!(
        answered[2]["pair"]["features"]["user_product_last_seen"]["value"],
        Value::Null
    );
    // Each pair as the serving route answers it.
    let (_, one, _) = send(
        &edge,
        get("/v1/features/user_product/cid-tracker-1%7Cprod-9"),
    )
    .await;
    assert_eq!(
        one["features"]["user_product_clicks"],
        answered[1]["pair"]["features"]["user_product_clicks"]
    );

    // `pairEntity` alone asks for every pair feature; no pair asked, no `pair`.
    let (status, body, _) = send(
        &edge,
        batch_read(
            json!({"userId": "cid-tracker-1", "itemIds": ["prod-7"], "pairEntity": "user_product"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["pair"]["features"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    let (_, body, _) = send(
        &edge,
        batch_read(json!({"userId": "cid-tracker-1", "itemIds": ["prod-7"]})),
    )
    .await;
    assert!(body["items"][0].get("pair").is_none(), "{body}");
}

#[tokio::test]
async fn batch_read_refuses_pairs_it_cannot_read() {
    let edge = edge();
    let cases = [
        (
            json!({"userId": "u", "itemIds": ["p"], "pairFeatures": ["nope"]}),
            400,
            "unknown_feature",
        ),
        (
            json!({"userId": "u", "itemIds": ["p"], "pairFeatures": ["pageviews"]}),
            400,
            "unknown_feature",
        ),
        (
            json!({"itemIds": ["p"], "pairFeatures": ["user_product_clicks"]}),
            400,
            "bad_request",
        ),
        (
            json!({"userId": "u", "pairFeatures": ["user_product_clicks"]}),
            400,
            "bad_request",
        ),
        (
            json!({"userId": "u", "itemIds": ["p"], "pairEntity": "user"}),
            400,
            "bad_request",
        ),
        (
            json!({"userId": "u", "itemIds": ["p"], "pairEntity": "ghost"}),
            404,
            "unknown_entity",
        ),
        (
            json!({"userId": "u", "itemIds": ["p"], "itemEntity": "user",
                   "pairFeatures": ["user_product_clicks"]}),
            400,
            "bad_request",
        ),
    ];
    for (ask, status, code) in cases {
        let (got, body, _) = send(&edge, batch_read(ask.clone())).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{ask}: {body}"
        );
    }
    let (_, body, _) = send(
        &edge,
        batch_read(
            json!({"userId": "u", "itemIds": ["p"], "itemEntity": "user", "pairFeatures": []}),
        ),
    )
    .await;
    assert_eq!(
        body["message"],
        "the spec has no composite entity of `user` and `user` (of = [\"user\", \"user\"]); \
         name one as the pair entity"
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
async fn unknown_routes_and_methods() {
    let edge = edge();
    let (status, body, _) = send(&edge, Request::new(Method::Get, "/nope")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _, res) = send(&edge, Request::new(Method::Get, "/v1/ingest")).await;
    assert_eq!(status, 405);
    assert!(res.header("allow").is_some());
    let (status, _, _) = send(&edge, Request::new(Method::Post, "/health")).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn a_bad_configuration_is_a_500_that_names_the_variable() {
    let e = Config::from_lookup(|n| (n == "FRESHET_WRITE_KEYS").then(|| "dev".to_owned()))
        .expect_err("no '='");
    let res = crate::error::EdgeError::from(e).to_response();
    assert_eq!(res.status, 500);
    let body = res.body_json().unwrap();
    assert_eq!(body["error"], "misconfigured");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("FRESHET_WRITE_KEYS")
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

// ---- the event log ----

fn bucket<L>(edge: &Edge<MemoryStore, L>) -> &MemoryBucket {
    match &edge.log {
        EventLog::On(b) => b,
        EventLog::Off => panic!("the test edge logs"),
    }
}

async fn export(edge: &Edge<MemoryStore>, query: &str) -> (u16, String, Response) {
    // A minute on: what was received until now is in the log.
    let at = now() + 60_000;
    let res = edge
        .handle(&get(&format!("/v1/events?{query}")), at)
        .await
        .response;
    (
        res.status,
        String::from_utf8(res.body.clone()).unwrap(),
        res,
    )
}

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

// ---- backfill of a new feature version ----

const ADMIN: &str = "admin-test";

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

/// The test edge serving seed 2's media spec (`examples/media/features.toml`).
fn media_edge() -> Edge<MemoryStore> {
    let spec: &'static freshet_core::spec::FeatureSpec = Box::leak(Box::new(
        freshet_core::spec::FeatureSpec::parse(include_str!("../../examples/media/features.toml"))
            .unwrap(),
    ));
    Edge {
        spec,
        store: MemoryStore::new(spec),
        ..edge()
    }
}

#[tokio::test]
async fn media_features_are_served_and_a_bad_vector_is_named_not_fatal() {
    let edge = media_edge();
    let watch = |i: usize, at: &str, minutes: Value, embedding: Vec<f64>| {
        json!({"id": format!("w{i}"), "type": "watch", "timestamp": at, "clientId": "cid-m",
               "payload": {"itemId": "v-1", "genre": "drama", "watchDurationMin": minutes,
                           "genreEmbedding": embedding}})
    };
    let body = batch(vec![
        event(0, "Not_A_Type", "2026-11-22T09:00:00.000Z"),
        watch(1, "2026-11-22T09:00:00.000Z", json!(30), vec![1.0; 32]),
        watch(2, "2026-11-21T20:00:00.000Z", json!(60), vec![0.0; 32]),
        watch(3, "2026-11-21T21:00:00.000Z", json!(90), vec![1.0; 31]),
    ]);
    let (status, answer, _) = send(&edge, ingest(body)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 3, "rejected": [{"index": 0, "reason": "bad_type"}], "skipped": [{
            "index": 3,
            "feature": "user_genre_preferences@1",
            "reason": "payload.genreEmbedding has 31 numbers, the feature wants 32",
        }]})
    );
    let user = |name| feature(&edge, "user", "cid-m", name);
    assert_eq!(user("user_watch_count_7d").await, json!(3));
    assert_eq!(user("user_avg_watch_duration_min").await, json!(60));
    // Weighted by minutes: (30 * 1 + 60 * 0) / 90 per element.
    let preferences = user("user_genre_preferences").await;
    assert_eq!(preferences.as_array().map(Vec::len), Some(32));
    assert!((num(&preferences[0]) - 1.0 / 3.0).abs() < 1e-12);
    // Hours 09, 20 and 21 once each: the earliest wins the tie.
    assert_eq!(user("user_preferred_hour").await, json!(9));
    let item = |name| feature(&edge, "item", "v-1", name);
    assert_eq!(item("item_genre").await, json!("drama"));
    // Read at 10:00: ages of 1 h, 14 h and 13 h.
    let raw: f64 = [1.0, 14.0, 13.0]
        .iter()
        .map(|h: &f64| (-0.1 * h / 24.0).exp())
        .sum();
    let score = num(&item("item_popularity_score").await);
    assert!((score - raw / 1000.0).abs() < 1e-12, "{score}");
}

/// Reads `/v1/features/user/cid-{i}` with `draw` deciding the sampling, and
/// writes what was sampled as the glue would after the answer.
async fn sampled_read(edge: &Edge<MemoryStore>, id: &str, draw: f64) -> usize {
    use crate::store::FeatureStore;
    let handled = edge
        .handle_sampled(&get(&format!("/v1/features/user/{id}")), now(), draw)
        .await;
    assert_eq!(handled.response.status, 200);
    edge.store.add_drift(now(), &handled.drift).await.unwrap();
    handled.drift.len()
}

#[tokio::test]
async fn reads_are_sampled_at_the_configured_rate_into_drift_summaries() {
    let edge = edge();
    // The default rate is 1 %: a draw of 0.5 is not sampled, 0.001 is.
    assert_eq!(sampled_read(&edge, "cid-a", 0.5).await, 0);
    let user_features = compiled_spec().unwrap().features_of("user").count();
    assert_eq!(sampled_read(&edge, "cid-a", 0.001).await, user_features);
    // A failed read samples nothing.
    let bad = edge
        .handle_sampled(&get("/v1/features/user/cid-a?names=nope"), now(), 0.0)
        .await;
    assert_eq!((bad.response.status, bad.drift.len()), (400, 0));
    let (status, body, _) = send(&edge, get("/v1/drift?since=24h&summaries=1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summaries"]["pageviews@1"]["summary"]["count"], 1);
    assert_eq!(body["summaries"]["pageviews@1"]["summary"]["zeros"], 1);
    // One sample is not enough data for the spec's `expected` baseline.
    let clicks = body["report"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "clicks_product_card_7d@1")
        .unwrap();
    assert_eq!(clicks["status"], "not_enough_data", "{clicks}");
    assert_eq!(body["report"]["alert"], false);
    assert_eq!(body["baseline"], "expected");
}

#[tokio::test]
async fn a_sample_rate_of_zero_samples_nothing_and_one_samples_every_read() {
    let off = edge_with(&[
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_DRIFT_SAMPLE_RATE", "0"),
    ]);
    assert_eq!(sampled_read(&off, "cid-a", 0.0).await, 0);
    let all = edge_with(&[
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_DRIFT_SAMPLE_RATE", "1"),
    ]);
    assert!(sampled_read(&all, "cid-a", 0.999_999).await > 0);
    for bad in ["-0.1", "1.5", "often"] {
        let map: HashMap<&str, &str> = [("FRESHET_DRIFT_SAMPLE_RATE", bad)].into_iter().collect();
        let e = Config::from_lookup(|n| map.get(n).map(|v| (*v).to_owned())).unwrap_err();
        assert!(
            e.to_string().starts_with("FRESHET_DRIFT_SAMPLE_RATE"),
            "{e}"
        );
    }
    let map: HashMap<&str, &str> = [("FRESHET_DRIFT_BASELINE", "{\"features\": 3}")]
        .into_iter()
        .collect();
    let e = Config::from_lookup(|n| map.get(n).map(|v| (*v).to_owned())).unwrap_err();
    assert!(e.to_string().starts_with("FRESHET_DRIFT_BASELINE"), "{e}");
}

#[tokio::test]
async fn the_drift_report_compares_with_the_configured_baseline_and_alerts() {
    use freshet_core::drift::{Baseline, FeatureBaseline};
    // Trained on pageviews 0..10 evenly; served only 0s: PSI and the seed's rule alert.
    let train: Vec<Value> = (0..10).cycle().take(1000).map(|i| json!(i)).collect();
    let mut baseline = Baseline {
        source: "train.parquet".to_owned(),
        ..Baseline::default()
    };
    baseline
        .features
        .insert("pageviews@1".to_owned(), FeatureBaseline::profile(&train));
    let text = serde_json::to_string(&baseline).unwrap();
    let edge = edge_with(&[
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_DRIFT_SAMPLE_RATE", "1"),
        ("FRESHET_DRIFT_BASELINE", &text),
    ]);
    for i in 0..120 {
        sampled_read(&edge, &format!("cid-{i}"), 0.5).await;
    }
    let (status, body, _) = send(&edge, get("/v1/drift")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["baseline"], "train.parquet");
    assert_eq!(body["report"]["alert"], true);
    let features = body["report"]["features"].as_array().unwrap();
    let pageviews = features
        .iter()
        .find(|f| f["feature"] == "pageviews@1")
        .unwrap();
    assert_eq!(pageviews["status"], "alert");
    assert!(num(&pageviews["psi"]["value"]) > 0.25, "{pageviews}");
    assert_eq!(pageviews["mean_shift"]["alert"], true);
    assert!(body.get("summaries").is_none());
    // The profiled feature alerts, and the two whose spec `expected` mean
    // (12.5) is far from the 0s served; the features without a baseline do not.
    let alerting: Vec<&Value> = features
        .iter()
        .filter(|f| f["alert"] == true)
        .map(|f| &f["feature"])
        .collect();
    assert_eq!(
        alerting,
        [
            &json!("clicks_product_card_7d@1"),
            &json!("pageviews@1"),
            &json!("watch_count_7d@1")
        ]
    );
    let searches = features
        .iter()
        .find(|f| f["feature"] == "searches@1")
        .unwrap();
    assert_eq!(searches["status"], "no_baseline");
}

#[tokio::test]
async fn the_drift_report_needs_the_read_token_and_a_sane_since() {
    let edge = edge();
    let anonymous = Request::new(Method::Get, "/v1/drift");
    assert_eq!(send(&edge, anonymous).await.0, 401);
    for bad in ["9d", "0h", "soon"] {
        let (status, body, _) = send(&edge, get(&format!("/v1/drift?since={bad}"))).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(
        send(&edge, Request::new(Method::Post, "/v1/drift")).await.0,
        405
    );
    edge.store.set_down(true);
    assert_eq!(send(&edge, get("/v1/drift")).await.0, 503);
}
