//! The wasm32-only glue: `worker` requests in, ours out; configuration read
//! once per isolate (`config::env`); the store chosen by `FRESHET_STORE`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use freshet_core::drift::Summary;
use freshet_core::state::{Applied, EntityDelta, FeatureDoc};
use freshet_core::time::Millis;
use futures_util::StreamExt;
use worker::{
    Context, Date, Env, MessageBatch, MessageExt, RateLimiter, console_error, console_log, event,
    js_sys,
    wasm_bindgen::{JsCast, JsValue},
};

use crate::config::env::{config, spec as worker_spec};
use crate::config::{
    ADMIN_TOKEN_VAR, ConfigError, EVENT_LOG_VAR, IDENTITY_SECRET_VAR, PIPELINE_VAR, Pipeline,
    READ_TOKEN_VAR, StoreConfig,
};
use crate::erasure::object::{self as erasure_object, DurableRegistry};
use crate::error::EdgeError;
use crate::event_log::{self, EventLog, r2::R2Bucket};
use crate::http::{Body, CappedBody, Method, Request, Response};
use crate::queue::{self, cf::WorkerQueue};
use crate::rate_limit::{RateLimit, Scope};
use crate::routes::Edge;
use crate::store::durable_object::{BINDING, DurableObjectStore};
use crate::store::gateway::{self, GatewayStore};
use crate::store::mongo::{MongoStore, WorkerSocket};
use crate::store::redis::{RedisStore, SocketConnector};
use crate::store::{EntityKey, EntityRead, FeatureStore, StoreError};

pub use crate::erasure::object::ErasureRegistry;
pub use crate::store::durable_object::FeatureEntity;
pub use crate::store::gateway::StoreGateway;

/// The store `FRESHET_STORE` chose.
#[derive(Debug)]
pub enum AnyStore {
    DurableObject(DurableObjectStore),
    Redis(RedisStore<SocketConnector>),
    Mongo(MongoStore<WorkerSocket>),
    /// Redis or MongoDB through the `StoreGateway` objects' pooled connections.
    Gateway(GatewayStore),
}

thread_local! {
    /// Milliseconds spent waiting on the store in the current request, for
    /// the `Server-Timing` header (the worker's clock advances only across I/O).
    static STORE_MS: Cell<f64> = const { Cell::new(0.0) };
}

impl FeatureStore for AnyStore {
    fn kind(&self) -> &'static str {
        match self {
            Self::DurableObject(s) => s.kind(),
            Self::Redis(s) => s.kind(),
            Self::Mongo(s) => s.kind(),
            Self::Gateway(s) => s.kind(),
        }
    }

    async fn apply(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError> {
        let start = js_sys::Date::now();
        let out = match self {
            Self::DurableObject(s) => s.apply(deltas).await,
            Self::Redis(s) => s.apply(deltas).await,
            Self::Mongo(s) => s.apply(deltas).await,
            Self::Gateway(s) => s.apply(deltas).await,
        };
        STORE_MS.with(|ms| ms.set(ms.get() + js_sys::Date::now() - start));
        out
    }

    async fn add_drift(&self, now: Millis, adds: &[(String, Summary)]) -> Result<(), StoreError> {
        match self {
            Self::Redis(s) => s.add_drift(now, adds).await,
            Self::DurableObject(s) => s.add_drift(now, adds).await,
            Self::Mongo(s) => s.add_drift(now, adds).await,
            Self::Gateway(s) => s.add_drift(now, adds).await,
        }
    }

    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Result<Summary, String>>, StoreError> {
        match self {
            Self::Redis(s) => s.load_drift(features, from, to).await,
            Self::DurableObject(s) => s.load_drift(features, from, to).await,
            Self::Mongo(s) => s.load_drift(features, from, to).await,
            Self::Gateway(s) => s.load_drift(features, from, to).await,
        }
    }

    async fn delete(&self, keys: &[EntityKey]) -> Result<usize, StoreError> {
        match self {
            Self::DurableObject(s) => s.delete(keys).await,
            Self::Redis(s) => s.delete(keys).await,
            Self::Mongo(s) => s.delete(keys).await,
            Self::Gateway(s) => s.delete(keys).await,
        }
    }

    async fn load(&self, reads: &[EntityRead]) -> Result<Vec<FeatureDoc>, StoreError> {
        let start = js_sys::Date::now();
        let out = match self {
            Self::DurableObject(s) => s.load(reads).await,
            Self::Redis(s) => s.load(reads).await,
            Self::Mongo(s) => s.load(reads).await,
            Self::Gateway(s) => s.load(reads).await,
        };
        STORE_MS.with(|ms| ms.set(ms.get() + js_sys::Date::now() - start));
        out
    }
}

