//! The tracker's options from the page's query string, so one build serves
//! `make demo`'s edge and the tests' (`?endpoint=…&writeKey=…`).

use freshet_sdk::Config;
use web_sys::UrlSearchParams;

/// `make demo`'s edge (scripts/demo.sh: port 8787, the local `dev` key).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8787/v1/ingest";
pub const DEFAULT_WRITE_KEY: &str = "dev";

/// Reads `endpoint`, `writeKey`, `batchSize`, `flushIntervalMs` and
/// `leadingEdge`; the others keep the tracker's defaults. Ranges are the
/// tracker's to check.
pub fn from_page() -> Result<Config, String> {
    let search = leptos::prelude::location()
        .search()
        .map_err(|_| "the page's address cannot be read".to_owned())?;
    let params = UrlSearchParams::new_with_str(&search)
        .map_err(|_| format!("the query string {search:?} cannot be parsed"))?;
    let mut config = Config {
        endpoint: params
            .get("endpoint")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        write_key: params
            .get("writeKey")
            .unwrap_or_else(|| DEFAULT_WRITE_KEY.to_owned()),
        ..Config::default()
    };
    if let Some(n) = whole_number(&params, "batchSize")? {
        config.batch_size = n;
    }
    if let Some(n) = whole_number(&params, "flushIntervalMs")? {
        config.flush_interval_ms = n;
    }
    if let Some(s) = params.get("leadingEdge") {
        config.leading_edge = s
            .parse()
            .map_err(|_| format!("leadingEdge must be true or false, got {s:?}"))?;
    }
    Ok(config)
}

fn whole_number(params: &UrlSearchParams, name: &str) -> Result<Option<u32>, String> {
    params
        .get(name)
        .map(|s| {
            s.parse()
                .map_err(|_| format!("{name} must be a whole number, got {s:?}"))
        })
        .transpose()
}
