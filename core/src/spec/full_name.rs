//! Full feature names, `entity__name`: the columns
//! `get_historical_features(full_feature_names=True)` gives, which
//! `freshet profile` reads back as features.

/// Between a full feature name's entity and name.
const SEPARATOR: &str = "__";

/// The full name of feature `name` (or `name@version`) of `entity`:
/// `user__pageviews`.
pub fn full_feature_name(entity: &str, name: &str) -> String {
    format!("{entity}{SEPARATOR}{name}")
}

/// The entity and name of a full feature name, split at its first `__`;
/// `None` for a column without one.
pub fn split_full_feature_name(column: &str) -> Option<(&str, &str)> {
    column.split_once(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_split_back() {
        assert_eq!(full_feature_name("user", "pageviews"), "user__pageviews");
        assert_eq!(
            split_full_feature_name(&full_feature_name("user_item", "clicks@2")),
            Some(("user_item", "clicks@2"))
        );
        assert_eq!(split_full_feature_name("pageviews"), None);
    }
}
