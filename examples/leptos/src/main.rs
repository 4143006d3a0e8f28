//! Freshet's example Rust web app: a small shop in Leptos (client-side
//! rendering) whose clicks are tracked by `freshet-sdk`'s `web` feature,
//! with Rust types only: no JS package, no bundler. Built by `build.sh`.

mod catalog;
mod events;
mod options;
mod panel;
mod shop;
mod tracking;

use leptos::prelude::*;

fn main() {
    // A bad query string or a tracker that cannot start is shown on the
    // page; the shop itself still works, untracked.
    let started = options::from_page().and_then(|config| {
        freshet_sdk::web::Tracker::start(config)
            .map_err(|e| format!("the tracker did not start: {e}"))
    });
    mount_to_body(move || {
        tracking::provide(started);
        view! {
            <main>
                <h1>"Freshet shop (Leptos)"</h1>
                <panel::TrackerPanel/>
                <shop::Shop/>
            </main>
        }
    });
}
