//! The providers' balance-movement endpoints (`dialect-companions.md`) over one ledger with every
//! kind of movement: snapshots of their answers and refusals, and the invariants that tie them
//! to the balances (Onerway: a window's amounts sum to the OPERATING posted change).

mod support;

use coffer_core::*;
use serde_json::{json, Value};
use support::server::{settled, Server};
use support::Rng;

/// Merchant M (USD OPERATING and RESERVE, EUR OPERATING) and merchant X, with every kind of
/// movement on M's USD OPERATING wallet; M's key.
struct Ledger {
    s: Server,
    m_key: String,
    /// M's key id and secret (UQPay's `x-client-id`, `x-api-key`).
    m_id: String,
    m_secret: String,
    m_owner: OwnerId,
    /// M's USD OPERATING posted at the end, in cents.
    posted: i64,
    root: String,
}

async fn ledger() -> Ledger {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let pk = s.key(p, KeyScope::ReadWrite).await;
    let (m, x) = (s.merchant(p, "M").await, s.merchant(p, "X").await);
    let op = s.wallet(m, WalletType::Operating, "USD").await;
    let reserve = s.wallet(m, WalletType::Reserve, "USD").await;
    let eur = s.wallet(m, WalletType::Operating, "EUR").await;
    let xop = s.wallet(x, WalletType::Operating, "USD").await;
    let d = |t: &str| json!({ "description": t });
    let mut n = 0;
    let mut post = |path: &str, body: Value| {
        n += 1;
        let (s, pk, path, key) = (&s, &pk, path.to_string(), format!("k{n}"));
        async move {
            let (st, v) = s.post(&path, pk, Some(&key), body).await;
            assert!(st.is_success(), "{path}: {v}");
            v
        }
    };
    post("/deposits", json!({"wallet": op, "amount": "2000.00", "metadata": d("Wire from ACME Ltd")})).await;
    post("/transfers", json!({"from": op, "to": reserve, "amount": "200.00", "metadata": d("Rolling reserve 10%")}))
        .await;
    post("/fees", json!({"wallet": op, "amount": "12.50", "metadata": d("Monthly fee")})).await;
    post("/transfers", json!({"from": reserve, "to": op, "amount": "50.00"})).await;
    post("/transfers", json!({"from": op, "to": xop, "amount": "100.00"})).await;
    let payout = post("/payouts", json!({"wallet": op, "amount": "300.00"})).await;
    post("/reversals", json!({"transaction": payout["transaction"]["seq"]})).await;
    let hold = post("/holds", json!({"wallet": op, "amount": "40.00"})).await;
    let h = hold["hold"]["id"].as_str().unwrap().to_string();
    post(&format!("/holds/{h}/capture"), json!({"destination": xop})).await;
    let inc = post("/incoming", json!({"wallet": op, "amount": "25.00"})).await;
    let i = inc["incoming"]["id"].as_str().unwrap_or_else(|| panic!("{inc}")).to_string();
    post(&format!("/incoming/{i}/settle"), json!({})).await;
    post("/fx/conversions", json!({"from": op, "to": eur, "amount": "10.00", "rate": "0.9"})).await;
    post("/deposits", json!({"wallet": op, "amount": "1.00"})).await;
    // Incoming credits that change no posted balance: one left pending, one cancelled.
    post("/incoming", json!({"wallet": op, "amount": "5.00"})).await;
    let inc = post("/incoming", json!({"wallet": op, "amount": "3.00"})).await;
    let i = inc["incoming"]["id"].as_str().unwrap().to_string();
    post(&format!("/incoming/{i}/cancel"), json!({})).await;
    let (_, last) = s.get("/transactions?limit=1", &pk).await;
    settled(&s, &pk, last["data"][0]["seq"].as_u64().unwrap()).await;
    let (_, w) = s.get(&format!("/wallets/{op}"), &pk).await;
    let posted = (w["posted"].as_str().unwrap().replace('.', "")).parse().unwrap();
    let m_key = s.key(m, KeyScope::ReadOnly).await;
    let root = s.base.trim_end_matches("/coffer/v1").to_string();
    let (m_id, m_secret) = m_key.split_once('.').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    Ledger { s, m_key, m_id, m_secret, m_owner: m, posted, root }
}

