//! `GET /v1/drift`: the served values' summaries against the baseline.

use std::collections::BTreeMap;

use freshet_core::drift::{Baseline, SUMMARY_TTL_SECS, Summary, Thresholds, check_drift};
use freshet_core::spec::parse_duration;
use freshet_core::time::{DAY, HOUR, Millis, SECOND, format_rfc3339};
use serde_json::json;

use super::Edge;
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::{Request, Response};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::FeatureStore;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// `GET /v1/drift?since=24h`: every feature's served values of the
    /// last `since` (at most the 8 days summaries are kept) against the
    /// baseline (`FRESHET_DRIFT_BASELINE`, else the spec's `expected`).
    /// `summaries=1` adds the merged live summaries, for `freshet drift`
    /// to compare with a baseline file of its own.
    pub(super) async fn drift(&self, req: &Request, now: Millis) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        let since = match req.query_param("since") {
            None => DAY,
            Some(text) => parse_duration(&text).map_err(EdgeError::BadRequest)?,
        };
        #[allow(clippy::cast_possible_wrap)]
        let kept = SUMMARY_TTL_SECS as Millis * SECOND;
        if since <= 0 || since > kept {
            return Err(EdgeError::BadRequest(format!(
                "since must be from 1h to {}d",
                kept / DAY
            )));
        }
        let since = since.max(HOUR);
        let keys: Vec<String> = self
            .spec
            .features()
            .iter()
            .map(|f| f.key().to_owned())
            .collect();
        let from = now - since;
        let live = self.store.load_drift(&keys, from, now).await?;
        let live: BTreeMap<String, Result<Summary, String>> = keys.into_iter().zip(live).collect();
        let baseline = self
            .config
            .drift_baseline
            .as_deref()
            // Checked when the configuration was read.
            .map(|text| Baseline::from_json(text).unwrap_or_default());
        let checked = check_drift(self.spec, &live, baseline, &Thresholds::default());
        let mut body = json!({
            "from": format_rfc3339(from),
            "to": format_rfc3339(now),
            "baseline": checked.baseline,
            "report": checked.report,
        });
        if req.query_param("summaries").as_deref() == Some("1") {
            let summaries: BTreeMap<&String, serde_json::Value> = live
                .iter()
                .map(|(k, s)| {
                    let v = match s {
                        Ok(s) => json!({ "summary": s }),
                        Err(e) => json!({ "error": e }),
                    };
                    (k, v)
                })
                .collect();
            body["summaries"] = json!(summaries);
        }
        Ok(Response::json(200, &body))
    }
}
