//! Webhook deliveries survive SIGKILL: `coffer serve` processes deliver to a receiver in this
//! test (which answers slowly, so deliveries are in flight) while deposits come in; a node is
//! killed with SIGKILL; after that (a restart on SQLite; the surviving nodes on PostgreSQL) every
//! event of the feed arrives at least once, duplicates carry the same id, and the events' first
//! arrivals are in journal order.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_store::testdb::TestDatabase;
use serde_json::{json, Value};

fn coffer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
}

/// A `coffer serve` on 127.0.0.1:0, and its base URL once it listens.
fn serve(ledger: &[OsString], config: &Path) -> (Child, String) {
    let mut child = coffer()
        .args(ledger)
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("COFFER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining the log so that the process never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}/coffer/v1"))
}

fn admin(ledger: &[OsString], args: &[&str]) -> Value {
    let out = coffer().args(ledger).args(args).env("COFFER_LOG", "error").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A receiver that takes 30 ms per request; the ids it got, in arrival order.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let g = g.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let v: Value = serde_json::from_str(&body).unwrap();
                g.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

struct Api {
    http: reqwest::Client,
    key: String,
}

impl Api {
    async fn call(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(&self.key);
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        if let Some(k) = idem {
            rb = rb.header("Idempotency-Key", k);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
    }
}

/// Every event id of the feed from `cursor` to the journal's end (as settled).
async fn feed(api: &Api, base: &str, mut cursor: String) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (st, v) = api.call(base, "GET", &format!("/events?limit=1000&cursor={cursor}"), None, None).await;
        assert_eq!(st, 200, "{v}");
        out.extend(v["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()));
        cursor = v["next_cursor"].as_str().unwrap().to_string();
        if !v["has_more"].as_bool().unwrap() {
            return out;
        }
    }
}

fn pos(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('.').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Wait for every event of the feed at the receiver, then check order and duplicates.
async fn all_arrive(api: &Api, base: &str, start: String, got: &Arc<Mutex<Vec<String>>>, deposits: usize) {
    let since = Instant::now();
    let expected = loop {
        let expected = feed(api, base, start.clone()).await;
        let have: HashSet<String> = got.lock().unwrap().iter().cloned().collect();
        if expected.len() >= deposits * 2 && expected.iter().all(|e| have.contains(e)) {
            break expected;
        }
        assert!(since.elapsed() < Duration::from_secs(60), "{} of {} events arrived", have.len(), expected.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got = got.lock().unwrap().clone();
    let mut seen = HashSet::new();
    let first: Vec<&String> = got.iter().filter(|id| seen.insert(id.as_str())).collect();
    assert!(first.windows(2).all(|w| pos(w[0]) < pos(w[1])), "first arrivals in journal order");
    assert_eq!(first.len(), expected.len(), "nothing but the feed's events");
    eprintln!("{} events, {} deliveries ({} again after the kill)", expected.len(), got.len(), got.len() - first.len());
}

fn config(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("coffer.toml");
    std::fs::write(&p, "rate_limit = 100000\n[webhooks]\nallow_http = true\nallow_private_webhook_targets = true\n")
        .unwrap();
    p
}

/// Platform, key, and a wallet, through the CLI; the API client.
fn setup(ledger: &[OsString]) -> (Api, String) {
    let p = admin(ledger, &["platform", "create", "--name", "P"]);
    let p = p["id"].as_str().unwrap();
    let key = admin(ledger, &["key", "create", "--owner", p])["key"].as_str().unwrap().to_string();
    let m = admin(ledger, &["merchant", "create", "--parent", p, "--name", "M"]);
    let w = admin(
        ledger,
        &["wallet", "open", "--owner", m["id"].as_str().unwrap(), "--type", "OPERATING", "--currency", "USD"],
    );
    (Api { http: reqwest::Client::new(), key }, w["id"].as_str().unwrap().to_string())
}

async fn deposit(api: &Api, base: &str, wallet: &str, k: String) -> bool {
    let body = json!({"wallet": wallet, "amount": "1"});
    matches!(api.call(base, "POST", "/deposits", Some(body), Some(&k)).await.0, 200 | 201)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_sigkill_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = [OsString::from("--data"), dir.path().join("data").into_os_string()];
    let cfg = config(dir.path());
    let (api, wallet) = setup(&ledger);
    let (url, got) = receiver().await;
    let (mut node, base) = serve(&ledger, &cfg);
    let (st, ep) = api.call(&base, "POST", "/webhook-endpoints", Some(json!({"url": url})), None).await;
    assert_eq!(st, 201, "{ep}");
    let start = ep["cursor"].as_str().unwrap().to_string();
    for i in 0..40 {
        assert!(deposit(&api, &base, &wallet, format!("a{i}")).await);
    }
    // Deliveries are in flight (30 ms each, 80 events): kill mid-way.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!got.lock().unwrap().is_empty(), "some delivered before the kill");
    node.kill().unwrap();
    node.wait().unwrap();
    let (mut node, base) = serve(&ledger, &cfg);
    for i in 0..10 {
        assert!(deposit(&api, &base, &wallet, format!("b{i}")).await);
    }
    all_arrive(&api, &base, start, &got, 50).await;
    node.kill().unwrap();
    node.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_event_in_order_and_take_over_killed_ones() {
    let Some(db) = TestDatabase::create("webhook_nodes").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = [OsString::from("--database"), OsString::from(db.url())];
    let cfg = config(dir.path());
    let (api, wallet) = setup(&ledger);
    let (url, got) = receiver().await;
    let mut nodes: Vec<(Child, String)> = (0..3).map(|_| serve(&ledger, &cfg)).collect();
    let (st, ep) = api.call(&nodes[0].1, "POST", "/webhook-endpoints", Some(json!({"url": url})), None).await;
    assert_eq!(st, 201, "{ep}");
    let start = ep["cursor"].as_str().unwrap().to_string();
    for i in 0..30 {
        assert!(deposit(&api, &nodes[i % 3].1, &wallet, format!("a{i}")).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Kill every node in turn but the last (whichever holds the lease, one of them does).
    for (i, (child, _)) in nodes.iter_mut().take(2).enumerate() {
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!("node {i} killed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let base = nodes[2].1.clone();
    for i in 0..10 {
        assert!(deposit(&api, &base, &wallet, format!("b{i}")).await);
    }
    // A lease of a killed node expires after 30 s: the survivor then takes over.
    all_arrive(&api, &base, start, &got, 40).await;
    nodes[2].0.kill().unwrap();
    nodes[2].0.wait().unwrap();
}
