//! The serving routes: one entity, a batch of items with their pairs,
//! composite ids, and seed 2's media spec.

use super::*;

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

/// The test edge serving seed 2's media spec (`examples/media/features.toml`).
fn media_edge() -> Edge<MemoryStore> {
    let spec: &'static freshet_core::spec::FeatureSpec = Box::leak(Box::new(
        freshet_core::spec::FeatureSpec::parse(include_str!(
            "../../../examples/media/features.toml"
        ))
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
            "feature": "user_genre_preferences@2",
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

#[tokio::test]
async fn the_serving_routes_answer_get_one_and_post_a_batch() {
    assert_allow("/v1/features/user/cid-1", "GET").await;
    assert_allow("/v1/features/batch", "POST").await;
}
