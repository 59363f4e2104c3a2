//! One ledger, six views: random ledger states (deposits, holds, incoming credits, reserves,
//! minimum balances, FX conversions) read through the native API and the five dialects agree per
//! product.md's mapping table. The expected dialect figures are computed here from the native
//! API's wallets, independently of `coffer_core::summary`.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use coffer_core::money::{format_minor, format_minor_trimmed};
use coffer_core::*;
use coffer_store::Store;
use proptest::prelude::*;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};

const TYPES: [WalletType; 8] = [
    WalletType::Operating,
    WalletType::Acquiring,
    WalletType::Settlement,
    WalletType::Reserve,
    WalletType::Prepaid,
    WalletType::Gift,
    WalletType::Card,
    WalletType::Refund,
];
const CURRENCIES: [(&str, u8); 4] = [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3)];

/// One wallet's random life: a deposit, then a hold, an incoming credit and a minimum balance.
#[derive(Debug, Clone)]
struct WalletPlan {
    t: usize,
    c: usize,
    deposit: i64,
    hold: i64,
    incoming: i64,
    min_balance: i64,
}

#[derive(Debug, Clone)]
struct MerchantPlan {
    wallets: Vec<WalletPlan>,
    /// Convert this much of OPERATING USD into OPERATING EUR at 0.9123 (when both exist).
    fx: i64,
}

fn plan() -> impl Strategy<Value = MerchantPlan> {
    let wallet = (0..8usize, 0..4usize, 0..5_000_000i64, 0..100u8, 0..3_000_000i64, 0..100u8).prop_map(
        |(t, c, deposit, hold_pct, incoming, min_pct)| WalletPlan {
            t,
            c,
            deposit,
            hold: deposit * hold_pct as i64 / 100,
            incoming,
            min_balance: deposit * min_pct as i64 / 100,
        },
    );
    (proptest::collection::vec(wallet, 1..10), 0..1_000_000i64).prop_map(|(wallets, fx)| MerchantPlan { wallets, fx })
}

struct Env {
    root: String,
    store: Arc<dyn Store>,
    p: OwnerId,
    rsa: rsa::RsaPrivateKey,
    http: reqwest::Client,
    _dir: support::Backing,
}

async fn exec(s: &dyn Store, c: Command) -> Result<Outcome, coffer_store::StoreError> {
    s.execute(c).await.map(|r| r.outcome)
}

async fn env() -> Env {
    let (store, dir) = support::open("cross").await;
    let c = Command::CreatePlatform {
        name: "P".into(),
        default_currency: "USD".parse().unwrap(),
        currency_exponents: [].into(),
    };
    let Ok(Outcome::Owner(p)) = exec(&*store, c).await else { panic!() };
    let rsa = tokio::task::spawn_blocking(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffer_http::serve(listener, store.clone(), coffer_http::Limits::default(), std::future::pending()));
    Env { root, store, p: p.id, rsa, http: reqwest::Client::new(), _dir: dir }
}

