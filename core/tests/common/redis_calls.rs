//! Talking to a test's redis-server with core's commands: replies converted
//! to core's `RedisValue`, commands run as core builds them.

use freshet_core::encode::redis::{
    RedisCommand, RedisValue, decode_layout1_for, decode_state, is_unwritten,
    layout1_read_commands_for, read_commands,
};
use freshet_core::spec::FeatureSpec;
use freshet_core::state::FeatureDoc;

#[allow(dead_code)]
pub fn convert(v: redis::Value) -> RedisValue {
    match v {
        redis::Value::Nil => RedisValue::Nil,
        redis::Value::Int(i) => RedisValue::Int(i),
        redis::Value::BulkString(b) => RedisValue::Bulk(b),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            RedisValue::Array(items.into_iter().map(convert).collect())
        }
        redis::Value::SimpleString(s) => RedisValue::Simple(s),
        redis::Value::Okay => RedisValue::Simple("OK".to_owned()),
        redis::Value::Map(pairs) => RedisValue::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (convert(k), convert(v)))
                .collect(),
        ),
        redis::Value::Double(d) => RedisValue::Double(d),
        other => RedisValue::Error(format!("{other:?}")),
    }
}

#[allow(dead_code)]
pub fn run(con: &mut redis::Connection, parts: &[Vec<u8>]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(&parts[0]).expect("verb"));
    for p in &parts[1..] {
        cmd.arg(p.as_slice());
    }
    cmd.query(con)
}

/// Runs core's commands in one pipeline.
#[allow(dead_code)]
pub fn pipeline(con: &mut redis::Connection, commands: &[RedisCommand]) -> Vec<RedisValue> {
    let mut pipe = redis::pipe();
    for c in commands {
        let mut cmd = redis::cmd(std::str::from_utf8(&c.0[0]).expect("verb"));
        for p in &c.0[1..] {
            cmd.arg(p.as_slice());
        }
        pipe.add_command(cmd);
    }
    let replies: Vec<redis::Value> = pipe.query(con).expect("pipeline");
    replies.into_iter().map(convert).collect()
}

/// A user's whole state as core reads it back from the test's prefix-less
/// default (`prefix` "fs").
#[allow(dead_code)]
pub fn read_entity(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
) -> FeatureDoc {
    let replies = pipeline(con, &read_commands(spec, prefix, entity, id));
    if !is_unwritten(&replies) {
        return decode_state(spec, entity, &replies).expect("decode");
    }
    // As a reader does in a store without the layout mark: layout 1 next.
    let old = pipeline(
        con,
        &layout1_read_commands_for(spec, prefix, entity, id, None),
    );
    decode_layout1_for(spec, entity, None, &old).expect("decode layout 1")
}
