//! Erasure: what "delete this person's data" means for features, batches and
//! the event log, decided once here for the edge, replay and the Python
//! package (README, "Erasure").
//!
//! A person's events count under a [`Principal`]: the verified `userId` of
//! their batch, else the event's `clientId`. Erasing a principal at time T:
//!
//! - removes every *personal* entity of it ([`is_personal`]: keyed by
//!   `userId`, `clientId` or `sessionId`, or a composite with such a part)
//!   from the store;
//! - drops, at ingest and in the queue's consumer, every event of it whose
//!   event time is at or before T ([`Tombstone::verdict`]), whatever its
//!   batch (a retry, a saved queue, a late beacon); its later events count
//!   from nothing once the store has been swept a last time;
//! - rewrites the event log ([`scrub`]): the principal's events of batches
//!   received up to T leave their batch; what other entities (a product's
//!   popularity) took from them stays, as an anonymous event that keeps only
//!   the fields those entities' features read, so replay gives those
//!   entities the same values the store holds, and no byte of the person's
//!   ids is left.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::log::LoggedBatch;
use crate::spec::{EntityDef, FeatureDef, FeatureSpec, FieldPath, split_composite_id};
use crate::state::EntityDelta;
use crate::time::Millis;
use crate::validate::{Event, MAX_IDENTIFIER_BYTES};

/// What an anonymous batch's id adds to its batch's: a sent batch id has no
/// dot (`wire::is_valid_id`), so it is never a batch's own id.
pub const ANONYMOUS_SUFFIX: &str = ".anon";

/// The id a person's events count under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Principal {
    /// A verified `userId`.
    User(String),
    /// An anonymous visitor's `clientId`.
    Client(String),
}

impl Principal {
    /// Whom `event` counts for: its userId when its batch's identity token
    /// vouches for it (as `aggregate` counts it), else its client.
    pub fn of(event: &Event, verified_user: Option<&str>) -> Self {
        match event
            .user_id
            .as_deref()
            .filter(|u| Some(*u) == verified_user)
        {
            Some(user) => Self::User(user.to_owned()),
            None => Self::Client(event.client_id.clone()),
        }
    }

    /// `user:u-1`, `client:cid-1`.
    pub fn name(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Client(id) => format!("client:{id}"),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::User(id) | Self::Client(id) => id,
        }
    }

    /// Whether `path` names this principal's kind of id.
    fn keyed_by(&self, path: &FieldPath) -> bool {
        matches!(
            (self, path),
            (Self::User(_), FieldPath::UserId) | (Self::Client(_), FieldPath::ClientId)
        )
    }
}

/// Whom an erasure request names: a `userId`, a `clientId`, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Subject {
    /// Reads a request body `{"userId": …, "clientId": …}`; the error says
    /// what is wrong.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let subject: Self = serde_json::from_slice(body).map_err(|e| {
            format!("the body is {{\"userId\": \"…\"}} and/or {{\"clientId\": \"…\"}}: {e}")
        })?;
        if subject.user_id.is_none() && subject.client_id.is_none() {
            return Err("name a userId, a clientId, or both".into());
        }
        for (field, id) in [
            ("userId", &subject.user_id),
            ("clientId", &subject.client_id),
        ] {
            if let Some(id) = id
                && (id.is_empty() || id.len() > MAX_IDENTIFIER_BYTES)
            {
                return Err(format!(
                    "{field} is 1 to {MAX_IDENTIFIER_BYTES} bytes, as the tracker sends it"
                ));
            }
        }
        Ok(subject)
    }

    /// The principals it names (a user's linked clients are the edge's to add).
    pub fn principals(&self) -> Vec<Principal> {
        let mut out = Vec::new();
        if let Some(user) = &self.user_id {
            out.push(Principal::User(user.clone()));
        }
        if let Some(client) = &self.client_id {
            out.push(Principal::Client(client.clone()));
        }
        out
    }
}