fn cents(v: &Value) -> i64 {
    let s = v.as_str().unwrap();
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let c: i64 = s.replace('.', "").parse().unwrap();
    if neg {
        -c
    } else {
        c
    }
}

// ---- Onerway: Transactions Query ----

async fn onerway(l: &Ledger, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut rb = l.s.http.post(format!("{}/account/v1/transactions/query", l.root)).json(&body);
    if let Some(k) = key {
        rb = rb.header("apikey", k);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn window(id: &str, extra: Value) -> Value {
    let now = chrono::Utc::now();
    let mut b = json!({
        "requestId": id,
        "requestTime": now.timestamp_millis(),
        "currency": "USD",
        "beginTime": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "endTime": (now + chrono::Duration::minutes(5)).to_rfc3339(),
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onerway_transactions_query() {
    let l = ledger().await;
    let key = Some(l.m_key.as_str());
    let (st, p1) = onerway(&l, key, window("T-1", json!({}))).await;
    assert_eq!(st, 200, "{p1}");
    let (_, p2) = onerway(&l, key, window("T-2", json!({"current": 2}))).await;
    let records: Vec<Value> =
        [&p1, &p2].iter().flat_map(|p| p["data"]["records"].as_array().unwrap().clone()).collect();
    assert_eq!(p1["data"]["total"], 11);
    // The invariant: the window's amounts sum to the OPERATING posted change (from 0).
    assert_eq!(records.iter().map(|r| cents(&r["amount"])).sum::<i64>(), l.posted);
    let redact = |v: &Value| {
        let mut v = v.clone();
        for r in v["data"]["records"].as_array_mut().into_iter().flatten() {
            let t = r["balanceUpdDate"].as_str().unwrap();
            assert!(t.len() == 20 && t.ends_with('Z'), "{t}");
            r["balanceUpdDate"] = json!("[time]");
        }
        v
    };
    insta::assert_json_snapshot!("onerway_txns_page_1", redact(&p1));
    insta::assert_json_snapshot!("onerway_txns_page_2", redact(&p2));
    let (_, reserve) = onerway(&l, key, window("T-3", json!({"businessType": "DEPOSIT"}))).await;
    insta::assert_json_snapshot!("onerway_txns_deposit_only", redact(&reserve));
    let (_, past) = onerway(&l, key, window("T-4", json!({"current": 9}))).await;
    assert_eq!((past["data"]["total"].as_u64(), past["data"]["records"].as_array().map(Vec::len)), (Some(11), Some(0)));
    let (_, none) = onerway(&l, key, window("T-5", json!({"currency": "JPY"}))).await;
    assert_eq!(none["data"]["total"], 0, "{none}");

    // Exactly 31 days is a window; a second more is not.
    let end = chrono::Utc::now() + chrono::Duration::minutes(1);
    let span = |d: chrono::Duration| json!({"beginTime": (end - d).to_rfc3339(), "endTime": end.to_rfc3339()});
    let (_, at_limit) = onerway(&l, key, window("T-31", span(chrono::Duration::days(31)))).await;
    assert_eq!(at_limit["data"]["total"], 11, "{at_limit}");
    let (st, over) =
        onerway(&l, key, window("T-32", span(chrono::Duration::days(31) + chrono::Duration::seconds(1)))).await;
    assert_eq!((st, over["code"].as_str()), (400, Some("40002")), "{over}");
    let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let cases = [
        ("span_over_31_days", window("T-6", json!({"beginTime": old}))),
        ("end_before_begin", window("T-7", json!({"endTime": "2020-01-01T00:00:00Z"}))),
        ("unknown_business_type", window("T-8", json!({"businessType": "LOTTERY"}))),
        ("begin_time_missing", window("T-9", json!({"beginTime": null}))),
        ("begin_time_not_a_time", window("T-9", json!({"beginTime": "yesterday"}))),
        ("current_zero", window("T-9", json!({"current": 0}))),
        ("currency_unknown", window("T-9", json!({"currency": "XXX"}))),
        ("duplicate_request_id", window("T-1", json!({}))),
    ];
    for (name, body) in cases {
        let (status, body) = onerway(&l, key, body).await;
        insta::assert_json_snapshot!(format!("onerway_txns_{name}"), json!({ "status": status, "body": body }));
    }
    let (status, body) = onerway(&l, None, window("T-10", json!({}))).await;
    insta::assert_json_snapshot!("onerway_txns_no_apikey", json!({ "status": status, "body": body }));
}

// ---- UQPay: List Balance Transactions ----

async fn uqpay(l: &Ledger, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut rb = l.s.http.get(format!("{}/api/v1/balances/transactions{query}", l.root));
    if let Some(t) = token {
        rb = rb.header("x-auth-token", format!("Bearer {t}"));
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn rfc3339(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uqpay_balance_transactions() {
    let l = ledger().await;
    let t: Value =
        l.s.http
            .post(format!("{}/api/v1/connect/token", l.root))
            .header("x-client-id", &l.m_id)
            .header("x-api-key", &l.m_secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let token = t["auth_token"].as_str().unwrap().to_string();
    let tok = Some(token.as_str());
    // No parameters at all, as the Python SDK sends them: page 1 of 10.
    let (st, first) = uqpay(&l, "", tok).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!((first["total_items"].as_u64(), first["total_pages"].as_u64()), (Some(14), Some(2)));
    let (_, all) = uqpay(&l, "?page_size=100&currency=USD", tok).await;
    let rows = all["data"].as_array().unwrap();
    assert_eq!(rows.len(), 13, "11 postings, a pending and a cancelled credit (the settled one is one row)");
    // Newest first.
    assert!(rows.windows(2).all(|w| rfc3339(&w[0]["create_time"]) >= rfc3339(&w[1]["create_time"])));
    // The invariant: completed credits minus debits equal the OPERATING posted change.
    let net: i64 = rows
        .iter()
        .filter(|r| r["transaction_status"] == "COMPLETED")
        .map(|r| cents(&r["amount"]) * if r["credit_debit_type"] == "C" { 1 } else { -1 })
        .sum();
    assert_eq!(net, l.posted);
    let redactions = |v: &Value| {
        let mut v = v.clone();
        for r in v["data"].as_array_mut().into_iter().flatten() {
            for f in ["transaction_id", "account_id", "balance_id", "reference_id", "create_time", "complete_time"] {
                if !r[f].is_null() {
                    r[f] = json!(format!("[{f}]"));
                }
            }
        }
        v
    };
    insta::assert_json_snapshot!("uqpay_txns_all_usd", redactions(&all));
    let (_, pending) = uqpay(&l, "?transaction_status=pending", tok).await;
    assert_eq!(pending["total_items"], 1);
    assert!(pending["data"][0]["complete_time"].is_null());
    let (_, refunds) = uqpay(&l, "?transaction_type=Refund", tok).await;
    assert_eq!(refunds["total_items"], 1, "the reversal of a payout");
    let (_, eur) = uqpay(&l, "?currency=EUR", tok).await;
    insta::assert_json_snapshot!("uqpay_txns_eur", redactions(&eur));
    // An unencoded + (as the Go SDK sends it) is read as the offset it was.
    let (st, open) = uqpay(&l, "?start_time=2020-01-01T00:00:00+08:00&page_size=100", tok).await;
    assert_eq!((st, open["total_items"].as_u64()), (200, Some(14)), "{open}");
    let (_, later) = uqpay(&l, "?start_time=2999-01-01T00:00:00%2B08:00", tok).await;
    assert_eq!((later["total_items"].as_u64(), later["total_pages"].as_u64()), (Some(0), Some(0)));
    // Rows keep their ids across calls.
    let (_, again) = uqpay(&l, "?page_size=100&currency=USD", tok).await;
    assert_eq!(again, all);

    let cases = [
        ("page_size_zero", "?page_size=0"),
        ("page_size_over_100", "?page_size=101"),
        ("unknown_type", "?transaction_type=LOTTERY"),
        ("unknown_status", "?transaction_status=LOST"),
        ("start_after_end", "?start_time=2026-02-01T00:00:00Z&end_time=2026-01-01T00:00:00Z"),
        ("time_without_offset", "?start_time=2026-02-01T00:00:00"),
        ("unknown_currency", "?currency=XXX"),
    ];
    for (name, q) in cases {
        let (status, body) = uqpay(&l, q, tok).await;
        insta::assert_json_snapshot!(format!("uqpay_txns_{name}"), json!({ "status": status, "body": body }));
    }
    let (status, body) = uqpay(&l, "", None).await;
    insta::assert_json_snapshot!("uqpay_txns_no_token", json!({ "status": status, "body": body }));
}

// ---- NeoX: Get Account Balance ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neox_get_account_balance() {
    let l = ledger().await;
    let t: Value =
        l.s.http
            .post(format!("{}/v2/auth/oauth2/token", l.root))
            .json(&json!({"grant_type": "client_credentials", "client_id": l.m_id, "client_secret": l.m_secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let token = t["data"]["access_token"].as_str().unwrap().to_string();
    let get = |q: &str, auth: Option<String>| {
        let mut rb = l.s.http.get(format!("{}/v2/gc/accounts/query{q}", l.root));
        if let Some(a) = auth {
            rb = rb.header("Authorization", a);
        }
        async move {
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (status, text)
        }
    };
    let bearer = Some(format!("Bearer {token}"));
    let (st, text) = get("?currency=USD", bearer.clone()).await;
    assert_eq!(st, 200, "{text}");
    // Amounts are JSON numbers written exactly (no float on the way).
    let exact = format!("{}.{:02}", l.posted / 100, l.posted % 100);
    let expected = format!("\"balance\":{}", exact.trim_end_matches('0').trim_end_matches('.'));
    assert!(text.contains(&expected), "{text} has {expected}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let redact = |mut v: Value| {
        for f in ["neoResponseId"] {
            if v[f].is_string() {
                v[f] = json!("[uuid]");
            }
        }
        if v["data"].is_object() {
            v["data"]["accountNo"] = json!("[account]");
            v["data"]["time"] = json!("[time]");
        }
        v
    };
    assert!(v["data"]["time"].as_str().unwrap().ends_with('Z'));
    insta::assert_json_snapshot!("neox_account_usd", redact(v));
    let (_, eur) = get("?currency=EUR&accountType=FUND_ACCOUNT&accountBusinessType=ANY", bearer.clone()).await;
    insta::assert_json_snapshot!("neox_account_eur", redact(serde_json::from_str(&eur).unwrap()));
    let cases = [
        ("no_currency", "", bearer.clone()),
        ("unknown_account_type", "?currency=USD&accountType=GOLD", bearer.clone()),
        ("no_such_wallet", "?currency=USD&accountType=VCC_ACCOUNT", bearer.clone()),
        ("unknown_sub_merchant", "?currency=USD&subMerchantId=01a24534-06db-7470-a4ef-c7a72234eca3", bearer.clone()),
        ("bad_token", "?currency=USD", Some("Bearer nope".to_string())),
        ("no_token", "?currency=USD", None),
    ];
    for (name, q, auth) in cases {
        let (status, text) = get(q, auth).await;
        let body: Value = serde_json::from_str(&text).unwrap();
        insta::assert_json_snapshot!(format!("neox_account_{name}"), json!({ "status": status, "body": redact(body) }));
    }
}

// ---- PayerMax: the day-end flows, over a window that holds the ledger ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_end_flows_add_up_to_the_balances() {
    use coffer_app::service::statements::{flows, Basis};
    let from = Timestamp(chrono::Utc::now().timestamp_micros() - 1);
    let l = ledger().await;
    let to = Timestamp(chrono::Utc::now().timestamp_micros() + 1_000_000);
    let dir = coffer_app::Directory::new(l.s.store.clone());
    let accounts = l.s.store.accounts_of(l.m_owner).await.unwrap();
    let op = accounts
        .iter()
        .find(|a| a.kind == AccountKind::Wallet(WalletType::Operating) && a.currency.to_string() == "USD")
        .unwrap();
    // DISBURSEMENT follows available: credits in; debits and the hold placed out; the capture of
    // the whole hold changes nothing (it leaves held and posted together).
    let f = flows(&dir, op, Basis::Available, from, to).await.unwrap();
    assert_eq!((f.opening, f.inflow, f.outflow, f.closing), (0, 237_600, 66_250, l.posted as i128));
    let f = flows(&dir, op, Basis::Posted, from, to).await.unwrap();
    assert_eq!((f.inflow, f.outflow, f.closing), (237_600, 66_250, l.posted as i128));
    // An empty window before it all: the opening is the closing, no flows.
    let f = flows(&dir, op, Basis::Available, Timestamp(from.0 - 10_000_000), from).await.unwrap();
    assert_eq!((f.opening, f.inflow, f.outflow, f.closing), (0, 0, 0, 0));
}

// ---- Across the companions and the native statement, on a random ledger ----

fn instant() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companions_and_statements_agree_on_a_random_ledger() {
    use coffer_app::service::statements::{flows, Basis};
    for seed in [7u64, 0xdead_beef, 42_4242] {
        let s = Server::start().await;
        let p = s.platform("P").await;
        let pk = s.key(p, KeyScope::ReadWrite).await;
        let m = s.merchant(p, "M").await;
        let x = s.merchant(p, "X").await;
        let op = s.wallet(m, WalletType::Operating, "USD").await;
        let reserve = s.wallet(m, WalletType::Reserve, "USD").await;
        let xop = s.wallet(x, WalletType::Operating, "USD").await;
        let mut rng = Rng(seed);
        // Model of op: posted and held after each step, and the instant after it.
        let (mut posted, mut held) = (0i64, 0i64);
        let (mut holds, mut payouts) = (Vec::<(String, i64)>::new(), Vec::<(u64, i64)>::new());
        // Pending credits: (id, amount, the transaction that made it); those settled since.
        let (mut credits, mut settled_credits) = (Vec::<(String, i64, u64)>::new(), Vec::<u64>::new());
        let mut marks = vec![(instant(), 0i64, 0i64)];
        for i in 0..50 {
            let x_ = 1 + rng.next(3000) as i64;
            let amount = format!("{}.{:02}", x_ / 100, x_ % 100);
            let avail = posted - held;
            let (path, body) = match rng.next(9) {
                0 | 1 => ("/deposits".to_string(), json!({"wallet": op, "amount": amount})),
                2 if avail >= x_ => ("/transfers".to_string(), json!({"from": op, "to": reserve, "amount": amount})),
                3 if avail >= x_ => ("/payouts".to_string(), json!({"wallet": op, "amount": amount})),
                4 if avail >= x_ => ("/holds".to_string(), json!({"wallet": op, "amount": amount})),
                5 if !holds.is_empty() => {
                    let (h, _) = &holds[0];
                    (format!("/holds/{h}/capture"), json!({"destination": xop}))
                }
                6 if !holds.is_empty() => (format!("/holds/{}/release", holds[0].0), json!({})),
                7 => ("/incoming".to_string(), json!({"wallet": op, "amount": amount})),
                8 if !credits.is_empty() => (format!("/incoming/{}/settle", credits[0].0), json!({})),
                _ if !payouts.is_empty() => ("/reversals".to_string(), json!({"transaction": payouts[0].0})),
                _ => ("/fees".to_string(), json!({"wallet": op, "amount": "0.01"})),
            };
            if path == "/fees" && avail < 1 {
                continue;
            }
            let (st, v) = s.post(&path, &pk, Some(&format!("{seed}-{i}")), body).await;
            assert!(st.is_success(), "{path}: {v}");
            match path.as_str() {
                "/deposits" => posted += x_,
                "/transfers" => posted -= x_,
                "/payouts" => {
                    posted -= x_;
                    payouts.push((v["transaction"]["seq"].as_u64().unwrap(), x_));
                }
                "/holds" => {
                    held += x_;
                    holds.push((v["hold"]["id"].as_str().unwrap().to_string(), x_));
                }
                "/incoming" => credits.push((
                    v["incoming"]["id"].as_str().unwrap().to_string(),
                    x_,
                    v["transaction"]["seq"].as_u64().unwrap(),
                )),
                "/fees" => posted -= 1,
                "/reversals" => posted += payouts.remove(0).1,
                p if p.ends_with("/capture") => {
                    let (_, h) = holds.remove(0);
                    (posted, held) = (posted - h, held - h);
                }
                p if p.ends_with("/release") => held -= holds.remove(0).1,
                p if p.ends_with("/settle") => {
                    let (_, c, made) = credits.remove(0);
                    posted += c;
                    settled_credits.push(made);
                }
                p => panic!("{p}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            marks.push((instant(), posted, held));
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let (_, last) = s.get("/transactions?limit=1", &pk).await;
        settled(&s, &pk, last["data"][0]["seq"].as_u64().unwrap()).await;
        let mk = s.key(m, KeyScope::ReadOnly).await;
        let root = s.base.trim_end_matches("/coffer/v1").to_string();
        let dir = coffer_app::Directory::new(s.store.clone());
        let op_account = s.store.account(op.parse().unwrap()).await.unwrap().unwrap();
        for k in 0..8 {
            let i = rng.next(marks.len() as u64 - 1) as usize;
            let j = i + 1 + rng.next((marks.len() - i - 1) as u64) as usize;
            let ((t0, p0, h0), (t1, p1, h1)) = (marks[i], marks[j]);
            // Onerway: the window's amounts sum to the OPERATING posted change.
            let mut sum = 0;
            for page in 1.. {
                let body = json!({"requestId": format!("{seed}-{k}-{page}"), "requestTime": instant().timestamp_millis(),
                    "currency": "USD", "beginTime": t0.to_rfc3339(), "endTime": t1.to_rfc3339(), "current": page});
                let r = s.http.post(format!("{root}/account/v1/transactions/query")).header("apikey", &mk).json(&body);
                let v: Value = r.send().await.unwrap().json().await.unwrap();
                let records = v["data"]["records"].as_array().unwrap_or_else(|| panic!("{v}")).clone();
                sum += records.iter().map(|r| cents(&r["amount"])).sum::<i64>();
                if records.len() < 10 {
                    break;
                }
            }
            assert_eq!(sum, p1 - p0, "seed {seed}: Onerway between marks {i} and {j}");
            // PayerMax's day-end arithmetic over the same window: DISBURSEMENT follows available.
            let (f0, f1) = (Timestamp(t0.timestamp_micros()), Timestamp(t1.timestamp_micros()));
            let f = flows(&dir, &op_account, Basis::Available, f0, f1).await.unwrap();
            assert_eq!((f.opening, f.closing), ((p0 - h0) as i128, (p1 - h1) as i128), "seed {seed}");
            assert_eq!(f.closing, f.opening + f.inflow - f.outflow);
            // UQPay's completed rows and the native statement's posted movements, line for line.
            let q = format!(
                "from={}&to={}&limit=1000",
                t0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                t1.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            );
            let (_, st) = s.get(&format!("/wallets/{op}/statement?{q}"), &mk).await;
            let token: Value = s
                .http
                .post(format!("{root}/api/v1/connect/token"))
                .header("x-client-id", mk.split_once('.').unwrap().0)
                .header("x-api-key", mk.split_once('.').unwrap().1)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let url = format!(
                "{root}/api/v1/balances/transactions?page_size=100&transaction_status=COMPLETED&start_time={}&end_time={}",
                t0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B"),
                t1.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B")
            );
            let v: Value = s
                .http
                .get(url)
                .header("x-auth-token", format!("Bearer {}", token["auth_token"].as_str().unwrap()))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut uqpay: Vec<i64> = v["data"]
                .as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|r| cents(&r["amount"]) * if r["credit_debit_type"] == "C" { 1 } else { -1 })
                .collect();
            // The statement's lines: each posting but a credit's settlement, which UQPay shows
            // on the row of the credit's creation (completed once settled).
            let mut native: Vec<i64> = st["movements"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| match m["kind"].as_str().unwrap() {
                    "INCOMING_SETTLE" => None,
                    "INCOMING_CREATE" => {
                        settled_credits.contains(&m["transaction"].as_u64().unwrap()).then(|| cents(&m["incoming"]))
                    }
                    _ => Some(cents(&m["posted"])).filter(|c| *c != 0),
                })
                .collect();
            uqpay.sort();
            native.sort();
            assert_eq!(uqpay, native, "seed {seed}: UQPay rows and the statement between marks {i} and {j}");
        }
    }
}
