//! The reader, free of Python: a read plan for one entity and a list of
//! feature names, the store requests it needs, and the decoding of each
//! store's answer into served values, all through `freshet-core`. The
//! binding (`plan.rs`) only converts these types to and from Python objects.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use freshet_core::encode::mongo::{collection, decode_document, document_name, document_to_json};
use freshet_core::encode::redis::{
    EntityKeys, RedisCommand, RedisValue, decode_layout1_for, decode_state_for, is_unwritten,
    layout1_read_commands_for, read_commands_for,
};
use freshet_core::read::{FeatureValue, ReadError, read_one, resolve_names};
use freshet_core::spec::{FeatureSpec, PairError, composite_id};
use freshet_core::state::FeatureDoc;
use freshet_core::time::Millis;
use serde_json::Value;

/// Why a read failed; the binding maps each to one Python exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderError {
    /// The spec does not parse or check.
    Spec(String),
    /// An entity or feature the spec does not know, found before any I/O.
    Unknown(ReadError),
    /// The store's state for `key` does not have the shape Freshet writes.
    Corrupt { key: String, detail: String },
    /// The store answered with something other than what was asked.
    Unavailable(String),
    /// The caller's ids or entities cannot make the read (a composite id's
    /// parts missing, a pair entity that pairs other entities).
    Input(String),
}

impl fmt::Display for ReaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(e) | Self::Unavailable(e) | Self::Input(e) => f.write_str(e),
            Self::Unknown(e) => write!(f, "{e}"),
            Self::Corrupt { key, detail } => write!(f, "{key}: {detail}"),
        }
    }
}

impl std::error::Error for ReaderError {}

impl From<ReadError> for ReaderError {
    fn from(e: ReadError) -> Self {
        Self::Unknown(e)
    }
}