/// The `[[ratelimits]]` bindings; a missing one is a limit that is off.
#[derive(Debug)]
pub struct BindingLimits {
    client: Option<RateLimiter>,
    site: Option<RateLimiter>,
}

/// Binding names in `wrangler.toml`.
pub const CLIENT_RATE_LIMIT: &str = "FRESHET_CLIENT_RATE_LIMIT";
pub const SITE_RATE_LIMIT: &str = "FRESHET_SITE_RATE_LIMIT";

impl BindingLimits {
    fn from_env(env: &Env) -> Self {
        let limits = Self {
            client: rate_limiter(env, CLIENT_RATE_LIMIT),
            site: rate_limiter(env, SITE_RATE_LIMIT),
        };
        console_log!(
            "rate limits: per client {}, per site {}",
            if limits.client.is_some() { "on" } else { "off" },
            if limits.site.is_some() { "on" } else { "off" },
        );
        limits
    }
}

/// The binding `name`, if it has a `limit` method. Not `Env::rate_limiter`:
/// that checks the class name is `Ratelimit`, which `wrangler dev`'s
/// simulation of the binding does not have.
fn rate_limiter(env: &Env, name: &str) -> Option<RateLimiter> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    let limit = js_sys::Reflect::get(&value, &JsValue::from_str("limit")).ok()?;
    limit.is_function().then(|| value.unchecked_into())
}

impl RateLimit for BindingLimits {
    async fn admit(&self, scope: Scope, key: &str) -> bool {
        let limiter = match scope {
            Scope::Client => &self.client,
            Scope::Site => &self.site,
        };
        let Some(limiter) = limiter else { return true };
        match limiter.limit(key.to_owned()).await {
            Ok(outcome) => outcome.success,
            Err(e) => {
                // Fail open: the limit protects the store, it must not drop events.
                console_error!("rate limit ({scope}) unavailable, admitting: {e}");
                true
            }
        }
    }
}

/// The edge as the worker runs it.
type WorkerEdge = Edge<AnyStore, BindingLimits, R2Bucket, WorkerQueue, DurableRegistry>;

thread_local! {
    /// Built at the first request of the isolate; a worker isolate runs one
    /// thread, and its bindings do not change while it lives.
    static EDGE: RefCell<Option<Rc<WorkerEdge>>> = const { RefCell::new(None) };
}

fn edge(env: &Env) -> Result<Rc<WorkerEdge>, EdgeError> {
    if let Some(edge) = EDGE.with(|e| e.borrow().clone()) {
        return Ok(edge);
    }
    let config = config(env)?.clone();
    // Each secret's values by name, never a value: during a rotation the
    // operator sees the new beside the old.
    for (var, secrets) in [
        (READ_TOKEN_VAR, &config.read_tokens),
        (ADMIN_TOKEN_VAR, &config.admin_tokens),
        (IDENTITY_SECRET_VAR, &config.identity_secrets),
    ] {
        if !secrets.is_empty() {
            console_log!("{var}: {} value(s): {}", secrets.len(), secrets.names());
        }
    }
    let spec = worker_spec(env)?;
    // Redis and MongoDB: pooled connections in the gateway objects when they
    // are bound (edge/README.md, "Store connections"); else one per request.
    let gateway = match config.store_gateways {
        0 => None,
        _ => env.durable_object(gateway::BINDING).ok(),
    };
    let store = match (&config.store, gateway) {
        (StoreConfig::DurableObject, _) => {
            let namespace = env.durable_object(BINDING).map_err(|e| {
                EdgeError::Misconfigured(ConfigError::Invalid {
                    var: "FRESHET_STORE",
                    why: format!(
                        "durable-object needs the {BINDING} binding in wrangler.toml ({e})"
                    ),
                })
            })?;
            AnyStore::DurableObject(DurableObjectStore::new(namespace))
        }
        (StoreConfig::Redis(_) | StoreConfig::Mongo(_), Some(namespace)) => AnyStore::Gateway(
            GatewayStore::new(namespace, config.store_gateways, config.store.kind()),
        ),
        (StoreConfig::Redis(url), None) => AnyStore::Redis(RedisStore::new(
            spec,
            url.clone(),
            config.store_timeout_ms,
            SocketConnector,
        )),
        (StoreConfig::Mongo(url), None) => AnyStore::Mongo(MongoStore::new(
            spec,
            url.clone(),
            config.store_timeout_ms,
            WorkerSocket,
        )),
    };
    let log = if config.event_log {
        let bucket = env.bucket(event_log::r2::BINDING).map_err(|e| {
            EdgeError::Misconfigured(ConfigError::Invalid {
                var: EVENT_LOG_VAR,
                why: format!(
                    "on, but the {} R2 binding is missing in wrangler.toml ({e}); bind a bucket or set it to off",
                    event_log::r2::BINDING
                ),
            })
        })?;
        EventLog::On(R2Bucket(bucket))
    } else {
        EventLog::Off
    };
    let queue = match config.pipeline {
        Pipeline::Direct => WorkerQueue(None),
        Pipeline::Queue => WorkerQueue(Some(env.queue(queue::cf::BINDING).map_err(|e| {
            EdgeError::Misconfigured(ConfigError::Invalid {
                var: PIPELINE_VAR,
                why: format!(
                    "queue, but the {} queue binding is missing in wrangler.toml ({e})",
                    queue::cf::BINDING
                ),
            })
        })?)),
    };
    let registry = DurableRegistry(env.durable_object(erasure_object::BINDING).ok());
    console_log!(
        "erasure: {}",
        if registry.0.is_some() {
            "on"
        } else {
            "off (no ERASURES binding)"
        }
    );
    let edge = Rc::new(Edge {
        config,
        spec,
        store,
        limiter: BindingLimits::from_env(env),
        log,
        queue,
        registry,
    });
    EDGE.with(|e| *e.borrow_mut() = Some(edge.clone()));
    Ok(edge)
}

