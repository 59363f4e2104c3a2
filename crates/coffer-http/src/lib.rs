//! Coffer's HTTP face: the native REST API under [`native::PREFIX`], the five provider dialects
//! at their providers' own paths (`onerway`, `uqpay`, `engagelab`, `neox`, `payermax`), health
//! checks, request ids, limits and graceful shutdown.

pub mod auth;
mod dashboard;
pub mod dialect;
pub mod edge;
pub mod engagelab;
pub mod error;
pub mod metrics;
pub mod native;
pub mod neox;
pub mod onerway;
pub mod payermax;
mod payermax_day_end;
pub mod rates;
pub mod token;
pub mod uqpay;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use coffer_store::Store;

use coffer_app::Directory;
pub use coffer_app::{cpu, reach, render, secrets};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
pub const REQUEST_ID: &str = "request-id";

/// Per-node request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sustained requests per second per API key.
    pub requests_per_second: NonZeroU32,
    /// Requests a key may make at once above the sustained rate.
    pub burst: NonZeroU32,
    pub fx: FxSettings,
    pub http: edge::HttpLimits,
    /// Which webhook targets are accepted.
    pub webhooks: coffer_app::webhooks::Policy,
}

/// How overviews and stored-rate conversions use rates.
#[derive(Debug, Clone, Copy)]
pub struct FxSettings {
    /// The currency cross rates go through (ECB rates are all EUR/x).
    pub pivot: coffer_core::CurrencyCode,
    /// Oldest accepted rate, measured from its `effective_at` to the instant of the overview.
    pub max_rate_age: std::time::Duration,
}

impl Default for FxSettings {
    fn default() -> Self {
        FxSettings {
            pivot: "EUR".parse().expect("EUR is a currency code"),
            // Covers a long weekend of ECB reference rates (published on working days).
            max_rate_age: std::time::Duration::from_secs(4 * 24 * 3600),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: NonZeroU32::new(1000).expect("non-zero"),
            burst: NonZeroU32::new(2000).expect("non-zero"),
            fx: FxSettings::default(),
            http: edge::HttpLimits::default(),
            webhooks: Default::default(),
        }
    }
}

/// What every handler shares, behind one `Arc` (cloned several times per request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    /// The store behind the application layer's exact cache of keys, owners and exponents.
    pub store: Arc<Directory>,
    pub limiter: Arc<governor::DefaultKeyedRateLimiter<String>>,
    pub secrets: Arc<secrets::Secrets>,
    pub fx: FxSettings,
    pub http: edge::HttpLimits,
    pub webhooks: coffer_app::webhooks::Policy,
}

impl AppState {
    /// The conversion policy of this node (pivot currency and staleness limit).
    pub fn fx_policy(&self) -> coffer_core::fx::Policy {
        coffer_core::fx::Policy { pivot: self.fx.pivot, max_age_micros: self.fx.max_rate_age.as_micros() as i64 }
    }

    /// `Some(seconds to wait)` when `key` is over its rate limit.
    pub fn over_limit(&self, key: &str) -> Option<u64> {
        use governor::clock::Clock;
        // Every API checks a caller's key here once it is known: the access log names it.
        note_key(key);
        let not_until = self.limiter.check_key(&key.to_string()).err()?;
        ::metrics::counter!("coffer_rate_limited_total").increment(1);
        let wait = not_until.wait_time_from(self.limiter.clock().now());
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }

    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        let quota = governor::Quota::per_second(limits.requests_per_second).allow_burst(limits.burst);
        AppState(Arc::new(Shared {
            store: Arc::new(Directory::new(store)),
            limiter: Arc::new(governor::RateLimiter::keyed(quota)),
            secrets: Default::default(),
            fx: limits.fx,
            http: limits.http,
            webhooks: limits.webhooks,
        }))
    }

    /// Create (or load) the server's secrets before the first request: the token key and the
    /// response-signing key of every platform.
    pub async fn warm_up(&self) -> Result<(), coffer_store::StoreError> {
        self.secrets.token_key(&*self.store).await?;
        for p in self.store.platforms().await? {
            self.secrets.signing_key(&*self.store, p.id).await?;
        }
        Ok(())
    }
}

pub fn router(store: Arc<dyn Store>, limits: Limits) -> Router {
    router_with(AppState::new(store, limits))
}

fn router_with(state: AppState) -> Router {
    metrics::handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(|| async { axum::response::Html(include_str!("docs.html")) }))
        .route("/docs/rapidoc-min.js", get(rapidoc))
        .merge(dashboard::routes())
        .merge(native::routes())
        .merge(engagelab::routes())
        .merge(uqpay::routes())
        .merge(neox::routes())
        .merge(onerway::routes())
        .merge(payermax::routes())
        .fallback(|uri: axum::http::Uri| async move {
            edge::Api::of(uri.path()).refusal(StatusCode::NOT_FOUND, "no such route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge::edge))
        .with_state(state)
}

/// The OpenAPI 3.1 document, generated from the handlers' annotations and response types.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    native::ApiDoc::openapi()
}

/// The reference page's renderer (RapiDoc, `assets/README.md`), compiled into the binary.
async fn rapidoc() -> Response {
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
    ];
    (headers, include_str!("../assets/rapidoc-min.js")).into_response()
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi_document())
}

