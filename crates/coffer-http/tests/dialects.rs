//! UQPay, NeoX, PayerMax and Onerway over real HTTP: tokens and their expiry, on-behalf-of across
//! the owner tree, PayerMax signatures over raw bytes, Onerway request ids, and every refusal in
//! its dialect's envelope (snapshots). The seed examples themselves are reproduced end to end by
//! `crates/coffer/tests/seeds.rs`.

mod support;

use std::sync::Arc;

use base64::Engine;
use coffer_core::*;
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
    _dir: support::Backing,
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
    let Outcome::Account(a) =
        exec(s, Command::OpenWallet { owner: o, wallet_type: t, currency, overdraft_limit: 0, min_balance: 0 }).await
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
    let (store, dir) = support::open("dialects").await;
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
    cases.push((
        "token_missing_headers",
        status_and_body(e.http.post(format!("{}/api/v1/connect/token", e.root))).await,
    ));
    cases.push(("token_wrong_secret", uqpay_token(&e, &Key { id: e.m_key.id.clone(), secret: "0".repeat(64) }).await));
    cases.push(("no_token", uqpay_get(&e, "balances/USD", None, None).await));
    cases.push(("token_without_bearer_prefix", uqpay_get(&e, "balances/USD", Some(&jwt), None).await));
    cases.push(("token_garbage", uqpay_get(&e, "balances/USD", Some("Bearer abc.def.ghi"), None).await));
    let expired = forged_token(&e, &e.m_key, e.m, "uqpay", chrono::Utc::now().timestamp() - 5).await;
    cases.push(("token_expired", uqpay_get(&e, "balances/USD", Some(&format!("Bearer {expired}")), None).await));
    // What the SDK does on `token expired`: fetch a new token and retry once, successfully.
    assert!(cases.last().unwrap().1 .1["message"].as_str().unwrap().contains("token expired"));
    let (_, fresh) = uqpay_token(&e, &e.m_key).await;
    let retry = format!("Bearer {}", fresh["auth_token"].as_str().unwrap());
    assert_eq!(uqpay_get(&e, "balances/USD", Some(&retry), None).await.0, 200, "the refreshed token works");
    let neox = forged_token(&e, &e.m_key, e.m, "neox", chrono::Utc::now().timestamp() + 600).await;
    cases
        .push(("token_of_another_dialect", uqpay_get(&e, "balances/USD", Some(&format!("Bearer {neox}")), None).await));
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

// ---- NeoX ----

async fn neox_token(e: &Env, body: Value) -> (u16, Value) {
    status_and_body(e.http.post(format!("{}/v2/auth/oauth2/token", e.root)).json(&body)).await
}

async fn neox_query(e: &Env, token: Option<&str>, query: &str) -> (u16, Value) {
    let mut rb = e.http.get(format!("{}/v2/gc/accounts/balance/query?{query}", e.root));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    status_and_body(rb).await
}