/// Reads the body, stopping as soon as it passes `limit`.
async fn read_body(req: &mut worker::Request, limit: usize) -> worker::Result<Body> {
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = CappedBody::new(limit, declared);
    if body.is_over() {
        return Ok(body.finish());
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all.
        Err(_) => return Ok(Body::Bytes(Vec::new())),
    };
    while let Some(chunk) = stream.next().await {
        if !body.push(&chunk?) {
            break;
        }
    }
    Ok(body.finish())
}

async fn to_request(mut req: worker::Request, limit: usize) -> worker::Result<Request> {
    let method = Method::parse(req.method().as_ref());
    let url = req.url()?;
    let headers = req
        .headers()
        .entries()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect();
    let body = match method {
        Method::Post => read_body(&mut req, limit).await?,
        _ => Body::Bytes(Vec::new()),
    };
    Ok(Request {
        method,
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
        headers,
        body,
    })
}

fn to_worker(res: Response) -> worker::Result<worker::Response> {
    let headers = worker::Headers::new();
    for (name, value) in &res.headers {
        headers.append(name, value)?;
    }
    let out = if res.body.is_empty() {
        worker::Response::empty()?
    } else {
        worker::Response::from_bytes(res.body)?
    };
    Ok(out.with_status(res.status).with_headers(headers))
}

#[event(fetch)]
async fn fetch(req: worker::Request, env: Env, ctx: Context) -> worker::Result<worker::Response> {
    let edge = match edge(&env) {
        Ok(edge) => edge,
        Err(e) => {
            console_error!("{e}");
            return to_worker(e.to_response());
        }
    };
    let now = edge_now(&edge);
    let start = js_sys::Date::now();
    let req = to_request(req, edge.config.limits.max_body_bytes).await?;
    STORE_MS.with(|ms| ms.set(0.0));
    let handled = edge.handle_sampled(&req, now, js_sys::Math::random()).await;
    if let Some(fault) = &handled.fault {
        console_error!("{fault}");
    }
    let store = STORE_MS.with(Cell::get);
    let total = js_sys::Date::now() - start;
    // Where the time went, for operators and the benchmark.
    let response = handled.response.with_header(
        "server-timing",
        format!("store;dur={store:.1}, total;dur={total:.1}"),
    );
    // An erasure finishes once it has settled: its last sweep of the store
    // and the log's rewrite, after the answer.
    if req.path == crate::routes::ERASURES_PATH && response.status == 202 {
        after_settling(&ctx, &edge, Settled::Erasures);
    }
    // A sign-in's moves once more when the store has settled: a write that
    // was still landing on the client then moves too.
    if handled.moves {
        after_settling(&ctx, &edge, Settled::SignInMoves);
    }
    if !handled.drift.is_empty() {
        // Written after the answer is sent: the read never waits for it, and
        // a failed write loses one sample, never the read.
        let drift = handled.drift;
        ctx.wait_until(async move {
            if let Err(e) = edge.store.add_drift(now, &drift).await {
                console_error!("drift sample not kept: {e}");
            }
        });
    }
    to_worker(response)
}