/// Build the merchant of `plan`; returns its id and its key (id, secret).
async fn build(e: &Env, n: usize, plan: &MerchantPlan) -> (OwnerId, String, String) {
    let s = &*e.store;
    let c = Command::CreateMerchant { parent: e.p, name: format!("m{n}"), default_currency: None };
    let Ok(Outcome::Owner(m)) = exec(s, c).await else { panic!() };
    let mv = |key: String, op| Command::Move(Movement { platform: e.p, idempotency_key: key, metadata: [].into(), op });
    let mut ids: BTreeMap<(usize, usize), AccountId> = BTreeMap::new();
    for (i, w) in plan.wallets.iter().enumerate() {
        let currency: CurrencyCode = CURRENCIES[w.c].0.parse().unwrap();
        let open =
            Command::OpenWallet { owner: m.id, wallet_type: TYPES[w.t], currency, overdraft_limit: 0, min_balance: 0 };
        let id = match exec(s, open).await {
            Ok(Outcome::Account(a)) => a.id,
            Err(coffer_store::StoreError::Rejected(LedgerError::WalletExists { existing, .. })) => existing,
            o => panic!("{o:?}"),
        };
        ids.insert((w.t, w.c), id);
        let money = |v: i64| Money::new(v, currency);
        let k = |what: &str| format!("{n}-{i}-{what}");
        if w.deposit > 0 {
            let op = MoneyOp::Deposit { account: id, amount: money(w.deposit), source: SystemAccount::External };
            exec(s, mv(k("d"), op)).await.unwrap();
        }
        if w.hold > 0 {
            // May be refused when an earlier plan for the same wallet held more: that is fine.
            let _ =
                exec(s, mv(k("h"), MoneyOp::HoldCreate { account: id, amount: money(w.hold), expires_at: None })).await;
        }
        if w.incoming > 0 {
            exec(s, mv(k("i"), MoneyOp::IncomingCreate { account: id, amount: money(w.incoming) })).await.unwrap();
        }
        let limits = Command::SetWalletLimits { account: id, overdraft_limit: None, min_balance: Some(w.min_balance) };
        exec(s, limits).await.unwrap();
    }
    if let (Some(from), Some(to)) = (ids.get(&(0, 0)), ids.get(&(0, 1))) {
        if plan.fx > 0 {
            let op = MoneyOp::FxConvert {
                from: *from,
                to: *to,
                amount: Money::new(plan.fx, "USD".parse().unwrap()),
                rate: "0.9123".parse().unwrap(),
                rate_source: None,
            };
            let _ = exec(s, mv(format!("{n}-fx"), op)).await; // refused when USD lacks the funds
        }
    }
    let k = coffer_http::auth::generate_key().unwrap();
    exec(s, Command::CreateApiKey { owner: m.id, id: k.id.clone(), secret_hash: k.hash, scope: KeyScope::ReadOnly })
        .await
        .unwrap();
    let der = rsa::RsaPublicKey::from(&e.rsa).to_public_key_der().unwrap();
    let public_key = Some(base64::engine::general_purpose::STANDARD.encode(der.as_bytes()));
    exec(s, Command::SetKeyPublicKey { id: k.id.clone(), public_key }).await.unwrap();
    let secret = k.full.split_once('.').unwrap().1.to_string();
    (m.id, k.id, secret)
}

/// A wallet as the native API shows it, in minor units.
#[derive(Debug, Clone, Copy, Default)]
struct W {
    posted: i64,
    held: i64,
    incoming: i64,
    available: i64,
    withdrawable: i64,
}

fn minor(v: &Value, exp: u8) -> i64 {
    coffer_core::money::parse_minor(v.as_str().unwrap(), exp).unwrap()
}

