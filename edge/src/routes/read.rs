//! The serving routes: `GET /v1/features/{entity}/{id}` and
//! `POST /v1/features/batch`, each read served by `core` and, when the read
//! is sampled, added to the drift sink.

use freshet_core::read::{FeatureValues, ReadError, read_features};
use freshet_core::spec::{EntityDef, FeatureSpec, PairError};
use freshet_core::time::Millis;
use serde::Deserialize;
use serde_json::json;

use super::{DriftSink, Edge};
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::{Body, Request, Response, percent_decode};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::{EntityKey, EntityRead, FeatureStore};

pub use freshet_core::limits::MAX_BATCH_ITEMS;
/// Longest entity id in a serving path or batch read.
pub const MAX_ID_BYTES: usize = 256;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    pub(super) async fn read_one(
        &self,
        req: &Request,
        path: &str,
        now: Millis,
        sink: &mut DriftSink,
    ) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        let rest = path.strip_prefix("/v1/features/").unwrap_or_default();
        let mut parts = rest.split('/');
        let (Some(entity), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EdgeError::NotFound);
        };
        let entity = percent_decode(entity).ok_or(EdgeError::NotFound)?;
        let def = self.spec.entity(&entity).ok_or(EdgeError::UnknownEntity)?;
        let id = percent_decode(id)
            .ok_or_else(|| EdgeError::BadRequest("the id is not percent-encoded UTF-8".into()))?;
        // A composite id: each part within the bound of a simple one.
        let parts = def.split_id(&id).map_err(EdgeError::BadRequest)?;
        if let Some(bad) = parts.iter().find(|p| !valid_id(p)) {
            return Err(bad_id(bad));
        }
        let names = req.query_param("names").map(|n| split_names(&n));
        // Unknown names are refused before the store is asked.
        check_names(self.spec, &entity, names.as_deref())?;
        let key = EntityKey::new(entity, id);
        let doc = self
            .store
            .load(&[EntityRead::new(key.clone(), names.clone())])
            .await?
            .pop()
            .unwrap_or_default();
        let features = read(self.spec, &key.entity, &doc, names.as_deref(), now)?;
        sample(self.spec, &key.entity, &features, sink);
        Ok(Response::json(200, &entity_json(&key, &features)))
    }

    pub(super) async fn read_batch(
        &self,
        req: &Request,
        now: Millis,
        sink: &mut DriftSink,
    ) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        let body = match &req.body {
            Body::Bytes(b) => b,
            Body::TooLarge => {
                return Err(EdgeError::BodyTooLarge {
                    limit: self.config.limits.max_body_bytes,
                });
            }
        };
        let ask: BatchRead = serde_json::from_slice(body).map_err(|_| {
            EdgeError::BadRequest("the body must be a batch read (see README)".into())
        })?;
        if ask.user_id.is_none() && ask.item_ids.is_empty() {
            return Err(EdgeError::BadRequest("give userId, itemIds or both".into()));
        }
        if ask.item_ids.len() > MAX_BATCH_ITEMS {
            return Err(EdgeError::BadRequest(format!(
                "at most {MAX_BATCH_ITEMS} itemIds per read"
            )));
        }
        if let Some(bad) = ask
            .user_id
            .iter()
            .chain(&ask.item_ids)
            .find(|id| !valid_id(id))
        {
            return Err(bad_id(bad));
        }
        let user_entity = ask.user_entity.as_deref().unwrap_or("user");
        let item_entity = ask.item_entity.as_deref().unwrap_or("product");
        let pair_entity = self.pair_entity(&ask, user_entity, item_entity)?;
        // Every read in one list: the user, the items, then each item's pair.
        let mut reads = Vec::with_capacity(2 * ask.item_ids.len() + 1);
        if let Some(user) = &ask.user_id {
            self.spec
                .entity(user_entity)
                .ok_or(EdgeError::UnknownEntity)?;
            check_names(self.spec, user_entity, ask.user_features.as_deref())?;
            let key = EntityKey::new(user_entity, user.as_str());
            reads.push(EntityRead::new(key, ask.user_features.clone()));
        }
        if !ask.item_ids.is_empty() {
            self.spec
                .entity(item_entity)
                .ok_or(EdgeError::UnknownEntity)?;
            check_names(self.spec, item_entity, ask.item_features.as_deref())?;
            reads.extend(ask.item_ids.iter().map(|id| {
                EntityRead::new(
                    EntityKey::new(item_entity, id.as_str()),
                    ask.item_features.clone(),
                )
            }));
        }
        if let (Some(pair), Some(user)) = (pair_entity, &ask.user_id) {
            check_names(self.spec, &pair.name, ask.pair_features.as_deref())?;
            for item in &ask.item_ids {
                let id = pair
                    .compose(&[(user_entity, user), (item_entity, item)])
                    .ok_or(EdgeError::UnknownEntity)?;
                let key = EntityKey::new(pair.name.as_str(), id);
                reads.push(EntityRead::new(key, ask.pair_features.clone()));
            }
        }
        // One store round trip for the user, every item and every pair.
        let docs = self.store.load(&reads).await?;
        let mut answers = reads.iter().zip(docs.iter()).map(|(r, doc)| {
            let f = read(self.spec, &r.key.entity, doc, r.names.as_deref(), now)?;
            sample(self.spec, &r.key.entity, &f, sink);
            Ok::<_, EdgeError>(entity_json(&r.key, &f))
        });
        let user = match &ask.user_id {
            Some(_) => answers.next().transpose()?.unwrap_or_default(),
            None => serde_json::Value::Null,
        };
        let mut items = (&mut answers)
            .take(ask.item_ids.len())
            .collect::<Result<Vec<_>, _>>()?;
        if pair_entity.is_some() {
            for (item, pair) in items.iter_mut().zip(answers) {
                item["pair"] = pair?;
            }
        }
        Ok(Response::json(
            200,
            &json!({ "user": user, "items": items }),
        ))
    }

    /// The entity of a batch read's pairs: `None` when none are asked for
    /// (no `pairFeatures`, no `pairEntity`), else as
    /// [`FeatureSpec::pair_entity`] finds it.
    fn pair_entity(
        &self,
        ask: &BatchRead,
        user: &str,
        item: &str,
    ) -> Result<Option<&'static EntityDef>, EdgeError> {
        if ask.pair_features.is_none() && ask.pair_entity.is_none() {
            return Ok(None);
        }
        if ask.user_id.is_none() || ask.item_ids.is_empty() {
            return Err(EdgeError::BadRequest(
                "pairs need a userId and itemIds".into(),
            ));
        }
        let spec: &'static FeatureSpec = self.spec;
        match spec.pair_entity(user, item, ask.pair_entity.as_deref()) {
            Ok(def) => Ok(Some(def)),
            Err(PairError::UnknownEntity(_)) => Err(EdgeError::UnknownEntity),
            Err(e @ PairError::NoPair(_)) => Err(EdgeError::BadRequest(e.to_string())),
        }
    }
}

