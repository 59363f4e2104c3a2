//! UQPay, NeoX, PayerMax and Onerway over real HTTP: tokens and their expiry, on-behalf-of across
//! the owner tree, PayerMax signatures over raw bytes, Onerway request ids, and every refusal in
//! its dialect's envelope (snapshots). The seed examples themselves are reproduced end to end by
//! `crates/coffer/tests/seeds.rs`.

use std::sync::Arc;

use base64::Engine;
use coffer_core::*;
use coffer_store::sqlite::{Options, SqliteStore};
use coffer_store::Store;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};

async fn exec(s: &dyn Store, c: Command) -> Outcome {
    s.execute(c).await.unwrap().outcome
}

fn usd() -> CurrencyCode {
    "USD".parse().unwrap()
}

struct Key {
    id: String,
    secret: String,
}

impl Key {
    fn full(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

/// A platform; merchant `m` with sub-merchant `s`; merchant `x`
/// with sub-merchant `xs`. `m` has USD OPERATING 100.00 posted / 10.00 held, CARD 5.00 and
/// RESERVE 7.00; `s` has USD OPERATING 1.00 and EUR OPERATING 2.00.
struct Env {
    root: String,
    store: Arc<dyn Store>,
    p: OwnerId,
    m: OwnerId,
    s: OwnerId,
    xs: OwnerId,
    m_key: Key,
    s_key: Key,
    /// `m`'s RSA key pair (registered on `m_key`).
    m_rsa: rsa::RsaPrivateKey,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn owner(s: &dyn Store, parent: Option<OwnerId>, name: &str) -> OwnerId {
    let c = match parent {
        None => Command::CreatePlatform { name: name.into(), default_currency: usd(), currency_exponents: [].into() },
        Some(p) => Command::CreateMerchant { parent: p, name: name.into(), default_currency: None },
    };
    match exec(s, c).await {
        Outcome::Owner(o) => o.id,
        o => panic!("{o:?}"),
    }
}

async fn fund(s: &dyn Store, p: OwnerId, o: OwnerId, t: WalletType, cur: &str, amount: i64, held: i64) -> AccountId {
    let currency: CurrencyCode = cur.parse().unwrap();
    let Outcome::Account(a) = exec(
        s,
        Command::OpenWallet { owner: o, wallet_type: t, currency, overdraft_limit: 0, min_balance: 0 },
    )
    .await
    else {
        panic!()
    };
    let mv = |key: String, op| Command::Move(Movement { platform: p, idempotency_key: key, metadata: [].into(), op });
    exec(
        s,
        mv(
            format!("d{}", a.id),
            MoneyOp::Deposit { account: a.id, amount: Money::new(amount, currency), source: SystemAccount::External },
        ),
    )
    .await;
    if held > 0 {
        exec(
            s,
            mv(
                format!("h{}", a.id),
                MoneyOp::HoldCreate { account: a.id, amount: Money::new(held, currency), expires_at: None },
            ),
        )
        .await;
    }
    a.id
}

async fn key(s: &dyn Store, owner: OwnerId) -> Key {
    let k = coffer_http::auth::generate_key().unwrap();
    exec(s, Command::CreateApiKey { owner, id: k.id.clone(), secret_hash: k.hash, scope: KeyScope::ReadOnly }).await;
    Key { id: k.id, secret: k.full.split_once('.').unwrap().1.to_string() }
}

fn rsa_pair() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap()
}

fn public_b64(k: &rsa::RsaPrivateKey) -> String {
    let der = rsa::RsaPublicKey::from(k).to_public_key_der().unwrap();
    base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("data"), Options::default()).unwrap());
    let st = &*store;
    let p = owner(st, None, "P").await;
    let m = owner(st, Some(p), "M").await;
    let s = owner(st, Some(m), "S").await;
    let x = owner(st, Some(p), "X").await;
    let xs = owner(st, Some(x), "XS").await;
    fund(st, p, m, WalletType::Operating, "USD", 10_000, 1_000).await;
    fund(st, p, m, WalletType::Card, "USD", 500, 0).await;
    fund(st, p, m, WalletType::Reserve, "USD", 700, 0).await;
    fund(st, p, s, WalletType::Operating, "USD", 100, 0).await;
    fund(st, p, s, WalletType::Operating, "EUR", 200, 0).await;
    fund(st, p, xs, WalletType::Operating, "USD", 300, 0).await;
    let m_key = key(st, m).await;
    let s_key = key(st, s).await;
    let m_rsa = tokio::task::spawn_blocking(rsa_pair).await.unwrap();
    exec(st, Command::SetKeyPublicKey { id: m_key.id.clone(), public_key: Some(public_b64(&m_rsa)) }).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffer_http::serve(listener, store.clone(), coffer_http::Limits::default(), std::future::pending()));
    Env { root, store, p, m, s, xs, m_key, s_key, m_rsa, http: reqwest::Client::new(), _dir: dir }
}

