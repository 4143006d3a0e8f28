//! What no route answers: unknown paths, and methods a route does not take.

use super::*;

#[tokio::test]
async fn unknown_routes_and_methods() {
    let edge = edge();
    let (status, body, _) = send(&edge, Request::new(Method::Get, "/nope")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _, res) = send(&edge, Request::new(Method::Get, "/v1/ingest")).await;
    assert_eq!((status, res.header("allow")), (405, Some("POST, OPTIONS")));
    let (status, _, res) = send(&edge, Request::new(Method::Post, "/health")).await;
    assert_eq!((status, res.header("allow")), (405, Some("GET, HEAD")));
    // The batch read's path is its own route, not an entity's.
    let (status, _, res) = send(&edge, get("/v1/features/batch")).await;
    assert_eq!((status, res.header("allow")), (405, Some("POST")));
}
