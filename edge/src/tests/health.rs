//! `GET /health`, and a bad configuration's answer.

use super::*;

#[tokio::test]
async fn health_names_the_store() {
    let (status, body, _) = send(&edge(), Request::new(Method::Get, "/health")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ok", "store": "memory", "spec": compiled_spec().unwrap().hash(), "ingest": "ok", "log": "memory",
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
