//! OP_MSG framing (the MongoDB wire protocol since 3.6): a 16-byte header,
//! flag bits, one kind-0 section (the command body) and any kind-1 sections
//! (document sequences, e.g. the `updates` of an `update` command). Also the
//! legacy pair every server answers, OP_QUERY out and OP_REPLY back, used for
//! the handshake only: it is how a server too old for OP_MSG gets told so
//! instead of hanging up. Every length is checked against the bytes at hand
//! before it is trusted.

use bson::Document;

/// `OP_MSG`'s opcode.
pub const OP_MSG: i32 = 2013;
/// The legacy query, for the handshake only.
pub const OP_QUERY: i32 = 2004;
/// The legacy query's answer.
pub const OP_REPLY: i32 = 1;
/// The message ends with a CRC-32C of the rest.
pub const CHECKSUM_PRESENT: u32 = 1;
/// The sender will send another message without waiting: never a reply we want.
pub const MORE_TO_COME: u32 = 1 << 1;
/// Bits 0-15 must be understood by the receiver; these are the ones we do.
const KNOWN_REQUIRED: u32 = CHECKSUM_PRESENT | MORE_TO_COME;

const HEADER_LEN: usize = 16;
/// Header + flag bits + a section kind byte + the smallest document (5 bytes).
const MIN_MESSAGE_LEN: usize = HEADER_LEN + 4 + 1 + 5;

/// One OP_MSG: its body and its document sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub flags: u32,
    pub body: Document,
    pub sequences: Vec<Sequence>,
}

/// A kind-1 section: documents that the server reads as the array field
/// `identifier` of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub identifier: String,
    pub documents: Vec<Document>,
}

/// A received message and the request it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub response_to: i32,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad OP_MSG frame: {}", self.0)
    }
}

fn bad(why: impl Into<String>) -> FrameError {
    FrameError(why.into())
}

impl Message {
    pub fn command(body: Document) -> Self {
        Self {
            flags: 0,
            body,
            sequences: Vec::new(),
        }
    }

