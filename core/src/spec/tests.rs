//! Tests of the spec: parsing, the checks and their messages, composite ids.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::time::{DAY, HOUR, MINUTE, SECOND};
use crate::validate::Event;

const ENTITIES: &str = "[entities.user]\nkey = [\"userId\", \"clientId\"]\n";

fn parse_feature(feature: &str) -> Result<FeatureSpec, SpecError> {
    FeatureSpec::parse(&format!("{ENTITIES}[[feature]]\n{feature}"))
}

#[test]
fn hash_follows_meaning_not_layout() {
    let a = parse_feature("name = \"a\"\nentity = \"user\"\non = [\"x\"]\nagg = \"count\"\n")
        .expect("spec");
    let same = parse_feature(
        "# a comment\nagg = \"count\"\non = [\"x\"]\nentity = \"user\"\nversion = 1\nname = \"a\"\ndescription = \"words\"\nexpected = { mean = 1.0 }\nbackfill = true\n",
    )
    .expect("spec");
    let other = parse_feature("name = \"a\"\nentity = \"user\"\non = [\"y\"]\nagg = \"count\"\n")
        .expect("spec");
    assert_eq!(a.hash(), same.hash());
    assert_ne!(a.hash(), other.hash());
    assert_eq!(a.hash().len(), 16);
}

fn error_of(feature: &str) -> String {
    parse_feature(feature)
        .expect_err("spec should be refused")
        .to_string()
}

#[test]
fn the_example_spec_parses() {
    let spec = FeatureSpec::parse(include_str!("../../../features.toml")).expect("valid spec");
    assert!(spec.features().len() >= 9);
    assert!(spec.entity("product").is_some());
    let clicks = spec
        .lookup("user", "clicks_product_card_7d")
        .expect("feature");
    assert_eq!(
        clicks.window,
        Some(Window {
            span: 7 * DAY,
            granule: DAY
        })
    );
}

#[test]
fn errors_name_the_feature() {
    let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"median\"");
    assert_eq!(
        e,
        "features.toml: feature `x@1`: unknown aggregation `median` (expected one of \
         count, sum, min, max, last, first, distinct, latest_n, avg, decay, mode, vector_avg)"
    );
    let e = error_of("name = \"Bad\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"");
    assert!(e.contains("feature `Bad@1`: name must match"), "{e}");
    let e = error_of("name = \"x\"\nentity = \"shop\"\non = [\"a\"]\nagg = \"count\"");
    assert!(e.contains("unknown entity `shop` (defined: user)"), "{e}");
    let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"sum\"");
    assert!(
        e.contains("feature `x@1`: agg = \"sum\" needs a field"),
        "{e}"
    );
    let e = error_of(
        "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"sum\"\nfield = \"amount\"",
    );
    assert!(
        e.contains("field path `amount` must be payload.<name>"),
        "{e}"
    );
    let e =
        error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\nwindow = \"7y\"");
    assert!(e.contains("window: `7y` is not a duration"), "{e}");
    let e =
        error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\nttl = \"0d\"");
    assert!(e.contains("ttl: `0d` must be longer than zero"), "{e}");
    let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\nagg2 = 1");
    assert!(e.contains("feature `x@1`") && e.contains("agg2"), "{e}");
    let e = error_of(
        "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"first\"\nfield = \"id\"\nwindow = \"1d\"",
    );
    assert!(e.contains("cannot have a window"), "{e}");
    let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"Click\"]\nagg = \"count\"");
    assert!(e.contains("on: `Click` is not a valid event type"), "{e}");
}

#[test]
fn duplicate_name_at_version_is_refused_but_a_new_version_is_not() {
    let f = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n";
    let twice = format!("{ENTITIES}[[feature]]\n{f}[[feature]]\n{f}");
    let e = FeatureSpec::parse(&twice)
        .expect_err("duplicate")
        .to_string();
    assert_eq!(e, "features.toml: feature `x@1`: `x@1` is defined twice");
    let versions = format!("{ENTITIES}[[feature]]\n{f}[[feature]]\n{f}version = 2\n");
    let spec = FeatureSpec::parse(&versions).expect("two versions");
    assert_eq!(spec.lookup("user", "x").map(FeatureDef::key), Some("x@2"));
    assert_eq!(spec.lookup("user", "x@1").map(FeatureDef::key), Some("x@1"));
    assert_eq!(spec.lookup("user", "x@3"), None);
}

