//! What the tracker is doing, with stable ids and `data-` attributes for
//! the browser test (tests/e2e/leptos.test.mjs).

use leptos::prelude::*;

use crate::tracking::use_tracking;

#[component]
pub fn TrackerPanel() -> impl IntoView {
    let tracking = use_tracking();
    let stats = tracking.stats;
    view! {
        <section id="tracker" data-started=tracking.started().to_string()>
            <Show when=move || tracking.error.get().is_some()>
                <p id="tracker-error" role="alert">{move || tracking.error.get()}</p>
            </Show>
            <Show when=move || tracking.started()>
                <p>"Client id: " <code id="client-id">{move || tracking.client_id.get()}</code></p>
                <p
                    id="stats"
                    data-queued=move || stats.get().queued.to_string()
                    data-evicted=move || stats.get().evicted.to_string()
                    data-dropped=move || stats.get().dropped.to_string()
                >
                    {move || {
                        let s = stats.get();
                        format!("queued {}, evicted {}, dropped {}", s.queued, s.evicted, s.dropped)
                    }}
                </p>
                <button id="flush" on:click=move |_| tracking.flush()>"Send now"</button>
            </Show>
        </section>
    }
}
