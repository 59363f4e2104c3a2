//! Webhook deliveries against a real receiver (an HTTP server in the test): every event of a
//! workload arrives, in journal order, each signature verifies, and the set equals the feed's;
//! a receiver that fails gets the same event again after a backoff, then everything; rotation
//! signs with both secrets during the overlap; redelivery sends again; a merchant's endpoint gets
//! only its reach; bad URLs are refused.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use coffer_core::*;
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::{code, Server};

/// What the receiver got: (Coffer-Signature, body) per request, and how many requests to fail.
#[derive(Default)]
struct Inbox {
    got: Vec<(String, String, Instant)>,
    fail_next: usize,
}

/// A receiver on 127.0.0.1:0; its URL.
async fn receiver(inbox: Arc<Mutex<Inbox>>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let inbox = inbox.clone();
            async move {
                let mut i = inbox.lock();
                let sig = headers.get("coffer-signature").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                i.got.push((sig, body, Instant::now()));
                if i.fail_next > 0 {
                    i.fail_next -= 1;
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "not now");
                }
                (axum::http::StatusCode::OK, "ok")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

/// A server that accepts http:// and local targets, as tests need.
async fn server() -> Server {
    let policy = coffer_app::webhooks::Policy { allow_http: true, allow_private_targets: true, ..Default::default() };
    Server::with_limits(coffer_http::Limits { webhooks: policy, ..Default::default() }).await
}

/// Every `v1=` in the header that is HMAC-SHA256(secret, "<t>.<body>").
fn verifies(header: &str, body: &str, secret: &str) -> bool {
    let t = header.split(',').find_map(|p| p.strip_prefix("t=")).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let want = hex::encode(hmac::sign(&key, format!("{t}.{body}").as_bytes()).as_ref());
    header.split(',').filter_map(|p| p.strip_prefix("v1=")).any(|v| v == want)
}

/// Wait until `done` holds of the inbox (15 s at most).
async fn until(inbox: &Arc<Mutex<Inbox>>, what: &str, done: impl Fn(&Inbox) -> bool) {
    let since = Instant::now();
    while !done(&inbox.lock()) {
        assert!(since.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Event ids of the inbox, first arrival of each, in arrival order.
fn ids(i: &Inbox) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    i.got
        .iter()
        .map(|(_, b, _)| serde_json::from_str::<Value>(b).unwrap()["id"].as_str().unwrap().to_string())
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

fn pos(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('.').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_in_order_and_failures_are_retried() {
    let s = server().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let (a, b) = (s.wallet(m, WalletType::Operating, "USD").await, s.wallet(m, WalletType::Reserve, "USD").await);
    let inbox = Arc::new(Mutex::new(Inbox { fail_next: 2, ..Default::default() }));
    let url = receiver(inbox.clone()).await;
    let (st, ep) = s.post("/webhook-endpoints", &key, None, json!({"url": url})).await;
    assert_eq!(st, StatusCode::CREATED, "{ep}");
    let secret = ep["secret"].as_str().unwrap().to_string();
    let id = ep["id"].as_str().unwrap().to_string();
    let start = ep["cursor"].as_str().unwrap().to_string();
    let (_, again) = s.get(&format!("/webhook-endpoints/{id}"), &key).await;
    assert!(again.get("secret").is_none(), "the secret is shown once");
    for i in 0..12 {
        let (path, body) = match i % 3 {
            0 => ("/deposits", json!({"wallet": a, "amount": "10"})),
            1 => ("/transfers", json!({"from": a, "to": b, "amount": "3"})),
            _ => ("/holds", json!({"wallet": b, "amount": "1"})),
        };
        let (st, v) = s.post(path, &key, Some(&format!("w{i}")), body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    // What the feed holds from the endpoint's start.
    let (_, last) = s.get("/transactions?limit=1", &key).await;
    let last = last["data"][0]["seq"].as_u64().unwrap();
    let mut expected = Vec::new();
    let mut cursor = start;
    loop {
        let (_, v) = s.get(&format!("/events?limit=1000&cursor={cursor}"), &key).await;
        expected.extend(v["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()));
        cursor = v["next_cursor"].as_str().unwrap().to_string();
        if pos(&cursor[1..]).0 > last && !v["has_more"].as_bool().unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(expected.len(), 4 * 2 + 4 * 2 + 4 * 2, "two lines per movement, plus hold.created: {expected:?}");
    until(&inbox, "every event", |i| ids(i).len() >= expected.len()).await;
    {
        let i = inbox.lock();
        assert_eq!(ids(&i), expected, "each event, in journal order");
        for (sig, body, _) in &i.got {
            assert!(verifies(sig, body, &secret), "signature of {body}");
        }
        // The first event failed twice: sent three times, one then two seconds apart.
        let first: Vec<Instant> =
            i.got.iter().filter(|(_, b, _)| b.contains(&format!("\"id\":\"{}\"", expected[0]))).map(|x| x.2).collect();
        assert_eq!(first.len(), 3);
        assert!(
            first[1] - first[0] >= Duration::from_millis(900) && first[2] - first[1] >= Duration::from_millis(1900)
        );
    }
    // A delivery step writes its state at least every second.
    let mut state = Value::Null;
    for _ in 0..100 {
        state = s.get(&format!("/webhook-endpoints/{id}"), &key).await.1;
        if state["failures"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["failures"], 0, "{state}");
    let statuses: Vec<Value> = state["attempts"].as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
    assert_eq!(&statuses[..3], &[json!(500), json!(500), json!(200)], "{state}");
    assert_eq!(state["attempts"][0]["excerpt"], "not now");

    // Rotation: both secrets sign during the overlap.
    let (st, rotated) = s.post(&format!("/webhook-endpoints/{id}/rotate-secret"), &key, None, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    let fresh = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, secret);
    let n = inbox.lock().got.len();
    let (st, _) = s.post("/deposits", &key, Some("after-rotation"), json!({"wallet": a, "amount": "1"})).await;
    assert_eq!(st, StatusCode::CREATED);
    until(&inbox, "the deposit after rotation", |i| i.got.len() > n).await;
    let (sig, body, _) = inbox.lock().got[n].clone();
    assert!(verifies(&sig, &body, &fresh) && verifies(&sig, &body, &secret), "{sig}");

    // Redelivery from the first event: sent again, in order.
    let n = inbox.lock().got.len();
    let (st, v) =
        s.post(&format!("/webhook-endpoints/{id}/redeliver"), &key, None, json!({"from_event": expected[0]})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    until(&inbox, "the redelivery", |i| i.got.len() >= n + expected.len()).await;
    let again: Vec<String> = inbox.lock().got[n..n + expected.len()]
        .iter()
        .map(|(_, b, _)| serde_json::from_str::<Value>(b).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(again, expected);

    // Disabled: nothing more; deleted: gone from the list.
    s.post(&format!("/webhook-endpoints/{id}/disable"), &key, None, json!({})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let n = inbox.lock().got.len();
    s.post("/deposits", &key, Some("while-disabled"), json!({"wallet": a, "amount": "1"})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(inbox.lock().got.len(), n, "a disabled endpoint gets nothing");
    let (st, _, _) = s.call("DELETE", &format!("/webhook-endpoints/{id}"), Some(&key), None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let (_, list) = s.get("/webhook-endpoints", &key).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchants_endpoint_gets_only_its_reach_and_bad_urls_are_refused() {
    let s = server().await;
    let p = s.platform("P").await;
    let pkey = s.key(p, KeyScope::ReadWrite).await;
    let (ma, mb) = (s.merchant(p, "A").await, s.merchant(p, "B").await);
    let (wa, wb) = (s.wallet(ma, WalletType::Operating, "USD").await, s.wallet(mb, WalletType::Operating, "USD").await);
    let akey = s.key(ma, KeyScope::ReadWrite).await;
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let url = receiver(inbox.clone()).await;
    let (st, ep) = s.post("/webhook-endpoints", &akey, None, json!({"url": url, "types": ["balance.changed"]})).await;
    assert_eq!(st, StatusCode::CREATED, "{ep}");
    for (i, w) in [&wa, &wb, &wa].iter().enumerate() {
        let (st, _) = s.post("/deposits", &pkey, Some(&format!("d{i}")), json!({"wallet": w, "amount": "5"})).await;
        assert_eq!(st, StatusCode::CREATED);
    }
    until(&inbox, "A's two deposits", |i| ids(i).len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let i = inbox.lock();
        assert_eq!(ids(&i).len(), 2, "only A's wallet: {:?}", ids(&i));
        assert!(i.got.iter().all(|(_, b, _)| b.contains(&wa) && !b.contains(&wb)));
    }
    // B's key does not see A's endpoint.
    let bkey = s.key(mb, KeyScope::ReadWrite).await;
    let (st, _) = s.get(&format!("/webhook-endpoints/{}", ep["id"].as_str().unwrap()), &bkey).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The default policy: https only, public targets only.
    let strict = Server::start().await;
    let p = strict.platform("P").await;
    let k = strict.key(p, KeyScope::ReadWrite).await;
    for bad in [
        "http://example.com/h",
        "https://127.0.0.1/h",
        "https://localhost/h",
        "https://[::1]/h",
        "https://u:p@example.com/h",
        "ftp://x",
    ] {
        let (st, v) = strict.post("/webhook-endpoints", &k, None, json!({"url": bad})).await;
        assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_url"), "{bad}: {v}");
    }
    let (st, v) =
        strict.post("/webhook-endpoints", &k, None, json!({"url": "https://example.com/h", "types": ["nope"]})).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_argument"), "{v}");
}

/// An endpoint that keeps failing past the policy's bound is disabled, and that is an event:
/// another endpoint subscribed to it gets `webhook_endpoint.disabled`, and the feed shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_with_an_event() {
    let policy = coffer_app::webhooks::Policy {
        allow_http: true,
        allow_private_targets: true,
        disable_after: Duration::from_secs(1),
    };
    let s = Server::with_limits(coffer_http::Limits { webhooks: policy, ..Default::default() }).await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let w = s.wallet(m, WalletType::Operating, "USD").await;
    let failing = Arc::new(Mutex::new(Inbox { fail_next: usize::MAX, ..Default::default() }));
    let watching = Arc::new(Mutex::new(Inbox::default()));
    let (bad_url, good_url) = (receiver(failing.clone()).await, receiver(watching.clone()).await);
    let (st, bad) = s.post("/webhook-endpoints", &key, None, json!({"url": bad_url})).await;
    assert_eq!(st, StatusCode::CREATED, "{bad}");
    let body = json!({"url": good_url, "types": ["webhook_endpoint.disabled"]});
    let (st, good) = s.post("/webhook-endpoints", &key, None, body).await;
    assert_eq!(st, StatusCode::CREATED, "{good}");
    let (st, v) = s.post("/deposits", &key, Some("d"), json!({"wallet": w, "amount": "5"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    until(&watching, "the disabled event", |i| !i.got.is_empty()).await;
    let bad_id = bad["id"].as_str().unwrap();
    let (sig, body, _) = watching.lock().got[0].clone();
    assert!(verifies(&sig, &body, good["secret"].as_str().unwrap()));
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["type"], "webhook_endpoint.disabled");
    assert_eq!((e["status"]["subject"].as_str(), e["status"]["id"].as_str()), (Some("webhook_endpoint"), Some(bad_id)));
    assert_eq!((e["status"]["from"].as_str(), e["status"]["to"].as_str()), (Some("ENABLED"), Some("DISABLED")));
    assert!(e["status"]["reason"].as_str().unwrap().starts_with("failing since"), "{e}");
    assert!(failing.lock().got.len() >= 2, "tried, backed off, tried again");
    let (_, now) = s.get(&format!("/webhook-endpoints/{bad_id}"), &key).await;
    assert_eq!(now["status"], "DISABLED", "{now}");
    // Once: the disabled endpoint is tried no more.
    let tries = failing.lock().got.len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(failing.lock().got.len(), tries);
    let (_, feed) = s.get("/events?types=webhook_endpoint.disabled", &key).await;
    assert_eq!(feed["data"].as_array().unwrap().len(), 1, "{feed}");
}