/// The ids of the composite `entity`, row by row, from one column of ids
/// per part (by entity name), each built by [`composite_id`].
pub fn compose_ids(
    spec: &FeatureSpec,
    entity: &str,
    ids: &HashMap<String, Vec<String>>,
) -> Result<Vec<String>, ReaderError> {
    let def = spec
        .entity(entity)
        .ok_or_else(|| ReadError::UnknownEntity(entity.to_owned()))?;
    if !def.is_composite() {
        return Err(ReaderError::Input(format!(
            "`{entity}` is not a composite entity: its ids are given as they are"
        )));
    }
    let columns = def
        .part_names()
        .into_iter()
        .map(|part| {
            ids.get(part)
                .ok_or_else(|| ReaderError::Input(format!("`{entity}` ids need the `{part}` ids")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = columns.first().map_or(0, |c| c.len());
    if columns.iter().any(|c| c.len() != rows) {
        return Err(ReaderError::Input(format!(
            "`{entity}` ids: the columns of {} differ in length",
            def.part_names().join(", ")
        )));
    }
    Ok((0..rows)
        .map(|row| composite_id(&columns.iter().map(|c| &c[row]).collect::<Vec<_>>()))
        .collect())
}

/// A ranking read's pair entity, as the edge's batch route finds it.
pub fn pair_entity(
    spec: &FeatureSpec,
    user: &str,
    item: &str,
    named: Option<&str>,
) -> Result<String, ReaderError> {
    match spec.pair_entity(user, item, named) {
        Ok(def) => Ok(def.name.clone()),
        Err(PairError::UnknownEntity(e)) => Err(ReadError::UnknownEntity(e).into()),
        Err(e @ PairError::NoPair(_)) => Err(ReaderError::Input(e.to_string())),
    }
}

/// One read: which entity, the names as the caller gave them, and the
/// storage keys (`name@version`) they resolve to.
#[derive(Debug, Clone)]
pub struct Plan {
    spec: Arc<FeatureSpec>,
    pub entity: String,
    /// `None`: every feature of the entity, each at its highest version.
    pub names: Option<Vec<String>>,
    /// The resolved names, in the order the caller gave them (or by name).
    pub columns: Vec<String>,
    /// Storage keys of the named features.
    pub keys: Vec<String>,
    /// Where each column's definition is in `spec.features()`: resolved
    /// once here rather than for every entity read.
    defs: Vec<usize>,
}

impl Plan {
    /// Resolves `names` for `entity`; an unknown one fails here, before I/O.
    pub fn new(
        spec: Arc<FeatureSpec>,
        entity: &str,
        names: Option<Vec<String>>,
    ) -> Result<Self, ReaderError> {
        let resolved = resolve_names(&spec, entity, names.as_deref())?;
        let columns = resolved.iter().map(|(n, _)| n.clone()).collect();
        let keys: Vec<String> = resolved.iter().map(|(_, d)| d.key().to_owned()).collect();
        let defs = keys
            .iter()
            .filter_map(|k| spec.features().iter().position(|f| f.key() == k))
            .collect();
        Ok(Self {
            entity: entity.to_owned(),
            names,
            columns,
            keys,
            defs,
            spec,
        })
    }

    fn wanted(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }

    /// The served values from a decoded document, in `columns` order: each
    /// [`read_one`] of the definition the name resolved to, as
    /// [`freshet_core::read::read_features`] computes it.
    pub fn values(&self, doc: &FeatureDoc, now: Millis) -> Vec<FeatureValue> {
        let features = self.spec.features();
        self.defs
            .iter()
            .map(|&i| {
                let def = &features[i];
                read_one(def, doc.features.get(def.key()), now)
            })
            .collect()
    }

    // ---- Redis ----

    /// The commands that read one entity, as the edge sends them: `HGETALL`
    /// of its hash, then `GET` or `ZRANGE … WITHSCORES` of each named
    /// feature kept apart; with `layout1`, the same in layout 1 (read only
    /// for an entity [`Plan::is_unwritten`] in a store without the layout mark).
    pub fn redis_commands(&self, prefix: &str, id: &str, layout1: bool) -> Vec<RedisCommand> {
        let wanted = self.wanted();
        if layout1 {
            layout1_read_commands_for(&self.spec, prefix, &self.entity, id, Some(&wanted))
        } else {
            read_commands_for(&self.spec, prefix, &self.entity, id, Some(&wanted))
        }
    }

    /// Commands per entity: the same for every id of the plan.
    pub fn redis_commands_per_entity(&self, layout1: bool) -> usize {
        self.redis_commands(freshet_core::encode::redis::DEFAULT_PREFIX, "-", layout1)
            .len()
    }

    /// Whether one entity's layout-2 replies hold nothing of it.
    pub fn is_unwritten(&self, replies: &[RedisValue]) -> bool {
        is_unwritten(replies)
    }

    /// Decodes one entity's replies (`redis_commands_per_entity` of them).
    pub fn decode_redis(
        &self,
        prefix: &str,
        id: &str,
        replies: &[RedisValue],
        layout1: bool,
    ) -> Result<FeatureDoc, ReaderError> {
        let keys = EntityKeys {
            prefix,
            entity: &self.entity,
            id,
        };
        let key = || keys.hash();
        if let Some(RedisValue::Error(e)) =
            replies.iter().find(|r| matches!(r, RedisValue::Error(_)))
        {
            return Err(ReaderError::Unavailable(format!(
                "Redis answered an error reading {}: {e}",
                key()
            )));
        }
        let wanted = self.wanted();
        let decoded = if layout1 {
            decode_layout1_for(&self.spec, &self.entity, Some(&wanted), replies)
        } else {
            decode_state_for(&self.spec, &self.entity, Some(&wanted), replies)
        };
        decoded.map_err(|e| ReaderError::Corrupt {
            // The hash whose state is bad: layout 1's when read from it.
            key: if e.layout1 {
                keys.layout1_hash()
            } else {
                key()
            },
            detail: e.to_string(),
        })
    }

    // ---- MongoDB ----

    /// The collection the entity's documents live in.
    pub fn mongo_collection(&self) -> String {
        collection(&self.entity)
    }

    /// The fields a `find` needs: each named feature and its `_ts` entry.
    pub fn mongo_projection(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|k| [k.clone(), format!("_ts.{k}")])
            .collect()
    }

    /// Decodes one raw BSON document; returns its `_id` (a string, or `None`
    /// when it is not one, with no features) and its feature document. A
    /// part that does not decode is `Corrupt`, naming the document.
    pub fn decode_mongo(&self, raw: &[u8]) -> Result<(Option<String>, FeatureDoc), ReaderError> {
        let document = bson::Document::from_reader(raw).map_err(|e| ReaderError::Corrupt {
            key: format!("{} document", self.mongo_collection()),
            detail: format!("not BSON: {e}"),
        })?;
        // A document whose `_id` is not a string names no row: not decoded.
        let Ok(id) = document.get_str("_id") else {
            return Ok((None, FeatureDoc::default()));
        };
        let json = document_to_json(&document);
        let doc =
            decode_document(&self.spec, &self.entity, &json).map_err(|e| ReaderError::Corrupt {
                key: document_name(&self.entity, id),
                detail: e.to_string(),
            })?;
        Ok((Some(id.to_owned()), doc))
    }

    // ---- the edge's serving API ----

    /// Decodes one entity of the serving API's answer
    /// (`{"entity","id","features":{name:{value,updatedAt,stale}}}`).
    pub fn decode_served(&self, answer: &Value) -> Result<Vec<FeatureValue>, ReaderError> {
        let bad = |what: &str| ReaderError::Unavailable(format!("the edge's answer {what}"));
        let features = answer
            .get("features")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("has no `features` object"))?;
        self.columns
            .iter()
            .map(|name| {
                let f = features
                    .get(name)
                    .ok_or_else(|| bad(&format!("lacks `{name}`")))?;
                Ok(FeatureValue {
                    value: f.get("value").cloned().unwrap_or(Value::Null),
                    updated_at: f
                        .get("updatedAt")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    stale: f.get("stale").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Arc<FeatureSpec> {
        Arc::new(FeatureSpec::parse(include_str!("../../features.toml")).expect("example spec"))
    }

    #[test]
    fn unknown_names_fail_before_io() {
        let err = Plan::new(spec(), "user", Some(vec!["nope".into()])).expect_err("unknown");
        assert_eq!(err.to_string(), "entity `user` has no feature `nope`");
        assert!(Plan::new(spec(), "shop", None).is_err());
    }

    #[test]
    fn redis_commands_read_only_named_sets() {
        let plan = Plan::new(
            spec(),
            "user",
            Some(vec!["pageviews".into(), "viewed_categories".into()]),
        )
        .expect("plan");
        // HGETALL and one ZRANGE in layout 2; the same in layout 1, read
        // only where layout 2 holds nothing.
        assert_eq!(plan.redis_commands_per_entity(false), 2);
        assert_eq!(plan.redis_commands_per_entity(true), 2);
        let cmds = plan.redis_commands("fs", "cid-1", false);
        let tag = spec()
            .feature("viewed_categories@1")
            .expect("feature")
            .tag()
            .to_owned();
        assert_eq!(
            cmds[1].0[1],
            format!("fs:{{user:cid-1}}:{tag}").into_bytes()
        );
        let old = plan.redis_commands("fs", "cid-1", true);
        assert_eq!(old[1].0[1], b"fs:{user:cid-1}:viewed_categories@1".to_vec());
    }

    #[test]
    fn values_are_read_features_in_column_order() {
        use freshet_core::read::read_features;
        let names = vec!["viewed_categories".to_owned(), "pageviews@1".to_owned()];
        let plan = Plan::new(spec(), "user", Some(names.clone())).expect("plan");
        let doc = FeatureDoc::default();
        let mut expected = read_features(&spec(), "user", &doc, Some(&names), 5).expect("read");
        let expected: Vec<_> = names.iter().filter_map(|n| expected.remove(n)).collect();
        assert_eq!(plan.values(&doc, 5), expected);
        let all = Plan::new(spec(), "user", None).expect("all");
        assert_eq!(all.values(&doc, 5).len(), all.columns.len());
    }

    #[test]
    fn composite_ids_come_from_their_parts_columns() {
        let ids = HashMap::from([
            (
                "product".to_owned(),
                vec!["p|1".to_owned(), "p2".to_owned()],
            ),
            ("user".to_owned(), vec!["u".to_owned(), "u".to_owned()]),
        ]);
        assert_eq!(
            compose_ids(&spec(), "user_product", &ids).expect("ids"),
            ["u|p%7C1", "u|p2"]
        );
        let short = HashMap::from([("user".to_owned(), vec!["u".to_owned()])]);
        let e = compose_ids(&spec(), "user_product", &short).expect_err("no products");
        assert_eq!(e.to_string(), "`user_product` ids need the `product` ids");
        let e = compose_ids(&spec(), "user", &ids).expect_err("simple");
        assert!(e.to_string().contains("not a composite entity"), "{e}");
        assert_eq!(
            pair_entity(&spec(), "user", "product", None).expect("pair"),
            "user_product"
        );
        assert!(matches!(
            pair_entity(&spec(), "user", "product", Some("ghost")),
            Err(ReaderError::Unknown(_))
        ));
    }

    #[test]
    fn a_corrupt_hash_names_its_key() {
        let plan = Plan::new(spec(), "user", Some(vec!["pageviews".into()])).expect("plan");
        // Layout 2 holds nothing; layout 1's hash is corrupt.
        assert!(plan.is_unwritten(&[RedisValue::Array(vec![])]));
        let replies = [RedisValue::Array(vec![
            RedisValue::Bulk(b"_ts:pageviews@1".to_vec()),
            RedisValue::Bulk(b"1".to_vec()),
            RedisValue::Bulk(b"pageviews@1".to_vec()),
            RedisValue::Bulk(b"many".to_vec()),
        ])];
        let err = plan
            .decode_redis("fs", "cid-1", &replies, true)
            .expect_err("corrupt");
        assert!(err.to_string().starts_with("fs:{user:cid-1}: "), "{err}");
    }

    #[test]
    fn a_corrupt_document_names_its_id_and_field() {
        let plan = Plan::new(spec(), "user", Some(vec!["pageviews".into()])).expect("plan");
        let raw = |document: bson::Document| {
            let mut bytes = Vec::new();
            document.to_writer(&mut bytes).expect("bson");
            bytes
        };
        let good =
            raw(bson::doc! {"_id": "cid-1", "_ts": {"pageviews@1": 1_i64}, "pageviews@1": 3_i64});
        let (id, doc) = plan.decode_mongo(&good).expect("decodes");
        assert_eq!(id.as_deref(), Some("cid-1"));
        assert!(doc.features.contains_key("pageviews@1"));
        let bad =
            raw(bson::doc! {"_id": "cid-1", "_ts": {"pageviews@1": 1_i64}, "pageviews@1": "many"});
        let err = plan.decode_mongo(&bad).expect_err("corrupt");
        assert!(matches!(err, ReaderError::Corrupt { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "user_features document \"cid-1\": unexpected MongoDB state: \
             field `pageviews@1` is a string, not an integer"
        );
    }
}
