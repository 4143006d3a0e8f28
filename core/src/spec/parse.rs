//! Parsing a `features.toml`: the TOML read, entities checked before the
//! features that name them, and errors that name the feature.

use std::collections::BTreeMap;

use super::FeatureSpec;
use super::check_entity::{Checked, check_composite, check_entity};
use super::check_feature::check_feature;
use super::error::SpecError;
use super::feature::FeatureDef;
use super::hash::meaning_hash;
use super::raw::{RawFeature, RawSpec};

impl FeatureSpec {
    /// Parses and checks a `features.toml`.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError {
            subject: String::new(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut entities = BTreeMap::new();
        let mut composites = Vec::new();
        // Simple entities first: a composite one refers to them.
        for (name, raw_entity) in raw.entities {
            let fail = |message| SpecError {
                subject: format!("entity `{name}`"),
                message,
            };
            match check_entity(&name, raw_entity).map_err(fail)? {
                Checked::Simple(entity) => {
                    entities.insert(name, entity);
                }
                Checked::Composite(of) => composites.push((name, of)),
            }
        }
        let mut composed = Vec::with_capacity(composites.len());
        for (name, of) in composites {
            let entity = check_composite(&name, &of, &entities).map_err(|message| SpecError {
                subject: format!("entity `{name}`"),
                message,
            })?;
            composed.push(entity);
        }
        entities.extend(composed.into_iter().map(|e| (e.name.clone(), e)));
        let mut features: Vec<FeatureDef> = Vec::with_capacity(raw.feature.len());
        for (index, table) in raw.feature.into_iter().enumerate() {
            let subject = feature_subject(&table, index);
            let fail = |message: String| SpecError {
                subject: subject.clone(),
                message,
            };
            let raw_feature: RawFeature = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| fail(e.to_string().trim_end().to_owned()))?;
            let feature = check_feature(raw_feature, &entities).map_err(fail)?;
            if features.iter().any(|f| f.key == feature.key) {
                return Err(fail(format!("`{}` is defined twice", feature.key)));
            }
            if let Some(other) = features
                .iter()
                .find(|f| f.entity == feature.entity && f.tag == feature.tag)
            {
                return Err(fail(format!(
                    "`{}` and `{}` have the same short name `{}` in the store; give one of them another version",
                    other.key, feature.key, feature.tag
                )));
            }
            features.push(feature);
        }
        if features.is_empty() {
            return Err(SpecError {
                subject: String::new(),
                message: "no [[feature]] is defined".to_owned(),
            });
        }
        let hash = meaning_hash(text)?;
        Ok(Self {
            entities,
            features,
            hash,
        })
    }
}

fn feature_subject(table: &toml::Table, index: usize) -> String {
    let name = table.get("name").and_then(toml::Value::as_str);
    let version = table
        .get("version")
        .and_then(toml::Value::as_integer)
        .unwrap_or(1);
    match name {
        Some(name) => format!("feature `{name}@{version}`"),
        None => format!("feature #{}", index + 1),
    }
}