/// The edge's clock: the platform's, moved by the configured offset.
fn edge_now(edge: &WorkerEdge) -> i64 {
    Date::now().as_millis() as i64 + edge.config.clock_offset_ms
}

/// A job that runs once the store has settled after a request.
#[derive(Clone, Copy)]
enum Settled {
    /// An erasure's last sweep and its log's rewrite.
    Erasures,
    /// The sign-in moves due.
    SignInMoves,
}

/// Runs `job` in the request's `wait_until` once the store has settled
/// (`Edge::settle_ms`); the cron runs it too, should this isolate go away
/// first.
fn after_settling(ctx: &Context, edge: &Rc<WorkerEdge>, job: Settled) {
    let edge = Rc::clone(edge);
    let wait = u64::try_from(edge.settle_ms()).unwrap_or(0);
    ctx.wait_until(async move {
        worker::Delay::from(std::time::Duration::from_millis(wait + 200)).await;
        let now = edge_now(&edge);
        let (what, done) = match job {
            Settled::Erasures => ("erasure", edge.advance_erasures(now).await),
            Settled::SignInMoves => ("sign-in moves", edge.advance_links(now).await),
        };
        if let Err(e) = done {
            console_error!("{what}: {e}; the cron tries again");
        }
    });
}

/// The cron (`[triggers]` in wrangler.toml): finishes the erasures that
/// have settled, should the `wait_until` after their `POST` not have, and
/// the sign-in moves due.
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let edge = match edge(&env) {
        Ok(edge) => edge,
        Err(e) => {
            console_error!("{e}");
            return;
        }
    };
    let now = edge_now(&edge);
    match edge.advance_erasures(now).await {
        Ok(0) => {}
        Ok(n) => console_log!("erasure: {n} finished"),
        Err(e) => console_error!("erasure: {e}"),
    }
    match edge.advance_links(now).await {
        Ok(0) => {}
        Ok(n) => console_log!("sign-in: {n} clients moved"),
        Err(e) => console_error!("sign-in moves: {e}"),
    }
}

/// The queues' consumer (`[[queues.consumers]]` in wrangler.toml). The
/// ingest queue's messages are applied and acknowledged one by one, so one
/// that fails is delivered again alone; one that fails `max_retries` times
/// goes to the dead-letter queue, whose messages are kept as dead letters.
#[event(queue)]
async fn consume(batch: MessageBatch<()>, env: Env, _ctx: Context) -> worker::Result<()> {
    let edge = match edge(&env) {
        Ok(edge) => edge,
        Err(e) => {
            console_error!("{e}");
            batch.retry_all();
            return Ok(());
        }
    };
    let dead = batch.queue() == queue::cf::DEAD_QUEUE;
    let now = edge_now(&edge);
    // An outage of the store or the log is waited out here, a message at a
    // time, for up to `OUTAGE_WAIT_MS` in all: each delivery the platform
    // makes counts towards `max_retries`, so retrying every message at once
    // would send a whole backlog to the dead letters in a short outage (seen
    // under load: 279 of 2,000). Past that bound, the rest are retried
    // untried, each costing one delivery.
    let messages: Vec<_> = batch.raw_iter().collect();
    let bodies: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| js_sys::Uint8Array::new(&m.body()).to_vec())
        .collect();
    // The whole delivery in one store apply first; if that fails, message
    // by message, so only the message at fault is retried.
    if !dead && bodies.len() > 1 {
        match edge.consume_delivery(&bodies, now).await {
            Ok(_) => {
                batch.ack_all();
                return Ok(());
            }
            Err(e) => console_error!(
                "queue delivery of {}: {e}; message by message",
                bodies.len()
            ),
        }
    }
    let (mut waited, mut out) = (0, false);
    for (message, body) in messages.iter().zip(bodies) {
        if out {
            message.retry();
            continue;
        }
        let mut pause = 250;
        loop {
            let done = if dead {
                edge.keep_dead_letter(&message.id(), body.clone(), now)
                    .await
            } else {
                edge.consume(&body, now).await.map(|_| ())
            };
            match done {
                Ok(()) => message.ack(),
                Err(e) if queue::is_outage(&e) && waited < queue::OUTAGE_WAIT_MS => {
                    console_error!("queue message {}: {e}; again in {pause} ms", message.id());
                    worker::Delay::from(std::time::Duration::from_millis(pause)).await;
                    waited += pause;
                    pause = (pause * 2).min(4_000);
                    continue;
                }
                Err(e) => {
                    console_error!("queue message {}: {e}", message.id());
                    out = queue::is_outage(&e);
                    message.retry();
                }
            }
            break;
        }
    }
    Ok(())
}
