//! The event log's bucket in the worker: an R2 binding (`EVENT_LOG` in
//! wrangler.toml; `wrangler dev` simulates it locally and keeps it under
//! `--persist-to`). Create-only writes are R2's conditional put with
//! `etagDoesNotMatch: "*"` (no object may exist at the key).

use std::collections::HashMap;

use freshet_core::time::Millis;
use worker::{Conditional, HttpMetadata, Include};

use super::{Bucket, Listed, LogError, RECEIVED_AT_META};

/// The binding's name in wrangler.toml.
pub const BINDING: &str = "EVENT_LOG";

#[derive(Debug)]
pub struct R2Bucket(pub worker::Bucket);

fn fail(what: &str, e: worker::Error) -> LogError {
    LogError(format!("R2 {what}: {e}"))
}

impl R2Bucket {
    /// A put of a log object: a gzip file, not a gzip-encoded NDJSON
    /// response (an S3 client, DuckDB or pyarrow, then gets the bytes the
    /// key's `.gz` promises), with its receive time.
    fn log_object(
        &self,
        key: &str,
        body: Vec<u8>,
        received_at: Millis,
    ) -> worker::PutOptionsBuilder<'_> {
        self.0
            .put(key, body)
            .http_metadata(HttpMetadata {
                content_type: Some("application/gzip".to_owned()),
                ..HttpMetadata::default()
            })
            .custom_metadata(HashMap::from([(
                RECEIVED_AT_META.to_owned(),
                received_at.to_string(),
            )]))
    }
}

impl Bucket for R2Bucket {
    const KIND: &'static str = "r2";

    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        received_at: Millis,
    ) -> Result<bool, LogError> {
        let written = self
            .log_object(key, body, received_at)
            .only_if(Conditional {
                etag_does_not_match: Some("*".to_owned()),
                ..Conditional::default()
            })
            .execute()
            .await
            .map_err(|e| fail("put", e))?;
        // `None`: the condition failed, an object was there (a retry).
        Ok(written.is_some())
    }

    async fn put(&self, key: &str, body: Vec<u8>, received_at: Millis) -> Result<(), LogError> {
        self.log_object(key, body, received_at)
            .execute()
            .await
            .map_err(|e| fail("put", e))?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LogError> {
        Ok(self
            .0
            .head(key)
            .await
            .map_err(|e| fail("head", e))?
            .is_some())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, LogError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut ask = self
                .0
                .list()
                .prefix(prefix)
                .include(vec![Include::CustomMetadata]);
            if let Some(c) = cursor.take() {
                ask = ask.cursor(c);
            }
            let page = ask.execute().await.map_err(|e| fail("list", e))?;
            for object in page.objects() {
                let meta = object.custom_metadata().map_err(|e| fail("metadata", e))?;
                let received_at = meta
                    .get(RECEIVED_AT_META)
                    .and_then(|v| v.parse::<Millis>().ok())
                    .ok_or_else(|| {
                        LogError(format!(
                            "{} has no {RECEIVED_AT_META} metadata",
                            object.key()
                        ))
                    })?;
                out.push(Listed {
                    key: object.key(),
                    received_at,
                });
            }
            match (page.truncated(), page.cursor()) {
                (true, Some(c)) => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        let Some(object) = self
            .0
            .get(key)
            .execute()
            .await
            .map_err(|e| fail("get", e))?
        else {
            return Ok(None);
        };
        let Some(body) = object.body() else {
            return Ok(None);
        };
        body.bytes().await.map(Some).map_err(|e| fail("read", e))
    }

    async fn delete(&self, key: &str) -> Result<(), LogError> {
        self.0.delete(key).await.map_err(|e| fail("delete", e))
    }
}