fn creds(k: &Key) -> Value {
    json!({ "grant_type": "client_credentials", "client_id": k.id, "client_secret": k.secret, "scope": "global-collection" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neox_tokens_sub_merchants_filters_and_refusals() {
    let e = env().await;
    let (status, t) = neox_token(&e, creds(&e.m_key)).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["data"]["token_type"], "bearer");
    assert_eq!(t["data"]["expires_in"], 1800);
    let token = t["data"]["access_token"].as_str().unwrap().to_string();
    let tk = Some(token.as_str());

    let (status, b) = neox_query(&e, tk, &format!("subMerchantId={}", e.m)).await;
    assert_eq!(status, 200);
    let rows: Vec<(String, String, String, String)> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("accountType"), s("balance"), s("availableBalance"), s("frozenAmount"))
        })
        .collect();
    // RESERVE has no NeoX account type: it is not listed.
    assert_eq!(
        rows,
        vec![
            ("FUND_ACCOUNT".into(), "100.00".into(), "90.00".into(), "10.00".into()),
            ("VCC_ACCOUNT".into(), "5.00".into(), "5.00".into(), "0.00".into()),
        ]
    );
    let time = b["data"][0]["time"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").is_ok(), "{time}");
    assert_eq!(b["data"][0]["accountNo"].as_str().unwrap().len(), 32);
    let (_, b) = neox_query(&e, tk, &format!("subMerchantId={}&accountType=VCC_ACCOUNT", e.m)).await;
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
    // A sub-merchant, filtered by currency.
    let (status, b) = neox_query(&e, tk, &format!("subMerchantId={}&currency=EUR&accountType=", e.s)).await;
    assert_eq!((status, b["data"].as_array().unwrap().len()), (200, 1), "{b}");
    assert_eq!(b["data"][0]["balance"], "2.00");

    let mut cases: Vec<(&str, (u16, Value))> = Vec::new();
    cases.push((
        "token_wrong_secret",
        neox_token(&e, creds(&Key { id: e.m_key.id.clone(), secret: "0".repeat(64) })).await,
    ));
    let mut bad_grant = creds(&e.m_key);
    bad_grant["grant_type"] = json!("password");
    cases.push(("token_bad_grant_type", neox_token(&e, bad_grant).await));
    let mut bad_scope = creds(&e.m_key);
    bad_scope["scope"] = json!("payouts");
    cases.push(("token_bad_scope", neox_token(&e, bad_scope).await));
    cases.push((
        "token_body_not_json",
        status_and_body(
            e.http
                .post(format!("{}/v2/auth/oauth2/token", e.root))
                .header("content-type", "application/json")
                .body("{"),
        )
        .await,
    ));
    cases.push(("no_token", neox_query(&e, None, &format!("subMerchantId={}", e.m)).await));
    let expired = forged_token(&e, &e.m_key, e.m, "neox", chrono::Utc::now().timestamp() - 5).await;
    cases.push(("token_expired", neox_query(&e, Some(&expired), &format!("subMerchantId={}", e.m)).await));
    let (_, fresh) = neox_token(&e, creds(&e.m_key)).await;
    let retry = fresh["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(neox_query(&e, Some(&retry), &format!("subMerchantId={}", e.m)).await.0, 200, "a new token works");
    let uq = forged_token(&e, &e.m_key, e.m, "uqpay", chrono::Utc::now().timestamp() + 600).await;
    cases.push(("token_of_another_dialect", neox_query(&e, Some(&uq), &format!("subMerchantId={}", e.m)).await));
    cases.push(("no_sub_merchant_id", neox_query(&e, tk, "accountType=FUND_ACCOUNT").await));
    cases.push(("unknown_account_type", neox_query(&e, tk, &format!("subMerchantId={}&accountType=GOLD", e.m)).await));
    cases.push(("unknown_currency", neox_query(&e, tk, &format!("subMerchantId={}&currency=XXX", e.m)).await));
    cases.push(("other_trees_sub_merchant", neox_query(&e, tk, &format!("subMerchantId={}", e.xs)).await));
    let (_, st) = neox_token(&e, creds(&e.s_key)).await;
    let s_token = st["data"]["access_token"].as_str().unwrap().to_string();
    cases.push(("parent_of_the_caller", neox_query(&e, Some(&s_token), &format!("subMerchantId={}", e.m)).await));
    exec(&*e.store, Command::SetOwnerStatus { owner: e.s, status: OwnerStatus::Suspended }).await;
    cases.push(("sub_merchant_suspended", neox_query(&e, tk, &format!("subMerchantId={}", e.s)).await));
    exec(&*e.store, Command::RevokeApiKey { id: e.m_key.id.clone() }).await;
    cases.push(("token_of_revoked_key", neox_query(&e, tk, &format!("subMerchantId={}", e.m)).await));
    for (name, (status, body)) in cases {
        insta::assert_json_snapshot!(format!("neox_{name}"), json!({ "status": status, "body": body }));
    }
}

// ---- PayerMax ----

fn payermax_body(e: &Env, request_time: &str, data: Value) -> Value {
    json!({ "appId": e.m_key.id, "version": "1.4", "merchantNo": e.m.to_string(), "requestTime": request_time,
        "keyVersion": "1", "data": data })
}

fn sign(k: &rsa::RsaPrivateKey, body: &[u8]) -> String {
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(k.clone());
    base64::engine::general_purpose::STANDARD.encode(signer.sign(body).to_bytes())
}

/// POST raw bytes with a `sign` header (none when `None`); the answer and its `sign` header.
async fn payermax_raw(e: &Env, body: &[u8], sign: Option<String>) -> (Value, Option<String>) {
    let mut rb = e
        .http
        .post(format!("{}/aggregate-pay/api/gateway/currentBalanceQuery", e.root))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = sign {
        rb = rb.header("sign", s);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200, "PayerMax answers every business error with HTTP 200");
    let sig = r.headers().get("sign").map(|v| v.to_str().unwrap().to_string());
    (serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(), sig)
}

async fn payermax(e: &Env, body: &Value) -> Value {
    let bytes = serde_json::to_vec(body).unwrap();
    payermax_raw(e, &bytes, Some(sign(&e.m_rsa, &bytes))).await.0
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payermax_signatures_windows_filters_and_refusals() {
    let e = env().await;
    let ok = payermax(&e, &payermax_body(&e, &now_rfc3339(), json!({}))).await;
    assert_eq!(ok["code"], "APPLY_SUCCESS", "{ok}");
    let rows = |v: &Value| -> Vec<String> {
        v["data"]["accountRealTimeTypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!("{} {} {}", r["accountType"].as_str().unwrap(), r["currency"].as_str().unwrap(), r["balance"])
            })
            .collect()
    };
    assert_eq!(rows(&ok), ["DISBURSEMENT USD 90", "FREEZE USD 10", "REVERSE USD 7"]);
    // plainSign lists the zero accounts that exist; the filters narrow.
    let plain = payermax(&e, &payermax_body(&e, &now_rfc3339(), json!({ "plainSign": true }))).await;
    assert_eq!(rows(&plain), ["DISBURSEMENT USD 90", "FREEZE USD 10", "REVERSE USD 7"]);
    let sub = json!({ "plainSign": true, "accountType": ["FREEZE"], "accountCurrency": ["EUR", "TRY"] });
    let mut body = payermax_body(&e, &now_rfc3339(), sub);
    body["merchantNo"] = json!(e.s.0.simple().to_string());
    body["spMerchantNo"] = json!(e.m.to_string());
    assert_eq!(rows(&payermax(&e, &body).await), ["FREEZE EUR 0"], "a sub-merchant, its id without dashes");

    // The signature is over the bytes as sent: slashes, non-ASCII text and odd whitespace.
    for raw in [
        format!(
            "{{\"appId\":\"{}\",\"version\":\"1.1\",\"keyVersion\":\"1\",\"requestTime\":\"{}\",\"data\":{{}},\"note\":\"a/b\\/c\"}}",
            e.m_key.id,
            now_rfc3339()
        ),
        format!(
            "{{ \"appId\" : \"{}\" ,\n\t\"version\":\"1.2\", \"keyVersion\":\"1\",\r\n \"requestTime\":\"{}\", \"data\":{{\"plainSign\":false}}, \"memo\":\"余额 – ünïcödé ✓\" }}  ",
            e.m_key.id,
            now_rfc3339()
        ),
    ] {
        let (v, sig) = payermax_raw(&e, raw.as_bytes(), Some(sign(&e.m_rsa, raw.as_bytes()))).await;
        assert_eq!(v["code"], "APPLY_SUCCESS", "{raw}: {v}");
        assert!(sig.is_some(), "answers are signed");
    }
    // Lenient times: no fraction, one digit, an offset.
    let t = chrono::Utc::now();
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    for rt in [
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        format!("{}.{}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_millis() / 100),
        t.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
    ] {
        let v = payermax(&e, &payermax_body(&e, &rt, json!({}))).await;
        assert_eq!(v["code"], "APPLY_SUCCESS", "{rt}: {v}");
    }

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let good = serde_json::to_vec(&payermax_body(&e, &now_rfc3339(), json!({}))).unwrap();
    cases.push(("no_sign_header", payermax_raw(&e, &good, None).await.0));
    let other = tokio::task::spawn_blocking(rsa_pair).await.unwrap();
    cases.push(("signed_with_another_key", payermax_raw(&e, &good, Some(sign(&other, &good))).await.0));
    let mut changed = good.clone();
    changed.push(b' ');
    cases.push(("body_changed_after_signing", payermax_raw(&e, &changed, Some(sign(&e.m_rsa, &good))).await.0));
    cases.push(("sign_not_base64", payermax_raw(&e, &good, Some("%%%".into())).await.0));
    let stale = (chrono::Utc::now() - chrono::Duration::seconds(150)).to_rfc3339();
    cases.push(("request_time_stale", payermax(&e, &payermax_body(&e, &stale, json!({}))).await));
    let future = (chrono::Utc::now() + chrono::Duration::seconds(150)).to_rfc3339();
    cases.push(("request_time_future", payermax(&e, &payermax_body(&e, &future, json!({}))).await));
    cases.push(("request_time_not_rfc3339", payermax(&e, &payermax_body(&e, "yesterday", json!({}))).await));
    cases.push(("body_not_json", payermax_raw(&e, b"{", Some(sign(&e.m_rsa, b"{"))).await.0));
    let mut no_version = payermax_body(&e, &now_rfc3339(), json!({}));
    no_version.as_object_mut().unwrap().remove("version");
    cases.push(("version_missing", payermax(&e, &no_version).await));
    let mut key_version = payermax_body(&e, &now_rfc3339(), json!({}));
    key_version["keyVersion"] = json!("2");
    cases.push(("key_version_2", payermax(&e, &key_version).await));
    let mut unknown_app = payermax_body(&e, &now_rfc3339(), json!({}));
    unknown_app["appId"] = json!("ck_00000000000000000000");
    cases.push(("unknown_app_id", payermax(&e, &unknown_app).await));
    let mut no_public_key = payermax_body(&e, &now_rfc3339(), json!({}));
    no_public_key["appId"] = json!(e.s_key.id);
    cases.push(("key_without_public_key", payermax(&e, &no_public_key).await));
    let mut other_merchant = payermax_body(&e, &now_rfc3339(), json!({}));
    other_merchant["merchantNo"] = json!(e.xs.to_string());
    cases.push(("merchant_of_another_tree", payermax(&e, &other_merchant).await));
    let mut sp_not_caller = payermax_body(&e, &now_rfc3339(), json!({}));
    sp_not_caller["spMerchantNo"] = json!(e.s.to_string());
    cases.push(("sp_merchant_not_the_caller", payermax(&e, &sp_not_caller).await));
    cases.push((
        "unknown_account_type",
        payermax(&e, &payermax_body(&e, &now_rfc3339(), json!({ "accountType": ["GOLD"] }))).await,
    ));
    cases.push((
        "unknown_currency",
        payermax(&e, &payermax_body(&e, &now_rfc3339(), json!({ "accountCurrency": ["usd"] }))).await,
    ));
    cases.push(("data_missing", payermax(&e, &payermax_body(&e, &now_rfc3339(), Value::Null)).await));
    exec(&*e.store, Command::SetOwnerStatus { owner: e.m, status: OwnerStatus::Suspended }).await;
    cases.push(("merchant_suspended", payermax(&e, &payermax_body(&e, &now_rfc3339(), json!({}))).await));
    exec(&*e.store, Command::SetOwnerStatus { owner: e.m, status: OwnerStatus::Active }).await;
    exec(&*e.store, Command::RevokeApiKey { id: e.m_key.id.clone() }).await;
    cases.push(("key_revoked", payermax(&e, &payermax_body(&e, &now_rfc3339(), json!({}))).await));
    for (name, body) in cases {
        insta::assert_json_snapshot!(format!("payermax_{name}"), body);
    }
}

// ---- Onerway ----

async fn onerway(e: &Env, apikey: Option<&str>, body: Value) -> (u16, Value) {
    let mut rb = e.http.post(format!("{}/account/v1/balance/query", e.root)).json(&body);
    if let Some(k) = apikey {
        rb = rb.header("apikey", k);
    }
    status_and_body(rb).await
}

fn onerway_body(id: &str, currency: &str) -> Value {
    json!({ "requestId": id, "requestTime": chrono::Utc::now().timestamp_millis(), "currency": currency })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onerway_request_ids_windows_and_refusals() {
    let e = env().await;
    let k = e.m_key.full();
    let key = Some(k.as_str());
    let (status, b) = onerway(&e, key, onerway_body("R-1", "USD")).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["data"]["availableBalance"], "90.00");
    assert_eq!(b["data"]["fundOnHold"], "10.00");
    assert_eq!(b["data"]["depositBalance"], "7.00");
    assert_eq!(b["data"]["totalBalance"], "107.00");
    // A refused request does not use up its id; an answered one does, also for other keys of
    // the same merchant; another merchant has its own ids.
    let (status, _) = onerway(&e, key, onerway_body("R-2", "JPY")).await;
    assert_eq!(status, 404);
    let (status, _) = onerway(&e, key, onerway_body("R-2", "USD")).await;
    assert_eq!(status, 200, "R-2 was refused before, so it is still new");
    let (status, _) = onerway(&e, Some(&e.s_key.full()), onerway_body("R-1", "USD")).await;
    assert_eq!(status, 200, "request ids are per merchant");

    // The overview: one currency needs no rate; another display currency needs one.
    let ov = |id: &str, display: Option<&str>| {
        let mut b = json!({ "requestId": id, "requestTime": chrono::Utc::now().timestamp_millis() });
        if let Some(d) = display {
            b["displayCurrency"] = json!(d);
        }
        let (http, root, k) = (e.http.clone(), e.root.clone(), k.clone());
        async move {
            status_and_body(http.post(format!("{root}/account/v1/balance/overview")).header("apikey", k).json(&b)).await
        }
    };
    let (status, b) = ov("O-1", None).await;
    assert_eq!((status, b["data"]["totalAmount"].as_str()), (200, Some("107.00")), "{b}");
    assert_eq!(b["data"]["displayCurrency"], "USD", "the merchant's default currency");

    let mut cases: Vec<(&str, (u16, Value))> = Vec::new();
    cases.push(("overview_rate_missing", ov("O-2", Some("EUR")).await));
    cases.push(("overview_unknown_display_currency", ov("O-2", Some("XXX")).await));
    cases.push(("overview_duplicate_request_id", ov("O-1", None).await));
    cases.push(("duplicate_request_id", onerway(&e, key, onerway_body("R-1", "USD")).await));
    cases.push(("no_apikey", onerway(&e, None, onerway_body("R-3", "USD")).await));
    cases.push(("apikey_without_secret", onerway(&e, Some(&e.m_key.id), onerway_body("R-3", "USD")).await));
    cases.push((
        "apikey_wrong_secret",
        onerway(&e, Some(&format!("{}.{}", e.m_key.id, "0".repeat(64))), onerway_body("R-3", "USD")).await,
    ));
    let mut stale = onerway_body("R-3", "USD");
    stale["requestTime"] = json!(chrono::Utc::now().timestamp_millis() - 11 * 60 * 1000);
    cases.push(("request_time_stale", onerway(&e, key, stale).await));
    let mut future = onerway_body("R-3", "USD");
    future["requestTime"] = json!(chrono::Utc::now().timestamp_millis() + 11 * 60 * 1000);
    cases.push(("request_time_future", onerway(&e, key, future).await));
    let mut bad_time = onerway_body("R-3", "USD");
    bad_time["requestTime"] = json!("soon");
    cases.push(("request_time_not_a_number", onerway(&e, key, bad_time).await));
    let mut no_id = onerway_body("R-3", "USD");
    no_id.as_object_mut().unwrap().remove("requestId");
    cases.push(("request_id_missing", onerway(&e, key, no_id).await));
    cases.push(("request_id_too_long", onerway(&e, key, onerway_body(&"x".repeat(129), "USD")).await));
    let mut no_currency = onerway_body("R-3", "USD");
    no_currency.as_object_mut().unwrap().remove("currency");
    cases.push(("currency_missing", onerway(&e, key, no_currency).await));
    cases.push(("currency_unknown", onerway(&e, key, onerway_body("R-3", "XXX")).await));
    cases.push(("no_wallet_in_currency", onerway(&e, key, onerway_body("R-3", "JPY")).await));
    cases.push(("body_not_an_object", onerway(&e, key, json!([1, 2])).await));
    exec(&*e.store, Command::SetOwnerStatus { owner: e.m, status: OwnerStatus::Suspended }).await;
    cases.push(("merchant_suspended", onerway(&e, key, onerway_body("R-3", "USD")).await));
    exec(&*e.store, Command::SetOwnerStatus { owner: e.m, status: OwnerStatus::Active }).await;
    exec(&*e.store, Command::RevokeApiKey { id: e.m_key.id.clone() }).await;
    cases.push(("key_revoked", onerway(&e, key, onerway_body("R-3", "USD")).await));
    for (name, (status, body)) in cases {
        insta::assert_json_snapshot!(format!("onerway_{name}"), json!({ "status": status, "body": body }));
    }
    // None of the refusals used up R-3.
    let (status, b) = onerway(&e, Some(&e.s_key.full()), onerway_body("R-3", "USD")).await;
    assert_eq!(status, 200, "{b}");
}

// ---- PayerMax: dayEndBalanceQuery ----

async fn day_end(e: &Env, body: &Value) -> Value {
    let bytes = serde_json::to_vec(body).unwrap();
    let r = e
        .http
        .post(format!("{}/aggregate-pay/api/gateway/dayEndBalanceQuery", e.root))
        .header("content-type", "application/json")
        .header("sign", sign(&e.m_rsa, &bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("sign"), "answers are signed");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payermax_day_end_windows_and_refusals() {
    let e = env().await;
    let days_ago = |n: i64| (chrono::Utc::now() - chrono::Duration::days(n)).format("%Y-%m-%d").to_string();
    let req = |data: Value| payermax_body(&e, &now_rfc3339(), data);
    // Yesterday: every wallet was opened today, so none existed at that day's end.
    let v = day_end(&e, &req(json!({"inquiryDate": days_ago(1), "timezone": "utc"}))).await;
    assert_eq!(v["code"], "APPLY_SUCCESS", "{v}");
    assert_eq!(v["data"]["timezone"], "UTC");
    assert_eq!(v["data"]["acctTime"], format!("{}T23:59:59.999Z", days_ago(1)));
    assert_eq!(v["data"]["accountEndDayTimeTypes"], json!([]));
    // CST is +08:00; AVAILABLE is DISBURSEMENT; a null spMerchantNo and any version pass.
    let mut b = req(
        json!({"inquiryDate": days_ago(2), "timezone": "CST", "accountType": ["AVAILABLE"], "accountCurrency": "USD"}),
    );
    b["spMerchantNo"] = Value::Null;
    b["version"] = json!("1.2");
    let v = day_end(&e, &b).await;
    assert_eq!(v["code"], "APPLY_SUCCESS", "{v}");
    assert!(v["data"]["acctTime"].as_str().unwrap().ends_with("T23:59:59.999+08:00"), "{v}");
    let v = day_end(&e, &req(json!({"inquiryDate": days_ago(90), "timezone": "UTC"}))).await;
    assert_eq!(v["code"], "APPLY_SUCCESS", "90 days back is allowed: {v}");
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m-%d")
        .to_string();
    let cases = [
        ("today", json!({"inquiryDate": today, "timezone": "CST"})),
        ("91_days_back", json!({"inquiryDate": days_ago(91), "timezone": "UTC"})),
        ("not_a_date", json!({"inquiryDate": "2026/04/22", "timezone": "UTC"})),
        ("no_date", json!({"timezone": "UTC"})),
        ("unknown_timezone", json!({"inquiryDate": days_ago(1), "timezone": "PST"})),
        ("currency_array", json!({"inquiryDate": days_ago(1), "timezone": "UTC", "accountCurrency": ["USD"]})),
        ("currency_unknown", json!({"inquiryDate": days_ago(1), "timezone": "UTC", "accountCurrency": "XXX"})),
        ("type_freeze", json!({"inquiryDate": days_ago(1), "timezone": "UTC", "accountType": ["FREEZE"]})),
    ];
    for (name, data) in cases {
        let v = day_end(&e, &req(data)).await;
        insta::assert_json_snapshot!(format!("payermax_day_end_{name}"), v);
    }
}
