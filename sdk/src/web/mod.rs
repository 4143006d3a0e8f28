//! The tracker for Rust web apps (feature `web`): the same core as the npm
//! package (queue, batches, ids, retries, sessions, the durable queue), with
//! the browser I/O in Rust: `web-sys` for `fetch`, `sendBeacon`,
//! `localStorage`, the cookie and the page's lifecycle, `gloo-timers` for the
//! flush interval and retry delays, `serde-wasm-bindgen` for payloads that
//! come from JS. No JS package, no bundler step.
//!
//! ```ignore
//! use freshet_sdk::{Config, web::Tracker};
//!
//! #[derive(serde::Serialize)]
//! #[serde(rename_all = "camelCase")]
//! struct ProductClick { product_id: String }
//!
//! let tracker = Tracker::start(Config {
//!     endpoint: "https://edge.example.com/v1/ingest".into(),
//!     write_key: "wk_live_…".into(),
//!     ..Config::default()
//! })?;
//! tracker.track("product_click", &ProductClick { product_id: "p1".into() })?;
//! tracker.identify("user-1", &token_from_your_server)?;
//! tracker.flush().await;
//! ```
//!
//! It shares the npm package's storage keys and cookie (`crate::driver`), so
//! a visitor keeps one client id and one queue whichever driver a page uses.
//! The app chooses its global allocator; the `js` feature's is not set here.

mod engine;
mod error;
mod listener;
mod page;
mod wire;

use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{PageTransitionEvent, VisibilityState};

pub use error::Error;

use crate::config::Config;
use crate::driver::{CLIENT_KEY, OPT_OUT_KEY, SESSION_KEY, SLOT_PREFIX, adoptable};
use crate::entropy::BrowserEntropy;
use crate::tracker::{Entropy, Stored, Tracked, TrackerCore};
use engine::{Shared, State, pump, schedule, unload};
use listener::Listener;

/// Counts since this tracker started (adopted batches included in `queued`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events waiting to be delivered.
    pub queued: u64,
    /// Events thrown away, oldest first, over `max_queue`.
    pub evicted: u64,
    /// Events in batches the edge refused for good (400, 401, 413).
    pub dropped: u64,
}

/// A running tracker: a cheap handle to clone into components. The last
/// handle dropped saves the queue for the next tracker of the site (or the
/// next page) and removes its listeners and timer.
#[derive(Clone)]
pub struct Tracker {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("client_id", &self.client_id())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Tracker {
    /// Starts tracking: reads the client id, session and opt-out from
    /// storage, adopts the queues of this site's closed or dead tabs and
    /// sends what is due. `Error::Invalid` names a bad option.
    pub fn start(config: Config) -> Result<Self, Error> {
        let config = config.check()?;
        let window = web_sys::window().ok_or(Error::NoWindow)?;
        let document = window.document().ok_or(Error::NoWindow)?;
        let now = page::now();
        let stored = Stored {
            client_id: page::get(CLIENT_KEY).or_else(page::cookie_client_id),
            session: page::get(SESSION_KEY),
            opted_out: page::get(OPT_OUT_KEY).as_deref() == Some("1"),
        };
        let core = TrackerCore::new(config, BrowserEntropy::new(), now, stored);
        let mut rng = BrowserEntropy::new();
        let slot = format!("{SLOT_PREFIX}{:08x}{:08x}", rng.next_u32(), rng.next_u32());
        let mut state = State::new(core, slot);
        save_client(&state.core);
        if state.core.persists() {
            let max = state.core.config.max_queue as usize;
            for key in page::keys_with_prefix(SLOT_PREFIX) {
                let text = page::get(&key).unwrap_or_default();
                if adoptable(&text, now) {
                    state.core.queue.adopt(&text, max);
                    page::put(&key, None);
                }
            }
        }
        let shared = Rc::new(Shared {
            state: std::cell::RefCell::new(state),
            listeners: std::cell::RefCell::new(Vec::new()),
        });
        let on = |f: fn(&Rc<Shared>, web_sys::Event)| {
            let weak = Rc::downgrade(&shared);
            move |event| {
                if let Some(this) = weak.upgrade() {
                    f(&this, event);
                }
            }
        };
        let listeners = vec![
            Listener::new(&window, "pagehide", on(|this, _| unload(this, true))),
            // Back from the back/forward cache: this tab is alive again.
            Listener::new(
                &window,
                "pageshow",
                on(|this, event| {
                    if event
                        .dyn_ref::<PageTransitionEvent>()
                        .is_some_and(PageTransitionEvent::persisted)
                    {
                        {
                            let mut s = this.state.borrow_mut();
                            s.closed = false;
                            s.dirty = true;
                        }
                        pump(this, false, false);
                    }
                }),
            ),
            Listener::new(
                &document,
                "visibilitychange",
                on(|this, _| {
                    let hidden = web_sys::window()
                        .and_then(|w| w.document())
                        .is_some_and(|d| d.visibility_state() == VisibilityState::Hidden);
                    if hidden {
                        unload(this, false);
                    }
                }),
            ),
        ];
        *shared.listeners.borrow_mut() = listeners;
        pump(&shared, false, false);
        Ok(Self { shared })
    }

