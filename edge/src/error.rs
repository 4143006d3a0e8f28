//! The edge's one error type and its one mapping to an HTTP answer.
//!
//! Clients get a stable code and a short message; the detail (a store's
//! error text, a config value) goes to the log only.

use std::fmt;

use freshet_core::error::BatchError;
use freshet_core::identity::IdentityError;
use serde_json::json;

use crate::config::ConfigError;
use crate::event_log::LogError;
use crate::http::Response;
use crate::queue::QueueError;
use crate::rate_limit::Scope;
use crate::store::StoreError;

/// Everything that can refuse or fail a request.
#[derive(Debug)]
pub enum EdgeError {
    /// The body is refused as a whole by `core`'s validation.
    Batch(BatchError),
    /// The body was over the limit while it was read.
    BodyTooLarge { limit: usize },
    /// `Content-Type` is neither JSON nor `text/plain`.
    UnsupportedMediaType,
    /// No write key in the `X-Freshet-Key` header or the body.
    MissingWriteKey,
    /// The write key is not configured.
    UnknownWriteKey,
    /// The request's `Origin` is not among the write key's origins.
    OriginNotAllowed,
    /// The identity token is malformed, forged or expired.
    Identity(IdentityError),
    /// The serving API needs `Authorization: Bearer <read token>`.
    Unauthorized,
    /// No `FRESHET_READ_TOKEN` is configured, so serving refuses everyone.
    ServingDisabled,
    /// Backfill needs `Authorization: Bearer <admin token>`.
    AdminUnauthorized,
    /// No `FRESHET_ADMIN_TOKEN` is configured, so backfill refuses everyone.
    BackfillDisabled,
    /// No `FRESHET_ADMIN_TOKEN` is configured, so the dead letters' route
    /// refuses everyone.
    DeadLettersDisabled,
    /// No `FRESHET_ADMIN_TOKEN` is configured, so erasures are refused.
    ErasureDisabled,
    /// No erasure has this id.
    UnknownErasure,
    /// A batch holds events of a person after an erasure that is still
    /// settling; retry after `retry_after_s` seconds with the same batchId.
    Erasing { retry_after_s: u32 },
    /// No route for this path.
    NotFound,
    /// The route exists but not for this method; `allow` lists its methods.
    MethodNotAllowed { allow: &'static str },
    /// The entity is not in the feature spec.
    UnknownEntity,
    /// A feature name asked for is not in the spec (or not of the entity).
    UnknownFeature(String),
    /// A request other than a batch is malformed (bad id, bad JSON).
    BadRequest(String),
    /// Over a rate limit; retry after `retry_after_s` seconds.
    RateLimited { scope: Scope, retry_after_s: u32 },
    /// The store did not answer, or answered with an error.
    StoreUnavailable(StoreError),
    /// The event log could not be written or read.
    LogUnavailable(LogError),
    /// The ingest queue did not take the batch (`FRESHET_PIPELINE=queue`).
    QueueUnavailable(QueueError),
    /// A queue message that does not read as logged batches (never sent by
    /// an edge): it fails every delivery and ends in the dead-letter queue.
    BadMessage(String),
    /// The configuration (vars, secrets, compiled-in spec) is invalid.
    Misconfigured(ConfigError),
    /// A sign-in move that failed after its batch was taken: never an
    /// answer, only the operator's log; the move is left for the job.
    SignInMove(Box<EdgeError>),
}

impl EdgeError {
    /// The one exhaustive mapping from error to HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Batch(BatchError::BodyTooLarge { .. }) | Self::BodyTooLarge { .. } => 413,
            Self::Batch(
                BatchError::BadGzip
                | BatchError::MalformedJson { .. }
                | BatchError::EmptyBatch
                | BatchError::TooManyEvents { .. }
                | BatchError::BadBatchId
                | BatchError::BadSentAt,
            ) => 400,
            Self::UnsupportedMediaType => 415,
            Self::MissingWriteKey
            | Self::UnknownWriteKey
            | Self::Identity(_)
            | Self::Unauthorized
            | Self::ServingDisabled
            | Self::AdminUnauthorized
            | Self::BackfillDisabled
            | Self::DeadLettersDisabled
            | Self::ErasureDisabled => 401,
            Self::OriginNotAllowed => 403,
            Self::NotFound | Self::UnknownEntity | Self::UnknownErasure => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::UnknownFeature(_) | Self::BadRequest(_) => 400,
            Self::RateLimited { .. } => 429,
            Self::StoreUnavailable(_)
            | Self::LogUnavailable(_)
            | Self::QueueUnavailable(_)
            | Self::Erasing { .. } => 503,
            Self::Misconfigured(_) | Self::BadMessage(_) => 500,
            Self::SignInMove(e) => e.status(),
        }
    }

    /// The stable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Batch(e) => e.code(),
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MissingWriteKey => "missing_write_key",
            Self::UnknownWriteKey => "unknown_write_key",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::Identity(e) => e.code(),
            Self::Unauthorized => "unauthorized",
            Self::ServingDisabled => "serving_disabled",
            Self::AdminUnauthorized => "unauthorized",
            Self::BackfillDisabled => "backfill_disabled",
            Self::DeadLettersDisabled => "dead_letters_disabled",
            Self::ErasureDisabled => "erasure_disabled",
            Self::UnknownErasure => "unknown_erasure",
            Self::Erasing { .. } => "erasing",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UnknownEntity => "unknown_entity",
            Self::UnknownFeature(_) => "unknown_feature",
            Self::BadRequest(_) => "bad_request",
            Self::RateLimited { .. } => "rate_limited",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::LogUnavailable(_) => "log_unavailable",
            Self::QueueUnavailable(_) => "queue_unavailable",
            Self::BadMessage(_) => "bad_message",
            Self::Misconfigured(_) => "misconfigured",
            Self::SignInMove(_) => "sign_in_move",
        }
    }

    /// The message sent to clients: never a store's or a secret's detail.
    pub fn public_message(&self) -> String {
        match self {
            Self::Batch(BatchError::MalformedJson { .. }) => {
                "the body is not a valid JSON batch".to_owned()
            }
            Self::Batch(e) => e.to_string(),
            Self::BodyTooLarge { limit } => format!("the body is larger than {limit} bytes"),
            Self::UnsupportedMediaType => {
                "Content-Type must be application/json or text/plain".to_owned()
            }
            Self::MissingWriteKey => {
                "a write key is required (X-Freshet-Key or writeKey)".to_owned()
            }
            Self::UnknownWriteKey => "the write key is not known".to_owned(),
            Self::OriginNotAllowed => "this origin may not use this write key".to_owned(),
            Self::Identity(e) => e.to_string(),
            Self::Unauthorized => {
                "a valid read token is required (Authorization: Bearer)".to_owned()
            }
            Self::ServingDisabled => "serving is disabled: no read token is configured".to_owned(),
            Self::AdminUnauthorized => {
                "a valid admin token is required (Authorization: Bearer)".to_owned()
            }
            Self::BackfillDisabled => {
                "backfill is disabled: no admin token (FRESHET_ADMIN_TOKEN) is configured"
                    .to_owned()
            }
            Self::DeadLettersDisabled => {
                "the dead letters' route is disabled: no admin token (FRESHET_ADMIN_TOKEN) is \
                 configured"
                    .to_owned()
            }
            Self::ErasureDisabled => {
                "erasure is disabled: no admin token (FRESHET_ADMIN_TOKEN) is configured".to_owned()
            }
            Self::UnknownErasure => "no erasure has this id".to_owned(),
            Self::Erasing { retry_after_s } => format!(
                "an erasure of this visitor is settling; retry after {retry_after_s} s with the \
                 same batchId"
            ),
            Self::NotFound => "no such route".to_owned(),
            Self::MethodNotAllowed { .. } => "method not allowed on this route".to_owned(),
            Self::UnknownEntity => "no such entity in the feature spec".to_owned(),
            Self::UnknownFeature(name) => format!("no feature {name:?} for this entity"),
            Self::BadRequest(why) => why.clone(),
            Self::RateLimited {
                scope,
                retry_after_s,
            } => format!(
                "too many batches from this {scope}; retry after {retry_after_s} s with the same batchId"
            ),
            Self::StoreUnavailable(_) => {
                "the feature store is unavailable; retry with the same batchId".to_owned()
            }
            Self::LogUnavailable(_) => {
                "the event log is unavailable; retry with the same batchId".to_owned()
            }
            Self::QueueUnavailable(_) => {
                "the ingest queue is unavailable; retry with the same batchId".to_owned()
            }
            Self::BadMessage(why) => format!("a queue message that is not a logged batch: {why}"),
            // The operator reads this in the answer of their own worker; it
            // names the variable and the rule, never a secret's value.
            Self::Misconfigured(e) => e.to_string(),
            Self::SignInMove(e) => e.public_message(),
        }
    }

    /// The answer for this error: status, short JSON, and `Retry-After` when
    /// a retry can succeed.
    pub fn to_response(&self) -> Response {
        let res = Response::json(
            self.status(),
            &json!({ "error": self.code(), "message": self.public_message() }),
        );
        match self {
            Self::StoreUnavailable(_) | Self::LogUnavailable(_) | Self::QueueUnavailable(_) => {
                res.with_header("retry-after", "1")
            }
            Self::RateLimited { retry_after_s, .. } | Self::Erasing { retry_after_s } => {
                res.with_header("retry-after", retry_after_s.to_string())
            }
            Self::MethodNotAllowed { allow } => res.with_header("allow", *allow),
            _ => res,
        }
    }

    /// Whether the detail belongs in the operator's log (server-side faults).
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            Self::StoreUnavailable(_)
                | Self::LogUnavailable(_)
                | Self::QueueUnavailable(_)
                | Self::BadMessage(_)
                | Self::Misconfigured(_)
                | Self::SignInMove(_)
        )
    }
}