    /// Appends the framed message, with `request_id`, to `out`.
    pub fn encode(&self, request_id: i32, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let start = out.len();
        out.extend_from_slice(&[0; 4]); // length, patched below
        out.extend_from_slice(&request_id.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // responseTo
        out.extend_from_slice(&OP_MSG.to_le_bytes());
        // We never compute a checksum, so never claim one.
        out.extend_from_slice(&(self.flags & !CHECKSUM_PRESENT).to_le_bytes());
        out.push(0);
        self.body
            .to_writer(&mut *out)
            .map_err(|e| bad(format!("body does not encode: {e}")))?;
        for seq in &self.sequences {
            if seq.identifier.contains('\0') {
                return Err(bad("sequence identifier holds a NUL"));
            }
            out.push(1);
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(seq.identifier.as_bytes());
            out.push(0);
            for doc in &seq.documents {
                doc.to_writer(&mut *out)
                    .map_err(|e| bad(format!("sequence document does not encode: {e}")))?;
            }
            let size = i32::try_from(out.len() - at).map_err(|_| bad("sequence over 2 GiB"))?;
            out[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        let len = i32::try_from(out.len() - start).map_err(|_| bad("message over 2 GiB"))?;
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// How long the message at the head of `buf` is, once its length is known:
/// `Ok(None)` while fewer than 4 bytes are there. A length under the
/// smallest OP_MSG or over `max_len` is an error (the stream is lost).
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, FrameError> {
    let Some(len) = read_i32(buf, 0) else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| bad(format!("negative length {len}")))?;
    if len < MIN_MESSAGE_LEN {
        return Err(bad(format!("length {len} is under {MIN_MESSAGE_LEN}")));
    }
    if len > max_len {
        return Err(bad(format!("length {len} is over the limit of {max_len}")));
    }
    Ok(Some(len))
}

/// Reads one BSON document at the head of `bytes`, within `end`.
fn document_at(bytes: &[u8], at: usize, end: usize) -> Result<(Document, usize), FrameError> {
    let len = read_i32(bytes, at).ok_or_else(|| bad("document length cut off"))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l >= 5 && at + l <= end)
        .ok_or_else(|| bad(format!("document length {len} runs past its section")))?;
    let doc = Document::from_reader(&bytes[at..at + len])
        .map_err(|e| bad(format!("document does not decode: {e}")))?;
    Ok((doc, at + len))
}

/// Appends the handshake `command` as an OP_QUERY on `admin.$cmd`.
pub fn encode_query(
    command: &Document,
    request_id: i32,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&OP_QUERY.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // flags
    out.extend_from_slice(b"admin.$cmd\0");
    out.extend_from_slice(&0i32.to_le_bytes()); // numberToSkip
    out.extend_from_slice(&(-1i32).to_le_bytes()); // numberToReturn: one, then close
    command
        .to_writer(&mut *out)
        .map_err(|e| bad(format!("query does not encode: {e}")))?;
    let len = i32::try_from(out.len() - start).map_err(|_| bad("query over 2 GiB"))?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Checks that `frame` is exactly one whole frame of `opcode`; its length and
/// the request it answers.
fn whole_frame(frame: &[u8], opcode: i32, name: &str) -> Result<(usize, i32), FrameError> {
    let len = frame_len(frame, usize::MAX)?.ok_or_else(|| bad("cut off"))?;
    if len != frame.len() {
        return Err(bad(format!(
            "length says {len} bytes, the frame has {}",
            frame.len()
        )));
    }
    let response_to = read_i32(frame, 8).ok_or_else(|| bad("cut off"))?;
    let got = read_i32(frame, 12).ok_or_else(|| bad("cut off"))?;
    if got != opcode {
        return Err(bad(format!("opcode {got}, not {name}")));
    }
    Ok((len, response_to))
}

/// Decodes one whole OP_REPLY frame: the request it answers and its one document.
pub fn decode_op_reply(frame: &[u8]) -> Result<(i32, Document), FrameError> {
    let (len, response_to) = whole_frame(frame, OP_REPLY, "OP_REPLY")?;
    // responseFlags (4), cursorID (8), startingFrom (4), numberReturned (4).
    let returned = read_i32(frame, HEADER_LEN + 16).ok_or_else(|| bad("cut off"))?;
    if returned != 1 {
        return Err(bad(format!("{returned} documents where one was expected")));
    }
    let (doc, end) = document_at(frame, HEADER_LEN + 20, len)?;
    if end != len {
        return Err(bad("bytes after the reply's document"));
    }
    Ok((response_to, doc))
}

/// Decodes one whole frame (exactly `frame_len` bytes).
pub fn decode(frame: &[u8]) -> Result<Reply, FrameError> {
    let (len, response_to) = whole_frame(frame, OP_MSG, "OP_MSG")?;
    let flags = read_i32(frame, 16).ok_or_else(|| bad("cut off"))? as u32;
    let unknown = flags & 0xffff & !KNOWN_REQUIRED;
    if unknown != 0 {
        return Err(bad(format!("unknown required flag bits {unknown:#x}")));
    }
    // The CRC-32C, when present, is not checked: TCP and TLS already guard
    // the bytes, and mongod only sends one when asked.
    let end = if flags & CHECKSUM_PRESENT != 0 {
        len.checked_sub(4)
            .filter(|e| *e >= HEADER_LEN + 4)
            .ok_or_else(|| bad("too short for its checksum"))?
    } else {
        len
    };
    let mut at = HEADER_LEN + 4;
    let mut body = None;
    let mut sequences = Vec::new();
    while at < end {
        let kind = frame[at];
        at += 1;
        match kind {
            0 => {
                if body.is_some() {
                    return Err(bad("two kind-0 sections"));
                }
                let (doc, next) = document_at(frame, at, end)?;
                body = Some(doc);
                at = next;
            }
            1 => {
                let size = read_i32(frame, at).ok_or_else(|| bad("sequence size cut off"))?;
                let section_end = usize::try_from(size)
                    .ok()
                    .filter(|s| *s >= 5 && at + s <= end)
                    .map(|s| at + s)
                    .ok_or_else(|| bad(format!("sequence size {size} runs past the message")))?;
                let name_start = at + 4;
                let nul = frame[name_start..section_end]
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or_else(|| bad("sequence identifier not terminated"))?;
                let identifier = std::str::from_utf8(&frame[name_start..name_start + nul])
                    .map_err(|_| bad("sequence identifier not UTF-8"))?
                    .to_owned();
                let mut pos = name_start + nul + 1;
                let mut documents = Vec::new();
                while pos < section_end {
                    let (doc, next) = document_at(frame, pos, section_end)?;
                    documents.push(doc);
                    pos = next;
                }
                sequences.push(Sequence {
                    identifier,
                    documents,
                });
                at = section_end;
            }
            other => return Err(bad(format!("unknown section kind {other}"))),
        }
    }
    let body = body.ok_or_else(|| bad("no kind-0 section"))?;
    Ok(Reply {
        response_to,
        message: Message {
            flags,
            body,
            sequences,
        },
    })
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn encoded(m: &Message, id: i32) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(id, &mut out).expect("encodes");
        out
    }

    #[test]
    fn a_command_with_a_sequence_round_trips() {
        let m = Message {
            flags: 0,
            body: doc! {"update": "user_features", "ordered": false, "$db": "fs"},
            sequences: vec![Sequence {
                identifier: "updates".into(),
                documents: vec![
                    doc! {"q": {"_id": "a"}, "u": {"$inc": {"n": 1_i64}}, "upsert": true},
                    doc! {"q": {"_id": "b"}, "u": {"$inc": {"n": 2.5}}, "upsert": true},
                ],
            }],
        };
        let bytes = encoded(&m, 7);
        assert_eq!(frame_len(&bytes, 1 << 20), Ok(Some(bytes.len())));
        // Header: length, request id, responseTo 0, OP_MSG.
        assert_eq!(read_i32(&bytes, 4), Some(7));
        assert_eq!(read_i32(&bytes, 8), Some(0));
        assert_eq!(read_i32(&bytes, 12), Some(OP_MSG));
        let reply = decode(&bytes).expect("decodes");
        assert_eq!(reply.message, m);
    }

    #[test]
    fn the_layout_is_byte_exact() {
        let bytes = encoded(&Message::command(doc! {"ping": 1}), 1);
        let body = doc! {"ping": 1}.to_vec().expect("bson");
        let mut want = Vec::new();
        want.extend_from_slice(&((16 + 4 + 1 + body.len()) as i32).to_le_bytes());
        want.extend_from_slice(&1i32.to_le_bytes());
        want.extend_from_slice(&0i32.to_le_bytes());
        want.extend_from_slice(&2013i32.to_le_bytes());
        want.extend_from_slice(&0u32.to_le_bytes());
        want.push(0);
        want.extend_from_slice(&body);
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_checksum_is_skipped_and_the_flags_kept() {
        let mut bytes = encoded(&Message::command(doc! {"ok": 1.0}), 3);
        bytes[16] |= CHECKSUM_PRESENT as u8;
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let len = bytes.len() as i32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        let reply = decode(&bytes).expect("decodes");
        assert_eq!(reply.message.body, doc! {"ok": 1.0});
        assert_eq!(reply.message.flags, CHECKSUM_PRESENT);
    }

    /// An OP_REPLY as a server builds it.
    fn op_reply(response_to: i32, docs: &[Document]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&9i32.to_le_bytes());
        out.extend_from_slice(&response_to.to_le_bytes());
        out.extend_from_slice(&OP_REPLY.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0i64.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&(docs.len() as i32).to_le_bytes());
        for d in docs {
            d.to_writer(&mut out).expect("bson");
        }
        let len = out.len() as i32;
        out[..4].copy_from_slice(&len.to_le_bytes());
        out
    }

    #[test]
    fn the_legacy_handshake_is_framed_both_ways() {
        let mut q = Vec::new();
        encode_query(&doc! {"isMaster": 1}, 5, &mut q).expect("query");
        assert_eq!(read_i32(&q, 0), Some(q.len() as i32));
        assert_eq!(read_i32(&q, 12), Some(OP_QUERY));
        assert_eq!(&q[20..31], b"admin.$cmd\0");
        assert_eq!(read_i32(&q, 35), Some(-1));
        assert_eq!(
            Document::from_reader(&q[39..]).expect("doc"),
            doc! {"isMaster": 1}
        );

        let reply = op_reply(5, &[doc! {"ok": 1.0, "maxWireVersion": 5}]);
        assert_eq!(
            decode_op_reply(&reply),
            Ok((5, doc! {"ok": 1.0, "maxWireVersion": 5}))
        );
        // An OP_MSG where OP_REPLY was due, no document, two, trailing bytes.
        let msg = encoded(&Message::command(doc! {"ok": 1.0}), 1);
        assert!(decode_op_reply(&msg).is_err());
        assert!(decode_op_reply(&op_reply(5, &[])).is_err());
        assert!(decode_op_reply(&op_reply(5, &[doc! {}, doc! {}])).is_err());
        let mut trailing = reply.clone();
        trailing.push(0);
        let len = trailing.len() as i32;
        trailing[..4].copy_from_slice(&len.to_le_bytes());
        assert!(decode_op_reply(&trailing).is_err());
        // And OP_MSG's decoder refuses an OP_REPLY.
        assert!(decode(&reply).is_err());
    }

    #[test]
    fn lengths_are_checked_before_they_are_trusted() {
        assert_eq!(frame_len(&[1, 0], 100), Ok(None));
        assert!(frame_len(&10i32.to_le_bytes(), 100).is_err());
        assert!(frame_len(&(-1i32).to_le_bytes(), 100).is_err());
        assert!(frame_len(&1000i32.to_le_bytes(), 999).is_err());
        assert_eq!(frame_len(&999i32.to_le_bytes(), 999), Ok(Some(999)));
    }

    #[test]
    fn malformed_frames_are_refused() {
        let good = encoded(&Message::command(doc! {"a": 1}), 1);
        let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            decode(&b)
        };
        // A frame shorter than its length, or longer.
        assert!(decode(&good[..good.len() - 1]).is_err());
        assert!(
            mutate(&|b| {
                b.push(0);
            })
            .is_err()
        );
        // OP_QUERY's opcode.
        assert!(mutate(&|b| b[12..16].copy_from_slice(&2004i32.to_le_bytes())).is_err());
        // An unknown required flag bit; an unknown optional one is fine.
        assert!(mutate(&|b| b[16] |= 1 << 4).is_err());
        assert!(mutate(&|b| b[18] |= 1).is_ok());
        // An unknown section kind.
        assert!(mutate(&|b| b[20] = 2).is_err());
        // A document length past the end.
        assert!(mutate(&|b| b[21] = 0x7f).is_err());
        // No kind-0 section: only an empty sequence.
        let mut only_seq = Vec::new();
        only_seq.extend_from_slice(&0i32.to_le_bytes());
        only_seq.extend_from_slice(&1i32.to_le_bytes());
        only_seq.extend_from_slice(&0i32.to_le_bytes());
        only_seq.extend_from_slice(&OP_MSG.to_le_bytes());
        only_seq.extend_from_slice(&0u32.to_le_bytes());
        only_seq.push(1);
        only_seq.extend_from_slice(&6i32.to_le_bytes());
        only_seq.extend_from_slice(b"x\0");
        let len = only_seq.len() as i32;
        only_seq[..4].copy_from_slice(&len.to_le_bytes());
        assert!(decode(&only_seq).is_err());
        // Two bodies.
        let mut two = good.clone();
        two.extend_from_slice(&good[20..]);
        let len = two.len() as i32;
        two[..4].copy_from_slice(&len.to_le_bytes());
        assert!(decode(&two).expect_err("two").0.contains("two kind-0"));
        // A sequence whose size runs past the message.
        let mut seq = good.clone();
        seq.push(1);
        seq.extend_from_slice(&100i32.to_le_bytes());
        seq.extend_from_slice(b"x\0");
        let len = seq.len() as i32;
        seq[..4].copy_from_slice(&len.to_le_bytes());
        assert!(decode(&seq).is_err());
    }
}
