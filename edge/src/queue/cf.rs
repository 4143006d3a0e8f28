//! The ingest queue in the worker: a Cloudflare Queues producer binding
//! (`INGEST_QUEUE` in wrangler.toml; `wrangler dev` runs the queue and its
//! consumer locally). A message is a body's bytes, sent as a `Uint8Array`
//! by structured clone (`v8`: workers-rs has no `bytes` content type).

use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::JsValue;
use worker::{BatchMessageBuilder, QueueContentType, RawMessageBuilder, SendMessage};

use super::{IngestQueue, QueueError};

/// The producer binding's name in wrangler.toml.
pub const BINDING: &str = "INGEST_QUEUE";
/// The dead-letter queue's name in wrangler.toml: its messages are kept
/// (`super::dead`), not applied.
pub const DEAD_QUEUE: &str = "freshet-ingest-dead";
/// What one `sendBatch` takes: 100 messages and 256 KB in all.
const BATCH_MESSAGES: usize = 100;
const BATCH_BYTES: usize = 250 * 1024;

/// The bound queue; `None` in the direct pipeline, where nothing is sent.
#[derive(Debug)]
pub struct WorkerQueue(pub Option<worker::Queue>);

fn message(body: &[u8]) -> SendMessage<JsValue> {
    RawMessageBuilder::new(Uint8Array::from(body).into())
        .build_with_content_type(QueueContentType::V8)
}

impl IngestQueue for WorkerQueue {
    async fn send(&self, bodies: Vec<Vec<u8>>) -> Result<(), QueueError> {
        let Some(queue) = &self.0 else {
            return Err(QueueError(format!("no {BINDING} binding")));
        };
        let fail = |e: worker::Error| QueueError(format!("send: {e}"));
        if let [body] = bodies.as_slice() {
            return queue.send_raw(message(body)).await.map_err(fail);
        }
        // A batch in parts: as few sendBatch calls as their limits allow.
        let mut start = 0;
        while start < bodies.len() {
            let (mut end, mut bytes) = (start, 0);
            while end < bodies.len()
                && end - start < BATCH_MESSAGES
                && (end == start || bytes + bodies[end].len() <= BATCH_BYTES)
            {
                bytes += bodies[end].len();
                end += 1;
            }
            let batch = BatchMessageBuilder::new()
                .messages(bodies[start..end].iter().map(|b| message(b)))
                .build();
            queue.send_raw_batch(batch).await.map_err(fail)?;
            start = end;
        }
        Ok(())
    }
}