#[test]
fn bounds_of_max_and_window() {
    let base =
        "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"distinct\"\nfield = \"id\"\n";
    assert_eq!(
        parse_feature(&format!("{base}max = 1000")).map(|s| s.features()[0].max),
        Ok(1000)
    );
    assert!(error_of(&format!("{base}max = 1001")).contains("max must be at most 1000"));
    assert!(error_of(&format!("{base}max = 0")).contains("max must be 1 or more"));
    let w = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n";
    assert!(parse_feature(&format!("{w}window = \"90d\"")).is_ok());
    assert!(error_of(&format!("{w}window = \"91d\"")).contains("longer than 90 days"));
}

const F: &str = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\n";

#[test]
fn new_aggregations_parse_with_their_parameters() {
    let one = |rest: &str| {
        parse_feature(&format!("{F}{rest}"))
            .map(|s| s.features()[0].clone())
            .expect("valid feature")
    };
    let avg = one("agg = \"avg\"\nfield = \"payload.minutes\"\nwindow = \"30d\"");
    assert_eq!(avg.agg, Aggregation::Avg);
    assert_eq!(avg.default, Value::Null);
    let decay = one("agg = \"decay\"\nrate = 0.1\nwindow = \"14d\"\nscale = 0.001\ncap = 1");
    let d = decay.decay.expect("decay");
    assert!((d.rate * DAY as f64 - 0.1).abs() < 1e-15);
    assert_eq!((d.scale, d.cap), (0.001, Some(1.0)));
    assert_eq!(
        decay.window,
        Some(Window {
            span: 14 * DAY,
            granule: DAY
        })
    );
    assert_eq!(decay.default, Value::from(0));
    // Buckets one half-life wide (whole minutes); no window: 33 half-lives kept.
    let fast = one("agg = \"decay\"\nhalf_life = \"90m\"");
    assert_eq!(
        fast.window,
        Some(Window {
            span: 33 * 90 * MINUTE,
            granule: 90 * MINUTE
        })
    );
    let integer_rate = one("agg = \"decay\"\nrate = 1");
    assert!(integer_rate.decay.is_some());
    let mode = one("agg = \"mode\"\nfield = \"hour_of_day\"\ntz = \"Europe/Paris\"\ndefault = 20");
    assert_eq!((mode.max, mode.field), (24, Some(FieldPath::HourOfDay)));
    assert_eq!(mode.tz, jiff::tz::TimeZone::get("Europe/Paris").ok());
    assert_eq!(one("agg = \"mode\"\nfield = \"day_of_week\"").max, 7);
    assert_eq!(one("agg = \"mode\"\nfield = \"payload.genre\"").max, 50);
    let vector = one(
        "agg = \"vector_avg\"\nfield = \"payload.embedding\"\ndim = 3\nweight = \"payload.minutes\"",
    );
    assert_eq!(vector.dim, 3);
    assert_eq!(
        vector.weight,
        Some(FieldPath::Payload(vec!["minutes".into()]))
    );
    assert_eq!(vector.default, serde_json::json!([0, 0, 0]));
}

