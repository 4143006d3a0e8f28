//! `GET /v1/events`: the event log's batches of a receive-time span, as NDJSON.

use freshet_core::time::{DAY, Millis, parse_rfc3339};

use super::Edge;
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::{Bucket, EventLog, MAX_EXPORT_BATCHES};
use crate::http::{Request, Response};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::FeatureStore;

pub use freshet_core::limits::MAX_EXPORT_SPAN;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// `GET /v1/events?from=…[&to=…][&limit=N]`: the logged batches received
    /// in `[from, to]` (RFC 3339 or milliseconds; `to` defaults to now, and
    /// one request spans at most [`MAX_EXPORT_SPAN`]), as NDJSON in receive
    /// order; a cut page names where to go on in `Freshet-Next-From`.
    pub(super) async fn export_events(
        &self,
        req: &Request,
        now: Millis,
    ) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        if matches!(self.log, EventLog::Off) {
            return Err(EdgeError::NotFound);
        }
        let time = |name: &str| -> Result<Option<Millis>, EdgeError> {
            req.query_param(name)
                .map(|v| {
                    v.parse::<Millis>()
                        .ok()
                        .or_else(|| parse_rfc3339(&v))
                        .ok_or_else(|| {
                            EdgeError::BadRequest(format!(
                                "`{name}` must be an RFC 3339 time or milliseconds since the epoch"
                            ))
                        })
                })
                .transpose()
        };
        let from =
            time("from")?.ok_or_else(|| EdgeError::BadRequest("`from` is required".into()))?;
        // Nothing is received in the future.
        let to = time("to")?.unwrap_or(now).min(now);
        if from > to {
            return Err(EdgeError::BadRequest("`from` is after `to`".into()));
        }
        if to - from > MAX_EXPORT_SPAN {
            return Err(EdgeError::BadRequest(format!(
                "one export spans at most {} days; page by `from`",
                MAX_EXPORT_SPAN / DAY
            )));
        }
        let limit = match req.query_param("limit") {
            None => MAX_EXPORT_BATCHES,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_EXPORT_BATCHES).contains(&n) => n,
                _ => {
                    return Err(EdgeError::BadRequest(format!(
                        "`limit` must be 1 to {MAX_EXPORT_BATCHES} batches"
                    )));
                }
            },
        };
        // Erasures whose rewrite of the log is still to come: their events
        // are already left out.
        let erasing = self.erasing().await?;
        let export = self
            .log
            .export(self.spec, from, to, limit, &erasing)
            .await
            .map_err(EdgeError::LogUnavailable)?;
        let mut res = Response {
            status: 200,
            headers: vec![("content-type", "application/x-ndjson".to_owned())],
            body: export.ndjson,
        }
        .with_header("freshet-batches", export.batches.to_string());
        if let Some(next) = export.next_from {
            res = res.with_header("freshet-next-from", next.to_string());
        }
        Ok(res)
    }
}
