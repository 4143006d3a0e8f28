//! The default store: one Durable Object per entity (`id_from_name("user:cid-1")`),
//! its SQLite storage holding the entity's `FeatureDoc` as JSON, updated with
//! `core`'s `merge_delta`. A Durable Object runs one event at a time and its
//! output gate holds the answer until the SQLite write is durable, so the
//! worker's 202 never precedes the data. Needs no server: it is what
//! `wrangler dev` uses out of the box, persisted with `--persist-to`.

use std::cell::{Cell, RefCell};

use freshet_core::drift::{SUMMARY_TTL_SECS, Summary};
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{Applied, BATCH_MARKER_TTL, EntityDelta, FeatureDoc, merge_delta};
use freshet_core::time::{HOUR, Millis, SECOND};
use futures_util::future::try_join_all;
use serde::Deserialize;
use worker::{
    DurableObject, Env, Method, ObjectNamespace, Request, Response, Result, SqlStorage, State,
    durable_object,
};

use crate::config::env::spec as worker_spec;
use crate::store::object_call::call_object;
use crate::store::{EntityKey, EntityRead, FeatureStore, StoreError};

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "FEATURES";

/// The worker's side: routes each entity's delta or read to its object.
#[derive(Debug)]
pub struct DurableObjectStore {
    namespace: ObjectNamespace,
}

impl DurableObjectStore {
    pub fn new(namespace: ObjectNamespace) -> Self {
        Self { namespace }
    }