#[test]
fn bad_parameters_of_new_aggregations_are_refused_clearly() {
    let cases = [
        ("agg = \"avg\"", "agg = \"avg\" needs a field"),
        ("agg = \"decay\"", "needs a rate (per day) or a half_life"),
        (
            "agg = \"decay\"\nrate = 0.1\nhalf_life = \"7d\"",
            "rate or half_life, not both",
        ),
        (
            "agg = \"decay\"\nrate = -1",
            "rate must be a positive number per day",
        ),
        (
            "agg = \"decay\"\nrate = 0.0",
            "rate must be a positive number per day",
        ),
        (
            "agg = \"decay\"\nrate = nan",
            "rate must be a positive number per day",
        ),
        (
            "agg = \"decay\"\nhalf_life = \"30s\"",
            "half-life must be a minute or longer",
        ),
        (
            "agg = \"decay\"\nhalf_life = \"7x\"",
            "half_life: `7x` is not a duration",
        ),
        (
            "agg = \"decay\"\nrate = 1\nscale = 0",
            "scale must be a positive number",
        ),
        (
            "agg = \"decay\"\nrate = 1\ncap = inf",
            "cap must be a finite number",
        ),
        (
            "agg = \"decay\"\nrate = 1\nfield = \"id\"",
            "agg = \"decay\" takes no field",
        ),
        (
            "agg = \"sum\"\nfield = \"id\"\nrate = 1",
            "agg = \"sum\" takes no rate",
        ),
        (
            "agg = \"mode\"\nfield = \"id\"\nwindow = \"1d\"",
            "mode\" cannot have a window",
        ),
        (
            "agg = \"mode\"\nfield = \"id\"\nmax = 0",
            "max must be 1 or more",
        ),
        (
            "agg = \"mode\"\nfield = \"id\"\nmax = 1001",
            "max must be at most 1000",
        ),
        (
            "agg = \"mode\"\nfield = \"id\"\ntz = \"UTC\"",
            "tz applies to the derived fields",
        ),
        (
            "agg = \"mode\"\nfield = \"hour_of_day\"\ntz = \"Mars/Olympus\"",
            "tz: `Mars/Olympus` is not an IANA time zone",
        ),
        ("agg = \"vector_avg\"\nfield = \"payload.v\"", "needs dim"),
        (
            "agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 0",
            "dim must be 1 to 1024",
        ),
        (
            "agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 1025",
            "dim must be 1 to 1024",
        ),
        (
            "agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 2\nweight = \"minutes\"",
            "weight: field path `minutes` must be payload.",
        ),
        (
            "agg = \"avg\"\nfield = \"id\"\ndim = 2",
            "agg = \"avg\" takes no dim or weight",
        ),
        ("agg = \"count\"\nmax = 3", "agg = \"count\" takes no max"),
    ];
    for (rest, wanted) in cases {
        let e = error_of(&format!("{F}{rest}"));
        assert!(
            e.contains("feature `x@1`") && e.contains(wanted),
            "{rest}: {e}"
        );
    }
}

#[test]
fn derived_fields_read_the_event_time_in_the_zone() {
    let event = |time| Event {
        id: "e".into(),
        event_type: "a".into(),
        time,
        client_id: "c".into(),
        session_id: None,
        user_id: None,
        payload: serde_json::Map::new(),
    };
    // 2026-11-22T23:30:00Z, a Sunday: Monday 00:30 in Paris (UTC+1).
    let e = event(1_795_390_200_000);
    let paris = jiff::tz::TimeZone::get("Europe/Paris").ok();
    assert_eq!(FieldPath::HourOfDay.get(&e, None), Some(Value::from(23)));
    assert_eq!(FieldPath::DayOfWeek.get(&e, None), Some(Value::from(0)));
    assert_eq!(
        FieldPath::HourOfDay.get_in(&e, None, paris.as_ref()),
        Some(Value::from(0))
    );
    assert_eq!(
        FieldPath::DayOfWeek.get_in(&e, None, paris.as_ref()),
        Some(Value::from(1))
    );
    // Summer time: 2026-07-01T12:00:00Z is 14:00 in Paris (UTC+2).
    let summer = event(1_782_907_200_000);
    assert_eq!(
        FieldPath::HourOfDay.get_in(&summer, None, paris.as_ref()),
        Some(Value::from(14))
    );
    assert_eq!(FieldPath::parse("hour_of_day"), Ok(FieldPath::HourOfDay));
    assert_eq!(FieldPath::DayOfWeek.to_string(), "day_of_week");
}

#[test]
fn bucket_granularity_follows_the_window() {
    assert_eq!(Window::new(HOUR).granule, MINUTE);
    assert_eq!(Window::new(HOUR + 1).granule, HOUR);
    assert_eq!(Window::new(2 * DAY).granule, HOUR);
    assert_eq!(Window::new(2 * DAY + 1).granule, DAY);
    let w = Window::new(7 * DAY);
    assert_eq!(w.bucket_of(DAY + 5), DAY);
    assert_eq!(w.cutoff(10 * DAY + 5), 3 * DAY);
}

#[test]
fn precision_sets_the_bucket_width_within_bounds() {
    let w = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n";
    let spec = parse_feature(&format!("{w}window = \"7d\"\nprecision = \"1h\"")).expect("spec");
    let window = spec.features()[0].window.expect("window");
    assert_eq!((window.span, window.granule), (7 * DAY, HOUR));
    assert!(parse_feature(&format!("{w}window = \"7d\"\nprecision = \"5m\"")).is_ok());
    for (bad, why) in [
        (
            "window = \"7d\"\nprecision = \"4m\"",
            "makes 2520 buckets of the window 7d; at most 2016",
        ),
        (
            "window = \"1h\"\nprecision = \"2h\"",
            "precision 2h is coarser than the window 1h",
        ),
        ("precision = \"1h\"", "precision applies to a window"),
        (
            "window = \"7d\"\nprecision = \"soon\"",
            "precision: `soon` is not a duration",
        ),
    ] {
        let e = error_of(&format!("{w}{bad}"));
        assert!(e.contains(why), "{e}");
    }
    // A different precision computes different values: a different spec.
    let default = parse_feature(&format!("{w}window = \"7d\"")).expect("spec");
    assert_ne!(spec.hash(), default.hash());
}

