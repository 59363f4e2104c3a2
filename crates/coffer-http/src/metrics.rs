//! `/metrics`: Prometheus text from the process-wide recorder (`metrics-exporter-prometheus`),
//! installed by the first router a process builds. Every layer records through the `metrics`
//! facade; what is recorded and where is listed in README ("Metrics").

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds): 100 µs to 10 s.
const SECONDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Size buckets (commands in a batch, entries in a checkpoint).
const SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The recorder's handle, installing it on first use (`None` if another recorder was installed
/// first, as a host program may do: then `/metrics` says so).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let b = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("seconds".into()), SECONDS)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("commands".into()), SIZES)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("entries".into()), SIZES)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("batches".into()), SIZES)
                .ok()?;
            b.install_recorder().ok()
        })
        .as_ref()
}

pub async fn render() -> Response {
    match handle() {
        Some(h) => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "metrics are recorded by another recorder in this process")
            .into_response(),
    }
}

/// One request: counted by API, method, route template and status, timed by API and route.
pub fn request(api: &'static str, method: &str, route: &str, status: u16, seconds: f64) {
    let labels = [("api", api.to_string()), ("method", method.to_string()), ("route", route.to_string())];
    let mut counted = labels.to_vec();
    counted.push(("status", status.to_string()));
    metrics::counter!("coffer_http_requests_total", &counted).increment(1);
    metrics::histogram!("coffer_http_request_duration_seconds", &labels).record(seconds);
}