/// `{"status":"ready"}`, or 503 `{"status":"unavailable","reason":...}` with `Retry-After`
/// (the store cannot commit: stopped, failed, its disk refusing writes, or on PostgreSQL the
/// database not answering a round trip within the deadline).
async fn ready(State(s): State<AppState>) -> Response {
    match s.store.ready().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(why) => {
            let body = axum::Json(serde_json::json!({ "status": "unavailable", "reason": why }));
            (StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::RETRY_AFTER, "1")], body).into_response()
        }
    }
}

tokio::task_local! {
    /// The id of the API key a request was made with, once authenticated (for the access log).
    pub(crate) static KEY_ID: std::cell::RefCell<Option<String>>;
}

/// Name the request's API key (its id) in the access log line.
pub(crate) fn note_key(id: &str) {
    // Once per request (authentication and the rate limit both see the key).
    let _ = KEY_ID.try_with(|k| {
        let mut k = k.borrow_mut();
        if k.is_none() {
            *k = Some(id.to_string());
        }
    });
}

/// The longest request id kept from a caller.
const MAX_REQUEST_ID: usize = 128;

/// The caller's `X-Request-Id` (or `Request-Id`) when it is 1 to 128 letters, digits and
/// `-_.:`; otherwise a new one (UUID v7).
pub(crate) fn request_id_of(headers: &axum::http::HeaderMap) -> String {
    let given = ["x-request-id", REQUEST_ID].iter().find_map(|h| headers.get(*h)?.to_str().ok());
    let ok = |v: &&str| {
        !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    };
    given.filter(ok).map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// What the access log says of a request.
pub(crate) struct Served {
    pub id: String,
    pub method: axum::http::Method,
    /// The route's template (`/coffer/v1/wallets/{id}`), never the ids in it.
    pub route: String,
    pub started: std::time::Instant,
    /// Which API the path belongs to (native or a dialect).
    pub api: &'static str,
    /// The API key's id (never its secret), when the request was authenticated.
    pub key_id: Option<String>,
}

/// Every response carries a `Request-Id` header (the caller's `X-Request-Id` when valid); each
/// request is logged once at info (method, route, status, latency, request id, the API key's id
/// once authenticated; never a secret),
/// failures at error.
pub(crate) fn finish(r: Served, mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&r.id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let status = resp.status().as_u16();
    let seconds = r.started.elapsed().as_secs_f64();
    metrics::request(r.api, &r.method, &r.route, status, seconds);
    let latency_ms = seconds * 1000.0;
    let (id, method, route, key_id) = (&r.id, &r.method, &r.route, r.key_id.as_deref());
    if status == 503 {
        // The cause is logged where it happened (once per interval); a store that is away
        // answers every request so, and one line per request would flood the log.
        if let Some(times) = coffer_store::logs::due("request answered 503") {
            tracing::warn!(request_id = %id, %method, %route, times, "requests answered 503 unavailable");
        }
    } else if status >= 500 {
        tracing::error!(request_id = %id, %method, %route, status, latency_ms, key_id, "request failed");
    } else {
        tracing::info!(request_id = %id, %method, %route, status, latency_ms, key_id, "request");
    }
    resp
}

/// Serve until `shutdown` resolves, then stop accepting, finish in-flight requests, and return.
/// The caller then shuts the store down (flushing queued commands).
///
/// At most `limits.http.max_connections` connections are open at once (more wait in the
/// listen backlog); a client gets `limits.http.header_timeout` to send a request's headers and
/// as long between requests on a kept-alive connection, then the connection is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let state = AppState::new(store, limits);
    state.warm_up().await.map_err(std::io::Error::other)?;
    // Webhook deliveries run beside the server on every node, until it shuts down.
    let (stop_deliveries, stopped) = tokio::sync::oneshot::channel::<()>();
    let deliveries = tokio::spawn(coffer_app::webhooks::deliver::run(state.store.clone(), limits.webhooks, async {
        let _ = stopped.await;
    }));
    let app = hyper_util::service::TowerToHyperService::new(router_with(state));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.http.header_timeout).keep_alive(true);
    let open = Arc::new(tokio::sync::Semaphore::new(limits.http.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pass, rather than spin.
                    coffer_store::logs::error("accept failed", &e);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), app.clone()));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    let _ = stop_deliveries.send(());
    let _ = deliveries.await;
    Ok(())
}
