//! The network: a batch by `fetch` (gzipped by `CompressionStream` when it
//! pays), every batch by `sendBeacon` when the page goes away, and the
//! edge's answer read into what the core needs to settle a batch.

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, Headers, ReadableStream, ReadableWritablePair, RequestInit, Response, WritableStream,
};

use crate::driver::{GZIP_MIN_BYTES, retry_after_ms};
use crate::web::page;

#[wasm_bindgen]
extern "C" {
    /// `CompressionStream`, bound here: web-sys has it only behind
    /// `--cfg web_sys_unstable_apis`, which an app should not need to set.
    #[wasm_bindgen(js_name = CompressionStream)]
    type Compression;
    #[wasm_bindgen(constructor, js_class = "CompressionStream", catch)]
    fn new(format: &str) -> Result<Compression, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &Compression) -> ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &Compression) -> WritableStream;
}

/// The edge's answer to one POST. `status` 0: there was none (offline,
/// DNS, CORS, a reset connection), which the core retries.
#[derive(Debug, Default)]
pub struct Answer {
    pub status: u16,
    pub retry_after_ms: Option<u64>,
    /// The `error` of a 401's JSON body: a refused identity token or write key.
    pub error_code: String,
}

/// POSTs one batch's body and reads the answer.
pub async fn post(url: &str, body: String, gzip: bool) -> Answer {
    send(url, body, gzip).await.unwrap_or_default()
}

/// `text/plain`: a CORS-simple request, so no preflight.
fn request(body: &JsValue, keepalive: bool) -> Result<RequestInit, JsValue> {
    let init = RequestInit::new();
    init.set_method("POST");
    let headers = Headers::new()?;
    headers.set("content-type", "text/plain")?;
    init.set_headers(&headers);
    init.set_body(body);
    if keepalive {
        // Not in web-sys' RequestInit bindings.
        Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE)?;
    }
    Ok(init)
}

async fn send(url: &str, body: String, gzip: bool) -> Result<Answer, JsValue> {
    let window = web_sys::window().ok_or(JsValue::NULL)?;
    let data = if gzip && body.len() >= GZIP_MIN_BYTES && can_gzip() {
        // A browser that fails to compress still sends the plain body.
        gzipped(&body).await.unwrap_or_else(|_| body.into())
    } else {
        body.into()
    };
    let promise = window.fetch_with_str_and_init(url, &request(&data, false)?);
    let res: Response = JsFuture::from(promise).await?.dyn_into()?;
    let status = res.status();
    let retry_after_ms = res
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|h| retry_after_ms(&h, page::now(), js_sys::Date::parse(&h)));
    let mut error_code = String::new();
    if status == 401
        && let Ok(json) = res.json()
        && let Ok(value) = JsFuture::from(json).await
    {
        error_code = Reflect::get(&value, &"error".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
    }
    Ok(Answer {
        status,
        retry_after_ms,
        error_code,
    })
}

fn can_gzip() -> bool {
    Reflect::has(&js_sys::global(), &"CompressionStream".into()).unwrap_or(false)
}

async fn gzipped(body: &str) -> Result<JsValue, JsValue> {
    let blob = Blob::new_with_str_sequence(&Array::of1(&body.into()))?;
    let gzip = Compression::new("gzip")?;
    let pair = ReadableWritablePair::new(&gzip.readable(), &gzip.writable());
    let stream = blob.stream().pipe_through(&pair);
    let res = Response::new_with_opt_readable_stream(Some(&stream))?;
    JsFuture::from(res.array_buffer()?).await
}

/// Hands `body` to `sendBeacon`, or to `fetch(keepalive)` when the browser
/// refuses the beacon (too large, quota); either outlives the page.
pub fn beacon(url: &str, body: &str) {
    let queued = web_sys::window()
        .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
        .unwrap_or(false);
    if queued {
        return;
    }
    if let Some(window) = web_sys::window()
        && let Ok(init) = request(&body.into(), true)
    {
        let promise = window.fetch_with_str_and_init(url, &init);
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(promise).await;
        });
    }
}