/// A principal's erasure, as the ingest gate reads it.
///
/// An erasure takes effect at `erased_at`, the end of its settling: the
/// edge sets it a few seconds after the request (`settle` in the edge), so
/// that every write that passed the gate before the tombstone was durable
/// (at most a store round trip, its events dated at most the uncorrected
/// clock skew past their receipt) holds only events at or before it, and
/// the store's last sweep then removes all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// Events at or before this time are dropped for good.
    pub erased_at: Millis,
    /// Whether the store's last sweep is done. Until it is, a batch with
    /// later events of the principal waits (503), so that sweep removes
    /// none of them.
    #[serde(default)]
    pub swept: bool,
}

/// What the gate does with one event of an erased principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// At or before the erasure: never counted, never logged.
    Drop,
    /// After the erasure, while it settles: the batch is sent again later.
    Wait {
        until: Millis,
    },
}

impl Tombstone {
    pub fn verdict(&self, event_time: Millis, now: Millis) -> Verdict {
        if event_time <= self.erased_at {
            Verdict::Drop
        } else if self.swept {
            Verdict::Keep
        } else {
            Verdict::Wait {
                until: self.erased_at.max(now + crate::time::SECOND),
            }
        }
    }
}

/// Whether a person's events count under `def` by one of their ids: a
/// simple entity keyed by `userId`, `clientId` or `sessionId`, or a
/// composite with such a part.
pub fn is_personal(def: &EntityDef) -> bool {
    if def.is_composite() {
        return def.of.iter().any(is_personal);
    }
    def.key.iter().any(|p| {
        matches!(
            p,
            FieldPath::UserId | FieldPath::ClientId | FieldPath::SessionId
        )
    })
}

/// The simple entities `principal`'s own state sits under: `(entity, id)`
/// for each simple entity keyed by its kind of id.
pub fn own_keys(spec: &FeatureSpec, principal: &Principal) -> Vec<(String, String)> {
    spec.entities()
        .filter(|e| !e.is_composite() && e.key.iter().any(|p| principal.keyed_by(p)))
        .map(|e| (e.name.clone(), principal.id().to_owned()))
        .collect()
}

/// The entities among `deltas` that hold `principal`'s data under another
/// id than its own ([`own_keys`]): a composite with it as a part, and an
/// entity keyed by one of its `sessions`. What the edge indexes per
/// principal at write time, so an erasure finds them without a scan.
pub fn indexed_of(
    spec: &FeatureSpec,
    deltas: &[EntityDelta],
    principal: &Principal,
    sessions: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mine = |def: &EntityDef, id: &str| {
        def.key.iter().any(|p| {
            (principal.keyed_by(p) && id == principal.id())
                || (matches!(p, FieldPath::SessionId) && sessions.contains(id))
        })
    };
    let mut out = BTreeSet::new();
    for d in deltas {
        let Some(def) = spec.entity(&d.entity) else {
            continue;
        };
        let held = if def.is_composite() {
            split_composite_id(&d.id)
                .is_some_and(|parts| def.of.iter().zip(&parts).any(|(part, id)| mine(part, id)))
        } else {
            def.key.contains(&FieldPath::SessionId) && sessions.contains(&d.id)
        };
        if held {
            out.insert((d.entity.clone(), d.id.clone()));
        }
    }
    out.into_iter().collect()
}

/// The principals of a batch's events, each with its events' indexes.
pub fn principals_of(batch: &LoggedBatch) -> BTreeMap<Principal, Vec<usize>> {
    let mut out: BTreeMap<Principal, Vec<usize>> = BTreeMap::new();
    for (i, e) in batch.events.iter().enumerate() {
        out.entry(Principal::of(e, batch.verified_user.as_deref()))
            .or_default()
            .push(i);
    }
    out
}

/// A logged batch with the events of erased principals taken out: `kept`,
/// the batch without them (`None` when none is left), and `anonymous`, what
/// other entities took from them (`None` when nothing): a batch of its own,
/// `<batchId>.anon`, no user, each event with an empty `clientId`, no
/// session or userId, and only the payload fields the features of
/// non-personal entities read.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrubbed {
    pub kept: Option<LoggedBatch>,
    pub anonymous: Option<LoggedBatch>,
    /// Events taken out.
    pub removed: usize,
}

