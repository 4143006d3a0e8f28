//! The registry in Durable Objects (`ERASURES` in wrangler.toml): one object
//! per principal, named by a hash of it (`principal:<sha-256>`, so no
//! person's id names an object), holding its tombstone and index in SQLite;
//! and one object, `records`, holding the erasure records. A batch's gate is
//! one call to its principal's object, which runs one event at a time: a
//! touch and a tombstone never interleave.

use std::cell::Cell;

use freshet_core::erasure::{Principal, Tombstone};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use worker::{
    DurableObject, Env, Method, ObjectNamespace, Request, Response, Result, SqlStorage, State,
    durable_object,
};

use freshet_core::time::Millis;

use super::{Erasure, Index, LinkState, Registry, Touch, Touched};
use crate::store::StoreError;
use crate::store::object_call::call_object;

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "ERASURES";
const RECORDS: &str = "records";

/// The worker's side; `None` when the binding is missing: the gate then
/// lets everything through and the erasure routes say what is wrong.
#[derive(Debug)]
pub struct DurableRegistry(pub Option<ObjectNamespace>);

fn object_name(principal: &Principal) -> String {
    let digest = Sha256::digest(principal.name().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("principal:{hex}")
}

impl DurableRegistry {
    fn namespace(&self) -> std::result::Result<&ObjectNamespace, StoreError> {
        self.0.as_ref().ok_or_else(|| {
            StoreError::Server(format!(
                "erasure needs the {BINDING} Durable Object binding in wrangler.toml"
            ))
        })
    }

    async fn call(
        &self,
        name: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> std::result::Result<String, StoreError> {
        call_object(
            self.namespace()?,
            "erasure registry",
            name,
            method,
            path,
            body,
        )
        .await
    }

    async fn post<T: serde::Serialize, A: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        path: &str,
        body: &T,
    ) -> std::result::Result<A, StoreError> {
        let body = serde_json::to_string(body).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let text = self.call(name, Method::Post, path, Some(body)).await?;
        serde_json::from_str(&text).map_err(|e| StoreError::Protocol(e.to_string()))
    }
}

impl Registry for DurableRegistry {
    fn kind(&self) -> &'static str {
        if self.0.is_some() {
            "durable-object"
        } else {
            "off"
        }
    }

    async fn touch(
        &self,
        principal: &Principal,
        touch: &Touch,
    ) -> std::result::Result<Touched, StoreError> {
        if self.0.is_none() {
            return Ok(Touched::default());
        }
        self.post(&object_name(principal), "/touch", touch).await
    }

    async fn confirm_client(
        &self,
        user: &str,
        client: &str,
    ) -> std::result::Result<(), StoreError> {
        let user = Principal::User(user.to_owned());
        self.post(&object_name(&user), "/confirm", &client).await
    }

    async fn link(
        &self,
        client: &str,
        user: &str,
        at: Millis,
    ) -> std::result::Result<LinkState, StoreError> {
        let name = object_name(&Principal::Client(client.to_owned()));
        self.post(&name, "/link", &(user, at)).await
    }

    async fn load_link(&self, client: &str) -> std::result::Result<Option<LinkState>, StoreError> {
        let name = object_name(&Principal::Client(client.to_owned()));
        self.post(&name, "/link-load", &()).await
    }

    async fn save_link(
        &self,
        client: &str,
        state: &LinkState,
        read: u64,
    ) -> std::result::Result<bool, StoreError> {
        let name = object_name(&Principal::Client(client.to_owned()));
        self.post(&name, &format!("/link-save?read={read}"), state)
            .await
    }

    async fn move_due(&self, client: &str, due: Millis) -> std::result::Result<(), StoreError> {
        self.post(RECORDS, "/due", &(client, due)).await
    }

    async fn moves_due(
        &self,
        now: Millis,
    ) -> std::result::Result<Vec<(String, Millis)>, StoreError> {
        if self.0.is_none() {
            return Ok(Vec::new());
        }
        self.post(RECORDS, "/due-list", &now).await
    }

    async fn moved(&self, client: &str, due: Millis) -> std::result::Result<(), StoreError> {
        self.post(RECORDS, "/due-done", &(client, due)).await
    }

    async fn tombstone(
        &self,
        principal: &Principal,
        tomb: Tombstone,
    ) -> std::result::Result<Index, StoreError> {
        self.post(&object_name(principal), "/tombstone", &tomb)
            .await
    }

    async fn index(&self, principal: &Principal) -> std::result::Result<Index, StoreError> {
        self.post(&object_name(principal), "/index", &()).await
    }

    async fn forget(
        &self,
        principal: &Principal,
        done: &Index,
    ) -> std::result::Result<(), StoreError> {
        self.post(&object_name(principal), "/forget", done).await
    }

    async fn save(&self, erasure: &Erasure) -> std::result::Result<(), StoreError> {
        self.post(RECORDS, "/save", erasure).await
    }

    async fn save_if(&self, erasure: &Erasure, read: u64) -> std::result::Result<bool, StoreError> {
        self.post(RECORDS, &format!("/save-if?read={read}"), erasure)
            .await
    }

    async fn load(&self, id: &str) -> std::result::Result<Option<Erasure>, StoreError> {
        self.post(RECORDS, "/load", &id).await
    }

    async fn open(&self) -> std::result::Result<Vec<Erasure>, StoreError> {
        if self.0.is_none() {
            return Ok(Vec::new());
        }
        self.post(RECORDS, "/open", &()).await
    }
}

