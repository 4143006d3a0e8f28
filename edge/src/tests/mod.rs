//! Routing, CORS, auth and error mapping over the memory store, with a fixed
//! clock. The same cases run against the real worker in `scripts/test-edge.sh`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;

use freshet_core::identity::issue_token;
use freshet_core::time::{Millis, parse_rfc3339};
use serde_json::{Value, json};

use crate::config::Config;
use crate::erasure::MemoryRegistry;
use crate::event_log::{EventLog, MemoryBucket};
use crate::http::{Body, Method, Request, Response};
use crate::queue::MemoryQueue;
use crate::rate_limit::{MemoryLimit, RateLimit, Unlimited};
use crate::routes::Edge;
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;

mod backfill;
mod drift;
mod erasure;
mod event_log;
mod health;
mod ingest;
mod queue;
mod rate_limit;
mod read;
mod rotation;
mod routing;
mod sign_in;

const SEED: &str = include_str!("../../tests/fixtures/seed.json");
const TRACKER: &str = include_str!("../../tests/fixtures/tracker.json");
const MALFORMED: &str = include_str!("../../tests/fixtures/malformed.json");
const NOT_JSON: &str = include_str!("../../tests/fixtures/not-json.txt");
const BAD_EVENTS: &str = include_str!("../../tests/fixtures/bad-events.json");
const READ_TOKEN: &str = "rt-test-token";
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
        queue: MemoryQueue::default(),
        registry: MemoryRegistry::default(),
    }
}

/// The test edge with a client and a site limit per period.
fn limited_edge(client: u32, site: u32) -> Edge<MemoryStore, MemoryLimit> {
    let Edge {
        config,
        spec,
        store,
        log,
        queue,
        registry,
        ..
    } = edge();
    Edge {
        config,
        spec,
        store,
        limiter: MemoryLimit::new(Some(client), Some(site)),
        log,
        queue,
        registry,
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

/// A route's truth, as its 405 tells it: each method `allow` lists is
/// answered (never 405), and every other is a 405 whose `Allow` is `allow`.
async fn assert_allow(path: &str, allow: &str) {
    let edge = edge();
    let methods = [
        (Method::Get, "GET"),
        (Method::Head, "HEAD"),
        (Method::Post, "POST"),
        (Method::Options, "OPTIONS"),
        (Method::Other, "DELETE"),
    ];
    for (method, name) in methods {
        let (status, body, res) = send(&edge, Request::new(method, path)).await;
        if allow.split(", ").any(|m| m == name) {
            assert_ne!(status, 405, "{name} {path}: {body}");
        } else {
            assert_eq!(
                (status, body["error"].as_str(), res.header("allow")),
                (405, Some("method_not_allowed"), Some(allow)),
                "{name} {path}"
            );
        }
    }
}
