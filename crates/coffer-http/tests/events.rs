//! The event feed over HTTP, on the real server: a random workload's events come out in journal
//! order, once each, read in small pages; they are exactly what the journal implies (one event
//! per hold/incoming/reversal entry, one balance change per line, each wallet's last change
//! ending at its balance); types filter; a long poll returns when an event arrives; bad
//! parameters are refused. Reach: `tests/isolation.rs`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::{code, settled, Server};

async fn wallet(s: &Server, owner: OwnerId, wallet_type: WalletType) -> AccountId {
    let c = Command::OpenWallet {
        owner,
        wallet_type,
        currency: "USD".parse().unwrap(),
        overdraft_limit: 0,
        min_balance: 0,
    };
    match s.store.execute(c).await.unwrap().outcome {
        Outcome::Account(a) => a.id,
        o => panic!("{o:?}"),
    }
}

/// Every event from the start on, in pages of `limit`; and the cursor at the end.
async fn drain(s: &Server, key: &str, query: &str, limit: usize) -> (Vec<Value>, String) {
    drain_from(s, key, None, query, limit).await
}

/// Every event from `cursor` on, in pages of `limit`; and the cursor at the end.
async fn drain_from(s: &Server, key: &str, cursor: Option<String>, query: &str, limit: usize) -> (Vec<Value>, String) {
    let (mut all, mut cursor) = (Vec::new(), cursor);
    loop {
        let c = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (st, v) = s.get(&format!("/events?limit={limit}{query}{c}"), key).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let page = v["data"].as_array().unwrap();
        assert!(page.len() <= limit);
        all.extend(page.iter().cloned());
        cursor = Some(v["next_cursor"].as_str().unwrap().to_string());
        if !v["has_more"].as_bool().unwrap() {
            return (all, cursor.unwrap());
        }
    }
}