const PAIRS: &str = "[entities.user]\nkey = [\"userId\", \"clientId\"]\n\
                     [entities.item]\nkey = [\"payload.itemId\"]\n";

fn entities_error(entities: &str) -> String {
    FeatureSpec::parse(&format!(
        "{PAIRS}{entities}[[feature]]\nname = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n"
    ))
    .expect_err("spec should be refused")
    .to_string()
}

#[test]
fn a_composite_entity_is_keyed_by_its_parts() {
    let spec = FeatureSpec::parse(&format!(
        "{PAIRS}[entities.user_item]\nof = [\"user\", \"item\"]\n[[feature]]\n\
         name = \"progress\"\nentity = \"user_item\"\non = [\"watch\"]\nagg = \"last\"\n\
         field = \"payload.progress\"\n"
    ))
    .expect("spec");
    let pair = spec.entity("user_item").expect("entity");
    assert!(pair.is_composite() && pair.key.is_empty());
    assert_eq!(pair.part_names(), ["user", "item"]);
    assert!(pair.pairs("item", "user") && !pair.pairs("user", "user"));
    let name = |r: Result<&EntityDef, PairError>| r.map(|e| e.name.clone());
    assert_eq!(
        name(spec.pair_entity("item", "user", None)),
        Ok("user_item".into())
    );
    assert_eq!(
        name(spec.pair_entity("user", "item", Some("user_item"))),
        Ok("user_item".into())
    );
    assert_eq!(
        name(spec.pair_entity("user", "product", None)).map_err(|e| e.to_string()),
        Err("the spec has no composite entity of `user` and `product` \
             (of = [\"user\", \"product\"]); name one as the pair entity"
            .into())
    );
    assert_eq!(
        name(spec.pair_entity("user", "item", Some("user"))).map_err(|e| e.to_string()),
        Err("`user` is not a composite entity of `user` and `item`".into())
    );
    assert_eq!(
        name(spec.pair_entity("user", "item", Some("ghost"))),
        Err(PairError::UnknownEntity("ghost".into()))
    );
    let mut e = Event {
        id: "e".into(),
        event_type: "watch".into(),
        time: 0,
        client_id: "c|1".into(),
        session_id: None,
        user_id: None,
        payload: serde_json::json!({"itemId": "50%"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    assert_eq!(pair.id_of(&e, None).as_deref(), Some("c%7C1|50%25"));
    e.user_id = Some("u".into());
    assert_eq!(pair.id_of(&e, Some("u")).as_deref(), Some("u|50%25"));
    // An event without an item has no pair.
    e.payload.clear();
    assert_eq!(pair.id_of(&e, Some("u")), None);
    assert_eq!(
        pair.compose(&[("item", "i|2"), ("user", "u")]).as_deref(),
        Some("u|i%7C2")
    );
    assert_eq!(pair.compose(&[("user", "u")]), None);
    assert_eq!(
        pair.split_id("u|i%7C2"),
        Ok(vec!["u".to_owned(), "i|2".to_owned()])
    );
    let user = spec.entity("user").expect("user");
    assert_eq!(user.split_id("u|i"), Ok(vec!["u|i".to_owned()]));
    for bad in ["u", "u|i|j", "u|", "|i", "u|i%7c", "u|i%2"] {
        let e = pair.split_id(bad).expect_err(bad);
        assert!(
            e.starts_with("a `user_item` id is the ids of user, item joined by `|`"),
            "{e}"
        );
    }
    // The pair's id is part of what the spec means.
    let other = FeatureSpec::parse(&format!(
        "{PAIRS}[entities.user_item]\nof = [\"item\", \"user\"]\n[[feature]]\n\
         name = \"progress\"\nentity = \"user_item\"\non = [\"watch\"]\nagg = \"last\"\n\
         field = \"payload.progress\"\n"
    ))
    .expect("spec");
    assert_ne!(spec.hash(), other.hash());
}

#[test]
fn composite_ids_never_collide_and_split_back() {
    let cases: [&[&str]; 8] = [
        &["u", "i"],
        &["u|i", "j"],
        &["u", "i|j"],
        &["u%7Ci", "j"],
        &["%", "|"],
        &["%25", "%7C"],
        &["a", "b", "c"],
        &["a|b", "c"],
    ];
    let ids: Vec<String> = cases.iter().map(|parts| composite_id(parts)).collect();
    assert_eq!(ids[1], "u%7Ci|j");
    assert_eq!(ids[3], "u%257Ci|j");
    assert_eq!(ids[4], "%25|%7C");
    for (parts, id) in cases.iter().zip(&ids) {
        assert_eq!(
            split_composite_id(id).as_deref(),
            Some(&parts.iter().map(|p| p.to_string()).collect::<Vec<_>>()[..])
        );
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    for bad in ["", "a||b", "a%", "a%2", "a%41", "a%7c|b"] {
        assert_eq!(split_composite_id(bad), None, "{bad}");
    }
}

#[test]
fn composite_entities_are_checked() {
    for (entities, wanted) in [
        (
            "[entities.pair]\nof = [\"user\"]\n",
            "entity `pair`: of must list at least two entities",
        ),
        (
            "[entities.pair]\nof = [\"user\", \"user\"]\n",
            "entity `pair`: of: `user` is listed twice",
        ),
        (
            "[entities.pair]\nof = [\"user\", \"shop\"]\n",
            "entity `pair`: of: `shop` is not a simple entity of the spec (simple entities: item, user)",
        ),
        (
            "[entities.pair]\nof = [\"user\", \"item\"]\n[entities.triple]\nof = [\"pair\", \"item\"]\n",
            "entity `triple`: of: `pair` is not a simple entity of the spec",
        ),
        (
            "[entities.pair]\nof = [\"user\", \"pair\"]\n",
            "entity `pair`: of: `pair` is this entity itself",
        ),
        (
            "[entities.pair]\nkey = [\"clientId\"]\nof = [\"user\", \"item\"]\n",
            "entity `pair`: give key (the fields that name it) or of (the entities it pairs), not both",
        ),
        (
            "[entities.pair]\n",
            "entity `pair`: needs key = [field paths] or, for a composite entity, of = [entities]",
        ),
    ] {
        let e = entities_error(entities);
        assert!(e.contains(wanted), "{entities}: {e}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90s"), Ok(90 * SECOND));
    assert_eq!(parse_duration("30m"), Ok(30 * MINUTE));
    assert_eq!(parse_duration("2w"), Ok(14 * DAY));
    for bad in ["", "d", "7", "7 d", "-7d", "7D", "1.5h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_feature_has_a_short_stable_tag_and_f32_is_for_sums_of_fractions() {
    let spec = FeatureSpec::parse(include_str!("../../../features.toml")).expect("spec");
    let def = spec.feature("pageviews@1").expect("pageviews");
    // Pinned: stores written with it read by every later version, and
    // edge/tests/redis_layout.mjs restates it.
    assert_eq!(def.tag(), "1VqL");
    let bad = "[entities.user]\nkey = [\"clientId\"]\n[[feature]]\nname = \"n\"\nentity = \"user\"\non = [\"x\"]\nagg = \"count\"\nfloat = \"f32\"\n";
    let err = FeatureSpec::parse(bad).expect_err("f32 count");
    assert!(
        err.to_string().contains("applies to avg and vector_avg"),
        "{err}"
    );
    let bad = bad
        .replace("agg = \"count\"", "agg = \"avg\"\nfield = \"payload.x\"")
        .replace("f32", "f16");
    let err = FeatureSpec::parse(&bad).expect_err("f16");
    assert!(err.to_string().contains("float must be"), "{err}");
}

#[test]
fn a_feature_follows_sign_in_unless_link_is_false() {
    let base = "name = \"a\"\nentity = \"user\"\non = [\"x\"]\nagg = \"count\"\n";
    let moves = parse_feature(base).expect("spec");
    let stays = parse_feature(&format!("{base}link = false\n")).expect("spec");
    assert!(moves.feature("a@1").expect("a").link);
    assert!(!stays.feature("a@1").expect("a").link);
    // It decides values, so it is in the hash.
    assert_ne!(moves.hash(), stays.hash());
    assert!(error_of(&format!("{base}link = \"no\"\n")).contains("link"));
}
