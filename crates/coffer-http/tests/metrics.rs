//! `/metrics` after a workload: the requests made are counted by API, method, route template
//! and status, timed, and the store's commits are measured (its own test binary: the recorder
//! is process-wide).

mod support;

use std::collections::BTreeMap;

use coffer_core::*;
use serde_json::json;
use support::server::Server;

/// The samples of `name`: labels to value.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (head, value) = line.rsplit_once(' ').unwrap();
        let (metric, labels) = head.split_once('{').map_or((head, ""), |(m, l)| (m, l.trim_end_matches('}')));
        if metric != name {
            continue;
        }
        let labels = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").unwrap();
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        out.push((labels, value.parse().unwrap()));
    }
    out
}

fn count(text: &str, route: &str, status: &str) -> f64 {
    samples(text, "coffer_http_requests_total")
        .iter()
        .filter(|(l, _)| l["route"] == route && l["status"] == status && l["api"] == "native")
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_commits_are_measured() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let w = s.wallet(m, WalletType::Operating, "USD").await;
    for _ in 0..7 {
        s.get("/me", &key).await;
    }
    for _ in 0..3 {
        s.get(&format!("/wallets/{}", uuid::Uuid::now_v7()), &key).await;
    }
    for i in 0..2 {
        s.post("/deposits", &key, Some(&format!("d{i}")), json!({"wallet": w, "amount": "1"})).await;
    }
    let root = s.base.trim_end_matches("/coffer/v1");
    let r = s.http.get(format!("{root}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert_eq!(count(&text, "/coffer/v1/me", "200"), 7.0, "{text}");
    assert_eq!(count(&text, "/coffer/v1/wallets/{id}", "404"), 3.0);
    assert_eq!(count(&text, "/coffer/v1/deposits", "201"), 2.0);
    let timed: f64 = samples(&text, "coffer_http_request_duration_seconds_count")
        .iter()
        .filter(|(l, _)| l["route"] == "/coffer/v1/me")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(timed, 7.0);
    // The store measured its commits (the deposits, the wallet, the owners and the key).
    let batches: f64 = samples(&text, "coffer_commit_batch_commands_count").iter().map(|(_, v)| v).sum();
    assert!(batches >= 2.0, "{text}");
    let gauge = |name: &str| samples(&text, name).first().map(|(_, v)| *v);
    if support::wanted() == "postgres" {
        // The connection pool, read at the scrape: 16 + a connection per reader and writer.
        let (max, size, idle) =
            (gauge("coffer_pg_pool_max"), gauge("coffer_pg_pool_connections"), gauge("coffer_pg_pool_idle"));
        assert!(max >= Some(18.0), "{text}");
        assert!(size.unwrap() >= 1.0 && size <= max && idle <= size, "{size:?} {idle:?} of {max:?}");
        assert_eq!(gauge("coffer_pg_pool_waiting"), Some(0.0));
        let waits: f64 = samples(&text, "coffer_pg_pool_wait_seconds_count").iter().map(|(_, v)| v).sum();
        assert!(waits >= 1.0, "{text}");
    } else {
        assert_eq!(gauge("coffer_pg_pool_connections"), None, "no pool on the embedded store");
        assert!(gauge("coffer_checkpoint_lag_entries").is_some(), "{text}");
    }
}