/// An event id as (transaction, index).
fn position(e: &Value) -> (u64, u64) {
    let (t, i) = e["id"].as_str().unwrap().split_once('.').unwrap();
    (t.parse().unwrap(), i.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_is_the_journal_in_order() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let m = s.merchant(p, "M").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let wallets: Vec<AccountId> = {
        let mut v = Vec::new();
        for t in [WalletType::Operating, WalletType::Reserve, WalletType::Prepaid, WalletType::Gift] {
            v.push(wallet(&s, m, t).await);
        }
        v
    };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for (i, w) in wallets.iter().enumerate() {
        let body = json!({"wallet": w.to_string(), "amount": "100.00", "metadata": {"order": format!("d{i}")}});
        assert_eq!(s.post("/deposits", &key, Some(&format!("d{i}")), body).await.0, StatusCode::CREATED);
    }
    let mut holds = 0;
    for i in 0..40 {
        let (a, b) = (wallets[next(4) as usize].to_string(), wallets[next(4) as usize].to_string());
        let amount = format!("{}.{:02}", next(3), next(100));
        let idem = format!("op{i}");
        let (st, v) = match next(4) {
            0 | 1 => s.post("/transfers", &key, Some(&idem), json!({"from": a, "to": b, "amount": amount})).await,
            2 => s.post("/holds", &key, Some(&idem), json!({"wallet": a, "amount": amount})).await,
            _ => s.post("/payouts", &key, Some(&idem), json!({"wallet": a, "amount": amount})).await,
        };
        // Refusals (the same wallet twice, not enough money) are fine: they give no event.
        assert!(st == StatusCode::CREATED || st.is_client_error(), "{v}");
        if st == StatusCode::CREATED && v.get("hold").is_some() {
            holds += 1;
            let id = v["hold"]["id"].as_str().unwrap();
            let (action, body) = match next(2) {
                0 => {
                    let to = wallets.iter().find(|x| x.to_string() != a).unwrap();
                    ("capture", json!({"destination": to.to_string()}))
                }
                _ => ("release", json!({})),
            };
            let (st, v) = s.post(&format!("/holds/{id}/{action}"), &key, Some(&format!("{idem}c")), body).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
    }
    let (_, v) = s.get("/transactions?limit=1", &key).await;
    settled(&s, &key, v["data"][0]["seq"].as_u64().unwrap()).await;
    let (events, _) = drain(&s, &key, "", 7).await;
    // Journal order, each event once.
    let positions: Vec<(u64, u64)> = events.iter().map(position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {positions:?}");
    // What the journal implies: every transaction, its kind's event, then a change per line.
    let mut implied = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, v) = s.get(&format!("/transactions?limit=200{cursor}"), &key).await;
        assert_eq!(st, StatusCode::OK);
        for t in v["data"].as_array().unwrap() {
            implied.push(t.clone());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    implied.reverse();
    let mut expected = Vec::new();
    for t in &implied {
        let seq = t["seq"].as_u64().unwrap();
        let head = match t["kind"].as_str().unwrap() {
            "HOLD_CREATE" => Some("hold.created"),
            "HOLD_CAPTURE" => Some("hold.captured"),
            "HOLD_RELEASE" => Some("hold.released"),
            _ => None,
        };
        let lines = t["lines"].as_array().unwrap();
        let types = head.into_iter().chain(std::iter::repeat_n("balance.changed", lines.len()));
        expected.extend(types.enumerate().map(|(i, ty)| (seq, i as u64, ty.to_string())));
    }
    let got: Vec<(u64, u64, String)> =
        events.iter().map(|e| (position(e).0, position(e).1, e["type"].as_str().unwrap().to_string())).collect();
    assert_eq!(got, expected);
    // Each balance change chains: before = the previous after; the last after = the balance.
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "balance.changed") {
        let w = e["wallet"].as_str().unwrap().to_string();
        if let Some(prev) = last.get(&w) {
            assert_eq!(&e["before"], prev, "{e}");
        }
        last.insert(w, e["after"].clone());
        assert_eq!(e["metadata"], implied.iter().find(|t| t["seq"] == e["transaction"]).unwrap()["metadata"]);
    }
    for w in &wallets {
        let (_, v) = s.get(&format!("/wallets/{w}"), &key).await;
        let after = &last[&w.to_string()];
        for k in ["posted", "held", "available", "incoming"] {
            assert_eq!(after[k], v[k], "{w} {k}");
        }
        let e = events.iter().find(|e| e["wallet"] == w.to_string()).unwrap();
        assert_eq!(e["owners"], json!([m.to_string(), p.to_string()]), "the owner chain up to the platform");
    }
    // Types filter.
    let (only, _) = drain(&s, &key, "&types=hold.created", 1000).await;
    assert_eq!(only.len(), holds);
    assert!(only.iter().all(|e| e["type"] == "hold.created" && e["hold"].is_string() && e["wallet"].is_string()));
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains("balance.changed") && kinds.contains("hold.created"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_returns_when_an_event_arrives() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let w = wallet(&s, s.merchant(p, "M").await, WalletType::Operating).await;
    let (_, end) = drain(&s, &key, "", 100).await;
    // Nothing yet: an empty answer at once without `wait`, with the same cursor; `cursor=end`
    // is that same position.
    let (_, v) = s.get(&format!("/events?cursor={end}"), &key).await;
    assert_eq!((v["data"].as_array().unwrap().len(), v["next_cursor"].as_str().unwrap()), (0, end.as_str()));
    let (_, v) = s.get("/events?cursor=end", &key).await;
    assert_eq!((v["data"].as_array().unwrap().len(), v["next_cursor"].as_str().unwrap()), (0, end.as_str()));
    let writer = {
        let (base, key) = (s.base.clone(), key.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let body = json!({"wallet": w.to_string(), "amount": "5"});
            let r = reqwest::Client::new()
                .post(format!("{base}/deposits"))
                .bearer_auth(key)
                .header("Idempotency-Key", "late")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        })
    };
    let since = Instant::now();
    let (st, v) = s.get(&format!("/events?cursor={end}&wait=10"), &key).await;
    assert_eq!(st, StatusCode::OK);
    assert!(since.elapsed() >= Duration::from_millis(300) && since.elapsed() < Duration::from_secs(8));
    assert!(!v["data"].as_array().unwrap().is_empty(), "{v}");
    writer.await.unwrap();
    // Bad parameters, each named.
    for (q, c) in [
        ("cursor=s1", "invalid_cursor"),
        ("limit=0", "invalid_argument"),
        ("limit=1001", "invalid_argument"),
        ("wait=31", "invalid_argument"),
        ("types=balance.moved", "invalid_argument"),
    ] {
        let (st, v) = s.get(&format!("/events?{q}"), &key).await;
        assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, c), "{q}: {v}");
    }
}