/// The object's side: a principal's tombstone and index, or the records.
#[durable_object]
pub struct ErasureRegistry {
    state: State,
    ready: Cell<bool>,
}

impl std::fmt::Debug for ErasureRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErasureRegistry").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TextRow {
    v: String,
}

#[derive(Deserialize)]
struct KindRow {
    kind: String,
    v: String,
}

fn rust_error(what: &str, e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(format!("{what}: {e}"))
}

impl ErasureRegistry {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            for create in [
                "CREATE TABLE IF NOT EXISTS tomb (k INTEGER PRIMARY KEY, v TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS idx (kind TEXT NOT NULL, v TEXT NOT NULL, \
                 PRIMARY KEY (kind, v))",
                "CREATE TABLE IF NOT EXISTS rec (id TEXT PRIMARY KEY, open INTEGER NOT NULL, \
                 v TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS link (k INTEGER PRIMARY KEY, v TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS confirmed (client TEXT PRIMARY KEY)",
                "CREATE TABLE IF NOT EXISTS due (client TEXT PRIMARY KEY, due INTEGER NOT NULL)",
            ] {
                sql.exec(create, None)?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }

    fn tombstone(sql: &SqlStorage) -> Result<Option<Tombstone>> {
        let rows: Vec<TextRow> = sql
            .exec("SELECT v FROM tomb WHERE k = 1", None)?
            .to_array()?;
        rows.first()
            .map(|r| serde_json::from_str(&r.v).map_err(|e| rust_error("tombstone", e)))
            .transpose()
    }

    fn index(sql: &SqlStorage) -> Result<Index> {
        let rows: Vec<KindRow> = sql.exec("SELECT kind, v FROM idx", None)?.to_array()?;
        let mut index = Index::default();
        for row in rows {
            match row.kind.as_str() {
                "composite" => index
                    .composites
                    .push(serde_json::from_str(&row.v).map_err(|e| rust_error("composite", e))?),
                "log" => index.log_keys.push(row.v),
                _ => index.clients.push(row.v),
            }
        }
        Ok(index)
    }

    /// The index rows of `touch`: (kind, value).
    fn rows(touch: &Touch) -> Result<Vec<(&'static str, String)>> {
        let mut rows = Vec::new();
        for c in &touch.composites {
            let v = serde_json::to_string(c).map_err(|e| rust_error("composite", e))?;
            rows.push(("composite", v));
        }
        rows.extend(touch.log_keys.iter().map(|k| ("log", k.clone())));
        rows.extend(touch.clients.iter().map(|c| ("client", c.clone())));
        Ok(rows)
    }

    /// Runs `statement` with each index row of `touch` as (kind, value);
    /// no await inside, so it is one step.
    fn each_row(sql: &SqlStorage, statement: &str, touch: &Touch) -> Result<()> {
        for (kind, v) in Self::rows(touch)? {
            sql.exec(statement, vec![kind.into(), v.into()])?;
        }
        Ok(())
    }

