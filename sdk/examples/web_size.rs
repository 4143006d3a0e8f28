//! The tracker's part of a Rust web app, for measuring what the `web`
//! feature weighs (`scripts/size-sdk-web.sh`): start, a typed event, a page
//! view, an identity and a payload from JS, as an app would use them. Built
//! with `WEB_SIZE_TYPED_ONLY=1`, it leaves out the JS payload, and with it
//! serde-wasm-bindgen: the difference is what that costs.

use freshet_sdk::Config;
use freshet_sdk::web::Tracker;
use wasm_bindgen::prelude::*;

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductClick {
    product_id: String,
    position: u32,
}

#[wasm_bindgen]
pub fn run(endpoint: String, write_key: String, from_js: JsValue) -> Result<(), JsError> {
    let tracker = Tracker::start(Config {
        endpoint,
        write_key,
        ..Config::default()
    })?;
    tracker.page()?;
    tracker.track(
        "product_click",
        &ProductClick {
            product_id: "p1".into(),
            position: 3,
        },
    )?;
    tracker.identify("user-1", "user-1.1.sig")?;
    if option_env!("WEB_SIZE_TYPED_ONLY").is_none() {
        tracker.track_value("search", &from_js)?;
    }
    std::mem::forget(tracker); // tracks for the page's lifetime
    Ok(())
}