    async fn call(
        &self,
        entity: &str,
        id: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> std::result::Result<String, StoreError> {
        let name = format!("{entity}:{id}");
        call_object(&self.namespace, "durable object", &name, method, path, body).await
    }

    /// A feature's drift summaries live in one object of their own,
    /// `drift|name@version` (entity objects are `entity:id`), one row per hour.
    async fn call_drift(
        &self,
        feature: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> std::result::Result<String, StoreError> {
        let name = format!("drift|{feature}");
        call_object(&self.namespace, "durable object", &name, method, path, body).await
    }
}

impl FeatureStore for DurableObjectStore {
    fn kind(&self) -> &'static str {
        "durable-object"
    }

    /// One call per entity: its deltas of several batches (a queue
    /// delivery) go together to `/apply-all`, which applies each under its
    /// own marker in one event of the object, durable before it answers.
    async fn apply(&self, deltas: &[EntityDelta]) -> std::result::Result<Vec<Applied>, StoreError> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_entity: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::new();
        for (i, d) in deltas.iter().enumerate() {
            let g = *by_entity
                .entry((d.entity.as_str(), d.id.as_str()))
                .or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
            groups[g].push(i);
        }
        // Every entity's object at once; the batch is durable when all answered.
        let answers = try_join_all(groups.iter().map(|members| async move {
            let first = &deltas[members[0]];
            let (path, body) = if members.len() == 1 {
                ("/apply", serde_json::to_string(first))
            } else {
                let group: Vec<&EntityDelta> = members.iter().map(|&i| &deltas[i]).collect();
                ("/apply-all", serde_json::to_string(&group))
            };
            let body = body.map_err(|e| StoreError::Protocol(e.to_string()))?;
            let answer = self
                .call(&first.entity, &first.id, Method::Post, path, Some(body))
                .await?;
            let words: Vec<String> = if members.len() == 1 {
                vec![answer]
            } else {
                serde_json::from_str(&answer).map_err(|e| StoreError::Protocol(e.to_string()))?
            };
            if words.len() != members.len() {
                return Err(StoreError::Protocol(format!(
                    "{} answers for {} deltas",
                    words.len(),
                    members.len()
                )));
            }
            words
                .iter()
                .map(|w| match w.as_str() {
                    "applied" => Ok(Applied::Applied),
                    "duplicate" => Ok(Applied::Duplicate),
                    other => Err(StoreError::Protocol(format!("unexpected answer {other:?}"))),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
        }))
        .await?;
        let mut outcome = vec![Applied::Applied; deltas.len()];
        for (members, applied) in groups.iter().zip(answers) {
            for (&i, a) in members.iter().zip(applied) {
                outcome[i] = a;
            }
        }
        Ok(outcome)
    }

    async fn add_drift(
        &self,
        now: Millis,
        adds: &[(String, Summary)],
    ) -> std::result::Result<(), StoreError> {
        try_join_all(adds.iter().map(|(feature, summary)| async move {
            let body = serde_json::to_string(&DriftAdd {
                hour: now.div_euclid(HOUR),
                summary: summary.clone(),
            })
            .map_err(|e| StoreError::Protocol(e.to_string()))?;
            self.call_drift(feature, Method::Post, "/drift/add", Some(body))
                .await
                .map(|_| ())
        }))
        .await
        .map(|_| ())
    }

    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> std::result::Result<Vec<std::result::Result<Summary, String>>, StoreError> {
        let path = format!(
            "/drift/get?from={}&to={}",
            from.div_euclid(HOUR),
            to.div_euclid(HOUR)
        );
        try_join_all(features.iter().map(|feature| {
            let path = path.clone();
            async move {
                let text = self.call_drift(feature, Method::Get, &path, None).await?;
                Ok(serde_json::from_str::<Summary>(&text).map_err(|e| format!("summary: {e}")))
            }
        }))
        .await
    }

    /// Each entity's object empties its storage (`deleteAll`): no row of
    /// it is left, its batch markers included.
    async fn delete(&self, keys: &[EntityKey]) -> std::result::Result<usize, StoreError> {
        let found = try_join_all(keys.iter().map(|k| async move {
            self.call(&k.entity, &k.id, Method::Post, "/delete", None)
                .await
                .map(|answer| answer == "deleted")
        }))
        .await?;
        Ok(found.into_iter().filter(|f| *f).count())
    }

    async fn load(&self, reads: &[EntityRead]) -> std::result::Result<Vec<FeatureDoc>, StoreError> {
        try_join_all(reads.iter().map(|r| async move {
            let k = &r.key;
            let text = self
                .call(&k.entity, &k.id, Method::Get, "/doc", None)
                .await?;
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
        }))
        .await
    }
}

/// The object's side: one entity's document.
///
/// Two tables: `doc` holds the `FeatureDoc` (as JSON, without its batch
/// markers), `batches` the applied batch ids with their receive time. Keeping
/// the markers in their own table keeps each write small: a hot entity (a
/// popular product) sees thousands of batches a day, and rewriting them all
/// with every delta would make each write grow with the day's traffic.
/// `merge_delta` still decides every value; the table only answers "was this
/// batch applied", as the document's own marker map would.
#[durable_object]
pub struct FeatureEntity {
    state: State,
    /// For the spec (`FRESHET_SPEC` or the compiled-in one).
    env: Env,
    /// The document as last read or written; this object is its only writer.
    cached: RefCell<Option<FeatureDoc>>,
    ready: Cell<bool>,
}

impl std::fmt::Debug for FeatureEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureEntity").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Row {
    v: String,
}

#[derive(Deserialize)]
struct HourRow {
    hour: Millis,
    v: String,
}

/// One sampled read's summary for one hour (hours since the epoch).
#[derive(serde::Serialize, Deserialize)]
struct DriftAdd {
    hour: Millis,
    summary: Summary,
}

fn rust_error(what: &str, e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(format!("{what}: {e}"))
}

impl FeatureEntity {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS doc (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
                None,
            )?;
            sql.exec(
                "CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
                None,
            )?;
            sql.exec(
                "CREATE INDEX IF NOT EXISTS batches_at ON batches (at)",
                None,
            )?;
            self.ready.set(true);
        }
        Ok(sql)
    }

    /// The document, from the cache or SQLite; the caller puts it back.
    fn take_doc(&self, sql: &SqlStorage) -> Result<FeatureDoc> {
        if let Some(doc) = self.cached.borrow_mut().take() {
            return Ok(doc);
        }
        let rows: Vec<Row> = sql
            .exec("SELECT v FROM doc WHERE k = 'doc'", None)?
            .to_array()?;
        match rows.first() {
            Some(row) => serde_json::from_str(&row.v).map_err(|e| rust_error("stored document", e)),
            None => Ok(FeatureDoc::default()),
        }
    }

    fn applied_before(&self, sql: &SqlStorage, batch_id: &str) -> Result<bool> {
        let rows: Vec<serde_json::Value> = sql
            .exec(
                "SELECT 1 AS x FROM batches WHERE id = ?",
                vec![batch_id.into()],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    /// Applies one delta. There is no await inside: the reads and writes
    /// form one step, and the runtime commits the writes together.
    fn apply(&self, spec: &FeatureSpec, delta: &EntityDelta) -> Result<Applied> {
        let sql = self.sql()?;
        // A delta that merges idempotently needs no marker (as in every store).
        let marked = delta.needs_marker(spec);
        if marked && self.applied_before(&sql, &delta.batch_id)? {
            return Ok(Applied::Duplicate);
        }
        let mut doc = self.take_doc(&sql)?;
        // The markers live in their table, not in the stored document.
        merge_delta(spec, &mut doc, delta);
        let text = serde_json::to_string(&doc).map_err(|e| rust_error("document", e))?;
        sql.exec(
            "INSERT OR REPLACE INTO doc (k, v) VALUES ('doc', ?)",
            vec![text.into()],
        )?;
        if marked {
            sql.exec(
                "INSERT OR REPLACE INTO batches (id, at) VALUES (?, ?)",
                vec![delta.batch_id.as_str().into(), delta.received_at.into()],
            )?;
        }
        sql.exec(
            "DELETE FROM batches WHERE at < ?",
            vec![(delta.received_at - BATCH_MARKER_TTL).into()],
        )?;
        *self.cached.borrow_mut() = Some(doc);
        Ok(Applied::Applied)
    }

    fn drift_sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS drift (hour INTEGER PRIMARY KEY, v TEXT NOT NULL)",
            None,
        )?;
        Ok(sql)
    }

    /// Merges a summary into its hour's row (this object is the feature's
    /// only writer, and runs one event at a time), and drops the hours
    /// older than summaries are kept. No await inside: one step.
    fn add_drift(&self, add: &DriftAdd) -> Result<()> {
        let sql = self.drift_sql()?;
        let rows: Vec<Row> = sql
            .exec("SELECT v FROM drift WHERE hour = ?", vec![add.hour.into()])?
            .to_array()?;
        let mut merged = match rows.first() {
            Some(row) => {
                serde_json::from_str(&row.v).map_err(|e| rust_error("stored summary", e))?
            }
            None => Summary::default(),
        };
        merged.merge(&add.summary);
        let text = serde_json::to_string(&merged).map_err(|e| rust_error("summary", e))?;
        sql.exec(
            "INSERT OR REPLACE INTO drift (hour, v) VALUES (?, ?)",
            vec![add.hour.into(), text.into()],
        )?;
        #[allow(clippy::cast_possible_wrap)]
        let kept = SUMMARY_TTL_SECS as Millis * SECOND / HOUR;
        sql.exec(
            "DELETE FROM drift WHERE hour < ?",
            vec![(add.hour - kept).into()],
        )?;
        Ok(())
    }

    /// The hours `from..=to` merged; a row that does not decode is an error
    /// naming its hour.
    fn drift_json(&self, from: Millis, to: Millis) -> Result<String> {
        let sql = self.drift_sql()?;
        let rows: Vec<HourRow> = sql
            .exec(
                "SELECT hour, v FROM drift WHERE hour >= ? AND hour <= ?",
                vec![from.into(), to.into()],
            )?
            .to_array()?;
        let mut merged = Summary::default();
        for row in rows {
            let s: Summary = serde_json::from_str(&row.v)
                .map_err(|e| rust_error(&format!("summary of hour {}", row.hour), e))?;
            merged.merge(&s);
        }
        serde_json::to_string(&merged).map_err(|e| rust_error("summary", e))
    }

    fn doc_json(&self) -> Result<String> {
        let sql = self.sql()?;
        let doc = self.take_doc(&sql)?;
        let text = serde_json::to_string(&doc).map_err(|e| rust_error("document", e));
        *self.cached.borrow_mut() = Some(doc);
        text
    }
}

