//! Drift: reads sampled into summaries, and `GET /v1/drift`.

use super::*;

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

#[tokio::test]
async fn the_drift_route_answers_get() {
    assert_allow("/v1/drift", "GET").await;
}
