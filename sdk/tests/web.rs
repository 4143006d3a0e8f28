//! The `web` feature in headless Chromium (wasm-bindgen-test through
//! chromedriver) against the tests' collector (`tests/sdk/collector.mjs`),
//! which the page drives over HTTP. Run by `scripts/test-sdk-web.sh`, which
//! starts the collector and passes its origin in `FRESHET_COLLECTOR`.
#![cfg(all(target_arch = "wasm32", feature = "web"))]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use freshet_core::wire::{WireBatch, WireEvent};
use freshet_sdk::web::{Error, Stats, Tracker};
use freshet_sdk::{Config, TrackerError};
use gloo_timers::future::sleep;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{RequestInit, Response, Storage};

wasm_bindgen_test_configure!(run_in_browser);

type Batch = WireBatch<WireEvent<serde_json::Value>>;

/// One POST the collector answered.
#[derive(Debug, Deserialize)]
struct Received {
    status: u16,
    gzip: bool,
    /// `text/plain` from the tracker's `fetch`; a beacon of a string is
    /// `text/plain;charset=UTF-8`.
    #[serde(rename = "contentType")]
    content_type: String,
    body: Option<Batch>,
}

impl Received {
    fn batch(&self) -> &Batch {
        self.body.as_ref().expect("a JSON body")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductClick {
    product_id: String,
    position: u32,
    note: String,
}

fn click(i: u32) -> ProductClick {
    ProductClick {
        product_id: format!("p{i}"),
        position: i,
        note: String::new(),
    }
}

fn collector() -> &'static str {
    match option_env!("FRESHET_COLLECTOR") {
        Some(origin) => origin,
        None => panic!("FRESHET_COLLECTOR is unset: run the tests with scripts/test-sdk-web.sh"),
    }
}

fn storage() -> Storage {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .expect("localStorage")
}

/// The saved queues: (key, text) of every `freshet:q:` slot.
fn slots() -> Vec<(String, String)> {
    let s = storage();
    (0..s.length().expect("length"))
        .filter_map(|i| s.key(i).ok().flatten())
        .filter(|k| k.starts_with("freshet:q:"))
        .filter_map(|k| s.get_item(&k).ok().flatten().map(|v| (k, v)))
        .collect()
}

async fn control(method: &str, what: &str, body: Option<&str>) -> String {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&body.into());
    }
    let url = format!("{}/control/{what}", collector());
    let window = web_sys::window().expect("window");
    let res: Response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
        .await
        .expect("the collector answers")
        .dyn_into()
        .expect("a Response");
    assert_eq!(res.status(), 200, "{what}");
    JsFuture::from(res.text().expect("text"))
        .await
        .expect("a body")
        .as_string()
        .expect("a string")
}

/// A new run at the collector, with empty storage: earlier tests' trackers
/// (dropped, their queues saved) must not leak into this one.
async fn fresh_run() -> String {
    storage().clear().expect("clear");
    let reply: serde_json::Value =
        serde_json::from_str(&control("POST", "reset", None).await).expect("json");
    reply["endpoint"].as_str().expect("endpoint").to_owned()
}

async fn received() -> Vec<Received> {
    serde_json::from_str(&control("GET", "received", None).await).expect("received")
}

/// What the collector has received once it has `n` requests; fails after `ms`.
async fn received_at_least(n: usize, ms: u64, what: &str) -> Vec<Received> {
    let mut waited = 0;
    loop {
        let got = received().await;
        if got.len() >= n {
            return got;
        }
        assert!(
            waited < ms,
            "{what}: {} of {n} requests after {ms} ms",
            got.len()
        );
        sleep(Duration::from_millis(25)).await;
        waited += 25;
    }
}

/// Batching by count and interval alone: the leading edge has its own test.
fn config(endpoint: &str, batch_size: u32, flush_interval_ms: u32) -> Config {
    Config {
        endpoint: endpoint.to_owned(),
        write_key: "wk_test".into(),
        batch_size,
        flush_interval_ms,
        leading_edge: false,
        ..Config::default()
    }
}