/// A random walk of a wallet's available balance around an alert's threshold: exactly one
/// `alert.triggered` per crossing to the watched side and one `alert.cleared` per crossing
/// back, alternating, none for movements before the alert was set or after it was deleted.
/// The crossings expected are computed from the amounts sent, not from the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_per_crossing() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let w = wallet(&s, s.merchant(p, "M").await, WalletType::Operating).await.to_string();
    let mut balance: i64 = 0; // cents
    let mut op = 0;
    let mut send = |amount: i64| {
        op += 1;
        let (path, body) = if amount >= 0 {
            ("/deposits", json!({"wallet": w, "amount": format!("{}.{:02}", amount / 100, amount % 100)}))
        } else {
            ("/payouts", json!({"wallet": w, "amount": format!("{}.{:02}", -amount / 100, -amount % 100)}))
        };
        (path, body, format!("op{op}"))
    };
    // Before the alert: below the threshold already, and a crossing it must not report.
    for amount in [3_000, 4_000, -3_000] {
        let (path, body, idem) = send(amount);
        assert_eq!(s.post(path, &key, Some(&idem), body).await.0, StatusCode::CREATED);
        balance += amount;
    }
    let alert = json!({"wallet": w, "field": "available", "direction": "below", "threshold": "50.00"});
    let (st, a) = s.post("/alerts", &key, None, alert).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let (_, listed) = s.get(&format!("/wallets/{w}/alerts"), &key).await;
    assert_eq!(listed["data"][0]["id"], a["id"]);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut expected = Vec::new();
    for _ in 0..60 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let amount = (rng % 4_001) as i64 - 2_000; // -20.00 .. +20.00, around 50.00
        if amount == 0 {
            continue;
        }
        let (path, body, idem) = send(amount);
        let (st, v) = s.post(path, &key, Some(&idem), body).await;
        if st != StatusCode::CREATED {
            assert_eq!(v["error"]["code"], "insufficient_funds", "{v}");
            continue;
        }
        let before = balance;
        balance += amount;
        let seq = v["transaction"]["seq"].as_u64().unwrap();
        match (before < 5_000, balance < 5_000) {
            (false, true) => expected.push((seq, "alert.triggered")),
            (true, false) => expected.push((seq, "alert.cleared")),
            _ => {}
        }
    }
    let id = a["id"].as_str().unwrap();
    let (st, deleted, _) = s.call("DELETE", &format!("/alerts/{id}"), Some(&key), None, &[]).await;
    assert_eq!(st, StatusCode::OK, "{deleted}");
    assert!(deleted["deleted_after"].as_u64().unwrap() >= expected.last().map_or(0, |e| e.0));
    // After the deletion: crossings that must not be reported.
    for amount in [-(balance + 10_000).min(balance), 10_000, -10_000] {
        let (path, body, idem) = send(amount);
        let _ = s.post(path, &key, Some(&idem), body).await;
    }
    let (_, v) = s.get("/transactions?limit=1", &key).await;
    settled(&s, &key, v["data"][0]["seq"].as_u64().unwrap()).await;
    let (events, _) = drain(&s, &key, "&types=alert.triggered,alert.cleared", 5).await;
    let got: Vec<(u64, String)> =
        events.iter().map(|e| (e["transaction"].as_u64().unwrap(), e["type"].as_str().unwrap().to_string())).collect();
    let expected: Vec<(u64, String)> = expected.into_iter().map(|(s, t)| (s, t.to_string())).collect();
    assert!(expected.len() >= 4, "the walk crossed the threshold a few times: {expected:?}");
    assert_eq!(got, expected);
    assert!(events.iter().all(|e| e["alert"] == a["id"] && e["wallet"] == w.as_str()));
    let (_, listed) = s.get(&format!("/wallets/{w}/alerts"), &key).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "deleted alerts are not listed");
}

/// Server-sent events from a live stream: frames of (id, event, data).
struct Frames {
    resp: reqwest::Response,
    buf: String,
}