async fn status_and_body(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

/// A token forged with the server's key: what the server itself would have issued, but with the
/// given expiry (to test expiry without waiting 30 minutes).
async fn forged_token(e: &Env, key: &Key, owner: OwnerId, audience: &str, exp: i64) -> String {
    let secret = hex::decode(e.store.setting("token_hmac_key").await.unwrap().expect("a token key")).unwrap();
    let claims = json!({ "sub": key.id, "aud": audience, "iat": exp - 1800, "exp": exp,
        "entity_id": owner.to_string(), "short_entity_id": "X", "parent_entity_id": "" });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap()
}

// ---- UQPay ----

async fn uqpay_token(e: &Env, k: &Key) -> (u16, Value) {
    status_and_body(
        e.http
            .post(format!("{}/api/v1/connect/token", e.root))
            .header("x-client-id", &k.id)
            .header("x-api-key", &k.secret),
    )
    .await
}

async fn uqpay_get(e: &Env, path: &str, token: Option<&str>, on_behalf_of: Option<String>) -> (u16, Value) {
    let mut rb = e.http.get(format!("{}/api/v1/{path}", e.root));
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    if let Some(o) = on_behalf_of {
        rb = rb.header("x-on-behalf-of", o);
    }
    status_and_body(rb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uqpay_tokens_on_behalf_of_and_refusals() {
    let e = env().await;
    let (status, t) = uqpay_token(&e, &e.m_key).await;
    assert_eq!(status, 200, "{t}");
    let now = chrono::Utc::now().timestamp();
    let exp = t["expired_at"].as_i64().unwrap();
    assert!((now + 1790..=now + 1810).contains(&exp), "valid 30 minutes");
    let jwt = t["auth_token"].as_str().unwrap().to_string();
    // The SDK decodes the JWT's claims.
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["entity_id"], e.m.to_string());
    assert_eq!(claims["parent_entity_id"], e.p.to_string());
    assert!(!claims["short_entity_id"].as_str().unwrap().is_empty());
    let bearer = format!("Bearer {jwt}");

    let (status, b) = uqpay_get(&e, "balances/USD", Some(&bearer), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&b["available_balance"], &b["frozen_balance"], &b["margin_balance"], &b["prepaid_balance"]),
        (&json!("90.00"), &json!("10.00"), &json!("7.00"), &json!("0.00"))
    );
    // On behalf of a sub-merchant and of its sub-merchant.
    let (status, b) = uqpay_get(&e, "balances", Some(&bearer), Some(e.s.to_string())).await;
    assert_eq!(status, 200);
    assert_eq!((b["total_items"].as_u64(), b["total_pages"].as_u64()), (Some(2), Some(1)));
    assert_eq!(b["data"][1]["currency"], "EUR");
    let (status, b) = uqpay_get(&e, "balances?page_size=1&page_number=2", Some(&bearer), Some(e.s.to_string())).await;
    assert_eq!((status, b["total_pages"].as_u64(), b["data"][0]["currency"].as_str()), (200, Some(2), Some("EUR")));
    // Naming oneself is acting as oneself.
    let (status, b) = uqpay_get(&e, "balances", Some(&bearer), Some(e.m.to_string())).await;
    assert_eq!((status, b["total_items"].as_u64()), (200, Some(1)), "{b}");

    let mut cases: Vec<(&str, (u16, Value))> = Vec::new();
    let (s_bearer, s_claims) = {
        let (_, t) = uqpay_token(&e, &e.s_key).await;
        (format!("Bearer {}", t["auth_token"].as_str().unwrap()), t)
    };
    assert!(s_claims["auth_token"].is_string());
    cases.push(("token_missing_headers", status_and_body(e.http.post(format!("{}/api/v1/connect/token", e.root))).await));
    cases.push(("token_wrong_secret", uqpay_token(&e, &Key { id: e.m_key.id.clone(), secret: "0".repeat(64) }).await));
    cases.push(("no_token", uqpay_get(&e, "balances/USD", None, None).await));
    cases.push(("token_without_bearer_prefix", uqpay_get(&e, "balances/USD", Some(&jwt), None).await));
    cases.push(("token_garbage", uqpay_get(&e, "balances/USD", Some("Bearer abc.def.ghi"), None).await));
    let expired = forged_token(&e, &e.m_key, e.m, "uqpay", chrono::Utc::now().timestamp() - 5).await;
    cases.push(("token_expired", uqpay_get(&e, "balances/USD", Some(&format!("Bearer {expired}")), None).await));
    let neox = forged_token(&e, &e.m_key, e.m, "neox", chrono::Utc::now().timestamp() + 600).await;
    cases.push(("token_of_another_dialect", uqpay_get(&e, "balances/USD", Some(&format!("Bearer {neox}")), None).await));
    cases.push(("unknown_currency", uqpay_get(&e, "balances/XXX", Some(&bearer), None).await));
    cases.push(("no_wallet_in_currency", uqpay_get(&e, "balances/JPY", Some(&bearer), None).await));
    cases.push(("page_size_zero", uqpay_get(&e, "balances?page_size=0", Some(&bearer), None).await));
    cases.push(("page_size_over_100", uqpay_get(&e, "balances?page_size=101", Some(&bearer), None).await));
    cases.push(("page_number_not_a_number", uqpay_get(&e, "balances?page_number=x", Some(&bearer), None).await));
    // Another merchant's sub-merchant, the caller's parent, and a malformed id: all "not found".
    cases.push(("on_behalf_of_other_tree", uqpay_get(&e, "balances/USD", Some(&bearer), Some(e.xs.to_string())).await));
    cases.push(("on_behalf_of_parent", uqpay_get(&e, "balances/USD", Some(&s_bearer), Some(e.m.to_string())).await));
    cases.push(("on_behalf_of_malformed", uqpay_get(&e, "balances/USD", Some(&bearer), Some("nope".into())).await));
    exec(&*e.store, Command::SetOwnerStatus { owner: e.s, status: OwnerStatus::Suspended }).await;
    cases.push(("on_behalf_of_suspended", uqpay_get(&e, "balances/USD", Some(&bearer), Some(e.s.to_string())).await));
    cases.push(("token_of_suspended_merchant", uqpay_get(&e, "balances/USD", Some(&s_bearer), None).await));
    exec(&*e.store, Command::RevokeApiKey { id: e.m_key.id.clone() }).await;
    cases.push(("token_of_revoked_key", uqpay_get(&e, "balances/USD", Some(&bearer), None).await));
    cases.push(("token_for_revoked_key", uqpay_token(&e, &e.m_key).await));
    for (name, (status, body)) in cases {
        insta::assert_json_snapshot!(format!("uqpay_{name}"), json!({ "status": status, "body": body }));
    }
}