fn ms(rfc3339: &str) -> f64 {
    js_sys::Date::parse(rfc3339)
}

fn sent_ms(b: &Batch) -> f64 {
    ms(b.sent_at.as_deref().expect("sentAt"))
}

/// The ids of the events the edge would apply: 202s, once per batch id.
fn applied_event_ids(got: &[Received]) -> Vec<String> {
    let mut batches = HashSet::new();
    got.iter()
        .filter(|r| r.status == 202 && batches.insert(r.batch().batch_id.clone()))
        .flat_map(|r| r.batch().events.iter())
        .map(|e| e.id.clone().expect("an event id"))
        .collect()
}

#[wasm_bindgen_test]
async fn batches_go_by_count_and_by_interval() {
    let endpoint = fresh_run().await;
    let t = Tracker::start(config(&endpoint, 3, 400)).expect("start");
    let mut big = click(0);
    big.note = "x".repeat(1_200); // the first batch is over 1 KB: gzipped
    t.track("product_click", &big).expect("track");
    t.track("product_click", &click(1)).expect("track");
    t.track("add_to_cart", &click(2)).expect("track");
    let got = received_at_least(1, 3_000, "the full batch").await;
    let first = got[0].batch();
    assert_eq!(first.events.len(), 3);
    assert!(got[0].gzip, "a body over 1 KB goes gzipped");
    assert_eq!(got[0].content_type, "text/plain", "by fetch");
    assert_eq!(first.events[2].event_type, "add_to_cart");
    assert_eq!(
        first.events[1].payload,
        Some(serde_json::json!({"productId": "p1", "position": 1, "note": ""}))
    );
    assert_eq!(first.events[0].client_id, t.client_id());
    assert_eq!(
        first.events[0].session_id.as_deref(),
        Some(t.session_id().as_str())
    );

    t.track("product_click", &click(3)).expect("track");
    t.track("page_view", &()).expect("no payload");
    let got = received_at_least(2, 5_000, "the interval's batch").await;
    let second = got[1].batch();
    assert_eq!(second.events.len(), 2, "two events, cut by the interval");
    assert!(!got[1].gzip, "a small body goes as it is");
    assert_eq!(second.events[1].payload, None);
    let waited = sent_ms(second) - ms(&second.events[0].timestamp);
    assert!(waited >= 400.0, "sealed {waited} ms after it opened");
    assert_ne!(first.batch_id, second.batch_id);

    t.flush().await;
    assert_eq!(
        t.stats(),
        Stats {
            queued: 0,
            evicted: 0,
            dropped: 0
        }
    );
    let ids = applied_event_ids(&received().await);
    assert_eq!(ids.len(), 5);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        5,
        "every event once"
    );
}

#[wasm_bindgen_test]
async fn the_leading_edge_sends_a_click_after_a_quiet_spell_at_once() {
    let endpoint = fresh_run().await;
    let leading = |endpoint: &str| Config {
        leading_edge: Config::default().leading_edge,
        ..config(endpoint, 20, 1_000)
    };
    let t = Tracker::start(leading(&endpoint)).expect("start");
    t.track("product_click", &click(0)).expect("track");
    let got = received_at_least(1, 3_000, "the leading click").await;
    let batch = got[0].batch();
    assert_eq!(batch.events.len(), 1);
    let waited = sent_ms(batch) - ms(&batch.events[0].timestamp);
    assert!(waited < 50.0, "on the wire {waited} ms after the click");
    drop(t);

    // Ten clicks in 100 ms: the first at once, the other nine a second later.
    let endpoint = fresh_run().await;
    let t = Tracker::start(leading(&endpoint)).expect("start");
    for i in 0..10 {
        t.track("product_click", &click(i)).expect("track");
        sleep(Duration::from_millis(10)).await;
    }
    received_at_least(2, 5_000, "the trailing batch").await;
    sleep(Duration::from_millis(1_200)).await;
    let sizes: Vec<usize> = received()
        .await
        .iter()
        .map(|r| r.batch().events.len())
        .collect();
    assert_eq!(sizes, [1, 9]);
}

