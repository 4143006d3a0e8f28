//! One erasure's record: whom it erases (until it is done: the receipt
//! keeps no id of the person), when, and each part's progress.

use freshet_core::erasure::Principal;
use freshet_core::time::{Millis, format_rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A part that is done: when, and how much it removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartDone {
    pub at: Millis,
    pub removed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub id: String,
    /// When it was asked for.
    pub requested_at: Millis,
    /// When it takes effect: the principals' events at or before it are
    /// gone; then the store is swept the last time and the log rewritten.
    pub settled_at: Millis,
    /// Whom it erases, a user's clients included; emptied once done.
    pub principals: Vec<Principal>,
    /// The principals' own entities, removed before the 202.
    pub store: Option<PartDone>,
    /// The composite entities with a principal as a part.
    pub composites: Option<PartDone>,
    /// The log's lines of the principals (`removed`), rewritten.
    pub log: Option<PartDone>,
    /// Log objects rewritten or removed, and the events taken out, so far.
    #[serde(default)]
    pub log_objects: usize,
    #[serde(default)]
    pub log_lines: usize,
    /// Whether the indexed log objects are rewritten.
    #[serde(default)]
    pub log_indexed: bool,
    /// Days of log still to scan whole, and days scanned, back from
    /// `settled_at` (`scanLogDays` in the request).
    #[serde(default)]
    pub scan_days_left: u32,
    #[serde(default)]
    pub scan_days_done: u32,
    /// Whether the store's last sweep is done.
    #[serde(default)]
    pub swept: bool,
    /// When a runner claimed the last sweep.
    #[serde(default)]
    pub claimed_at: Option<Millis>,
    /// Each save's number: a save names the one it read, and fails if
    /// another runner saved since.
    #[serde(default)]
    pub version: u64,
}

impl Erasure {
    pub fn is_done(&self) -> bool {
        self.store.is_some() && self.composites.is_some() && self.log.is_some()
    }

    /// What `GET /v1/erasures/{id}` answers: each part's state and time.
    pub fn receipt(&self) -> Value {
        let part = |p: &Option<PartDone>, what: &str| match p {
            Some(done) => json!({
                "state": "done",
                "at": format_rfc3339(done.at),
                what: done.removed,
            }),
            None => json!({ "state": "pending" }),
        };
        let mut receipt = json!({
            "id": self.id,
            "status": if self.is_done() { "done" } else { "pending" },
            "requestedAt": format_rfc3339(self.requested_at),
            "erasesUntil": format_rfc3339(self.settled_at),
            "store": part(&self.store, "entities"),
            "composites": part(&self.composites, "entities"),
            "log": part(&self.log, "events"),
        });
        if self.scan_days_left + self.scan_days_done > 0 {
            receipt["log"]["daysScanned"] = json!(self.scan_days_done);
        }
        if let Some(log) = self.log.as_ref() {
            receipt["log"]["objects"] = json!(self.log_objects);
            let found = self.store.map_or(0, |p| p.removed)
                + self.composites.map_or(0, |p| p.removed)
                + log.removed;
            if found == 0 {
                receipt["nothingFound"] = json!(true);
            }
        }
        receipt
    }
}
