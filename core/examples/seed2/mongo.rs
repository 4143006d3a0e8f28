//! MongoDB's form of the same state, for a sample of entities: core's
//! `update_one` of each of their deltas, one JSON line each
//! (`{"c": collection, "f": filter, "u": update}`), which
//! `python/bench/seed2_mongo.py` applies to a MongoDB wire server and
//! measures. The registry is the media spec with `float = "f32"` dropped:
//! MongoDB refuses it (`$inc` adds in doubles; `encode::mongo::unsupported`).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};

use freshet_core::aggregate::aggregate;
use freshet_core::encode::mongo::{unsupported, update_one};
use freshet_core::spec::FeatureSpec;
use freshet_core::validate::ValidBatch;
use serde_json::json;

pub struct MongoSample {
    spec: FeatureSpec,
    wanted: BTreeSet<(String, String)>,
    out: BufWriter<File>,
}

impl MongoSample {
    /// Writes to `path` the updates of the entities in `wanted` ((entity, id)).
    pub fn new(path: &str, spec_text: &str, wanted: BTreeSet<(String, String)>) -> Self {
        let spec = FeatureSpec::parse(&spec_text.replace("float = \"f32\"", ""))
            .expect("media spec without f32");
        assert_eq!(unsupported(&spec), None);
        Self {
            spec,
            wanted,
            out: BufWriter::new(File::create(path).expect("mongo sample file")),
        }
    }

    /// The updates of one batch's deltas for the sampled entities.
    pub fn write(&mut self, batch: &ValidBatch) {
        for d in aggregate(&self.spec, batch, None) {
            if !self.wanted.contains(&(d.entity.clone(), d.id.clone())) {
                continue;
            }
            let u = update_one(&self.spec, &d);
            let line = json!({"c": u.collection, "f": u.filter, "u": u.update});
            writeln!(self.out, "{line}").expect("write");
        }
    }

    pub fn finish(mut self) {
        self.out.flush().expect("flush");
    }
}