#[wasm_bindgen_test]
async fn a_503_is_retried_with_the_same_batch_id_and_retry_after_is_honoured() {
    let endpoint = fresh_run().await;
    control(
        "POST",
        "script",
        Some(r#"[{"status":503},{"status":429,"headers":{"retry-after":"1"}}]"#),
    )
    .await;
    let t = Tracker::start(config(&endpoint, 2, 60_000)).expect("start");
    t.track("product_click", &click(1)).expect("track");
    t.track("product_click", &click(2)).expect("track");
    let got = received_at_least(3, 8_000, "two retries").await;
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 429, 202]);
    let batches: Vec<&Batch> = got.iter().map(Received::batch).collect();
    for b in &batches[1..] {
        assert_eq!(b.batch_id, batches[0].batch_id, "the same batch id");
        assert_eq!(b.events, batches[0].events, "the same events and ids");
    }
    let backoff = sent_ms(batches[1]) - sent_ms(batches[0]);
    assert!(backoff >= 500.0, "backoff after the 503: {backoff} ms");
    let told = sent_ms(batches[2]) - sent_ms(batches[1]);
    assert!(told >= 1_000.0, "Retry-After: 1 honoured: {told} ms");
    t.flush().await;
    assert_eq!(t.stats().queued, 0);
    assert_eq!(applied_event_ids(&got).len(), 2);
}

#[wasm_bindgen_test]
async fn pagehide_sends_every_batch_by_beacon_and_keeps_it_until_confirmed() {
    let endpoint = fresh_run().await;
    let t = Tracker::start(config(&endpoint, 2, 60_000)).expect("start");
    for i in 0..3 {
        t.track("product_click", &click(i)).expect("track");
    }
    // The full batch goes by fetch; the third event waits in the open batch.
    received_at_least(1, 3_000, "the full batch").await;
    sleep(Duration::from_millis(200)).await; // its answer settles it
    assert_eq!(t.stats().queued, 1);
    let event = web_sys::Event::new("pagehide").expect("event");
    web_sys::window()
        .expect("window")
        .dispatch_event(&event)
        .expect("dispatch");
    let got = received_at_least(2, 3_000, "the beacon").await;
    let beacon = &got[1];
    assert_eq!(
        beacon.content_type, "text/plain;charset=UTF-8",
        "sent by navigator.sendBeacon"
    );
    assert_eq!(beacon.batch().events.len(), 1, "the open batch, sealed");
    assert_eq!(
        t.stats().queued,
        1,
        "a beacon has no answer: kept until a fetch confirms it"
    );
    let saved = slots();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        saved[0].1.starts_with("0\n"),
        "saved as a closed tab's: {:?}",
        saved[0].1
    );
    let beacon_id = beacon.batch().batch_id.clone().expect("batch id");
    assert!(saved[0].1.contains(&beacon_id));
}

