//! The edge every request passes before and after its handler, in one middleware:
//!
//! - a declared `Content-Length` over the route's limit is answered 413 at once, without
//!   reading the body;
//! - the body is read in full, within the route's size limit and the body deadline (a client
//!   that stops sending is answered 408 and its connection closed); a route that takes more
//!   than [`MAX_BODY`] (batches, rate imports) authenticates its caller first, so that only a
//!   valid key can make a node hold megabytes for it;
//! - refusals made by the framework rather than by a handler (no such route, method not
//!   allowed, a path that does not decode, a body too large or of the wrong type) are answered
//!   in the envelope of the API the path belongs to (native or one of the five dialects);
//! - every 503 carries `Retry-After`;
//! - every answer carries a `Request-Id` header; server errors are logged with it.
//!
//! Header and idle timeouts and the connection limit are the server's (see [`crate::serve`]).

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::{engagelab, native, neox, onerway, payermax, rates, uqpay, AppState, MAX_BODY};

/// The API a path belongs to, whose envelope its refusals are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Native,
    Onerway,
    UqPay,
    EngageLab,
    NeoX,
    PayerMax,
}

impl Api {
    pub fn of(path: &str) -> Api {
        let under = |prefix: &str| path.starts_with(prefix);
        if under(native::PREFIX) {
            Api::Native
        } else if under("/account/v1/") {
            Api::Onerway
        } else if under("/api/") {
            Api::UqPay
        } else if under("/v1/balance") {
            Api::EngageLab
        } else if under("/v2/") {
            Api::NeoX
        } else if under("/aggregate-pay/") {
            Api::PayerMax
        } else {
            Api::Native
        }
    }

    /// The API's name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Api::Native => "native",
            Api::Onerway => "onerway",
            Api::UqPay => "uqpay",
            Api::EngageLab => "engagelab",
            Api::NeoX => "neox",
            Api::PayerMax => "payermax",
        }
    }

    /// A refusal of `status` in this API's envelope.
    pub fn refusal(self, status: StatusCode, message: &str) -> Response {
        let mut resp = match self {
            Api::Native => native_refusal(status, message).into_response(),
            Api::Onerway => onerway::fault(status, message),
            Api::UqPay => uqpay::fault(status, message),
            Api::EngageLab => engagelab::fault(status, message),
            Api::NeoX => neox::fault(status),
            Api::PayerMax => payermax::fault(status),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

fn native_refusal(status: StatusCode, message: &str) -> ApiError {
    let (kind, code) = match status.as_u16() {
        404 => ("not_found", "no_such_route"),
        405 => ("invalid_request_error", "method_not_allowed"),
        408 => ("invalid_request_error", "request_timeout"),
        413 => ("invalid_request_error", "body_too_large"),
        415 => ("invalid_request_error", "unsupported_media_type"),
        400..=499 => ("invalid_request_error", "invalid_request"),
        503 => ("api_error", "unavailable"),
        _ => ("api_error", "internal"),
    };
    ApiError::new(status, kind, code, message)
}

/// The largest body the route at `path` takes (its handlers enforce the same limit).
pub fn body_limit(path: &str) -> usize {
    match path.strip_prefix(native::PREFIX) {
        Some("/transfers/batch") => native::MAX_BATCH_BODY,
        Some("/fx/rates/import") => rates::MAX_IMPORT_BODY,
        _ => MAX_BODY,
    }
}

pub async fn edge(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |m| m.as_str().to_string());
    let id = crate::request_id_of(req.headers());
    let api = Api::of(req.uri().path()).name();
    let (resp, key_id) = crate::KEY_ID
        .scope(std::cell::RefCell::new(None), async {
            let resp = handle(&s, req, next).await;
            (resp, crate::KEY_ID.with(|k| k.borrow_mut().take()))
        })
        .await;
    crate::finish(crate::Served { id, method, route, started, api, key_id }, resp)
}

async fn handle(s: &AppState, req: Request, next: Next) -> Response {
    let api = Api::of(req.uri().path());
    let limit = body_limit(req.uri().path());
    let too_large = || api.refusal(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is larger than {limit} bytes"));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return closing(too_large());
    }
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.is_none_or(|n| n == 0) && !chunked {
        // No body (most reads): nothing to read or wait for.
        let resp = next.run(req).await;
        return in_envelope(api, resp).await;
    }
    let (mut parts, body) = req.into_parts();
    if limit > MAX_BODY && declared.map_or(chunked, |n| n > MAX_BODY as u64) {
        match crate::auth::caller(s, &parts).await {
            Ok(c) => {
                parts.extensions.insert(c);
            }
            Err(e) => return closing(e.into_response()),
        }
    }
    let body = match tokio::time::timeout(s.http.body_timeout, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Body::from(bytes),
        Ok(Err(e)) if is_length_limit(&e) => return closing(too_large()),
        Ok(Err(_)) => return closing(api.refusal(StatusCode::BAD_REQUEST, "the body could not be read")),
        Err(_) => {
            let secs = s.http.body_timeout.as_secs_f64();
            return closing(
                api.refusal(StatusCode::REQUEST_TIMEOUT, &format!("the body did not arrive within {secs} s")),
            );
        }
    };
    let resp = next.run(Request::from_parts(parts, body)).await;
    in_envelope(api, resp).await
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Ask the client to close the connection: what it was sending is no longer read.
fn closing(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A refusal the framework wrote (plain text or empty), rewritten in the API's envelope; any
/// other answer as it is, with `Retry-After` on a 503.
async fn in_envelope(api: Api, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut resp = if json {
        resp
    } else {
        let (parts, body) = resp.into_parts();
        let text = to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let message = if text.trim().is_empty() { default_message(status) } else { text.trim() };
        let mut out = api.refusal(status, message);
        if let Some(allow) = parts.headers.get(header::ALLOW) {
            out.headers_mut().insert(header::ALLOW, allow.clone());
        }
        out
    };
    if status == StatusCode::SERVICE_UNAVAILABLE && !resp.headers().contains_key(header::RETRY_AFTER) {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "no such route",
        405 => "this route does not take that method",
        _ => status.canonical_reason().unwrap_or("refused"),
    }
}

/// Limits of the HTTP server: connections, and how long a client may take to send.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may stay idle between requests.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 8192,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}
