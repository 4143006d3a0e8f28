//! RESP2 framing with the `redis-protocol` crate: commands out as arrays of
//! bulk strings, replies in as [`RedisValue`]s that `core` decodes.

use freshet_core::encode::redis::RedisValue;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};

use crate::store::StoreError;

/// Appends one command (`args[0]` is its name) to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[Vec<u8>]) -> Result<(), StoreError> {
    let parts: Vec<BorrowedFrame<'_>> = args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let frame = BorrowedFrame::Array(&parts);
    let start = out.len();
    out.resize(start + frame.encode_len(false), 0);
    encode_borrowed(&mut out[start..], &frame, false)
        .map_err(|e| StoreError::Protocol(format!("encode: {e:?}")))?;
    Ok(())
}

/// Decodes one reply from the front of `buf`: `Ok(None)` when more bytes are needed.
pub fn decode_reply(buf: &[u8]) -> Result<Option<(RedisValue, usize)>, StoreError> {
    match decode(buf) {
        Ok(Some((frame, used))) => Ok(Some((to_value(frame), used))),
        Ok(None) => Ok(None),
        Err(e) => Err(StoreError::Protocol(format!("decode: {e:?}"))),
    }
}

fn to_value(frame: OwnedFrame) -> RedisValue {
    match frame {
        OwnedFrame::SimpleString(s) => RedisValue::Simple(String::from_utf8_lossy(&s).into_owned()),
        OwnedFrame::Error(e) => RedisValue::Error(e),
        OwnedFrame::Integer(i) => RedisValue::Int(i),
        OwnedFrame::BulkString(b) => RedisValue::Bulk(b),
        OwnedFrame::Array(items) => RedisValue::Array(items.into_iter().map(to_value).collect()),
        OwnedFrame::Null => RedisValue::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"GET".to_vec(), b"k\r\n".to_vec()]).expect("encode");
        encode_command(&mut out, &[b"PING".to_vec()]).expect("encode");
        assert_eq!(
            out,
            b"*2\r\n$3\r\nGET\r\n$3\r\nk\r\n\r\n*1\r\n$4\r\nPING\r\n"
        );
    }

    #[test]
    fn replies_decode_one_at_a_time_and_wait_for_more() {
        let buf = b":1\r\n$-1\r\n*2\r\n+OK\r\n-NOSCRIPT no\r\n$3\r\nab";
        let (v, n) = decode_reply(buf).expect("ok").expect("complete");
        assert_eq!((v, n), (RedisValue::Int(1), 4));
        let (v, m) = decode_reply(&buf[n..]).expect("ok").expect("complete");
        assert_eq!(v, RedisValue::Nil);
        let (v, k) = decode_reply(&buf[n + m..]).expect("ok").expect("complete");
        assert_eq!(
            v,
            RedisValue::Array(vec![
                RedisValue::Simple("OK".into()),
                RedisValue::Error("NOSCRIPT no".into())
            ])
        );
        assert_eq!(decode_reply(&buf[n + m + k..]).expect("ok"), None);
    }
}
