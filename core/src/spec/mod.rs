//! The feature spec: `features.toml` parsed into a typed [`FeatureSpec`] and
//! checked once, with errors that name the feature. Features as code: the
//! edge compiles the file in, and replay and the Python reader read the same
//! file, so a feature is defined in exactly one place.
//!
//! One file per seam: the TOML as written (`raw`), its parsing and checks
//! (`parse`, `check_entity`, `check_feature`), the typed result (entities,
//! features, aggregations, windows, decay, field paths) and the spec's hash.

mod aggregation;
mod check_entity;
mod check_feature;
mod decay;
mod duration;
mod entity;
mod error;
mod feature;
mod field_path;
mod full_name;
mod hash;
mod parse;
mod raw;
mod window;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use aggregation::{Aggregation, MAX_BOUND, MAX_DIM};
pub use decay::{DECAY_HORIZON_HALF_LIVES, DECAY_ONE, Decay};
pub use duration::parse_duration;
pub use entity::{EntityDef, MAX_KEY_BYTES, composite_id, split_composite_id};
pub use error::{PairError, SpecError};
pub use feature::{EventMatch, Expected, FeatureDef};
pub use field_path::FieldPath;
pub use full_name::{full_feature_name, split_full_feature_name};
pub use window::{MAX_WINDOW, MAX_WINDOW_BUCKETS, Window};

/// Every entity and feature of a `features.toml`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    entities: BTreeMap<String, EntityDef>,
    features: Vec<FeatureDef>,
    hash: String,
}

impl FeatureSpec {
    /// A short hash of what decides values in this spec: the entities and
    /// every feature's definition, without comments, layout, key order,
    /// `description` or `expected` (documentation and drift baselines decide
    /// no value). The edge shows it in `/health`, the Python reader and a
    /// trained model carry theirs, so a deployment whose parts were built
    /// from different specs says so.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn entities(&self) -> impl Iterator<Item = &EntityDef> {
        self.entities.values()
    }

    pub fn entity(&self, name: &str) -> Option<&EntityDef> {
        self.entities.get(name)
    }

    /// The entity of a ranking read's (user, item) pairs: `named` when
    /// given (it must be a composite of exactly `user` and `item`, in either
    /// order), else the spec's composite of exactly those two (the first by
    /// name if several are).
    pub fn pair_entity(
        &self,
        user: &str,
        item: &str,
        named: Option<&str>,
    ) -> Result<&EntityDef, PairError> {
        match named {
            Some(name) => {
                let def = self
                    .entity(name)
                    .ok_or_else(|| PairError::UnknownEntity(name.to_owned()))?;
                if def.pairs(user, item) {
                    Ok(def)
                } else {
                    Err(PairError::NoPair(format!(
                        "`{name}` is not a composite entity of `{user}` and `{item}`"
                    )))
                }
            }
            None => self
                .entities
                .values()
                .find(|e| e.pairs(user, item))
                .ok_or_else(|| {
                    PairError::NoPair(format!(
                        "the spec has no composite entity of `{user}` and `{item}` \
                         (of = [\"{user}\", \"{item}\"]); name one as the pair entity"
                    ))
                }),
        }
    }

    pub fn features(&self) -> &[FeatureDef] {
        &self.features
    }

    /// The spec with only the features `keep` accepts, every entity kept,
    /// its hash still the whole spec's: a replay that reads a few features
    /// folds only those (each feature is folded on its own, so the values
    /// are the same).
    pub fn retain(&self, keep: impl Fn(&FeatureDef) -> bool) -> Self {
        Self {
            entities: self.entities.clone(),
            features: self.features.iter().filter(|f| keep(f)).cloned().collect(),
            hash: self.hash.clone(),
        }
    }

    /// The features of one entity, in file order.
    pub fn features_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a FeatureDef> {
        self.features.iter().filter(move |f| f.entity == entity)
    }

    /// A feature by its storage key, `name@version`.
    pub fn feature(&self, key: &str) -> Option<&FeatureDef> {
        self.features.iter().find(|f| f.key == key)
    }

    /// A feature of `entity` by `name` (its highest version) or `name@version`.
    pub fn lookup(&self, entity: &str, name: &str) -> Option<&FeatureDef> {
        match name.split_once('@') {
            Some(_) => self.feature(name).filter(|f| f.entity == entity),
            None => self
                .features
                .iter()
                .filter(|f| f.entity == entity && f.name == name)
                .max_by_key(|f| f.version),
        }
    }
}
