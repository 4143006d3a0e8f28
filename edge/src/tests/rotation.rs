//! A secret rotated: the new value beside the old, both accepted, then the
//! old refused once it is removed (README, "Rotating a secret").

use super::*;

const OLD: &str = "old-value-0123";
const NEW: &str = "new-value-4567";

fn with_secrets(var: &str, value: &str) -> Edge<MemoryStore> {
    edge_with(&[
        ("FRESHET_WRITE_KEYS", "dev=*"),
        ("FRESHET_READ_TOKEN", READ_TOKEN),
        ("FRESHET_IDENTITY_SECRET", "identity-secret"),
        (var, value),
    ])
}

fn read_with(token: &str) -> Request {
    Request::new(Method::Get, "/v1/features/user/cid-1")
        .with_header("authorization", &format!("Bearer {token}"))
}

#[tokio::test]
async fn read_and_admin_tokens_take_the_new_beside_the_old() {
    for (var, request) in [
        ("FRESHET_READ_TOKEN", read_with as fn(&str) -> Request),
        ("FRESHET_ADMIN_TOKEN", |token: &str| {
            Request::new(Method::Post, "/v1/backfill?feature=nope@1")
                .with_header("authorization", &format!("Bearer {token}"))
        }),
    ] {
        // Past the token check: 200 for a read, 400 for the unknown feature.
        let admitted = |status: u16| status != 401;
        let before = with_secrets(var, OLD);
        let during = with_secrets(var, &format!("new:{NEW},old:{OLD}"));
        let after = with_secrets(var, &format!("new:{NEW}"));
        assert!(admitted(send(&before, request(OLD)).await.0), "{var}");
        assert!(!admitted(send(&before, request(NEW)).await.0), "{var}");
        for token in [OLD, NEW] {
            assert!(admitted(send(&during, request(token)).await.0), "{var}");
        }
        let (status, body, _) = send(&after, request(OLD)).await;
        assert_eq!(status, 401, "{var}: {body}");
        assert!(!body.to_string().contains(OLD) && !body.to_string().contains(NEW));
        assert!(admitted(send(&after, request(NEW)).await.0), "{var}");
    }
}

#[tokio::test]
async fn identity_tokens_signed_with_either_secret_verify_and_a_removed_one_is_refused() {
    let signed = |secret: &str, n: usize| {
        let token = issue_token(secret.as_bytes(), "user-r", now() / 1000 + 600);
        json!({"batchId": format!("b-rot-{n}"), "identity": token,
               "events": [{"id": format!("e-rot-{n}"), "type": "page_view",
                           "timestamp": "2026-11-22T09:59:00Z", "clientId": "cid-r",
                           "userId": "user-r"}]})
        .to_string()
    };
    let during = with_secrets("FRESHET_IDENTITY_SECRET", &format!("new:{NEW},old:{OLD}"));
    assert_eq!(send(&during, ingest(signed(NEW, 1))).await.0, 202);
    assert_eq!(send(&during, ingest(signed(OLD, 2))).await.0, 202);
    assert_eq!(
        num(&feature(&during, "user", "user-r", "pageviews").await),
        2.0
    );
    // Expired under the secret that signed it, whichever that is.
    let expired = issue_token(
        OLD.as_bytes(),
        "user-r",
        now() / 1000 - crate::routes::IDENTITY_GRACE_S - 1,
    );
    let body = signed(OLD, 3).replace(
        &issue_token(OLD.as_bytes(), "user-r", now() / 1000 + 600),
        &expired,
    );
    let (_, answer, _) = send(&during, ingest(body)).await;
    assert_eq!(answer["error"], "identity_expired");

    let after = with_secrets("FRESHET_IDENTITY_SECRET", &format!("new:{NEW}"));
    let (status, answer, _) = send(&after, ingest(signed(OLD, 4))).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("identity_bad_signature"))
    );
    assert_eq!(send(&after, ingest(signed(NEW, 5))).await.0, 202);
}

#[tokio::test]
async fn health_counts_each_secrets_values_and_names_none() {
    let during = with_secrets("FRESHET_READ_TOKEN", &format!("new:{NEW},old:{OLD}"));
    let (_, health, _) = send(&during, Request::new(Method::Get, "/health")).await;
    assert_eq!(
        health["secrets"],
        json!({"read": 2, "admin": 0, "identity": 1})
    );
    let text = health.to_string();
    assert!(!text.contains("new") && !text.contains(OLD), "{text}");
}
