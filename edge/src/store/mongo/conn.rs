//! One MongoDB connection: send several OP_MSG commands in one write, then
//! read their replies in order (a server answers the commands of one
//! connection one after the other). It serves one exchange at a time; the
//! store's pool keeps it, authenticated, between exchanges when the store
//! lives in the `StoreGateway` Durable Object.

use bson::Document;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wire::{self, MORE_TO_COME, Message};
use crate::store::StoreError;
use crate::store::pool::Reusable;

#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    buf: Vec<u8>,
    next_id: i32,
    /// Replies longer than this are refused (maxMessageSizeBytes).
    max_reply: usize,
    /// Handshake and authentication done: later exchanges send only commands.
    set_up: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, max_reply: usize) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(8192),
            next_id: 1,
            max_reply,
            set_up: false,
        }
    }

    pub fn is_set_up(&self) -> bool {
        self.set_up
    }

    pub fn mark_set_up(&mut self) {
        self.set_up = true;
    }

    fn next_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Writes `messages` in one write; gives their request ids.
    pub async fn send(&mut self, messages: &[Message]) -> Result<Vec<i32>, StoreError> {
        self.send_after_handshake(None, messages).await
    }

    /// Writes the handshake (as OP_QUERY, which every server answers) and
    /// then `messages`, in one write; gives the request ids, the
    /// handshake's first.
    pub async fn send_with_handshake(
        &mut self,
        handshake: &Document,
        messages: &[Message],
    ) -> Result<Vec<i32>, StoreError> {
        self.send_after_handshake(Some(handshake), messages).await
    }

    async fn send_after_handshake(
        &mut self,
        handshake: Option<&Document>,
        messages: &[Message],
    ) -> Result<Vec<i32>, StoreError> {
        let mut out = Vec::with_capacity(512 * (messages.len() + 1));
        let mut ids = Vec::with_capacity(messages.len() + 1);
        if let Some(handshake) = handshake {
            let id = self.next_id();
            wire::encode_query(handshake, id, &mut out)
                .map_err(|e| StoreError::Protocol(e.to_string()))?;
            ids.push(id);
        }
        for message in messages {
            let id = self.next_id();
            message
                .encode(id, &mut out)
                .map_err(|e| StoreError::Protocol(e.to_string()))?;
            ids.push(id);
        }
        self.stream.write_all(&out).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        Ok(ids)
    }

    /// Reads the next OP_MSG reply, which must answer `request_id`; gives its body.
    pub async fn receive(&mut self, request_id: i32) -> Result<Document, StoreError> {
        let frame = self.read_frame().await?;
        let reply = wire::decode(&frame).map_err(|e| StoreError::Protocol(e.to_string()))?;
        if reply.response_to != request_id {
            return Err(StoreError::Protocol(format!(
                "reply to request {} where {request_id} was expected",
                reply.response_to
            )));
        }
        if reply.message.flags & MORE_TO_COME != 0 {
            return Err(StoreError::Protocol(
                "a moreToCome reply, which was never asked for".into(),
            ));
        }
        Ok(reply.message.body)
    }

    /// Reads the handshake's OP_REPLY, which must answer `request_id`.
    pub async fn receive_handshake(&mut self, request_id: i32) -> Result<Document, StoreError> {
        let frame = self.read_frame().await?;
        let (response_to, doc) =
            wire::decode_op_reply(&frame).map_err(|e| StoreError::Protocol(e.to_string()))?;
        if response_to != request_id {
            return Err(StoreError::Protocol(format!(
                "reply to request {response_to} where {request_id} was expected"
            )));
        }
        Ok(doc)
    }

    /// Reads one whole frame, its length checked before it is read.
    async fn read_frame(&mut self) -> Result<Vec<u8>, StoreError> {
        let mut chunk = [0u8; 16 * 1024];
        let len = loop {
            if let Some(len) = wire::frame_len(&self.buf, self.max_reply)
                .map_err(|e| StoreError::Protocol(e.to_string()))?
                && self.buf.len() >= len
            {
                break len;
            }
            let n = self.stream.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(StoreError::Io("the server closed the connection".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        Ok(self.buf.drain(..len).collect())
    }

    /// Sends `messages` and reads every reply.
    pub async fn round_trip(&mut self, messages: &[Message]) -> Result<Vec<Document>, StoreError> {
        let ids = self.send(messages).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.receive(id).await?);
        }
        Ok(out)
    }

    pub fn set_max_reply(&mut self, max: usize) {
        self.max_reply = max;
    }
}

impl<S> Reusable for Connection<S> {
    fn reusable(&self) -> bool {
        self.set_up && self.buf.is_empty()
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use bson::doc;
    use tokio::io::duplex;

    use super::*;

    /// A scripted server on the other end of an in-memory pipe.
    async fn serve(mut peer: tokio::io::DuplexStream, replies: Vec<Vec<u8>>) {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        // Reads whatever arrives first, then answers.
        let n = peer.read(&mut chunk).await.unwrap_or(0);
        seen.extend_from_slice(&chunk[..n]);
        for r in replies {
            if peer.write_all(&r).await.is_err() {
                return;
            }
        }
    }

    fn reply(response_to: i32, body: Document) -> Vec<u8> {
        let mut out = Vec::new();
        Message::command(body)
            .encode(100, &mut out)
            .expect("encode");
        out[8..12].copy_from_slice(&response_to.to_le_bytes());
        out
    }

    #[tokio::test]
    async fn pipelined_replies_are_matched_in_order() {
        let (ours, theirs) = duplex(1 << 16);
        // Both replies in one write, split across reads by the pipe.
        let mut both = reply(1, doc! {"ok": 1.0, "a": 1_i32});
        both.extend(reply(2, doc! {"ok": 1.0, "b": 2_i32}));
        let server = tokio::spawn(serve(theirs, vec![both]));
        let mut conn = Connection::new(ours, 1 << 20);
        let got = conn
            .round_trip(&[
                Message::command(doc! {"ping": 1_i32, "$db": "admin"}),
                Message::command(doc! {"ping": 1_i32, "$db": "admin"}),
            ])
            .await
            .expect("replies");
        assert_eq!(got[0].get_i32("a").ok(), Some(1));
        assert_eq!(got[1].get_i32("b").ok(), Some(2));
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_wrong_response_to_a_huge_frame_or_a_hang_up_is_an_error() {
        for (bytes, want) in [
            (reply(7, doc! {"ok": 1.0}), "where 1 was expected"),
            (
                (1_000_000i32).to_le_bytes().to_vec(),
                "over the limit of 1024",
            ),
            (Vec::new(), "closed the connection"),
        ] {
            let (ours, theirs) = duplex(1 << 16);
            let server = tokio::spawn(serve(theirs, vec![bytes]));
            let mut conn = Connection::new(ours, 1024);
            let e = conn
                .round_trip(&[Message::command(doc! {"ping": 1_i32})])
                .await
                .expect_err(want);
            assert!(e.to_string().contains(want), "{e}");
            server.await.expect("server");
        }
    }
}