#[wasm_bindgen_test]
async fn the_durable_queue_survives_the_page_and_is_sent_once_under_the_same_ids() {
    let endpoint = fresh_run().await;
    control("POST", "fallback", Some(r#""down""#)).await;
    let first = Tracker::start(config(&endpoint, 2, 60_000)).expect("start");
    let client = first.client_id();
    for i in 0..5 {
        first.track("product_click", &click(i)).expect("track");
    }
    first.flush().await; // the first attempt fails: the edge is down
    assert_eq!(first.stats().queued, 5);
    drop(first); // the page goes away
    let saved = slots();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let (key, text) = &saved[0];
    let saved_ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("B "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(saved_ids.len(), 3, "{text}");

    control("POST", "fallback", Some(r#"{"status":202}"#)).await;
    let next = Tracker::start(config(&endpoint, 2, 60_000)).expect("start");
    assert_eq!(next.client_id(), client, "the same visitor");
    let got = received_at_least(3, 5_000, "the adopted batches").await;
    let sent_ids: Vec<&str> = got
        .iter()
        .map(|r| r.batch().batch_id.as_deref().expect("id"))
        .collect();
    assert_eq!(sent_ids, saved_ids, "the saved batches, under their ids");
    assert_eq!(applied_event_ids(&got).len(), 5, "every event exactly once");
    next.flush().await;
    assert_eq!(next.stats().queued, 0);
    assert!(
        storage().get_item(key).ok().flatten().is_none(),
        "the old slot was taken"
    );
}

#[wasm_bindgen_test]
async fn bad_input_is_refused_clearly_and_loses_nothing_valid() {
    let endpoint = fresh_run().await;
    let e = Tracker::start(config(&endpoint, 0, 5_000)).expect_err("batch size 0");
    assert_eq!(
        e.to_string(),
        "freshet: option 'batchSize' must be an integer from 1 to 500"
    );
    let e = Tracker::start(Config::default()).expect_err("no endpoint");
    assert_eq!(e.to_string(), "freshet: option 'endpoint' is required");

    let t = Tracker::start(config(&endpoint, 20, 60_000)).expect("start");
    t.track("product_click", &click(1)).expect("valid");
    let e = t.track("Product Click", &click(2)).expect_err("bad type");
    assert!(e.to_string().contains("'Product Click'"), "{e}");
    assert!(matches!(t.track("x", &5), Err(Error::Invalid(_))));
    assert!(matches!(t.track("x", &vec![1, 2]), Err(Error::Invalid(_))));
    let mut odd = HashMap::new();
    odd.insert((1, 2), 3);
    let e = t.track("x", &odd).expect_err("keys must be strings");
    assert!(matches!(e, Error::Payload(_)), "{e:?}");
    let e = t
        .track_value("x", &js_sys::Array::of1(&1.into()).into())
        .expect_err("an array");
    assert!(
        e.to_string()
            .starts_with("freshet: payload must be a JSON object"),
        "{e}"
    );
    assert_eq!(
        t.identify("a b", "tok"),
        Err(Error::Invalid(TrackerError::BadUserId))
    );
    t.track("add_to_cart", &click(3)).expect("valid");
    assert_eq!(t.stats().queued, 2, "only the valid events");
    t.flush().await;
    let got = received().await;
    let types: Vec<&str> = got
        .iter()
        .flat_map(|r| r.batch().events.iter())
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["product_click", "add_to_cart"]);
}

#[wasm_bindgen_test]
async fn js_payloads_and_a_refused_identity_token() {
    let endpoint = fresh_run().await;
    control(
        "POST",
        "script",
        Some(r#"[{"status":202},{"status":401,"error":"identity_expired"}]"#),
    )
    .await;
    let t = Tracker::start(config(&endpoint, 1, 60_000)).expect("start");
    let refused: Rc<RefCell<Vec<String>>> = Rc::default();
    let seen = refused.clone();
    t.on_identity_rejected(move |code| seen.borrow_mut().push(code.to_owned()));
    let payload =
        js_sys::JSON::parse(r#"{"productId":"p9","price":12.5,"tags":["a"]}"#).expect("json");
    t.track_value("product_click", &payload).expect("track");
    received_at_least(1, 3_000, "the JS payload").await;
    t.identify("user-1", "user-1.9.sig").expect("identify");
    t.track("purchase", &click(1)).expect("track");
    let got = received_at_least(3, 5_000, "the batch again without the token").await;
    assert_eq!(
        got[0].batch().events[0].payload,
        Some(serde_json::json!({"productId": "p9", "price": 12.5, "tags": ["a"]}))
    );
    let (refused_batch, again) = (got[1].batch(), got[2].batch());
    assert_eq!(got[1].status, 401);
    assert_eq!(refused_batch.identity.as_deref(), Some("user-1.9.sig"));
    assert_eq!(refused_batch.events[0].user_id.as_deref(), Some("user-1"));
    assert_eq!(again.batch_id, refused_batch.batch_id);
    assert_eq!(again.identity, None, "resent without the token");
    assert_eq!(got[2].status, 202);
    assert_eq!(*refused.borrow(), ["identity_expired"]);
}
