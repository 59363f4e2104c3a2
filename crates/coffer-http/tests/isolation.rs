//! Tenant isolation, generated from the API's own OpenAPI document: every operation that names
//! an owner, wallet, transaction, hold, incoming credit or key is tried with a sibling
//! merchant's key and with a sub-merchant's key of another branch, against the other branch's
//! objects. Every try must be refused as "not found" and change nothing: every balance, hold,
//! incoming credit, key and owner is the same afterwards, and `verify` is clean.
//!
//! An operation added to the API without a row here fails the test until it is classified.

mod support;

use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::{settled, Server};

fn kind(v: &Value) -> &str {
    v["error"]["type"].as_str().unwrap_or("<no error>")
}

/// The ledger the tries run against: P { A { A1 }, B { B1 } }.
struct World {
    s: Server,
    /// Keys that must not reach B's branch: A's and A1's (both READ_WRITE).
    outsiders: Vec<(&'static str, String)>,
    platform_key: String,
    b: OwnerId,
    b_wallet: AccountId,
    b_eur: AccountId,
    b_sub_wallet: AccountId,
    a_wallet: AccountId,
    b_key_id: String,
    b_key: String,
    /// A transfer inside B's branch.
    b_entry: u64,
    /// A transfer from A's wallet to B's, made by the platform: A sees it only in part.
    cross_entry: u64,
    b_hold: String,
    a_hold: String,
    b_incoming: String,
    /// An alert on B's wallet, set by B.
    b_alert: String,
    /// A webhook endpoint of B's, made by B.
    b_webhook: String,
}

async fn wallet(s: &Server, owner: OwnerId, currency: &str) -> AccountId {
    let c = Command::OpenWallet {
        owner,
        wallet_type: WalletType::Operating,
        currency: currency.parse().unwrap(),
        overdraft_limit: 0,
        min_balance: 0,
    };
    match s.store.execute(c).await.unwrap().outcome {
        Outcome::Account(a) => a.id,
        o => panic!("{o:?}"),
    }
}

async fn move_money(s: &Server, key: &str, path: &str, idem: &str, body: Value) -> Value {
    let (st, v) = s.post(path, key, Some(idem), body).await;
    assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
    v
}

async fn world() -> World {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let (a, b) = (s.merchant(p, "A").await, s.merchant(p, "B").await);
    let (a1, b1) = (s.merchant(a, "A1").await, s.merchant(b, "B1").await);
    let pk = s.key(p, KeyScope::ReadWrite).await;
    let (a_wallet, b_wallet) = (wallet(&s, a, "USD").await, wallet(&s, b, "USD").await);
    let b_eur = wallet(&s, b, "EUR").await;
    let b_sub_wallet = wallet(&s, b1, "USD").await;
    let a1_wallet = wallet(&s, a1, "USD").await;
    for (w, k) in [(a_wallet, "d-a"), (b_wallet, "d-b"), (a1_wallet, "d-a1"), (b_eur, "d-be")] {
        move_money(&s, &pk, "/deposits", k, json!({"wallet": w.to_string(), "amount": "1000"})).await;
    }
    let b_key = s.key(b, KeyScope::ReadWrite).await;
    let b_key_id = b_key.split('.').next().unwrap().to_string();
    let t = json!({"from": b_wallet.to_string(), "to": b_sub_wallet.to_string(), "amount": "10"});
    let b_entry = move_money(&s, &b_key, "/transfers", "t-b", t).await["transaction"]["seq"].as_u64().unwrap();
    let t = json!({"from": a_wallet.to_string(), "to": b_wallet.to_string(), "amount": "50"});
    let cross_entry = move_money(&s, &pk, "/transfers", "t-x", t).await["transaction"]["seq"].as_u64().unwrap();
    let h = json!({"wallet": b_wallet.to_string(), "amount": "5"});
    let b_hold = move_money(&s, &b_key, "/holds", "h-b", h).await["hold"]["id"].as_str().unwrap().to_string();
    let h = json!({"wallet": a_wallet.to_string(), "amount": "5"});
    let a_hold = move_money(&s, &pk, "/holds", "h-a", h).await["hold"]["id"].as_str().unwrap().to_string();
    let i = json!({"wallet": b_wallet.to_string(), "amount": "7"});
    let b_incoming =
        move_money(&s, &b_key, "/incoming", "i-b", i).await["incoming"]["id"].as_str().unwrap().to_string();
    let alert = json!({"wallet": b_wallet.to_string(), "field": "available", "direction": "below", "threshold": "100"});
    let (st, v) = s.post("/alerts", &b_key, None, alert).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let b_alert = v["id"].as_str().unwrap().to_string();
    let (st, v) = s.post("/webhook-endpoints", &b_key, None, json!({"url": "https://example.com/hook"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let b_webhook = v["id"].as_str().unwrap().to_string();
    let outsiders = vec![("A", s.key(a, KeyScope::ReadWrite).await), ("A1", s.key(a1, KeyScope::ReadWrite).await)];
    World {
        s,
        outsiders,
        platform_key: pk,
        b,
        b_wallet,
        b_eur,
        b_sub_wallet,
        a_wallet,
        b_key_id,
        b_key,
        b_entry,
        cross_entry,
        b_hold,
        a_hold,
        b_incoming,
        b_alert,
        b_webhook,
    }
}

/// How an operation is tried against B's branch.
enum Try {
    /// No owner, wallet, entry, hold, incoming or key id in it: nothing to try.
    NoId,
    /// (method, path, body) requests that must each be refused as not found.
    Requests(Vec<(&'static str, String, Option<Value>)>),
}

fn tries(w: &World, method: &str, path: &str) -> Try {
    let (b, bw, bs, aw) = (w.b.to_string(), w.b_wallet.to_string(), w.b_sub_wallet.to_string(), w.a_wallet.to_string());
    let amount = |wallet: &str| json!({"wallet": wallet, "amount": "1"});
    let one = |m: &'static str, p: String, body: Option<Value>| Try::Requests(vec![(m, p, body)]);
    let post = |p: String, body: Value| one("POST", p, Some(body));
    match (method, path) {
        // The event feed names no id; what it shows of other branches: `the_feed_shows_only_the_reach`.
        // The endpoint list shows only endpoints of owners in reach: `the_feed_shows_only_the_reach`.
        ("get", "/me" | "/signing-key" | "/fx/rates" | "/events" | "/events/stream" | "/webhook-endpoints")
        | ("post", "/fx/rates" | "/fx/rates/import") => Try::NoId,
        ("get", "/owners/{id}" | "/owners/{id}/children" | "/owners/{id}/wallets" | "/owners/{id}/balances")
        | ("get", "/owners/{id}/overview") => one("GET", path.replace("{id}", &b), None),
        ("get", "/owners/{id}/statement") => {
            one("GET", format!("{}?currency=USD&from=2026-01-01&to=2026-01-02", path.replace("{id}", &b)), None)
        }
        ("get", "/wallets/{id}/statement") => {
            one("GET", format!("{}?from=2026-01-01&to=2026-01-02", path.replace("{id}", &bw)), None)
        }
        ("post", "/owners/{id}/children") => post(path.replace("{id}", &b), json!({"name": "intruder"})),
        ("post", "/owners/{id}/status") => post(path.replace("{id}", &b), json!({"status": "SUSPENDED"})),
        ("post", "/wallets") => post(path.into(), json!({"owner": b, "type": "RESERVE", "currency": "USD"})),
        (
            "get",
            "/wallets/{id}"
            | "/wallets/{id}/holds"
            | "/wallets/{id}/incoming"
            | "/wallets/{id}/history"
            | "/wallets/{id}/alerts",
        ) => one("GET", path.replace("{id}", &bw), None),
        ("post", "/wallets/{id}/status") => post(path.replace("{id}", &bw), json!({"status": "FROZEN"})),
        ("post", "/wallets/{id}/limits") => post(path.replace("{id}", &bw), json!({"overdraft_limit": "100000"})),
        ("post", "/deposits" | "/payouts" | "/fees" | "/incoming" | "/holds") => post(path.into(), amount(&bw)),
        ("post", "/transfers") => Try::Requests(vec![
            ("POST", path.into(), Some(json!({"from": bw, "to": aw, "amount": "1"}))),
            ("POST", path.into(), Some(json!({"from": aw, "to": bw, "amount": "1"}))),
        ]),
        ("post", "/transactions") => post(
            path.into(),
            json!({"postings": [
                {"account": bw, "amount": "-1", "currency": "USD"},
                {"account": aw, "amount": "1", "currency": "USD"}]}),
        ),
        ("get", "/transactions") => Try::Requests(vec![
            ("GET", format!("{path}?wallet={bw}"), None),
            ("GET", format!("{path}?wallet={bw}&reference=x"), None),
        ]),
        ("get", "/transactions/{seq}") => one("GET", path.replace("{seq}", &w.b_entry.to_string()), None),
        ("post", "/reversals") => Try::Requests(vec![
            ("POST", path.into(), Some(json!({"transaction": w.b_entry}))),
            // Seen in part (A's line), changed in part outside the reach: not reversible.
            ("POST", path.into(), Some(json!({"transaction": w.cross_entry}))),
        ]),
        ("post", "/fx/conversions") => {
            post(path.into(), json!({"from": bw, "to": w.b_eur.to_string(), "amount": "1", "rate": "1"}))
        }
        ("get", "/holds/{id}") => one("GET", path.replace("{id}", &w.b_hold), None),
        ("post", "/holds/{id}/capture") => Try::Requests(vec![
            ("POST", path.replace("{id}", &w.b_hold), Some(json!({"destination": aw}))),
            // The caller's own hold captured into a wallet it does not reach.
            ("POST", path.replace("{id}", &w.a_hold), Some(json!({"destination": bs}))),
        ]),
        ("post", "/holds/{id}/release") => post(path.replace("{id}", &w.b_hold), json!({})),
        ("post", "/incoming/{id}/settle" | "/incoming/{id}/cancel") => {
            post(path.replace("{id}", &w.b_incoming), json!({}))
        }
        ("post", "/alerts") => {
            post(path.into(), json!({"wallet": bw, "field": "available", "direction": "below", "threshold": "1"}))
        }
        ("delete", "/alerts/{id}") => one("DELETE", path.replace("{id}", &w.b_alert), None),
        ("post", "/webhook-endpoints") => post(path.into(), json!({"url": "https://example.com/x", "owner": b})),
        ("get", "/webhook-endpoints/{id}") => one("GET", path.replace("{id}", &w.b_webhook), None),
        ("delete", "/webhook-endpoints/{id}") => one("DELETE", path.replace("{id}", &w.b_webhook), None),
        (
            "post",
            "/webhook-endpoints/{id}/disable"
            | "/webhook-endpoints/{id}/enable"
            | "/webhook-endpoints/{id}/rotate-secret",
        ) => post(path.replace("{id}", &w.b_webhook), json!({})),
        ("post", "/webhook-endpoints/{id}/redeliver") => {
            post(path.replace("{id}", &w.b_webhook), json!({"from_event": "1.0"}))
        }
        ("post", "/api-keys") => post(path.into(), json!({"owner": b, "scope": "READ_WRITE"})),
        ("post", "/api-keys/{id}/revoke") => one("POST", path.replace("{id}", &w.b_key_id), None),
        ("put", "/api-keys/{id}/public-key") => {
            one("PUT", path.replace("{id}", &w.b_key_id), Some(json!({"public_key": null})))
        }
        ("post", "/transfers/batch") => {
            post(path.into(), json!({"transfers": [{"idempotency_key": "b-1", "from": bw, "to": aw, "amount": "1"}]}))
        }
        _ => panic!("{} {path}: an operation the isolation test does not know; add it to `tries`", method),
    }
}

/// Everything a refused try could have changed, as the platform sees it.
async fn snapshot(w: &World) -> Vec<Value> {
    let s = &w.s;
    let mut out = Vec::new();
    for o in s.store.platforms().await.unwrap() {
        let mut stack = vec![o.id];
        while let Some(id) = stack.pop() {
            out.push(s.get(&format!("/owners/{id}"), &w.platform_key).await.1);
            out.push(s.get(&format!("/owners/{id}/balances"), &w.platform_key).await.1);
            for a in s.store.accounts_of(id).await.unwrap() {
                out.push(s.get(&format!("/wallets/{}/holds", a.id), &w.platform_key).await.1);
                out.push(s.get(&format!("/wallets/{}/incoming", a.id), &w.platform_key).await.1);
                out.push(s.get(&format!("/wallets/{}/alerts", a.id), &w.platform_key).await.1);
            }
            stack.extend(s.store.children(id).await.unwrap().iter().map(|c| c.id));
        }
    }
    out.push(s.get("/transactions?limit=200", &w.platform_key).await.1);
    out.push(s.get("/me", &w.b_key).await.1);
    out
}

#[tokio::test]
async fn no_key_reaches_across_branches() {
    let w = world().await;
    let root = w.s.base.trim_end_matches("/coffer/v1");
    let doc: Value = w.s.http.get(format!("{root}/openapi.json")).send().await.unwrap().json().await.unwrap();
    let before = snapshot(&w).await;
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let path = path.strip_prefix("/coffer/v1").unwrap_or(path);
            let Try::Requests(requests) = tries(&w, method, path) else { continue };
            for (who, key) in &w.outsiders {
                for (m, p, body) in &requests {
                    let idem = format!("iso-{tried}");
                    let headers = [("Idempotency-Key", idem.as_str())];
                    let (st, v, _) = w.s.call(m, p, Some(key), body.clone(), &headers).await;
                    tried += 1;
                    let refused = if p.ends_with("/transfers/batch") {
                        st == StatusCode::OK && v["accepted"] == 0 && kind(&v["results"][0]) == "not_found"
                    } else {
                        st == StatusCode::NOT_FOUND && kind(&v) == "not_found"
                    };
                    assert!(refused, "key of {who}: {m} {p} {body:?} answered {st}: {v}");
                }
            }
        }
    }
    assert!(tried >= 60, "only {tried} tries: the document lost its operations?");
    assert_eq!(snapshot(&w).await, before, "a refused try changed something");
    let report = w.s.store.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}

#[tokio::test]
async fn an_entry_is_seen_only_through_the_lines_in_reach() {
    let w = world().await;
    let a_key = &w.outsiders[0].1;
    let (a, b) = (w.a_wallet.to_string(), w.b_wallet.to_string());
    let mine = |v: &Value| v["lines"].as_array().unwrap().iter().map(|l| l["account"].clone()).collect::<Vec<_>>();
    let (st, e) = w.s.get(&format!("/transactions/{}", w.cross_entry), a_key).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(mine(&e), vec![json!(a), Value::Null], "{e}");
    let other = &e["lines"][1];
    assert_eq!(other, &json!({"currency": "USD", "redacted": true}), "B's line shows nothing of B: {e}");
    assert!(!e.to_string().contains(&b), "B's wallet id leaks: {e}");
    // The same through the wallet's transaction list.
    let (st, list) = w.s.get(&format!("/transactions?wallet={a}"), a_key).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!list.to_string().contains(&b), "B's wallet id leaks through the list: {list}");
    let cross = list["data"].as_array().unwrap().iter().find(|t| t["seq"] == w.cross_entry).unwrap();
    assert_eq!(cross, &e);
    // A deposit answered to a merchant shows its own line, not the platform's system account.
    let (st, d) = w.s.post("/deposits", a_key, Some("own"), json!({"wallet": a, "amount": "1"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let lines = d["transaction"]["lines"].as_array().unwrap();
    assert_eq!(lines.iter().filter(|l| l["redacted"] == true).count(), 1, "{d}");
    // The platform sees every line.
    let (_, e) = w.s.get(&format!("/transactions/{}", w.cross_entry), &w.platform_key).await;
    assert_eq!(mine(&e), vec![json!(a), json!(b)]);
    // A merchant may reverse what lies wholly in its reach, not what touched a system account.
    let (st, r) = w.s.post("/reversals", &w.b_key, Some("r-1"), json!({"transaction": w.b_entry})).await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let (st, r) = w.s.post("/reversals", a_key, Some("r-2"), json!({"transaction": 1})).await;
    assert_eq!((st, kind(&r)), (StatusCode::NOT_FOUND, "not_found"), "{r}");
}

/// The event feed of a key shows only the wallets it reaches: A's and A1's keys never see an
/// event of B's branch (neither its wallets' balance changes nor its holds) nor its webhook
/// endpoints, B's key sees its own, and the platform sees them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_shows_only_the_reach() {
    let w = world().await;
    let (_, v) = w.s.get("/transactions?limit=1", &w.platform_key).await;
    settled(&w.s, &w.platform_key, v["data"][0]["seq"].as_u64().unwrap()).await;
    let feed = |key: String| {
        let s = &w.s;
        async move {
            let (st, v) = s.get("/events?limit=1000", &key).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            assert!(!v["has_more"].as_bool().unwrap());
            v["data"].as_array().unwrap().clone()
        }
    };
    let b_side = [w.b_wallet.to_string(), w.b_eur.to_string(), w.b_sub_wallet.to_string()];
    for (name, key) in &w.outsiders {
        let events = feed(key.clone()).await;
        assert!(!events.is_empty(), "{name} sees its own events");
        for e in &events {
            assert!(!b_side.iter().any(|b| e["wallet"] == b.as_str()), "{name} sees {e}");
            assert!(e["hold"] != w.b_hold.as_str() && e["incoming"] != w.b_incoming.as_str(), "{name} sees {e}");
            assert!(e["owners"].as_array().unwrap().iter().all(|o| o != &w.b.to_string()), "{name} sees {e}");
        }
    }
    for (name, key) in &w.outsiders {
        let (_, list) = w.s.get("/webhook-endpoints", key).await;
        assert!(list["data"].as_array().unwrap().iter().all(|e| e["id"] != w.b_webhook.as_str()), "{name}: {list}");
    }
    let mine = feed(w.b_key.clone()).await;
    assert!(mine.iter().any(|e| e["hold"] == w.b_hold.as_str()));
    assert!(!mine.iter().any(|e| e["wallet"] == w.a_wallet.to_string().as_str()));
    let all = feed(w.platform_key.clone()).await;
    assert!(all.len() > mine.len() && all.iter().any(|e| e["wallet"] == w.a_wallet.to_string().as_str()));
}