async fn check(e: &Env, m: OwnerId, key_id: &str, secret: &str) {
    let h = &e.http;
    let full = format!("{key_id}.{secret}");
    // The native API: every wallet.
    let v: Value = h
        .get(format!("{}/coffer/v1/owners/{m}/wallets?limit=200", e.root))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut wallets: BTreeMap<(String, String), W> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for w in v["data"].as_array().unwrap() {
        let cur = w["currency"].as_str().unwrap().to_string();
        let exp = CURRENCIES.iter().find(|c| c.0 == cur).unwrap().1;
        if !order.contains(&cur) {
            order.push(cur.clone());
        }
        wallets.insert(
            (w["type"].as_str().unwrap().to_string(), cur),
            W {
                posted: minor(&w["posted"], exp),
                held: minor(&w["held"], exp),
                incoming: minor(&w["incoming"], exp),
                available: minor(&w["available"], exp),
                withdrawable: minor(&w["withdrawable"], exp),
            },
        );
    }
    let get = |t: &str, c: &str| wallets.get(&(t.to_string(), c.to_string())).copied();
    let or0 = |t: &str, c: &str| get(t, c).unwrap_or_default();
    let exp = |c: &str| CURRENCIES.iter().find(|x| x.0 == c).unwrap().1;

    // Onerway.
    for c in &order {
        let body = json!({ "requestId": format!("{m}-{c}"), "requestTime": chrono::Utc::now().timestamp_millis(), "currency": c });
        let v: Value = h
            .post(format!("{}/account/v1/balance/query", e.root))
            .header("apikey", &full)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = &v["data"];
        let (op, st, rs) = (or0("OPERATING", c), or0("SETTLEMENT", c), or0("RESERVE", c));
        let on_hold = op.held + op.incoming + st.posted;
        let f = |x: i64| json!(format_minor(x, exp(c)));
        assert_eq!(d["availableBalance"], f(op.available), "onerway {c}: {v}");
        assert_eq!(d["withdrawableBalance"], f(op.withdrawable));
        assert_eq!(d["fundOnHold"], f(on_hold));
        assert_eq!(d["depositBalance"], f(rs.posted));
        assert_eq!(d["totalBalance"], f(op.available + on_hold + rs.posted));
    }

    // UQPay.
    let t: Value = h
        .post(format!("{}/api/v1/connect/token", e.root))
        .header("x-client-id", key_id)
        .header("x-api-key", secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", t["auth_token"].as_str().unwrap());
    let v: Value = h
        .get(format!("{}/api/v1/balances?page_size=100", e.root))
        .header("x-auth-token", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown: Vec<&String> =
        order.iter().filter(|c| ["OPERATING", "PREPAID", "RESERVE"].iter().any(|t| get(t, c).is_some())).collect();
    assert_eq!(v["total_items"].as_u64(), Some(shown.len() as u64), "uqpay: {v}");
    for (b, c) in v["data"].as_array().unwrap().iter().zip(&shown) {
        let f = |x: i64| json!(format_minor(x, exp(c)));
        assert_eq!(b["currency"], json!(c));
        assert_eq!(b["available_balance"], f(or0("OPERATING", c).available));
        assert_eq!(b["frozen_balance"], f(or0("OPERATING", c).held));
        assert_eq!(b["prepaid_balance"], f(or0("PREPAID", c).posted));
        assert_eq!(b["margin_balance"], f(or0("RESERVE", c).posted));
    }

    // EngageLab: OPERATING and GIFT available in the default currency (USD), x 10000.
    let v: Value = h
        .get(format!("{}/v1/balance", e.root))
        .basic_auth(key_id, Some(secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["balance10000"], json!(or0("OPERATING", "USD").available * 100), "engagelab: {v}");
    assert_eq!(v["gift_balance10000"], json!(or0("GIFT", "USD").available * 100));

    // NeoX: FUND / VCC / REFUND accounts.
    let t: Value = h
        .post(format!("{}/v2/auth/oauth2/token", e.root))
        .json(&json!({ "grant_type": "client_credentials", "client_id": key_id, "client_secret": secret }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v: Value = h
        .get(format!("{}/v2/gc/accounts/balance/query?subMerchantId={m}", e.root))
        .bearer_auth(t["data"]["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut expected = 0;
    for (neox, ours) in [("FUND_ACCOUNT", "OPERATING"), ("VCC_ACCOUNT", "CARD"), ("REFUND_ACCOUNT", "REFUND")] {
        for c in &order {
            let Some(w) = get(ours, c) else { continue };
            expected += 1;
            let row = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["accountType"] == neox && r["currency"] == json!(c))
                .unwrap_or_else(|| panic!("neox {neox} {c}: {v}"));
            let f = |x: i64| json!(format_minor(x, exp(c)));
            assert_eq!(
                (&row["balance"], &row["availableBalance"], &row["frozenAmount"]),
                (&f(w.posted), &f(w.available), &f(w.held))
            );
        }
    }
    assert_eq!(v["data"].as_array().unwrap().len(), expected);

    // PayerMax, with zero accounts listed.
    let body = serde_json::to_vec(&json!({ "appId": key_id, "version": "1.3", "keyVersion": "1",
        "requestTime": chrono::Utc::now().to_rfc3339(), "data": { "plainSign": true } }))
    .unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(e.rsa.clone());
    let sign = base64::engine::general_purpose::STANDARD.encode(signer.sign(&body).to_bytes());
    let v: Value = h
        .post(format!("{}/aggregate-pay/api/gateway/currentBalanceQuery", e.root))
        .header("content-type", "application/json")
        .header("sign", sign)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for name in ["ACQUIRING", "DISBURSEMENT", "FREEZE", "SETTLE", "REVERSE"] {
        for c in &order {
            let val = match name {
                "ACQUIRING" => get("ACQUIRING", c).map(|w| w.posted),
                "DISBURSEMENT" => get("OPERATING", c).map(|w| w.available),
                "FREEZE" => Some(wallets.iter().filter(|((_, cur), _)| cur == c).map(|(_, w)| w.held).sum()),
                "SETTLE" => get("SETTLEMENT", c).map(|w| w.posted),
                _ => get("RESERVE", c).map(|w| w.posted),
            };
            if let Some(x) = val {
                rows.push(format!("{name} {c} {}", format_minor_trimmed(x, exp(c))));
            }
        }
    }
    let got: Vec<String> = v["data"]["accountRealTimeTypes"]
        .as_array()
        .unwrap_or_else(|| panic!("payermax: {v}"))
        .iter()
        .map(|r| format!("{} {} {}", r["accountType"].as_str().unwrap(), r["currency"].as_str().unwrap(), r["balance"]))
        .collect();
    assert_eq!(got, rows, "payermax");
}

#[test]
fn all_views_agree_on_random_ledgers() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let e = rt.block_on(env());
    let n = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(plan in plan())| {
        rt.block_on(async {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (m, id, secret) = build(&e, i, &plan).await;
            check(&e, m, &id, &secret).await;
        });
    });
    let report = rt.block_on(e.store.verify()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
