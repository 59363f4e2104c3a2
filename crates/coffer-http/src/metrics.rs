//! `/metrics`: Prometheus text from the process-wide recorder (`metrics-exporter-prometheus`),
//! installed by the first router a process builds. Every layer records through the `metrics`
//! facade; what is recorded and where is listed in README ("Metrics").

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::Method;
use parking_lot::RwLock;

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

pub async fn render(axum::extract::State(s): axum::extract::State<crate::AppState>) -> Response {
    coffer_store::Store::sample_gauges(&*s.store);
    match handle() {
        Some(h) => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "metrics are recorded by another recorder in this process")
            .into_response(),
    }
}

/// The counters and histograms of each (route, API, method, status) met so far: registered once,
/// so a request only bumps them (no label allocation on the hot path). Routes are templates
/// (a bounded set), so the map stays small.
type Handles = HashMap<String, Vec<(&'static str, Method, u16, metrics::Counter, metrics::Histogram)>>;
static HANDLES: OnceLock<RwLock<Handles>> = OnceLock::new();

/// One request: counted by API, method, route template and status, timed by API, method and route.
pub fn request(api: &'static str, method: &Method, route: &str, status: u16, seconds: f64) {
    let handles = HANDLES.get_or_init(Default::default);
    let found = |h: &Handles| {
        h.get(route)?
            .iter()
            .find(|(a, m, s, _, _)| *a == api && m == method && *s == status)
            .map(|(.., c, t)| (c.clone(), t.clone()))
    };
    // The read guard must be gone before the write below (a guard in a match scrutinee lives
    // to the end of the match).
    let known = found(&handles.read());
    let (counter, timer) = match known {
        Some(x) => x,
        None => {
            let labels = [("api", api.to_string()), ("method", method.to_string()), ("route", route.to_string())];
            let mut counted = labels.to_vec();
            counted.push(("status", status.to_string()));
            let c = metrics::counter!("coffer_http_requests_total", &counted);
            let t = metrics::histogram!("coffer_http_request_duration_seconds", &labels);
            let mut w = handles.write();
            w.entry(route.to_string()).or_default().push((api, method.clone(), status, c.clone(), t.clone()));
            (c, t)
        }
    };
    counter.increment(1);
    timer.record(seconds);
}
