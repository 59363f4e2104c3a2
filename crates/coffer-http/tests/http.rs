//! The native API over real HTTP: a server on 127.0.0.1:0 on a fresh store (SQLite, or
//! PostgreSQL with `COFFER_TEST_BACKEND=postgres`).

mod support;

use support::server::{code, Server};

use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn money_moves_through_the_api() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;

    let (st, m) = s.post(&format!("/owners/{p}/children"), &key, None, json!({"name": "Shop"})).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let m = m["id"].as_str().unwrap().to_string();
    let (st, w) = s
        .post(
            "/wallets",
            &key,
            None,
            json!({"owner": m, "type": "OPERATING", "currency": "USD", "min_balance": "10.00"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    let w = w["id"].as_str().unwrap().to_string();
    let (_, w2) = s.post("/wallets", &key, None, json!({"owner": m, "type": "RESERVE", "currency": "USD"})).await;
    let w2 = w2["id"].as_str().unwrap().to_string();

    let dep = json!({"wallet": w, "amount": "250.00"});
    let (st, d) = s.post("/deposits", &key, Some("dep-1"), dep.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    let (st, again, h) = s.call("POST", "/deposits", Some(&key), Some(dep), &[("Idempotency-Key", "dep-1")]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again["transaction"], d["transaction"]);
    let (st, c) = s.post("/deposits", &key, Some("dep-1"), json!({"wallet": w, "amount": "1.00"})).await;
    assert_eq!((st, code(&c)), (StatusCode::CONFLICT, "idempotency_conflict"));

    let (st, e) = s.post("/payouts", &key, Some("p-1"), json!({"wallet": w, "amount": "240.01"})).await;
    assert_eq!((st, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "below_min_balance"), "{e}");
    let (st, _) = s.post("/transfers", &key, Some("t-1"), json!({"from": w, "to": w2, "amount": "50"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, h) = s.post("/holds", &key, Some("h-1"), json!({"wallet": w, "amount": "100", "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()})).await;
    assert_eq!(st, StatusCode::CREATED, "{h}");
    let hold = h["hold"]["id"].as_str().unwrap().to_string();
    let (_, b) = s.get(&format!("/wallets/{w}"), &key).await;
    assert_eq!(
        (b["posted"].as_str(), b["held"].as_str(), b["available"].as_str()),
        (Some("200.00"), Some("100.00"), Some("100.00"))
    );
    let (st, cap) =
        s.post(&format!("/holds/{hold}/capture"), &key, Some("c-1"), json!({"amount": "60", "destination": w2})).await;
    assert_eq!(st, StatusCode::CREATED, "{cap}");
    assert_eq!(cap["hold"]["status"], "CAPTURED");
    let (st, i) = s.post("/incoming", &key, Some("i-1"), json!({"wallet": w, "amount": "5"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let inc = i["incoming"]["id"].as_str().unwrap().to_string();
    let (_, listed) = s.get(&format!("/wallets/{w}/incoming"), &key).await;
    assert_eq!(listed["data"], json!([i["incoming"]]), "the pending credit, as created");
    let (st, _) = s.post(&format!("/incoming/{inc}/settle"), &key, Some("is-1"), json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, listed) = s.get(&format!("/wallets/{w}/incoming"), &key).await;
    assert_eq!(listed["data"], json!([]), "settled: no longer pending");

    let (_, bal) = s.get(&format!("/owners/{m}/balances?currency=USD"), &key).await;
    let op = bal["balances"].as_array().unwrap().iter().find(|x| x["type"] == "OPERATING").unwrap();
    assert_eq!(
        (op["posted"].as_str(), op["held"].as_str(), op["withdrawable"].as_str()),
        (Some("145.00"), Some("0.00"), Some("135.00"))
    );
    let (_, r) = s.get(&format!("/owners/{m}/balances?type=RESERVE"), &key).await;
    assert_eq!(r["balances"][0]["posted"], "110.00");

    let seq = d["transaction"]["seq"].as_u64().unwrap();
    let (st, t) = s.get(&format!("/transactions/{seq}"), &key).await;
    assert_eq!((st, t["kind"].as_str()), (StatusCode::OK, Some("DEPOSIT")));
    let (st, _) = s.post("/reversals", &key, Some("rev-1"), json!({"transaction": seq})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "the deposit was spent: reversing it would overdraw");
    assert!(s.store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn authentication_and_scopes() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let m = s.merchant(p, "M").await;
    let rw = s.key(m, KeyScope::ReadWrite).await;
    let ro = s.key(m, KeyScope::ReadOnly).await;

    let (st, v, h) = s.call("GET", "/me", None, None, &[]).await;
    assert_eq!((st, v["error"]["type"].as_str()), (StatusCode::UNAUTHORIZED, Some("authentication_error")));
    assert!(h.contains_key("request-id"));
    for bad in ["nonsense", "ck_00.00", &format!("{}x", rw), "Basic abc"] {
        let (st, _, _) = s.call("GET", "/me", Some(bad), None, &[]).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{bad}");
    }
    assert_eq!(s.get("/me", &ro).await.0, StatusCode::OK);
    let (st, v) =
        s.post("/wallets", &ro, None, json!({"owner": m.to_string(), "type": "OPERATING", "currency": "USD"})).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "read_only_key"));

    // Revoked keys and keys of suspended owners are refused.
    let (st, k) = s.post("/api-keys", &rw, None, json!({"scope": "READ_ONLY"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let fresh = k["key"].as_str().unwrap().to_string();
    assert_eq!(s.get("/me", &fresh).await.0, StatusCode::OK);
    let (st, _) = s.post(&format!("/api-keys/{}/revoke", k["id"].as_str().unwrap()), &rw, None, json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s.get("/me", &fresh).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    s.store.execute(Command::SetOwnerStatus { owner: m, status: OwnerStatus::Suspended }).await.unwrap();
    assert_eq!(s.get("/me", &rw).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_reach_their_subtree_and_nothing_else() {
    let s = Server::start().await;
    // P1 { M1 { S1 }, M2 },  P2 { N1 }
    let p1 = s.platform("P1").await;
    let m1 = s.merchant(p1, "M1").await;
    let s1 = s.merchant(m1, "S1").await;
    let m2 = s.merchant(p1, "M2").await;
    let p2 = s.platform("P2").await;
    let n1 = s.merchant(p2, "N1").await;
    let owners = [("P1", p1), ("M1", m1), ("S1", s1), ("M2", m2), ("P2", p2), ("N1", n1)];
    let mut wallets = Vec::new();
    let mut keys = Vec::new();
    for (name, o) in owners {
        let c = Command::OpenWallet {
            owner: o,
            wallet_type: WalletType::Operating,
            currency: "USD".parse().unwrap(),
            overdraft_limit: 0,
            min_balance: 0,
        };
        let Outcome::Account(a) = s.store.execute(c).await.unwrap().outcome else { panic!() };
        wallets.push((name, a.id));
        keys.push((name, s.key(o, KeyScope::ReadWrite).await));
    }
    let reaches = |k: &str, w: &str| -> bool {
        matches!(
            (k, w),
            ("P1", "P1" | "M1" | "S1" | "M2")
                | ("M1", "M1" | "S1")
                | ("S1", "S1")
                | ("M2", "M2")
                | ("P2", "P2" | "N1")
                | ("N1", "N1")
        )
    };
    for (kn, key) in &keys {
        for (wn, w) in &wallets {
            let (st, v) = s.get(&format!("/wallets/{w}"), key).await;
            let want = if reaches(kn, wn) { StatusCode::OK } else { StatusCode::NOT_FOUND };
            assert_eq!(st, want, "key of {kn} reading the wallet of {wn}: {v}");
            let owner = owners.iter().find(|(n, _)| n == wn).unwrap().1;
            for path in
                [format!("/owners/{owner}"), format!("/owners/{owner}/balances"), format!("/owners/{owner}/children")]
            {
                assert_eq!(s.get(&path, key).await.0, want, "key of {kn} reading {path} of {wn}");
            }
            // Moving money out of a wallet the key does not reach is "not found" too.
            let (st, _) = s
                .post("/deposits", key, Some(&format!("{kn}-{wn}")), json!({"wallet": w.to_string(), "amount": "1"}))
                .await;
            let want = if reaches(kn, wn) { StatusCode::CREATED } else { StatusCode::NOT_FOUND };
            assert_eq!(st, want, "key of {kn} depositing into {wn}");
        }
    }
    let key = |n: &str| keys.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    // On behalf of a descendant narrows the reach; upwards or sideways is "not found".
    let obo = |k: &str, o: OwnerId, w: AccountId| {
        let (k, s) = (key(k), &s);
        async move {
            s.call("GET", &format!("/wallets/{w}"), Some(&k), None, &[("Coffer-On-Behalf-Of", &o.to_string())]).await.0
        }
    };
    let w = |n: &str| wallets.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(obo("P1", m1, w("S1")).await, StatusCode::OK);
    assert_eq!(obo("P1", m1, w("M2")).await, StatusCode::NOT_FOUND);
    assert_eq!(obo("M1", m2, w("M2")).await, StatusCode::NOT_FOUND);
    assert_eq!(obo("S1", m1, w("S1")).await, StatusCode::NOT_FOUND);
    assert_eq!(obo("P1", n1, w("N1")).await, StatusCode::NOT_FOUND);
    // A transfer to a sibling's wallet is refused as "not found".
    let (st, _) = s
        .post(
            "/transfers",
            &key("M1"),
            Some("x"),
            json!({"from": w("M1").to_string(), "to": w("M2").to_string(), "amount": "1"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_gets_a_precise_error_and_changes_nothing() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let c = Command::OpenWallet {
        owner: m,
        wallet_type: WalletType::Operating,
        currency: "JPY".parse().unwrap(),
        overdraft_limit: 0,
        min_balance: 0,
    };
    let Outcome::Account(a) = s.store.execute(c).await.unwrap().outcome else { panic!() };
    let w = a.id.to_string();
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "an amount with decimals JPY does not have",
            json!({"wallet": w, "amount": "1.5"}),
            StatusCode::BAD_REQUEST,
            "too_many_decimals",
        ),
        ("an amount as a JSON number", json!({"wallet": w, "amount": 100}), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            "an unknown field",
            json!({"wallet": w, "amount": "1", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        ("a missing field", json!({"wallet": w}), StatusCode::BAD_REQUEST, "invalid_json"),
        ("a malformed amount", json!({"wallet": w, "amount": "1e3"}), StatusCode::BAD_REQUEST, "invalid_amount"),
        ("a negative amount", json!({"wallet": w, "amount": "-5"}), StatusCode::BAD_REQUEST, "amount_not_positive"),
        (
            "an unknown currency",
            json!({"wallet": w, "amount": "1", "currency": "ZZZ"}),
            StatusCode::BAD_REQUEST,
            "unknown_currency",
        ),
        (
            "another currency than the wallet's",
            json!({"wallet": w, "amount": "1", "currency": "USD"}),
            StatusCode::BAD_REQUEST,
            "currency_mismatch",
        ),
        ("a wallet id that is not an id", json!({"wallet": "nope", "amount": "1"}), StatusCode::NOT_FOUND, "not_found"),
        (
            "an unknown source",
            json!({"wallet": w, "amount": "1", "source": "FEES"}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
    ];
    for (what, body, status, want) in cases {
        let (st, v) = s.post("/deposits", &key, Some("k"), body).await;
        assert_eq!((st, code(&v)), (status, want), "{what}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    let (st, v) = s.post("/deposits", &key, None, json!({"wallet": w, "amount": "1"})).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "missing_idempotency_key"));
    // Malformed JSON and oversized bodies.
    let url = format!("{}/deposits", s.base);
    let r = s
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "k")
        .body("{\"wallet\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let big = format!("{{\"wallet\":\"{w}\",\"amount\":\"1\",\"metadata\":{{\"x\":\"{}\"}}}}", "a".repeat(100_000));
    let r = s
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "k")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "body_too_large");
    let (st, v, _) = s.call("GET", "/no/such/thing", Some(&key), None, &[]).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "no_such_route"));
    // Nothing changed, and the key "k" was never consumed.
    assert_eq!(s.store.account(a.id).await.unwrap().unwrap().posted, 0);
    let (st, _) = s.post("/deposits", &key, Some("k"), json!({"wallet": w, "amount": "7"})).await;
    assert_eq!(st, StatusCode::CREATED);
}

#[tokio::test]
async fn history_pages_and_past_balances() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let (_, w) =
        s.post("/wallets", &key, None, json!({"owner": m.to_string(), "type": "OPERATING", "currency": "USD"})).await;
    let w = w["id"].as_str().unwrap().to_string();
    let mut snaps = Vec::new();
    for i in 0..15 {
        let (st, _) = if i % 4 == 3 {
            s.post("/fees", &key, Some(&format!("f{i}")), json!({"wallet": w, "amount": "0.50"})).await
        } else {
            s.post("/deposits", &key, Some(&format!("d{i}")), json!({"wallet": w, "amount": format!("{i}.25")})).await
        };
        assert_eq!(st, StatusCode::CREATED);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let (_, b) = s.get(&format!("/wallets/{w}"), &key).await;
        snaps.push((
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            b["posted"].as_str().unwrap().to_string(),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // History, 4 per page, with a write after every page: nothing repeats, nothing is skipped.
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/wallets/{w}/history?limit=4&cursor={c}"),
            None => format!("/wallets/{w}/history?limit=4"),
        };
        let (st, page) = s.get(&q, &key).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        s.post("/deposits", &key, Some(&format!("late{}", seen.len())), json!({"wallet": w, "amount": "1"})).await;
        seen.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 15);
    let seqs: Vec<u64> = seen.iter().map(|h| h["transaction"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[0] > p[1]));

    // Filtered listing.
    let (_, fees) = s.get(&format!("/transactions?wallet={w}&kind=FEE&limit=2"), &key).await;
    assert_eq!(fees["data"].as_array().unwrap().len(), 2);
    assert!(fees["data"].as_array().unwrap().iter().all(|e| e["kind"] == "FEE"));
    let (_, rest) = s
        .get(
            &format!("/transactions?wallet={w}&kind=FEE&limit=2&cursor={}", fees["next_cursor"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1, "3 fees in all");
    assert_eq!(rest["next_cursor"], Value::Null);

    // Balances as of each instant: equal to what was read then, and to the journal's sum up to it.
    for (t, posted) in &snaps {
        let (st, b) = s.get(&format!("/owners/{m}/balances?at={}", t.replace('+', "%2B")), &key).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["balances"][0]["posted"].as_str(), Some(posted.as_str()), "at {t}");
        let upto = b["as_of_transaction"].as_u64().unwrap();
        let cents: i64 = seen
            .iter()
            .filter(|h| h["transaction"].as_u64().unwrap() <= upto)
            .map(|h| coffer_core::money::parse_minor(h["posted"].as_str().unwrap(), 2).unwrap())
            .sum();
        assert_eq!(coffer_core::money::format_minor(cents, 2), *posted, "recomputed from the history, at {t}");
    }
    for bad in ["limit=0", "limit=201", "cursor=xyz", "from=yesterday"] {
        let (st, v) = s.get(&format!("/wallets/{w}/history?{bad}"), &key).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let mkey = s.key(m, KeyScope::ReadOnly).await;
    let (st, v) = s.get("/transactions", &mkey).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_argument"), "a merchant names a wallet");
    let (st, v) = s.get("/transactions?limit=5", &key).await;
    assert_eq!((st, v["data"].as_array().map(|a| a.len())), (StatusCode::OK, Some(5)), "the platform lists all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_8000_transfers_each_accepted_or_refused() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let mut ws = Vec::new();
    for t in ["OPERATING", "RESERVE", "GIFT", "PREPAID"] {
        let (_, w) =
            s.post("/wallets", &key, None, json!({"owner": m.to_string(), "type": t, "currency": "USD"})).await;
        let w = w["id"].as_str().unwrap().to_string();
        s.post("/deposits", &key, Some(&format!("seed-{t}")), json!({"wallet": w, "amount": "1000.00"})).await;
        ws.push(w);
    }
    let n = 8000;
    let transfers: Vec<Value> = (0..n)
        .map(|i| {
            // Every 1000th is refused: an amount with too many decimals, or far too large.
            let amount = match i % 1000 {
                500 => "0.001".to_string(),
                999 => "99999.00".to_string(),
                _ => "0.01".to_string(),
            };
            json!({"idempotency_key": format!("b{i}"), "from": ws[i % 4], "to": ws[(i + 1) % 4], "amount": amount})
        })
        .collect();
    let (st, r) = s.post("/transfers/batch", &key, None, json!({"transfers": transfers})).await;
    assert_eq!(st, StatusCode::OK, "{}", r.to_string().chars().take(300).collect::<String>());
    assert_eq!((r["accepted"].as_u64(), r["refused"].as_u64()), (Some(7984), Some(16)));
    let results = r["results"].as_array().unwrap();
    assert_eq!(results[500]["error"]["code"], "too_many_decimals");
    assert_eq!(results[999]["error"]["code"], "insufficient_funds");
    assert_eq!(results[1]["index"], 1);
    // The same batch again replays every accepted transfer and changes nothing.
    let before = s.get(&format!("/wallets/{}", ws[0]), &key).await.1["posted"].clone();
    let transfers: Vec<Value> = (0..3)
        .map(
            |i| json!({"idempotency_key": format!("b{i}"), "from": ws[i % 4], "to": ws[(i + 1) % 4], "amount": "0.01"}),
        )
        .collect();
    let (_, again) = s.post("/transfers/batch", &key, None, json!({"transfers": transfers})).await;
    assert!(again["results"].as_array().unwrap().iter().all(|x| x["result"]["replayed"] == true));
    assert_eq!(s.get(&format!("/wallets/{}", ws[0]), &key).await.1["posted"], before);
    let too_many: Vec<Value> = (0..8193)
        .map(|i| json!({"idempotency_key": format!("x{i}"), "from": ws[0], "to": ws[1], "amount": "0.01"}))
        .collect();
    let (st, v) = s.post("/transfers/batch", &key, None, json!({"transfers": too_many})).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_argument"));
    assert!(s.store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn each_key_is_rate_limited() {
    let limits = coffer_http::Limits {
        requests_per_second: std::num::NonZeroU32::new(2).unwrap(),
        burst: std::num::NonZeroU32::new(3).unwrap(),
        ..Default::default()
    };
    let s = Server::with_limits(limits).await;
    let p = s.platform("P").await;
    let a = s.key(p, KeyScope::ReadOnly).await;
    let b = s.key(p, KeyScope::ReadOnly).await;
    for _ in 0..3 {
        assert_eq!(s.get("/me", &a).await.0, StatusCode::OK);
    }
    let (st, v, h) = s.call("GET", "/me", Some(&a), None, &[]).await;
    assert_eq!((st, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    let retry: u64 = h.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(s.get("/me", &b).await.0, StatusCode::OK, "another key has its own budget");
}

#[tokio::test]
async fn postings_fx_and_limits() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let mkey = s.key(m, KeyScope::ReadWrite).await;
    let open = |t: &'static str, c: &'static str| {
        let (s, key) = (&s, key.clone());
        async move {
            s.post("/wallets", &key, None, json!({"owner": m.to_string(), "type": t, "currency": c})).await.1["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let usd = open("OPERATING", "USD").await;
    let eur = open("OPERATING", "EUR").await;
    let jpy = open("RESERVE", "JPY").await;
    let tx = json!({"postings": [
        {"account": "SYSTEM_OPENING:USD", "currency": "USD", "amount": "-100.00"},
        {"account": usd, "currency": "USD", "amount": "100.00"}]});
    let (st, v) = s.post("/transactions", &mkey, Some("o1"), tx.clone()).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "system accounts are the platform's: {v}");
    let (st, v) = s.post("/transactions", &key, Some("o1"), tx).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s.post("/transactions", &key, Some("o2"), json!({"postings": [
        {"account": usd, "currency": "USD", "amount": "-1.00"}, {"account": "SYSTEM_FEES:USD", "currency": "USD", "amount": "0.99"}]})).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "unbalanced"));
    // 50.00 USD at 0.9235 EUR per USD = 46.175 -> 46.18 EUR (half to even at the cent).
    let (st, v) = s
        .post(
            "/fx/conversions",
            &mkey,
            Some("fx1"),
            json!({"from": usd, "to": eur, "amount": "50.00", "rate": "0.9235"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(s.get(&format!("/wallets/{eur}"), &mkey).await.1["posted"], "46.18");
    let (st, v) = s
        .post(
            "/fx/conversions",
            &mkey,
            Some("fx2"),
            json!({"from": usd, "to": jpy, "amount": "10.00", "rate": "151.337"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(s.get(&format!("/wallets/{jpy}"), &mkey).await.1["posted"], "1513");
    let (st, v) = s
        .post("/fx/conversions", &mkey, Some("fx3"), json!({"from": usd, "to": eur, "amount": "1", "rate": "-2"}))
        .await;
    assert_eq!((st, v["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("rate")));
    let (st, v) = s.post(&format!("/wallets/{usd}/limits"), &mkey, None, json!({"min_balance": "30.00"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s.post("/payouts", &mkey, Some("po"), json!({"wallet": usd, "amount": "10.01"})).await;
    assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "below_min_balance"), "40.00 left, 30.00 must stay");
    assert!(s.store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn openapi_document_and_reference_page_are_served() {
    let s = Server::start().await;
    let root = s.base.trim_end_matches("/coffer/v1").to_string();
    let doc: Value = s.http.get(format!("{root}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/coffer/v1/deposits",
        "/coffer/v1/wallets/{id}/history",
        "/coffer/v1/transfers/batch",
        "/coffer/v1/owners/{id}/balances",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"]["ErrorView"].is_object());
    assert!(doc["components"]["schemas"]["MovementView"].is_object());
    // Every operation has a summary and takes Coffer-On-Behalf-Of; movements an Idempotency-Key.
    assert_eq!(doc["servers"][0]["url"], "/");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path} has a summary");
            let headers: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert!(headers.contains(&"Coffer-On-Behalf-Of"), "{method} {path}: {headers:?}");
            if path == "/coffer/v1/deposits" {
                assert!(headers.contains(&"Idempotency-Key"));
            }
        }
    }
    assert_eq!(doc["components"]["schemas"]["WalletAmount"]["example"]["amount"], "125.50");
    let js = s.http.get(format!("{root}/docs/rapidoc-min.js")).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(js.text().await.unwrap().starts_with("/*! RapiDoc"), "the renderer is served from the binary");
    let page = s.http.get(format!("{root}/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/openapi.json"), "the page renders the document, no internet needed");
    for p in ["/healthz", "/readyz"] {
        assert_eq!(s.http.get(format!("{root}{p}")).send().await.unwrap().status(), StatusCode::OK, "{p}");
    }
    let ready: Value = s.http.get(format!("{root}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready"}));
}

#[tokio::test]
async fn a_callers_request_id_is_kept_when_well_formed() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadOnly).await;
    let (_, _, h) = s.call("GET", "/me", Some(&key), None, &[("X-Request-Id", "trace-42.a:b_c")]).await;
    assert_eq!(h["request-id"], "trace-42.a:b_c");
    for bad in ["has space", "semi;colon", &"x".repeat(129)] {
        let (_, _, h) = s.call("GET", "/me", Some(&key), None, &[("X-Request-Id", bad)]).await;
        let id = h["request-id"].to_str().unwrap();
        assert!(id != bad && uuid::Uuid::parse_str(id).is_ok(), "{bad} replaced by a new id, got {id}");
    }
}

#[tokio::test]
async fn every_refusal_has_its_code() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await.to_string();
    let (_, w) = s.post("/wallets", &key, None, json!({"owner": m, "type": "OPERATING", "currency": "USD"})).await;
    let w = w["id"].as_str().unwrap().to_string();
    let (_, r) = s.post("/wallets", &key, None, json!({"owner": m, "type": "RESERVE", "currency": "USD"})).await;
    let r = r["id"].as_str().unwrap().to_string();
    let (_, d) = s.post("/deposits", &key, Some("d"), json!({"wallet": w, "amount": "100"})).await;
    let dep = d["transaction"]["seq"].as_u64().unwrap();
    let (_, h) = s.post("/holds", &key, Some("h"), json!({"wallet": w, "amount": "10"})).await;
    let hold = h["hold"]["id"].as_str().unwrap().to_string();
    let (_, i) = s.post("/incoming", &key, Some("i"), json!({"wallet": w, "amount": "5"})).await;
    let inc = i["incoming"]["id"].as_str().unwrap().to_string();

    // (what, path, idempotency key, body, status, code)
    type Case<'a> = (&'a str, String, Option<&'a str>, Value, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a second wallet of a type and currency",
            "/wallets".into(),
            None,
            json!({"owner": m, "type": "OPERATING", "currency": "USD"}),
            StatusCode::CONFLICT,
            "wallet_exists",
        ),
        (
            "closing a wallet with money",
            format!("/wallets/{w}/status"),
            None,
            json!({"status": "CLOSED"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wallet_not_empty",
        ),
        (
            "capturing more than held",
            format!("/holds/{hold}/capture"),
            Some("c0"),
            json!({"amount": "11", "destination": r}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "capture_exceeds_hold",
        ),
        (
            "capturing into the held wallet",
            format!("/holds/{hold}/capture"),
            Some("c1"),
            json!({"destination": w}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        ("releasing", format!("/holds/{hold}/release"), Some("rel"), json!({}), StatusCode::CREATED, ""),
        (
            "capturing a released hold",
            format!("/holds/{hold}/capture"),
            Some("c2"),
            json!({"destination": r}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "hold_not_open",
        ),
        ("cancelling", format!("/incoming/{inc}/cancel"), Some("ic"), json!({}), StatusCode::CREATED, ""),
        (
            "settling a cancelled credit",
            format!("/incoming/{inc}/settle"),
            Some("is"),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "incoming_not_pending",
        ),
        ("reversing a deposit", "/reversals".into(), Some("rv1"), json!({"transaction": dep}), StatusCode::CREATED, ""),
        (
            "reversing it again",
            "/reversals".into(),
            Some("rv2"),
            json!({"transaction": dep}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "already_reversed",
        ),
        (
            "reversing a reversal",
            "/reversals".into(),
            Some("rv3"),
            json!({"transaction": "<the reversal>"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_reversible",
        ),
        (
            "reversing a hold (no settled money)",
            "/reversals".into(),
            Some("rv4"),
            json!({"transaction": dep + 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_reversible",
        ),
        ("freezing", format!("/wallets/{r}/status"), None, json!({"status": "FROZEN"}), StatusCode::CREATED, ""),
        (
            "paying into a frozen wallet",
            "/transfers".into(),
            Some("t1"),
            json!({"from": w, "to": r, "amount": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wallet_not_active",
        ),
        ("closing (empty)", format!("/wallets/{r}/status"), None, json!({"status": "CLOSED"}), StatusCode::CREATED, ""),
        (
            "reopening a closed wallet",
            format!("/wallets/{r}/status"),
            None,
            json!({"status": "ACTIVE"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transition",
        ),
        (
            "an unknown status",
            format!("/wallets/{w}/status"),
            None,
            json!({"status": "ASLEEP"}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            "deleting the merchant",
            format!("/owners/{m}/status"),
            None,
            json!({"status": "DELETED"}),
            StatusCode::CREATED,
            "",
        ),
        (
            "moving a deleted owner's money",
            "/payouts".into(),
            Some("p1"),
            json!({"wallet": w, "amount": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "owner_not_active",
        ),
        (
            "its own status",
            format!("/owners/{p}/status"),
            None,
            json!({"status": "SUSPENDED"}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
    ];
    // Entry numbers may have gaps (on PostgreSQL): the reversal's is taken from its answer.
    let mut reversal = Value::Null;
    for (what, path, idem, mut body, status, want) in cases {
        if body["transaction"] == "<the reversal>" {
            body["transaction"] = reversal.clone();
        }
        let (st, v) = s.post(&path, &key, idem, body).await;
        if what == "reversing a deposit" {
            reversal = v["transaction"]["seq"].clone();
        }
        assert_eq!(st, status, "{what}: {v}");
        if !want.is_empty() {
            assert_eq!(code(&v), want, "{what}: {v}");
        }
    }
    // Transport-level refusals.
    let r = s
        .http
        .post(format!("{}/deposits", s.base))
        .bearer_auth(&key)
        .header("Idempotency-Key", "x")
        .body("wallet=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&r.json().await.unwrap()), "unsupported_media_type");
    let (st, v) = s.get("/transactions?limit=many", &key).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
    let (st, v) = s.get("/transactions?colour=red", &key).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
    assert!(s.store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn owner_lists_are_paged() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadOnly).await;
    for i in 0..7 {
        s.merchant(p, &format!("m{i}")).await;
    }
    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, page) = s.get(&format!("/owners/{p}/children?limit=3{cursor}"), &key).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        s.merchant(p, &format!("late{}", names.len())).await; // appended: never shifts a page
        names.extend(page["data"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(&names[..7], &["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    let (st, v) = s.get(&format!("/owners/{p}/children?cursor=00000000-0000-0000-0000-000000000000"), &key).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_cursor"));
}

#[tokio::test]
async fn rates_overviews_and_conversions_at_the_stored_rate() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let pk = s.key(p, KeyScope::ReadWrite).await;
    let m = s.merchant(p, "M").await;
    let sub = s.merchant(m, "S").await;
    let mk = s.key(m, KeyScope::ReadWrite).await;
    let mut wallets = std::collections::HashMap::new();
    for (o, cur, amount) in [(m, "USD", 10_000), (m, "EUR", 5_000), (m, "JPY", 1_000), (sub, "GBP", 1_000)] {
        let currency: CurrencyCode = cur.parse().unwrap();
        let open = Command::OpenWallet {
            owner: o,
            wallet_type: WalletType::Operating,
            currency,
            overdraft_limit: 0,
            min_balance: 0,
        };
        let Outcome::Account(a) = s.store.execute(open).await.unwrap().outcome else { panic!() };
        let op =
            MoneyOp::Deposit { account: a.id, amount: Money::new(amount, currency), source: SystemAccount::External };
        let mv = Movement { platform: p, idempotency_key: format!("d-{cur}"), metadata: Default::default(), op };
        s.store.execute(Command::Move(mv)).await.unwrap();
        wallets.insert(cur, a.id);
    }
    let overview = |q: &str| format!("/owners/{m}/overview{q}");

    // No rates yet: a clear refusal naming the pair, never a partial total.
    let (st, v) = s.get(&overview(""), &mk).await;
    assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "rate_missing"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("EUR/USD"), "{v}");
    let before_import = chrono::Utc::now().to_rfc3339();

    // Only the platform's own key sets rates.
    let rate = json!({ "base": "EUR", "quote": "USD", "rate": "1.2", "source": "desk" });
    let (st, v) = s.post("/fx/rates", &mk, None, rate.clone()).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "platform_only"));

    // ECB import: one commit; a bad cell refuses the file, naming line and column.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let import = |body: String| {
        let http = s.http.clone();
        let url = format!("{}/fx/rates/import?source=ECB", s.base);
        let pk = pk.clone();
        async move {
            let r = http.post(url).bearer_auth(pk).header("content-type", "text/csv").body(body).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = import(format!("Date,USD,JPY,GBP,\n{today},1.08x,160,0.85,\n")).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_rates_file"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("line 2, column USD"), "{v}");
    let (st, v) = import(format!("Date,USD,JPY,GBP,\n{today},1.0800,160.00,0.8500,\n")).await;
    assert_eq!((st, v["imported"].as_u64()), (StatusCode::CREATED, Some(3)), "{v}");

    // USD 100.00; EUR 50.00 x 1.08 = 54.00; JPY 1000 / 160 x 1.08 = 6.75 (through EUR).
    let (st, v) = s.get(&overview(""), &mk).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let converted: Vec<&str> =
        v["currencies"].as_array().unwrap().iter().map(|c| c["converted"].as_str().unwrap()).collect();
    assert_eq!(converted, ["100.00", "54.00", "6.75"]);
    assert_eq!(v["total"], "160.75");
    assert_eq!(v["currencies"][2]["rates_used"].as_array().unwrap().len(), 2, "JPY went through the pivot");
    assert_eq!(v["currencies"][1]["rates_used"][0]["source"], "ECB");
    // With the sub-merchant: GBP 10.00 / 0.85 x 1.08 = 12.7058... -> 12.71.
    let (_, v) = s.get(&overview("?include_descendants=true"), &mk).await;
    assert_eq!(v["total"], "173.46", "{v}");
    // In EUR: 100 / 1.08 = 92.5925... -> 92.59; 50.00; 1000 / 160 = 6.25.
    let (_, v) = s.get(&overview("?display_currency=EUR"), &mk).await;
    assert_eq!(v["total"], "148.84", "{v}");

    // A newer rate changes today's overview, not one of an earlier instant.
    let after_import = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (st, v) = s.post("/fx/rates", &pk, None, rate).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, v) = s.get(&overview(""), &mk).await;
    assert_eq!(v["currencies"][1]["converted"], "60.00");
    let at = |t: &str| overview(&format!("?at={}", t.replace('+', "%2B")));
    let (_, v) = s.get(&at(&after_import), &mk).await;
    assert_eq!((v["currencies"][1]["converted"].as_str(), v["total"].as_str()), (Some("54.00"), Some("160.75")), "{v}");
    let (st, v) = s.get(&at(&before_import), &mk).await;
    assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "rate_missing"), "no rate was known then");

    // A conversion at the stored rate records the rate and where it came from; a retry after the
    // rate changed replays the first result.
    let body = json!({ "from": wallets["USD"].to_string(), "to": wallets["EUR"].to_string(), "amount": "10.00" });
    let (st, v) = s.post("/fx/conversions", &mk, Some("fx-1"), body.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let fx = &v["transaction"]["fx"];
    assert_eq!((fx["rate"].as_str(), fx["to_amount"].as_str()), (Some("0.8333333333"), Some("8.33")), "1 / 1.2");
    assert!(fx["rate_source"].as_str().unwrap().contains("desk EUR/USD 1.2"), "{fx}");
    let newer = json!({ "base": "EUR", "quote": "USD", "rate": "1.25", "source": "desk" });
    assert_eq!(s.post("/fx/rates", &pk, None, newer).await.0, StatusCode::CREATED);
    let (st, again) = s.post("/fx/conversions", &mk, Some("fx-1"), body).await;
    assert_eq!((st, again["replayed"].as_bool()), (StatusCode::OK, Some(true)), "{again}");
    assert_eq!(again["transaction"]["fx"]["to_amount"], "8.33");

    // The factor Coffer would use, and a stale rate named with its age.
    let (st, v) = s.get("/fx/rates?base=JPY&quote=USD", &mk).await;
    assert_eq!((st, v["rate"].as_str()), (StatusCode::OK, Some("0.0078125")), "1.25 / 160: {v}");
    let old = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let chf = json!({ "base": "USD", "quote": "CHF", "rate": "0.9", "source": "desk", "effective_at": old });
    assert_eq!(s.post("/fx/rates", &pk, None, chf).await.0, StatusCode::CREATED);
    let (st, v) = s.get("/fx/rates?base=USD&quote=CHF", &mk).await;
    assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "rate_stale"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("USD/CHF"), "{v}");
    assert!(s.store.verify().await.unwrap().is_ok());
}
