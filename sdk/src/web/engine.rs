//! The driver loop, the same as the npm package's JS driver: one timer for
//! the next thing due (the open batch's interval, a retry, a storage write),
//! one batch on the wire at a time, storage written at most `SAVE_DELAY_MS`
//! after a change, every batch by beacon when the page hides or goes away.
//! The core decides; this only moves bytes and calls back.
//!
//! Callbacks (timer, listeners, an answer) hold a `Weak` to the state: the
//! last `Tracker` handle dropped ends them all.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use wasm_bindgen::JsValue;

use crate::driver::{SAVE_DELAY_MS, SESSION_KEY};
use crate::entropy::BrowserEntropy;
use crate::retry::{Attempt, Disposition};
use crate::tracker::TrackerCore;
use crate::web::listener::Listener;
use crate::web::{page, wire};

/// The app's callback for a refused identity token, given the error code.
pub type IdentityRejected = Rc<dyn Fn(&str)>;

pub struct Shared {
    pub state: RefCell<State>,
    pub listeners: RefCell<Vec<Listener>>,
}

pub struct State {
    pub core: TrackerCore<BrowserEntropy>,
    /// This tab's storage slot.
    pub slot: String,
    /// The batch on the wire, settled by its answer.
    on_wire: Option<String>,
    timer: Option<Timeout>,
    /// When the timer fires; `u64::MAX` for no timer.
    wake_at: u64,
    /// The queue changed since it was last written to storage.
    pub dirty: bool,
    /// After `pagehide` every save marks the slot closed (heartbeat 0), so
    /// the next page adopts it at once.
    pub closed: bool,
    /// Which warnings were logged already: each is logged once.
    warned: u8,
    /// `flush()` promises' resolve functions, called when the wire is quiet.
    pub waiters: Vec<js_sys::Function>,
    pub on_identity_rejected: Option<IdentityRejected>,
}

impl State {
    pub fn new(core: TrackerCore<BrowserEntropy>, slot: String) -> Self {
        Self {
            core,
            slot,
            on_wire: None,
            timer: None,
            wake_at: u64::MAX,
            dirty: true,
            closed: false,
            warned: 0,
            waiters: Vec::new(),
            on_identity_rejected: None,
        }
    }

    /// Writes the session and this tab's queue (removed when empty), unless
    /// the visitor opted out or `persist` is off.
    pub fn save(&mut self, heartbeat: u64) {
        self.dirty = false;
        if !self.core.persists() {
            return;
        }
        page::put(SESSION_KEY, Some(&self.core.session.encode()));
        let saved = (!self.core.queue.is_empty()).then(|| {
            self.core
                .queue
                .encode(if self.closed { 0 } else { heartbeat })
        });
        page::put(&self.slot, saved.as_deref());
    }

    pub fn warn_once(&mut self, bit: u8, message: &str) {
        if self.warned & bit == 0 {
            self.warned |= bit;
            page::warn(message);
        }
    }

    /// Resolves every pending `flush()`.
    pub fn release_waiters(&mut self) {
        for resolve in self.waiters.drain(..) {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

/// Seals the open batch if `flush` or if it is old enough, puts the next
/// batch due on the wire, writes storage from the timer (`tick`), and sets
/// the timer for what is due next.
pub fn pump(this: &Rc<Shared>, flush: bool, tick: bool) {
    let now = page::now();
    let outgoing = {
        let mut s = this.state.borrow_mut();
        if flush {
            s.core.flush(now);
        }
        s.core.seal_if_old(now);
        let out = s.core.start_send(now); // none while a batch is on the wire
        if let Some(out) = &out {
            s.on_wire = Some(out.batch_id.clone());
            s.dirty = true; // its attempt count changed
        }
        if tick && s.dirty {
            s.save(now);
        }
        if out.is_none() && s.on_wire.is_none() {
            s.release_waiters();
        }
        out.map(|o| (o.body, s.core.config.endpoint.clone(), s.core.config.gzip))
    };
    if let Some((body, url, gzip)) = outgoing {
        wasm_bindgen_futures::spawn_local(send(Rc::downgrade(this), url, body, gzip));
    }
    schedule(this);
}

/// Sets the one timer for the earliest of: the next wake the core wants, and
/// a pending storage write.
pub fn schedule(this: &Rc<Shared>) {
    let now = page::now();
    let mut s = this.state.borrow_mut();
    let mut at = s.core.next_wake().unwrap_or(u64::MAX);
    if s.dirty {
        at = at.min(now + SAVE_DELAY_MS);
    }
    if at >= s.wake_at {
        return;
    }
    s.wake_at = at;
    let delay = at.saturating_sub(now).min(u64::from(u32::MAX)) as u32;
    let weak = Rc::downgrade(this);
    s.timer = Some(Timeout::new(delay, move || {
        if let Some(this) = weak.upgrade() {
            this.state.borrow_mut().wake_at = u64::MAX;
            pump(&this, false, true);
        }
    }));
}

async fn send(weak: Weak<Shared>, url: String, body: String, gzip: bool) {
    let answer = wire::post(&url, body, gzip).await;
    // The tracker may have been dropped meanwhile: its saved queue still
    // holds this batch, which the next tracker resends under the same id.
    let Some(this) = weak.upgrade() else {
        return;
    };
    let now = page::now();
    let (disposition, callback) = {
        let mut s = this.state.borrow_mut();
        let Some(id) = s.on_wire.take() else {
            return;
        };
        let attempt = Attempt::answer(answer.status, answer.retry_after_ms, &answer.error_code);
        let disposition = s.core.settle(&id, attempt, now);
        match disposition {
            Disposition::Drop => s.warn_once(
                2,
                &format!("HTTP {}: batch refused, events dropped", answer.status),
            ),
            Disposition::WithoutIdentity => {
                // Stored at once, so a reload cannot resend the refused token.
                s.save(now);
                s.warn_once(
                    8,
                    &format!(
                        "identity token refused ({}): events go without it until identify() is called again",
                        answer.error_code
                    ),
                );
            }
            _ => {}
        }
        s.dirty = true;
        (disposition, s.on_identity_rejected.clone())
    };
    if disposition == Disposition::WithoutIdentity {
        if let Some(callback) = callback {
            callback(&answer.error_code);
        }
        page::dispatch_identity_rejected(&answer.error_code);
    }
    pump(&this, false, false);
}

/// `pagehide` (`closing`) or hidden: every batch by beacon; they stay saved
/// until an answer confirms them, and resends reuse their batch ids.
pub fn unload(this: &Rc<Shared>, closing: bool) {
    let now = page::now();
    let (url, bodies) = {
        let mut s = this.state.borrow_mut();
        (s.core.config.endpoint.clone(), s.core.unload(now))
    };
    for body in &bodies {
        wire::beacon(&url, body);
    }
    {
        let mut s = this.state.borrow_mut();
        // Chrome fires visibilitychange after pagehide on unload.
        s.closed |= closing;
        s.save(now);
    }
    schedule(this);
}

impl Drop for Shared {
    /// The last handle is gone: the queue is saved as a closed tab's, for the
    /// next tracker of this site to adopt at once; listeners and the timer go.
    fn drop(&mut self) {
        let s = self.state.get_mut();
        s.closed = true;
        s.save(0);
        s.timer = None;
        s.release_waiters();
        self.listeners.get_mut().clear();
    }
}