impl fmt::Display for EdgeError {
    /// The full detail, for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Batch(e) => write!(f, "{}: {e}", e.code()),
            Self::StoreUnavailable(e) => write!(f, "store_unavailable: {e}"),
            Self::LogUnavailable(e) => write!(f, "log_unavailable: {e}"),
            Self::QueueUnavailable(e) => write!(f, "queue_unavailable: {e}"),
            Self::Misconfigured(e) => write!(f, "misconfigured: {e}"),
            Self::SignInMove(e) => write!(f, "sign-in move left for the job: {e}"),
            other => write!(f, "{}: {}", other.code(), other.public_message()),
        }
    }
}

impl std::error::Error for EdgeError {}

impl From<BatchError> for EdgeError {
    fn from(e: BatchError) -> Self {
        Self::Batch(e)
    }
}

impl From<StoreError> for EdgeError {
    fn from(e: StoreError) -> Self {
        Self::StoreUnavailable(e)
    }
}

impl From<ConfigError> for EdgeError {
    fn from(e: ConfigError) -> Self {
        Self::Misconfigured(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_error_maps_to_its_status() {
        let cases = [
            (BatchError::BodyTooLarge { limit: 1 }, 413),
            (BatchError::BadGzip, 400),
            (BatchError::MalformedJson { detail: "x".into() }, 400),
            (BatchError::EmptyBatch, 400),
            (BatchError::TooManyEvents { count: 2, limit: 1 }, 400),
            (BatchError::BadBatchId, 400),
            (BatchError::BadSentAt, 400),
        ];
        for (e, status) in cases {
            let code = e.code();
            let res = EdgeError::from(e).to_response();
            assert_eq!(res.status, status, "{code}");
            let body = res.body_json().expect("json body");
            assert_eq!(body["error"], code);
        }
    }

    #[test]
    fn store_failures_are_503_with_retry_after_and_no_detail() {
        let e = EdgeError::from(StoreError::Io("connection refused to 10.0.0.7:6379".into()));
        let res = e.to_response();
        assert_eq!(res.status, 503);
        assert_eq!(res.header("retry-after"), Some("1"));
        let text = String::from_utf8(res.body.clone()).expect("utf8");
        assert!(!text.contains("10.0.0.7"), "{text}");
        assert!(
            e.to_string().contains("10.0.0.7"),
            "the log keeps the detail"
        );
    }

    #[test]
    fn malformed_json_detail_stays_in_the_log() {
        let e = EdgeError::from(BatchError::MalformedJson {
            detail: "secret-ish parser detail".into(),
        });
        let text = String::from_utf8(e.to_response().body).expect("utf8");
        assert!(!text.contains("secret-ish"));
    }

    #[test]
    fn auth_errors_are_401_and_origin_is_403() {
        for e in [
            EdgeError::MissingWriteKey,
            EdgeError::UnknownWriteKey,
            EdgeError::Identity(IdentityError::Malformed),
            EdgeError::Identity(IdentityError::BadSignature),
            EdgeError::Identity(IdentityError::Expired),
            EdgeError::Unauthorized,
            EdgeError::ServingDisabled,
        ] {
            assert_eq!(e.status(), 401, "{e}");
        }
        assert_eq!(EdgeError::OriginNotAllowed.status(), 403);
    }

    #[test]
    fn rate_limited_is_429_with_retry_after() {
        let res = EdgeError::RateLimited {
            scope: Scope::Client,
            retry_after_s: 60,
        }
        .to_response();
        assert_eq!(res.status, 429);
        assert_eq!(res.header("retry-after"), Some("60"));
        assert_eq!(res.body_json().expect("json")["error"], "rate_limited");
    }
}