    fn put_record(sql: &SqlStorage, erasure: &Erasure, text: &str) -> Result<()> {
        sql.exec(
            "INSERT OR REPLACE INTO rec (id, open, v) VALUES (?, ?, ?)",
            vec![
                erasure.id.as_str().into(),
                i32::from(!erasure.is_done()).into(),
                text.into(),
            ],
        )?;
        Ok(())
    }

    fn link(sql: &SqlStorage) -> Result<Option<LinkState>> {
        let rows: Vec<TextRow> = sql
            .exec("SELECT v FROM link WHERE k = 1", None)?
            .to_array()?;
        rows.first()
            .map(|r| serde_json::from_str(&r.v).map_err(|e| rust_error("link", e)))
            .transpose()
    }

    fn put_link(sql: &SqlStorage, state: &LinkState) -> Result<()> {
        let v = serde_json::to_string(state).map_err(|e| rust_error("link", e))?;
        sql.exec(
            "INSERT OR REPLACE INTO link (k, v) VALUES (1, ?)",
            vec![v.into()],
        )?;
        Ok(())
    }

    fn touched(sql: &SqlStorage, touch: &Touch) -> Result<Touched> {
        let mut unlinked = Vec::new();
        for c in &touch.clients {
            let rows: Vec<serde_json::Value> = sql
                .exec(
                    "SELECT client FROM confirmed WHERE client = ?",
                    vec![c.as_str().into()],
                )?
                .to_array()?;
            if rows.is_empty() {
                unlinked.push(c.clone());
            }
        }
        Ok(Touched {
            tomb: Self::tombstone(sql)?,
            unlinked,
            follows: Self::link(sql)?.map(|l| l.user),
        })
    }

    fn read_version(req: &Request) -> Result<u64> {
        req.url()?
            .query_pairs()
            .find(|(k, _)| k == "read")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| rust_error("save", "no read version"))
    }

    fn answer(value: &impl serde::Serialize) -> Result<Response> {
        Response::ok(serde_json::to_string(value).map_err(|e| rust_error("answer", e))?)
    }
}

