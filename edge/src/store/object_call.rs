//! One request from the worker to a Durable Object, as both object-backed
//! stores make it: the entity objects (`durable_object`) and the connection
//! gateways (`gateway`).

use worker::{Method, ObjectNamespace, Request, RequestInit, wasm_bindgen::JsValue};

use super::StoreError;

/// Sends `body` to the object named `name` at `path` and returns its answer's
/// text; `what` names the object in errors. Anything but 200 is the object's
/// own error (already logged there).
pub async fn call_object(
    namespace: &ObjectNamespace,
    what: &str,
    name: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<String, StoreError> {
    let fail = |e: worker::Error| StoreError::Io(format!("{what}: {e}"));
    let stub = namespace
        .id_from_name(name)
        .and_then(|id| id.get_stub())
        .map_err(fail)?;
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        init.with_body(Some(JsValue::from_str(&body)));
    }
    let req = Request::new_with_init(&format!("https://object{path}"), &init).map_err(fail)?;
    let mut res = stub.fetch_with_request(req).await.map_err(fail)?;
    let text = res.text().await.map_err(fail)?;
    if res.status_code() != 200 {
        return Err(StoreError::Server(format!(
            "{what} answered {}: {text}",
            res.status_code()
        )));
    }
    Ok(text)
}
