//! The wasm-bindgen surface: the tracker's logic as one `Core` object that
//! the npm package's small JS driver (`npm/src/index.js`) gives a clock,
//! storage, timers, `fetch`/`sendBeacon` and the page's lifecycle events.
//! Every decision (ids, batching, what is due, retry or drop, sessions, the
//! storage form) is made here; the driver only moves bytes and calls back.
//! Browser I/O lives in JS because web-sys' bindings, futures and closures
//! would cost more wasm than the whole tracker (see BENCHMARKS.md). Built
//! with the `js` feature, by `npm/build.sh` only; Rust apps use `web`.

use js_sys::TypeError;
use wasm_bindgen::prelude::*;

use crate::config::Config;
use crate::driver::{TRACK_EVICTED, TRACK_QUEUED, TRACK_SEALED, settled_code};
use crate::encode::push_u64;
use crate::entropy::BrowserEntropy;
use crate::error::TrackerError;
use crate::retry::Attempt;
use crate::tracker::{Stored, Tracked, TrackerCore};

/// See `Cargo.toml`: a small allocator for a small heap. Locked rather than
/// `AssumeSingleThreaded`, whose constructor is `unsafe` (forbidden here).
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

fn type_error(e: TrackerError) -> JsValue {
    TypeError::new(&e.message()).into()
}

/// The tracker's state; see the module docs. Times are `Date.now()` values.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Core {
    core: TrackerCore<BrowserEntropy>,
    /// The batch on the wire, settled by `settle`.
    on_wire: Option<String>,
}

#[wasm_bindgen]
impl Core {
    /// Throws a `TypeError` for a missing, unknown or out-of-range option.
    #[wasm_bindgen(constructor)]
    pub fn new(
        options: &str,
        now: f64,
        client_id: Option<String>,
        session: Option<String>,
        opted_out: bool,
    ) -> Result<Core, JsValue> {
        let config = Config::from_lines(options).map_err(type_error)?;
        let rng = BrowserEntropy::new();
        let stored = Stored {
            client_id,
            session,
            opted_out,
        };
        Ok(Core {
            core: TrackerCore::new(config, rng, now as u64, stored),
            on_wire: None,
        })
    }

    /// Queues an event. `payload` is the payload as `JSON.stringify` wrote
    /// it (the driver checks it is a plain object); `shared_session` is the
    /// session as saved by any tab. The answer's bits: [`TRACK_QUEUED`] (0:
    /// opted or sampled out), [`TRACK_SEALED`], [`TRACK_EVICTED`]. Throws a
    /// `TypeError` for a bad type or payload.
    pub fn track(
        &mut self,
        now: f64,
        event_type: &str,
        payload: Option<String>,
        shared_session: Option<String>,
    ) -> Result<u8, JsValue> {
        let tracked = self
            .core
            .track_in_tab(
                now as u64,
                event_type,
                payload.as_deref(),
                shared_session.as_deref(),
            )
            .map_err(type_error)?;
        let evicted = if self.core.queue.evicted > 0 {
            TRACK_EVICTED
        } else {
            0
        };
        Ok(match tracked {
            Tracked::Ignored => 0,
            Tracked::Queued { sealed } => {
                TRACK_QUEUED | (u8::from(sealed) * TRACK_SEALED) | evicted
            }
        })
    }

    pub fn identify(&mut self, user_id: &str, identity_token: &str) -> Result<(), JsValue> {
        self.core
            .identify(user_id, identity_token)
            .map_err(type_error)
    }

    pub fn reset(&mut self, now: f64) {
        self.core.reset(now as u64);
    }

    /// Opt out (dropping the queue) or back in.
    #[wasm_bindgen(js_name = optOut)]
    pub fn opt_out(&mut self, out: bool) {
        if out {
            self.core.opt_out();
        } else {
            self.core.opt_in();
        }
    }

    /// Seals the open batch if `flush` or if it is `flushIntervalMs` old; then
    /// the body of the next batch due, taken onto the wire, if any.
    #[wasm_bindgen(js_name = nextBody)]
    pub fn next_body(&mut self, now: f64, flush: bool) -> Option<String> {
        let now = now as u64;
        if flush {
            self.core.flush(now);
        }
        self.core.seal_if_old(now);
        let out = self.core.start_send(now)?;
        self.on_wire = Some(out.batch_id);
        Some(out.body)
    }

    /// When to call `nextBody` again (a `Date.now()` value), or -1 for never.
    #[wasm_bindgen(js_name = nextWake)]
    pub fn next_wake(&self) -> f64 {
        self.core.next_wake().map_or(-1.0, |t| t as f64)
    }

    /// Settles the batch on the wire: `status` 0 for a network error;
    /// `retry_after_ms` is the answer's `Retry-After` as milliseconds from
    /// now (the driver reads seconds or an HTTP date), NaN or below 0 for none;
    /// `error_code` is the `error` of a 401's JSON body, else empty. The
    /// answer is a [`settled_code`].
    pub fn settle(&mut self, now: f64, status: u16, retry_after_ms: f64, error_code: &str) -> u8 {
        let Some(id) = self.on_wire.take() else {
            return 0;
        };
        let attempt = Attempt::answer(
            status,
            (retry_after_ms >= 0.0).then_some(retry_after_ms as u64),
            error_code,
        );
        settled_code(self.core.settle(&id, attempt, now as u64))
    }

    /// Every batch's body for `sendBeacon`, one a line (JSON has no raw
    /// newline); they stay queued until confirmed.
    pub fn unload(&mut self, now: f64) -> String {
        let mut out = String::new();
        for body in self.core.unload(now as u64) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&body);
        }
        out
    }

    /// The queue's storage form with this heartbeat (0: the tab has closed),
    /// or `undefined` when nothing waits or nothing may be stored.
    pub fn save(&self, heartbeat: f64) -> Option<String> {
        (self.core.persists() && !self.core.queue.is_empty())
            .then(|| self.core.queue.encode(heartbeat as u64))
    }

    /// Takes in the saved queue of a tab that closed or died.
    pub fn adopt(&mut self, text: &str) {
        let max = self.core.config.max_queue as usize;
        self.core.queue.adopt(text, max);
    }

    /// One call for what the driver reads, one a line: clientId, sessionId,
    /// endpoint, savedSession, gzip, persists ("1" or ""), then the counts
    /// queued, evicted, dropped.
    pub fn info(&self) -> String {
        let c = &self.core;
        let mut out = String::with_capacity(160);
        for part in [
            &c.client_id,
            &c.session.id,
            &c.config.endpoint,
            &c.session.encode(),
        ] {
            out.push_str(part);
            out.push('\n');
        }
        out.push_str(if c.config.gzip { "1\n" } else { "\n" });
        out.push_str(if c.persists() { "1" } else { "" });
        for n in [c.queue.len() as u64, c.queue.evicted, c.queue.dropped] {
            out.push('\n');
            push_u64(&mut out, n);
        }
        out
    }
}
