//! What no route answers: unknown paths, and methods a route does not take.

use super::*;

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
