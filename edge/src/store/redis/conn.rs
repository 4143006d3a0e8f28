//! One Redis connection: write a whole pipeline, read its replies. It serves
//! one exchange at a time; the store's pool keeps it between exchanges when
//! the store lives in the `StoreGateway` Durable Object.

use freshet_core::encode::redis::{RedisCommand, RedisValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::resp::{decode_reply, encode_command};
use crate::store::StoreError;
use crate::store::pool::Reusable;

/// Largest reply buffer we accept; a feature document is far smaller.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    buf: Vec<u8>,
    /// `AUTH`/`SELECT` answered OK: later pipelines on it skip them.
    set_up: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(4096),
            set_up: false,
        }
    }

    pub fn is_set_up(&self) -> bool {
        self.set_up
    }

    pub fn mark_set_up(&mut self) {
        self.set_up = true;
    }

    /// Sends every command in one write and reads one reply per command.
    pub async fn pipeline(
        &mut self,
        commands: &[RedisCommand],
    ) -> Result<Vec<RedisValue>, StoreError> {
        let mut out = Vec::with_capacity(256 * commands.len());
        for command in commands {
            encode_command(&mut out, &command.0)?;
        }
        self.stream.write_all(&out).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;

        let mut replies = Vec::with_capacity(commands.len());
        let mut pos = 0;
        let mut chunk = [0u8; 8192];
        while replies.len() < commands.len() {
            if let Some((value, used)) = decode_reply(&self.buf[pos..])? {
                pos += used;
                replies.push(value);
                continue;
            }
            if self.buf.len() > MAX_REPLY_BYTES {
                return Err(StoreError::Protocol("reply larger than 16 MiB".into()));
            }
            let n = self.stream.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(StoreError::Io(
                    "connection closed before every reply".into(),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.buf.drain(..pos);
        Ok(replies)
    }

    pub fn into_inner(self) -> S {
        self.stream
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
