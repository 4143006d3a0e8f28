//! `GET /health`, and a bad configuration's answer.

use super::*;

#[tokio::test]
async fn health_names_the_store() {
    let (status, body, _) = send(&edge(), Request::new(Method::Get, "/health")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ok", "store": "memory", "spec": compiled_spec().unwrap().hash(), "ingest": "ok", "log": "memory", "erasure": "memory", "pipeline": "direct",
               "secrets": {"read": 1, "admin": 0, "identity": 1}})
    );
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
async fn health_answers_get_and_head() {
    assert_allow("/health", "GET, HEAD").await;
}

#[tokio::test]
async fn a_moved_clock_is_shown_and_a_bad_one_refused() {
    let moved = edge_with(&[("FRESHET_CLOCK_OFFSET_MS", "172800000")]);
    let (_, body, _) = send(&moved, Request::new(Method::Get, "/health")).await;
    assert_eq!(body["clockOffsetMs"], 172_800_000);
    let e = Config::from_lookup(|n| match n {
        "FRESHET_WRITE_KEYS" => Some("dev=*".to_owned()),
        "FRESHET_CLOCK_OFFSET_MS" => Some("2 days".to_owned()),
        _ => None,
    })
    .expect_err("not a number");
    assert!(e.to_string().starts_with("FRESHET_CLOCK_OFFSET_MS"), "{e}");
}
