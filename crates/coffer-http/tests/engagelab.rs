//! The EngageLab dialect over real HTTP: the seed example reproduced from a ledger state, and
//! every refusal, as snapshots.

mod support;

use std::sync::Arc;

use base64::Engine;
use coffer_core::*;
use coffer_store::Store;
use serde_json::Value;

struct Env {
    root: String,
    store: Arc<dyn Store>,
    merchant: OwnerId,
    dev_key: String,
    dev_secret: String,
    _dir: support::Backing,
}

async fn exec(s: &dyn Store, c: Command) -> Outcome {
    s.execute(c).await.unwrap().outcome
}

/// The seed's state: a platform keeping USD to 4 decimals, a merchant whose OPERATING wallet has
/// 12.3456 available and whose GIFT wallet has 2.0000.
async fn env() -> Env {
    let (store, dir) = support::open("engagelab").await;
    let usd: CurrencyCode = "USD".parse().unwrap();
    let Outcome::Owner(p) = exec(
        &*store,
        Command::CreatePlatform {
            name: "metered".into(),
            default_currency: usd,
            currency_exponents: [(usd, 4)].into(),
        },
    )
    .await
    else {
        panic!()
    };
    let Outcome::Owner(m) =
        exec(&*store, Command::CreateMerchant { parent: p.id, name: "m".into(), default_currency: None }).await
    else {
        panic!()
    };
    for (t, amount, held) in [(WalletType::Operating, 143_456, 20_000), (WalletType::Gift, 20_000, 0)] {
        let Outcome::Account(a) = exec(
            &*store,
            Command::OpenWallet { owner: m.id, wallet_type: t, currency: usd, overdraft_limit: 0, min_balance: 0 },
        )
        .await
        else {
            panic!()
        };
        let mv = |key: String, op| {
            Command::Move(Movement { platform: p.id, idempotency_key: key, metadata: Default::default(), op })
        };
        exec(
            &*store,
            mv(
                format!("d{t}"),
                MoneyOp::Deposit { account: a.id, amount: Money::new(amount, usd), source: SystemAccount::External },
            ),
        )
        .await;
        if held > 0 {
            // Held money is not available: 14.3456 posted - 2.0000 held = 12.3456.
            exec(
                &*store,
                mv(
                    format!("h{t}"),
                    MoneyOp::HoldCreate { account: a.id, amount: Money::new(held, usd), expires_at: None },
                ),
            )
            .await;
        }
    }
    let k = coffer_http::auth::generate_key().unwrap();
    exec(
        &*store,
        Command::CreateApiKey { owner: m.id, id: k.id.clone(), secret_hash: k.hash, scope: KeyScope::ReadOnly },
    )
    .await;
    let (dev_key, dev_secret) = k.full.split_once('.').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffer_http::serve(listener, store.clone(), coffer_http::Limits::default(), std::future::pending()));
    Env { root, store, merchant: m.id, dev_key, dev_secret, _dir: dir }
}

fn basic(k: &str, s: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{k}:{s}")))
}

/// Status and raw body of `GET /v1/balance` with this Authorization header (none when `None`).
async fn get_raw(e: &Env, auth: Option<&str>) -> (u16, String) {
    let mut rb = reqwest::Client::new().get(format!("{}/v1/balance", e.root));
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(e: &Env, auth: Option<&str>) -> (u16, Value) {
    let (s, body) = get_raw(e, auth).await;
    (s, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn the_seed_example_is_reproduced_exactly() {
    let e = env().await;
    let (status, raw) = get_raw(&e, Some(&basic(&e.dev_key, &e.dev_secret))).await;
    assert_eq!(status, 200);
    // Byte for byte the seed document's example (002_..., "Successful Response"), compacted.
    let seed = r#"{"balance10000":123456,"gift_balance10000":20000,"balance":12.3456,"gift_balance":2,"total_balance10000":143456,"total_balance":14.3456}"#;
    assert_eq!(raw, seed);
    let body: Value = serde_json::from_str(&raw).unwrap();
    insta::assert_json_snapshot!("seed_example", body);
}

#[tokio::test]
async fn every_refusal_in_engagelabs_envelope() {
    let e = env().await;
    let good = basic(&e.dev_key, &e.dev_secret);
    let mut cases: Vec<(&str, u16, Value)> = Vec::new();
    for (what, auth) in [
        ("no_credentials", None),
        ("not_basic", Some(format!("Bearer {}.{}", e.dev_key, e.dev_secret))),
        ("not_base64", Some("Basic !!!".to_string())),
        ("no_colon", Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("nocolon")))),
        ("unknown_key", Some(basic("ck_00000000000000000000", &e.dev_secret))),
        ("wrong_secret", Some(basic(&e.dev_key, "0".repeat(64).as_str()))),
    ] {
        let (s, b) = get(&e, auth.as_deref()).await;
        cases.push((what, s, b));
    }
    e.store.execute(Command::SetOwnerStatus { owner: e.merchant, status: OwnerStatus::Suspended }).await.unwrap();
    let (s, b) = get(&e, Some(&good)).await;
    cases.push(("merchant_suspended", s, b));
    e.store.execute(Command::SetOwnerStatus { owner: e.merchant, status: OwnerStatus::Active }).await.unwrap();
    e.store.execute(Command::RevokeApiKey { id: e.dev_key.clone() }).await.unwrap();
    let (s, b) = get(&e, Some(&good)).await;
    cases.push(("key_revoked", s, b));
    // A live key of a deleted merchant (the revoked one above would be refused first).
    let k = coffer_http::auth::generate_key().unwrap();
    let live = k.full.split_once('.').map(|(a, b)| basic(a, b)).unwrap();
    e.store
        .execute(Command::CreateApiKey { owner: e.merchant, id: k.id, secret_hash: k.hash, scope: KeyScope::ReadOnly })
        .await
        .unwrap();
    e.store.execute(Command::SetOwnerStatus { owner: e.merchant, status: OwnerStatus::Deleted }).await.unwrap();
    let (s, b) = get(&e, Some(&live)).await;
    cases.push(("merchant_deleted", s, b));
    for (what, status, body) in cases {
        insta::assert_json_snapshot!(what, serde_json::json!({ "status": status, "body": body }));
    }
}
