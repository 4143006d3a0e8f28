//! The page's clock, storage, cookie and console. Storage can throw (privacy
//! modes, a full quota): then reads find nothing and writes are skipped, as
//! in the JS driver, and the cookie keeps the client id.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsCast;
use web_sys::{CustomEvent, CustomEventInit, HtmlDocument, Storage};

use crate::driver::{
    CLIENT_COOKIE, CLIENT_COOKIE_MAX_AGE_S, IDENTITY_REJECTED_EVENT, client_id_from_cookie,
};

/// `Date.now()`, as the core's Unix milliseconds.
pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

fn storage() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

pub fn get(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Writes `value`, or removes the key for `None`.
pub fn put(key: &str, value: Option<&str>) {
    if let Some(s) = storage() {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}

/// Every storage key that starts with `prefix`.
pub fn keys_with_prefix(prefix: &str) -> Vec<String> {
    let Some(s) = storage() else {
        return Vec::new();
    };
    let n = s.length().unwrap_or(0);
    (0..n)
        .filter_map(|i| s.key(i).ok().flatten())
        .filter(|k| k.starts_with(prefix))
        .collect()
}

fn html_document() -> Option<HtmlDocument> {
    web_sys::window()?.document()?.dyn_into().ok()
}

pub fn cookie_client_id() -> Option<String> {
    let cookies = html_document()?.cookie().ok()?;
    client_id_from_cookie(&cookies).map(str::to_owned)
}

pub fn set_client_cookie(id: &str) {
    if let Some(doc) = html_document() {
        let _ = doc.set_cookie(&format!(
            "{CLIENT_COOKIE}={id}; Max-Age={CLIENT_COOKIE_MAX_AGE_S}; Path=/; SameSite=Lax"
        ));
    }
}

pub fn warn(message: &str) {
    web_sys::console::warn_1(&format!("freshet: {message}").into());
}

/// `freshet:identityrejected` on `window` with `detail.code`, as the JS
/// driver dispatches it.
pub fn dispatch_identity_rejected(code: &str) {
    let detail = Object::new();
    let _ = Reflect::set(&detail, &"code".into(), &code.into());
    let init = CustomEventInit::new();
    init.set_detail(&detail);
    if let (Some(window), Ok(event)) = (
        web_sys::window(),
        CustomEvent::new_with_event_init_dict(IDENTITY_REJECTED_EVENT, &init),
    ) {
        let _ = window.dispatch_event(&event);
    }
}