    /// Queues an event with a payload that serializes to a JSON object;
    /// `&()` or `&None::<T>` for none. A refused event queues nothing.
    pub fn track<T: Serialize + ?Sized>(&self, event_type: &str, payload: &T) -> Result<(), Error> {
        let json = serde_json::to_string(payload).map_err(|e| Error::Payload(e.to_string()))?;
        self.track_json(event_type, (json != "null").then_some(json.as_str()))
    }

    /// Queues an event whose payload comes from JS (a plain object, or
    /// `undefined`/`null` for none), read with serde-wasm-bindgen.
    pub fn track_value(&self, event_type: &str, payload: &JsValue) -> Result<(), Error> {
        if payload.is_undefined() || payload.is_null() {
            return self.track_json(event_type, None);
        }
        let object: serde_json::Map<String, serde_json::Value> =
            serde_wasm_bindgen::from_value(payload.clone())
                .map_err(|e| Error::Payload(e.to_string()))?;
        let json = serde_json::to_string(&object).map_err(|e| Error::Payload(e.to_string()))?;
        self.track_json(event_type, Some(&json))
    }

    /// A `page_view` with the page's `url`, `path`, `title` and `referrer`.
    pub fn page(&self) -> Result<(), Error> {
        let window = web_sys::window().ok_or(Error::NoWindow)?;
        let document = window.document().ok_or(Error::NoWindow)?;
        let location = window.location();
        let payload = serde_json::json!({
            "url": location.href().unwrap_or_default(),
            "path": location.pathname().unwrap_or_default(),
            "title": document.title(),
            "referrer": document.referrer(),
        });
        self.track("page_view", &payload)
    }

    fn track_json(&self, event_type: &str, payload: Option<&str>) -> Result<(), Error> {
        let shared_session = page::get(SESSION_KEY);
        let tracked = {
            let mut s = self.shared.state.borrow_mut();
            let tracked =
                s.core
                    .track_in_tab(page::now(), event_type, payload, shared_session.as_deref())?;
            if tracked != Tracked::Ignored {
                s.dirty = true;
                if s.core.queue.evicted > 0 {
                    s.warn_once(1, "over max_queue: oldest events dropped");
                }
            }
            tracked
        };
        match tracked {
            Tracked::Queued { sealed: true } => pump(&self.shared, false, false),
            Tracked::Queued { sealed: false } => schedule(&self.shared),
            Tracked::Ignored => {}
        }
        Ok(())
    }

    /// Events from now on carry `user_id`, and their batches the identity
    /// token your server issued (docs/ARCHITECTURE.md#security).
    pub fn identify(&self, user_id: &str, identity_token: &str) -> Result<(), Error> {
        self.state().core.identify(user_id, identity_token)?;
        Ok(())
    }

    /// Called with the edge's error code when it refuses the identity token
    /// (the batch goes again without it); the page also gets a
    /// `freshet:identityrejected` event, as with the npm package.
    pub fn on_identity_rejected(&self, f: impl Fn(&str) + 'static) {
        self.state().on_identity_rejected = Some(Rc::new(f));
    }

    /// Logout: a new anonymous client and session; queued events keep theirs.
    pub fn reset(&self) {
        {
            let mut s = self.state();
            s.core.reset(page::now());
            save_client(&s.core);
            s.dirty = true;
        }
        pump(&self.shared, false, false);
    }

    /// Drops what is queued and tracks nothing until `opt_in`; remembered
    /// in storage across pages.
    pub fn opt_out(&self) {
        let mut s = self.state();
        s.core.opt_out();
        page::put(OPT_OUT_KEY, Some("1"));
        page::put(&s.slot, None);
    }

    pub fn opt_in(&self) {
        self.state().core.opt_in();
        page::put(OPT_OUT_KEY, None);
    }

    /// Sends everything queued; resolves when the wire is quiet: all
    /// delivered, or a retry scheduled (offline, a 503).
    pub async fn flush(&self) {
        let promise = js_sys::Promise::new(&mut |resolve, _| self.state().waiters.push(resolve));
        pump(&self.shared, true, false);
        let _ = JsFuture::from(promise).await;
    }

    pub fn client_id(&self) -> String {
        self.state().core.client_id.clone()
    }

    pub fn session_id(&self) -> String {
        self.state().core.session.id.clone()
    }

    pub fn stats(&self) -> Stats {
        let s = self.state();
        let q = &s.core.queue;
        Stats {
            queued: q.len() as u64,
            evicted: q.evicted,
            dropped: q.dropped,
        }
    }

    fn state(&self) -> std::cell::RefMut<'_, State> {
        self.shared.state.borrow_mut()
    }
}

/// The client id in storage and, where storage is blocked, the cookie.
fn save_client(core: &TrackerCore<BrowserEntropy>) {
    page::put(CLIENT_KEY, Some(&core.client_id));
    page::set_client_cookie(&core.client_id);
}