/// `POST /v1/features/batch`: one user and many items, for ranking.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchRead {
    user_id: Option<String>,
    #[serde(default)]
    item_ids: Vec<String>,
    user_features: Option<Vec<String>>,
    item_features: Option<Vec<String>>,
    user_entity: Option<String>,
    item_entity: Option<String>,
    /// The features of each (user, item) pair: `items[i].pair`.
    pair_features: Option<Vec<String>>,
    /// The pairs' composite entity (default: the one of exactly the user
    /// and item entities).
    pair_entity: Option<String>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

fn bad_id(id: &str) -> EdgeError {
    EdgeError::BadRequest(format!(
        "ids must be 1 to {MAX_ID_BYTES} bytes (got {} bytes)",
        id.len()
    ))
}

fn split_names(names: &str) -> Vec<String> {
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_names(
    spec: &FeatureSpec,
    entity: &str,
    names: Option<&[String]>,
) -> Result<(), EdgeError> {
    let empty = freshet_core::state::FeatureDoc::default();
    read(spec, entity, &empty, names, 0).map(|_| ())
}

fn read(
    spec: &FeatureSpec,
    entity: &str,
    doc: &freshet_core::state::FeatureDoc,
    names: Option<&[String]>,
    now: Millis,
) -> Result<FeatureValues, EdgeError> {
    read_features(spec, entity, doc, names, now).map_err(|e| match e {
        ReadError::UnknownEntity(_) => EdgeError::UnknownEntity,
        ReadError::UnknownFeature { name, .. } => EdgeError::UnknownFeature(name),
    })
}

/// Adds a read's served values to the drift sink, by feature key.
fn sample(spec: &FeatureSpec, entity: &str, features: &FeatureValues, sink: &mut DriftSink) {
    let Some(sink) = sink else { return };
    for (name, served) in features {
        if let Some(def) = spec.lookup(entity, name) {
            sink.entry(def.key().to_owned())
                .or_default()
                .add(&served.value);
        }
    }
}

fn entity_json(key: &EntityKey, features: &FeatureValues) -> serde_json::Value {
    json!({ "entity": key.entity, "id": key.id, "features": features })
}
