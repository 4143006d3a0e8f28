//! The tracker as a Leptos context. `Tracker` is `!Send` (an `Rc` inside),
//! so it lives in a `StoredValue` with `LocalStorage`: a `Copy` handle that
//! is `Send + Sync` itself, as `provide_context` requires.

use std::time::Duration;

use freshet_sdk::web::{Stats, Tracker};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Tracking {
    tracker: Option<StoredValue<Tracker, LocalStorage>>,
    /// Why there is no tracker, or the latest call it refused.
    pub error: RwSignal<Option<String>>,
    /// The tracker's `stats()`, looked at every `REFRESH`.
    pub stats: RwSignal<Stats>,
    pub client_id: RwSignal<String>,
}

/// The queue drains on its own (timer, retries); the panel looks this often.
const REFRESH: Duration = Duration::from_millis(200);

/// Provides the tracker (or why it did not start), with a page view sent.
pub fn provide(started: Result<Tracker, String>) {
    let (tracker, error) = match started {
        Ok(t) => (Some(StoredValue::new_local(t)), None),
        Err(e) => (None, Some(e)),
    };
    let tracking = Tracking {
        tracker,
        error: RwSignal::new(error),
        stats: RwSignal::new(Stats::default()),
        client_id: RwSignal::new(String::new()),
    };
    if let Some(t) = tracking.tracker {
        tracking.client_id.set(t.with_value(Tracker::client_id));
        tracking.report(t.with_value(Tracker::page));
        set_interval(move || tracking.refresh(), REFRESH);
    }
    provide_context(tracking);
}

pub fn use_tracking() -> Tracking {
    expect_context::<Tracking>()
}

impl Tracking {
    pub fn started(&self) -> bool {
        self.tracker.is_some()
    }

    /// Tracks `name` with a typed payload; a refused event is shown, not lost silently.
    pub fn track<P: Serialize>(&self, name: &str, payload: &P) {
        if let Some(t) = self.tracker {
            self.report(t.with_value(|t| t.track(name, payload)));
        }
    }

    /// Sends what is queued now; the counts follow when nothing is on the wire.
    pub fn flush(&self) {
        if let Some(t) = self.tracker {
            let tracker = t.get_value();
            let this = *self;
            spawn_local(async move {
                tracker.flush().await;
                this.refresh();
            });
        }
    }

    fn report<E: std::fmt::Display>(&self, result: Result<(), E>) {
        if let Err(e) = result {
            self.error.set(Some(e.to_string()));
        }
        self.refresh();
    }

    fn refresh(&self) {
        if let Some(stats) = self.tracker.and_then(|t| t.try_with_value(Tracker::stats))
            && self.stats.get_untracked() != stats
        {
            self.stats.set(stats);
        }
    }
}
