//! The log cut by entity, for training data made on a cluster
//! (`freshet.spark`): each event line of a piece of NDJSON, with the
//! `(entity, id)`s it adds to, as the replay keys them. A partition given
//! every line routed to its entities replays them exactly as one process
//! replaying the whole log would: an event adds to its own entities only.

use freshet_core::link;
use freshet_core::log::parse_ndjson_lines;
use freshet_core::read::ReadError;
use freshet_core::spec::{EntityDef, FeatureSpec};

use crate::history::HistoryError;

/// The lines of a piece and where each event goes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Routes {
    /// Where each line begins, and the text's length last: line `i` is
    /// `text[offsets[i]..offsets[i + 1]]`, its newline included.
    pub offsets: Vec<usize>,
    /// One entry per (line, entity) pair: the line's index, the entity's
    /// index in the names asked for, and the id.
    pub line: Vec<usize>,
    pub entity: Vec<usize>,
    pub id: Vec<String>,
}

/// Routes every event line of `text` (plain NDJSON whose first line is line
/// `first_line` of `source`) to the `entities` it adds to. A line that does
/// not parse is an error naming `source` and the line.
pub fn route_lines(
    spec: &FeatureSpec,
    entities: &[String],
    source: &str,
    text: &[u8],
    first_line: usize,
) -> Result<Routes, HistoryError> {
    let defs: Vec<&EntityDef> = entities
        .iter()
        .map(|name| {
            spec.entity(name)
                .ok_or_else(|| HistoryError::Unknown(ReadError::UnknownEntity(name.clone())))
        })
        .collect::<Result<_, _>>()?;
    let mut routes = Routes::default();
    let mut start = 0;
    for (i, raw) in text.split_inclusive(|b| *b == b'\n').enumerate() {
        routes.offsets.push(start);
        start += raw.len();
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let batches = parse_ndjson_lines(raw, first_line + i).map_err(|e| HistoryError::Log {
            source: source.to_owned(),
            detail: e.0,
        })?;
        for batch in &batches {
            for event in &batch.events {
                // A move at sign-in goes to the user entity it names.
                if link::is_reserved(event) {
                    let target = link::target_of(event, batch.verified_user.as_deref());
                    if let Some((entity, id)) = target
                        && let Some(e) = defs.iter().position(|d| d.name == entity)
                    {
                        routes.line.push(i);
                        routes.entity.push(e);
                        routes.id.push(id);
                    }
                    continue;
                }
                // As the replay keys it: a userId counts when the batch's
                // identity token vouched for it.
                let user = event
                    .user_id
                    .as_deref()
                    .filter(|u| Some(*u) == batch.verified_user.as_deref());
                for (e, def) in defs.iter().enumerate() {
                    if let Some(id) = def.id_of(event, user) {
                        routes.line.push(i);
                        routes.entity.push(e);
                        routes.id.push(id);
                    }
                }
            }
        }
    }
    routes.offsets.push(start);
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

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
"#;

    fn line(
        client: &str,
        user: Option<&str>,
        verified: Option<&str>,
        product: Option<&str>,
    ) -> String {
        let payload = product.map_or("{}".to_owned(), |p| format!("{{\"productId\":\"{p}\"}}"));
        let quoted = |v: Option<&str>| v.map_or("null".to_owned(), |v| format!("\"{v}\""));
        format!(
            "{{\"batchId\":\"b1\",\"receivedAt\":\"2026-11-22T10:00:00.000Z\",\"writeKey\":\"dev\",\
             \"verifiedUser\":{},\"id\":\"e-{client}\",\"type\":\"product_click\",\
             \"timestamp\":\"2026-11-22T09:59:59.000Z\",\"clientId\":\"{client}\",\"sessionId\":null,\
             \"userId\":{},\"payload\":{payload}}}\n",
            quoted(verified),
            quoted(user)
        )
    }

    /// Each routed (line, entity index, id).
    fn triples(r: &Routes) -> Vec<(usize, usize, &str)> {
        r.line
            .iter()
            .zip(&r.entity)
            .zip(&r.id)
            .map(|((l, e), id)| (*l, *e, id.as_str()))
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn each_event_goes_to_every_entity_it_adds_to() {
        let spec = FeatureSpec::parse(SPEC).expect("spec");
        let text = [
            line("c1", None, None, Some("p1")),
            "\n".to_owned(),
            // An unverified userId does not name the user; a verified one does.
            line("c2", Some("mallory"), None, None),
            line("c3", Some("alice"), Some("alice"), Some("p|2")),
        ]
        .concat();
        let all = names(&["user", "product", "user_product"]);
        let r = route_lines(&spec, &all, "o", text.as_bytes(), 1).expect("routes");
        assert_eq!(r.offsets.len(), 5);
        assert_eq!(*r.offsets.last().expect("end"), text.len());
        let got = triples(&r);
        assert_eq!(
            got,
            [
                (0, 0, "c1"),
                (0, 1, "p1"),
                (0, 2, "c1|p1"),
                (2, 0, "c2"),
                (3, 0, "alice"),
                (3, 1, "p|2"),
                (3, 2, "alice|p%7C2"),
            ]
        );
        let line3 = &text.as_bytes()[r.offsets[3]..r.offsets[4]];
        assert!(line3.starts_with(b"{") && line3.ends_with(b"\n"));
    }

    #[test]
    fn a_sign_in_move_goes_to_the_user_entity_it_names() {
        let spec = FeatureSpec::parse(SPEC).expect("spec");
        let link = link::Link {
            client: "c1".into(),
            user: "alice".into(),
            seq: 1,
            at: 1_800_000_000_000,
            moves: ["user:alice", "user_product:alice|p1"]
                .iter()
                .map(|k| {
                    let (entity, id) = k.split_once(':').expect("key");
                    link::Move {
                        entity: entity.into(),
                        id: id.into(),
                        updates: std::collections::BTreeMap::new(),
                    }
                })
                .collect(),
        };
        let text = link.to_logged("", "h").to_ndjson();
        let all = names(&["user", "product", "user_product"]);
        let r = route_lines(&spec, &all, "o", &text, 1).expect("routes");
        let got = triples(&r);
        // Not to the client, nor to a product: to the user's entities only.
        assert_eq!(got, [(0, 0, "alice"), (1, 2, "alice|p1")]);
    }

    #[test]
    fn a_bad_line_is_named_and_an_unknown_entity_refused() {
        let spec = FeatureSpec::parse(SPEC).expect("spec");
        let text = format!("{}{{\"batchId\":\n", line("c1", None, None, None));
        let e = route_lines(&spec, &names(&["user"]), "obj", text.as_bytes(), 10).expect_err("bad");
        assert!(e.to_string().starts_with("obj: line 11"), "{e}");
        assert!(route_lines(&spec, &names(&["shop"]), "o", b"", 1).is_err());
    }
}