/// What `/apply` answers for one delta.
fn answer_word(applied: Applied) -> &'static str {
    match applied {
        Applied::Applied => "applied",
        Applied::Duplicate => "duplicate",
    }
}

impl DurableObject for FeatureEntity {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cached: RefCell::new(None),
            ready: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let spec = worker_spec(&self.env).map_err(|e| rust_error("spec", e))?;
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/apply") => {
                // serde_json, not `req.json()`: the delta's maps have integer
                // keys, which JSON carries as strings and serde-wasm-bindgen refuses.
                let text = req.text().await?;
                let delta: EntityDelta =
                    serde_json::from_str(&text).map_err(|e| rust_error("delta", e))?;
                Response::ok(answer_word(self.apply(spec, &delta)?))
            }
            (Method::Post, "/apply-all") => {
                // Several batches' deltas of this entity, each under its own
                // marker, in this one event: nothing else runs in between,
                // and the answer waits until every write is durable.
                let text = req.text().await?;
                let deltas: Vec<EntityDelta> =
                    serde_json::from_str(&text).map_err(|e| rust_error("deltas", e))?;
                let words = deltas
                    .iter()
                    .map(|d| self.apply(spec, d).map(answer_word))
                    .collect::<Result<Vec<_>>>()?;
                Response::ok(serde_json::to_string(&words).map_err(|e| rust_error("answers", e))?)
            }
            (Method::Get, "/doc") => Response::ok(self.doc_json()?),
            (Method::Post, "/delete") => {
                // Whether it held anything, then nothing at all.
                let sql = self.sql()?;
                let rows: Vec<serde_json::Value> = sql
                    .exec(
                        "SELECT 1 AS x FROM doc UNION ALL SELECT 1 FROM batches",
                        None,
                    )?
                    .to_array()?;
                self.state.storage().delete_all().await?;
                *self.cached.borrow_mut() = None;
                self.ready.set(false);
                Response::ok(if rows.is_empty() { "empty" } else { "deleted" })
            }
            (Method::Post, "/drift/add") => {
                let text = req.text().await?;
                let add: DriftAdd =
                    serde_json::from_str(&text).map_err(|e| rust_error("drift summary", e))?;
                self.add_drift(&add)?;
                Response::ok("added")
            }
            (Method::Get, "/drift/get") => {
                let url = req.url()?;
                let hour = |name: &str| {
                    url.query_pairs()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| v.parse::<Millis>().ok())
                        .ok_or_else(|| rust_error("drift query", name))
                };
                Response::ok(self.drift_json(hour("from")?, hour("to")?)?)
            }
            _ => Response::error("not found", 404),
        }
    }
}