impl Frames {
    async fn open(s: &Server, key: &str, last_id: Option<&str>) -> reqwest::Response {
        let mut rb = s.http.get(format!("{}/events/stream", s.base)).bearer_auth(key);
        if let Some(id) = last_id {
            rb = rb.header("Last-Event-ID", id);
        }
        rb.send().await.unwrap()
    }
    /// The next event frame (comments skipped), within 10 s.
    async fn next(&mut self) -> (String, String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let field =
                    |name: &str| frame.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_string()));
                if let (Some(id), Some(ev), Some(data)) = (field("id:"), field("event:"), field("data:")) {
                    return (id, ev, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk()).await.unwrap().unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk.expect("the stream goes on")).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_events_live_and_resumes_after_the_last_id() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let w = wallet(&s, s.merchant(p, "M").await, WalletType::Operating).await.to_string();
    let deposit = |k: &'static str| {
        let (s, key, w) = (&s, key.clone(), w.clone());
        async move {
            let (st, v) = s.post("/deposits", &key, Some(k), json!({"wallet": w, "amount": "1"})).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
    };
    for k in ["a", "b"] {
        deposit(k).await;
    }
    let resp = Frames::open(&s, &key, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut f = Frames { resp, buf: String::new() };
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(f.next().await);
    }
    assert!(seen.iter().all(|(_, ev, data)| ev == "balance.changed" && data["type"] == "balance.changed"));
    let positions: Vec<(u64, u64)> = seen.iter().map(|(_, _, d)| position(d)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Live: a deposit made now arrives on the open stream.
    deposit("c").await;
    let (_, _, live) = f.next().await;
    assert!(position(&live) > positions[3], "{live}");
    // Reconnecting with the id of the second event resumes with the third.
    let mut again = Frames { resp: Frames::open(&s, &key, Some(&seen[1].0)).await, buf: String::new() };
    assert_eq!(again.next().await.2["id"], seen[2].2["id"]);
    let bad = Frames::open(&s, &key, Some("nope")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Status changes are events in their journal place: between the transactions committed before
/// and after them, shown without waiting for a later transaction, each to whoever reaches its
/// owner or wallet, and filtered by type like the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_are_events_in_their_place() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let (m, n) = (s.merchant(p, "M").await, s.merchant(p, "N").await);
    let sub = s.merchant(m, "S").await;
    let (pk, mk, nk) =
        (s.key(p, KeyScope::ReadWrite).await, s.key(m, KeyScope::ReadWrite).await, s.key(n, KeyScope::ReadOnly).await);
    let w = wallet(&s, m, WalletType::Operating).await;
    let deposit = |idem: &'static str| {
        let body = json!({"wallet": w.to_string(), "amount": "5.00"});
        let (s, pk) = (&s, pk.clone());
        async move {
            let (st, v) = s.post("/deposits", &pk, Some(idem), body).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            v["transaction"]["seq"].as_u64().unwrap()
        }
    };
    let status = |path: String, to: &'static str, key: String| {
        let s = &s;
        async move {
            let (st, v) = s.post(&path, &key, None, json!({"status": to})).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
    };
    let first = deposit("d1").await;
    status(format!("/wallets/{w}/status"), "FROZEN", mk.clone()).await;
    status(format!("/wallets/{w}/status"), "FROZEN", mk.clone()).await; // no change: no event
    status(format!("/wallets/{w}/status"), "ACTIVE", mk.clone()).await;
    let second = deposit("d2").await;
    status(format!("/owners/{sub}/status"), "SUSPENDED", mk.clone()).await;
    // Nothing is committed after the last change: it shows all the same.
    let since = Instant::now();
    let events = loop {
        let (events, _) = drain_from(&s, &mk, Some(format!("e{first}.0")), "", 2).await;
        if events.iter().any(|e| e["type"] == "owner.status_changed") {
            break events;
        }
        assert!(since.elapsed() < Duration::from_secs(5), "the owner's status change never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let got: Vec<(u64, u64, &str)> =
        events.iter().map(|e| (position(e).0, position(e).1, e["type"].as_str().unwrap())).collect();
    let statuses: Vec<u64> = got.iter().filter(|g| g.2.ends_with("status_changed")).map(|g| g.0).collect();
    assert_eq!(
        got.iter().map(|g| g.2).collect::<Vec<_>>(),
        [
            "balance.changed",
            "wallet.status_changed",
            "wallet.status_changed",
            "balance.changed",
            "owner.status_changed"
        ]
    );
    assert!(
        first < statuses[0] && statuses[0] < statuses[1] && statuses[1] < second && second < statuses[2],
        "{got:?}"
    );
    assert!(got.iter().filter(|g| g.2.ends_with("status_changed")).all(|g| g.1 == 0));
    let frozen = &events[1];
    assert_eq!(
        frozen["status"],
        json!({"subject": "wallet", "id": w.to_string(), "from": "ACTIVE", "to": "FROZEN", "reason": null})
    );
    assert_eq!(frozen["wallet"], json!(w.to_string()));
    assert_eq!(frozen["transaction"], Value::Null);
    assert_eq!(frozen["owners"], json!([m.to_string(), p.to_string()]));
    let suspended = &events[4];
    assert_eq!(suspended["status"]["subject"], "owner");
    assert_eq!(suspended["status"]["to"], "SUSPENDED");
    assert_eq!(suspended["owners"], json!([sub.to_string(), m.to_string(), p.to_string()]));
    // The platform sees them too; a sibling merchant sees none; types filter.
    let (all, _) = drain_from(&s, &pk, Some(format!("e{first}.0")), "", 100).await;
    let changes =
        |v: &[Value]| v.iter().filter(|e| e["status"].is_object()).map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(changes(&all), changes(&events));
    let (sibling, _) = drain(&s, &nk, "", 100).await;
    assert!(sibling.is_empty(), "{sibling:?}");
    let (only, _) = drain(&s, &mk, "&types=wallet.status_changed", 100).await;
    assert_eq!(
        only.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
        [events[1]["id"].clone(), events[2]["id"].clone()]
    );
    // A cursor just after a status change resumes behind it.
    let after = format!("e{}.1", statuses[0]);
    let (rest, _) = drain_from(&s, &mk, Some(after), "", 100).await;
    assert_eq!(rest.first().map(|e| e["id"].clone()), Some(events[2]["id"].clone()));
}