/// Takes out of `batch` the events of each principal in `erased` whose
/// batch was received at or before its erasure time; `None` when the batch
/// has none of them (it stays as it is).
pub fn scrub(
    spec: &FeatureSpec,
    batch: &LoggedBatch,
    erased: &BTreeMap<Principal, Millis>,
) -> Option<Scrubbed> {
    let verified = batch.verified_user.as_deref();
    let hit = |e: &Event| {
        erased
            .get(&Principal::of(e, verified))
            .is_some_and(|t| batch.received_at <= *t)
    };
    let removed = batch.events.iter().filter(|e| hit(e)).count();
    if removed == 0 {
        return None;
    }
    let kept: Vec<Event> = batch.events.iter().filter(|e| !hit(e)).cloned().collect();
    let anonymous: Vec<Event> = batch
        .events
        .iter()
        .filter(|e| hit(e))
        .filter_map(|e| anonymize(spec, e))
        .collect();
    let with = |batch_id: String, verified_user: Option<String>, events: Vec<Event>| {
        (!events.is_empty()).then(|| LoggedBatch {
            batch_id,
            received_at: batch.received_at,
            write_key: batch.write_key.clone(),
            verified_user,
            spec: batch.spec.clone(),
            events,
        })
    };
    Some(Scrubbed {
        kept: with(batch.batch_id.clone(), batch.verified_user.clone(), kept),
        anonymous: with(
            format!("{}{ANONYMOUS_SUFFIX}", batch.batch_id),
            None,
            anonymous,
        ),
        removed,
    })
}

/// Every batch of `batches` scrubbed ([`scrub`]): the batches to keep, each
/// one's anonymous part after it, and how many events were taken out.
pub fn scrub_all(
    spec: &FeatureSpec,
    batches: Vec<LoggedBatch>,
    erased: &BTreeMap<Principal, Millis>,
) -> (Vec<LoggedBatch>, usize) {
    let mut removed = 0;
    let mut kept = Vec::new();
    for batch in batches {
        match scrub(spec, &batch, erased) {
            None => kept.push(batch),
            Some(s) => {
                removed += s.removed;
                kept.extend(s.kept);
                kept.extend(s.anonymous);
            }
        }
    }
    (kept, removed)
}

/// What an erased event leaves for entities that are not a person's: `None`
/// when no feature of such an entity listens to it.
pub fn anonymize(spec: &FeatureSpec, event: &Event) -> Option<Event> {
    // A move at sign-in is the user's state alone.
    if crate::link::is_reserved(event) {
        return None;
    }
    let readers: Vec<&FeatureDef> = spec
        .features()
        .iter()
        .filter(|f| f.listens_to(&event.event_type))
        .filter(|f| spec.entity(&f.entity).is_some_and(|e| !is_personal(e)))
        .collect();
    if readers.is_empty() {
        return None;
    }
    let mut payload = Map::new();
    let paths = readers.iter().flat_map(|f| {
        let entity = spec
            .entity(&f.entity)
            .map(|e| e.key.iter())
            .into_iter()
            .flatten();
        f.field
            .iter()
            .chain(f.weight.iter())
            .chain(f.filter.iter().map(|(p, _)| p))
            .chain(entity)
    });
    for path in paths {
        if let FieldPath::Payload(segments) = path {
            copy_path(&event.payload, &mut payload, segments);
        }
    }
    Some(Event {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        time: event.time,
        client_id: String::new(),
        session_id: None,
        user_id: None,
        payload,
    })
}