impl DurableObject for ErasureRegistry {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            ready: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let text = req.text().await?;
        let sql = self.sql()?;
        let body = |what: &str| -> Result<serde_json::Value> {
            serde_json::from_str(&text).map_err(|e| rust_error(what, e))
        };
        match req.path().as_str() {
            "/touch" => {
                let touch: Touch =
                    serde_json::from_str(&text).map_err(|e| rust_error("touch", e))?;
                Self::each_row(
                    &sql,
                    "INSERT OR IGNORE INTO idx (kind, v) VALUES (?, ?)",
                    &touch,
                )?;
                Self::answer(&Self::touched(&sql, &touch)?)
            }
            "/confirm" => {
                let client = body("client")?;
                sql.exec(
                    "INSERT OR IGNORE INTO confirmed (client) VALUES (?)",
                    vec![client.as_str().unwrap_or_default().into()],
                )?;
                Self::answer(&())
            }
            "/link" => {
                let (user, at): (String, Millis) =
                    serde_json::from_str(&text).map_err(|e| rust_error("link", e))?;
                let state = match Self::link(&sql)? {
                    Some(mut state) => {
                        state.follow(&user, at);
                        state
                    }
                    None => LinkState::new(&user, at),
                };
                Self::put_link(&sql, &state)?;
                Self::answer(&state)
            }
            "/link-load" => Self::answer(&Self::link(&sql)?),
            "/link-save" => {
                let state: LinkState =
                    serde_json::from_str(&text).map_err(|e| rust_error("link", e))?;
                let read = Self::read_version(&req)?;
                if Self::link(&sql)?.is_none_or(|l| l.version != read) {
                    return Self::answer(&false);
                }
                Self::put_link(&sql, &state)?;
                Self::answer(&true)
            }
            "/due" => {
                let (client, due): (String, Millis) =
                    serde_json::from_str(&text).map_err(|e| rust_error("due", e))?;
                sql.exec(
                    "INSERT INTO due (client, due) VALUES (?, ?) \
                     ON CONFLICT (client) DO UPDATE SET due = MAX(due, excluded.due)",
                    vec![client.into(), (due as f64).into()],
                )?;
                Self::answer(&())
            }
            "/due-list" => {
                let now: Millis = serde_json::from_str(&text).map_err(|e| rust_error("due", e))?;
                #[derive(Deserialize)]
                struct DueRow {
                    client: String,
                    due: f64,
                }
                let rows: Vec<DueRow> = sql
                    .exec(
                        "SELECT client, due FROM due WHERE due <= ? ORDER BY due LIMIT 100",
                        vec![(now as f64).into()],
                    )?
                    .to_array()?;
                let out: Vec<(String, Millis)> = rows
                    .into_iter()
                    .map(|r| (r.client, r.due as Millis))
                    .collect();
                Self::answer(&out)
            }
            "/due-done" => {
                let (client, due): (String, Millis) =
                    serde_json::from_str(&text).map_err(|e| rust_error("due", e))?;
                sql.exec(
                    "DELETE FROM due WHERE client = ? AND due = ?",
                    vec![client.into(), (due as f64).into()],
                )?;
                Self::answer(&())
            }
            "/tombstone" => {
                let tomb: Tombstone =
                    serde_json::from_str(&text).map_err(|e| rust_error("tombstone", e))?;
                // A later erasure's tombstone stays.
                if Self::tombstone(&sql)?.is_none_or(|t| t.erased_at <= tomb.erased_at) {
                    let v = serde_json::to_string(&tomb).map_err(|e| rust_error("tombstone", e))?;
                    sql.exec(
                        "INSERT OR REPLACE INTO tomb (k, v) VALUES (1, ?)",
                        vec![v.into()],
                    )?;
                }
                // A client's link holds what its moves gave: the person's.
                sql.exec("DELETE FROM link", None)?;
                Self::answer(&Self::index(&sql)?)
            }
            "/index" => Self::answer(&Self::index(&sql)?),
            "/forget" => {
                let done: Index =
                    serde_json::from_str(&text).map_err(|e| rust_error("index", e))?;
                Self::each_row(&sql, "DELETE FROM idx WHERE kind = ? AND v = ?", &done)?;
                Self::answer(&())
            }
            "/save-if" => {
                // This object runs one event at a time: the read and the
                // write are one step.
                let erasure: Erasure =
                    serde_json::from_str(&text).map_err(|e| rust_error("erasure", e))?;
                let read = Self::read_version(&req)?;
                let rows: Vec<TextRow> = sql
                    .exec(
                        "SELECT v FROM rec WHERE id = ?",
                        vec![erasure.id.as_str().into()],
                    )?
                    .to_array()?;
                let stored: Option<Erasure> = rows
                    .first()
                    .map(|r| serde_json::from_str(&r.v).map_err(|e| rust_error("record", e)))
                    .transpose()?;
                if stored.is_some_and(|e| e.version != read) {
                    return Self::answer(&false);
                }
                Self::put_record(&sql, &erasure, &text)?;
                Self::answer(&true)
            }
            "/save" => {
                let erasure: Erasure =
                    serde_json::from_str(&text).map_err(|e| rust_error("erasure", e))?;
                Self::put_record(&sql, &erasure, &text)?;
                Self::answer(&())
            }
            "/load" => {
                let id = body("id")?;
                let id = id.as_str().unwrap_or_default();
                let rows: Vec<TextRow> = sql
                    .exec("SELECT v FROM rec WHERE id = ?", vec![id.into()])?
                    .to_array()?;
                let found: Option<Erasure> = rows
                    .first()
                    .map(|r| serde_json::from_str(&r.v).map_err(|e| rust_error("record", e)))
                    .transpose()?;
                Self::answer(&found)
            }
            "/open" => {
                let rows: Vec<TextRow> = sql
                    .exec("SELECT v FROM rec WHERE open = 1", None)?
                    .to_array()?;
                let open = rows
                    .iter()
                    .map(|r| serde_json::from_str(&r.v).map_err(|e| rust_error("record", e)))
                    .collect::<Result<Vec<Erasure>>>()?;
                Self::answer(&open)
            }
            _ => Response::error("not found", 404),
        }
    }
}