/// Copies the value at `segments` of `from` into `to`, creating the objects
/// on the way.
fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, segments: &[String]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let Some(value) = from.get(first) else {
        return;
    };
    if rest.is_empty() {
        to.insert(first.clone(), value.clone());
        return;
    }
    let Some(inner) = value.as_object() else {
        return;
    };
    let slot = to
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(slot) = slot {
        copy_path(inner, slot, rest);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aggregate::aggregate;
    use crate::spec::FeatureSpec;

    const SPEC: &str = r#"
[entities.user]
key = ["userId", "clientId"]
[entities.product]
key = ["payload.productId"]
[entities.user_product]
of = ["user", "product"]

[[feature]]
name = "clicks"
entity = "user"
on = ["product_click"]
agg = "count"

[[feature]]
name = "popularity"
entity = "product"
on = ["product_click"]
agg = "count"

[[feature]]
name = "revenue"
entity = "product"
on = ["product_click"]
agg = "sum"
field = "payload.price.amount"

[[feature]]
name = "pair_clicks"
entity = "user_product"
on = ["product_click"]
agg = "count"

[[feature]]
name = "searches"
entity = "user"
on = ["search"]
agg = "count"
"#;

    fn spec() -> FeatureSpec {
        FeatureSpec::parse(SPEC).expect("spec")
    }

    fn event(id: &str, kind: &str, client: &str, time: Millis) -> Event {
        Event {
            id: id.into(),
            event_type: kind.into(),
            time,
            client_id: client.into(),
            session_id: Some("s-1".into()),
            user_id: None,
            payload: json!({"productId": "p-1", "price": {"amount": 5, "currency": "EUR"},
                            "query": "my name"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        }
    }

    fn batch(id: &str, user: Option<&str>, received_at: Millis, events: Vec<Event>) -> LoggedBatch {
        LoggedBatch {
            batch_id: id.into(),
            received_at,
            write_key: "k".into(),
            verified_user: user.map(str::to_owned),
            spec: None,
            events,
        }
    }

    #[test]
    fn subjects_parse_and_say_what_is_wrong() {
        let s = Subject::parse(br#"{"userId":"u-1"}"#).expect("user");
        assert_eq!(s.principals(), vec![Principal::User("u-1".into())]);
        let both = Subject::parse(br#"{"userId":"u-1","clientId":"c-1"}"#).expect("both");
        assert_eq!(both.principals().len(), 2);
        assert!(
            Subject::parse(b"{}")
                .expect_err("none")
                .contains("name a userId")
        );
        assert!(
            Subject::parse(br#"{"clientId":""}"#)
                .expect_err("empty")
                .contains("1 to")
        );
        assert!(
            Subject::parse(br#"{"user":"u"}"#)
                .expect_err("unknown")
                .contains("userId")
        );
        assert!(Subject::parse(b"not json").is_err());
    }

    #[test]
    fn the_verdict_drops_what_came_before_and_holds_what_comes_while_it_settles() {
        let mut t = Tombstone {
            erased_at: 5_000,
            swept: false,
        };
        assert_eq!(t.verdict(5_000, 9_000), Verdict::Drop);
        assert_eq!(t.verdict(999, 2_000), Verdict::Drop);
        assert_eq!(t.verdict(5_001, 2_000), Verdict::Wait { until: 5_000 });
        // Settled but not swept yet: a second more.
        assert_eq!(t.verdict(5_001, 5_000), Verdict::Wait { until: 6_000 });
        t.swept = true;
        assert_eq!(t.verdict(5_001, 5_000), Verdict::Keep);
        assert_eq!(t.verdict(5_000, 9_000), Verdict::Drop);
    }

    #[test]
    fn personal_entities_and_own_keys() {
        let spec = spec();
        let personal: Vec<&str> = spec
            .entities()
            .filter(|e| is_personal(e))
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(personal, vec!["user", "user_product"]);
        assert_eq!(
            own_keys(&spec, &Principal::Client("c-1".into())),
            vec![("user".to_owned(), "c-1".to_owned())]
        );
    }

    #[test]
    fn composites_are_found_by_their_personal_part() {
        let spec = spec();
        let b = batch("b1", None, 10, vec![event("e1", "product_click", "c-1", 5)]);
        let deltas = aggregate(&spec, &b.to_valid_batch(), None);
        let none = BTreeSet::new();
        let mine = indexed_of(&spec, &deltas, &Principal::Client("c-1".into()), &none);
        assert_eq!(
            mine,
            vec![("user_product".to_owned(), "c-1|p-1".to_owned())]
        );
        assert!(indexed_of(&spec, &deltas, &Principal::Client("p-1".into()), &none).is_empty());
        // `user` takes a userId or a clientId: one namespace of ids.
        assert_eq!(
            indexed_of(&spec, &deltas, &Principal::User("c-1".into()), &none),
            mine
        );
    }

    #[test]
    fn entities_keyed_by_a_session_are_the_persons_too() {
        let spec = FeatureSpec::parse(&format!(
            "{SPEC}\n[entities.visit]\nkey = [\"sessionId\"]\n\n[[feature]]\nname = \"views\"\n\
             entity = \"visit\"\non = [\"*\"]\nagg = \"count\"\n"
        ))
        .expect("spec");
        let b = batch("b1", None, 10, vec![event("e1", "product_click", "c-1", 5)]);
        let deltas = aggregate(&spec, &b.to_valid_batch(), None);
        let sessions = BTreeSet::from(["s-1".to_owned()]);
        let held = indexed_of(&spec, &deltas, &Principal::Client("c-1".into()), &sessions);
        assert!(
            held.contains(&("visit".to_owned(), "s-1".to_owned())),
            "{held:?}"
        );
        assert!(is_personal(spec.entity("visit").expect("visit")));
    }

    #[test]
    fn scrubbing_keeps_others_and_what_products_took_anonymously() {
        let spec = spec();
        let b = batch(
            "b1",
            None,
            100,
            vec![
                event("e1", "product_click", "c-1", 50),
                event("e2", "search", "c-1", 60),
                event("e3", "product_click", "c-2", 70),
            ],
        );
        let erased = BTreeMap::from([(Principal::Client("c-1".into()), 100)]);
        let s = scrub(&spec, &b, &erased).expect("hit");
        assert_eq!(s.removed, 2);
        let kept = s.kept.expect("kept");
        assert_eq!(kept.events.len(), 1);
        assert_eq!(kept.events[0].client_id, "c-2");
        let anon = s.anonymous.expect("anonymous");
        assert_eq!(anon.batch_id, "b1.anon");
        // The search feeds only the user: gone. The click keeps what the
        // product's features read, and no id of the person.
        assert_eq!(anon.events.len(), 1);
        let text = String::from_utf8(anon.to_ndjson()).expect("utf-8");
        assert!(
            !text.contains("c-1") && !text.contains("s-1") && !text.contains("my name"),
            "{text}"
        );
        assert_eq!(
            Value::Object(anon.events[0].payload.clone()),
            json!({"productId": "p-1", "price": {"amount": 5}})
        );
        // The anonymous event adds to the product and to no person.
        let deltas = aggregate(&spec, &anon.to_valid_batch(), None);
        let entities: Vec<&str> = deltas.iter().map(|d| d.entity.as_str()).collect();
        assert_eq!(entities, vec!["product"]);
        // Received after the erasure: not this erasure's to take.
        let later = batch(
            "b2",
            None,
            101,
            vec![event("e4", "product_click", "c-1", 101)],
        );
        assert_eq!(scrub(&spec, &later, &erased), None);
    }

    #[test]
    fn a_signed_in_batch_is_its_users_where_its_user_id_is_the_verified_one() {
        let spec = spec();
        let mut signed_in = event("e1", "product_click", "c-9", 50);
        signed_in.user_id = Some("u-1".into());
        // A userId the token does not vouch for: the client's event.
        let mut other = event("e2", "product_click", "c-9", 50);
        other.user_id = Some("u-2".into());
        let b = batch("b1", Some("u-1"), 100, vec![signed_in, other]);
        let by_client = BTreeMap::from([(Principal::Client("c-9".into()), 200)]);
        let s = scrub(&spec, &b, &by_client).expect("the client's event");
        assert_eq!(s.removed, 1);
        let by_user = BTreeMap::from([(Principal::User("u-1".into()), 200)]);
        let s = scrub(&spec, &b, &by_user).expect("the user's event");
        assert_eq!(s.kept.expect("the client's stays").events[0].id, "e2");
        let anon = s.anonymous.expect("anonymous");
        assert_eq!(anon.verified_user, None);
        assert!(
            !String::from_utf8(anon.to_ndjson())
                .expect("utf-8")
                .contains("u-1")
        );
    }
}
