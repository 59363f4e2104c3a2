//! The seed documents' example responses, reproduced end to end: `coffer demo --credentials`
//! builds the ledger and the credentials, `coffer serve` answers, and each dialect is called the
//! way a client of that provider calls it (PayerMax requests are signed with the demo merchant's
//! private key from the credentials file; Coffer's response signature is checked with `openssl`,
//! independently of Coffer's code).

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

/// `actual` equals the seed's `expected` once the fields a ledger cannot share with a document
/// (ids and times, given as paths) are copied over from the seed.
fn assert_seed(mut actual: Value, expected: &str, volatile: &[&str]) {
    let expected: Value = serde_json::from_str(expected).unwrap();
    for path in volatile {
        let (a, e) = (actual.pointer_mut(path).unwrap(), expected.pointer(path).unwrap());
        assert!(!a.is_null(), "{path} is present");
        *a = e.clone();
    }
    assert_eq!(actual, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_example_is_reproduced_by_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let (data, creds) = common::demo(dir.path());
    let server = common::serve(&["--data".as_ref(), data.as_os_str()]);
    let http = reqwest::Client::new();
    let root = &server.root;

    // Onerway: balance query.
    let c = common::credentials(&creds, "onerway");
    let now = chrono::Utc::now().timestamp_millis();
    let r = http
        .post(format!("{root}/account/v1/balance/query"))
        .header("apikey", c["key"].as_str().unwrap())
        .json(&json!({ "requestId": "REQ-BAL-20260423-0001", "requestTime": now, "currency": "USD" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("seed_onerway_balance_query", v);
    assert_seed(
        v,
        r#"{"code":"200","message":"success","data":{"currency":"USD","withdrawableBalance":"1000.00",
        "availableBalance":"1500.00","fundOnHold":"300.00","depositBalance":"200.00","totalBalance":"2000.00",
        "status":"ACTIVE"}}"#,
        &[],
    );

    // Onerway: balance overview in USD.
    let r = http
        .post(format!("{root}/account/v1/balance/overview"))
        .header("apikey", c["key"].as_str().unwrap())
        .json(&json!({ "requestId": "REQ-BAL-20260423-0002", "requestTime": now, "displayCurrency": "USD" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("seed_onerway_balance_overview", v);
    assert_seed(
        v,
        r#"{"code":"200","message":"success","data":{"totalAmount":"5000.00","displayCurrency":"USD",
        "currencyBalances":[{"currency":"USD","withdrawableBalance":"1000.00","availableBalance":"1500.00",
        "fundOnHold":"300.00","depositBalance":"200.00","totalBalance":"2000.00","status":"ACTIVE"},
        {"currency":"EUR","withdrawableBalance":"2000.00","availableBalance":"2500.00","fundOnHold":"500.00",
        "depositBalance":"0.00","totalBalance":"3000.00","status":"ACTIVE"}]}}"#,
        &[],
    );

    // UQPay: token, then one balance.
    let c = common::credentials(&creds, "uqpay");
    let t: Value = http
        .post(format!("{root}/api/v1/connect/token"))
        .header("x-client-id", c["key_id"].as_str().unwrap())
        .header("x-api-key", c["secret"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["auth_token"].as_str().unwrap();
    let r = http
        .get(format!("{root}/api/v1/balances/USD"))
        .header("x-auth-token", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("seed_uqpay_balance", v, {
        ".balance_id" => "[id]", ".create_time" => "[time]", ".last_trade_time" => "[time]"
    });
    assert_seed(
        v,
        r#"{"balance_id":"72970a7c-7921-431c-b95f-3438724ba16f","currency":"USD","available_balance":"5000.25",
        "prepaid_balance":"3600.12","margin_balance":"10000.00","frozen_balance":"2353.25",
        "create_time":"2024-03-01T00:00:00+08:00","last_trade_time":"2024-03-21T17:17:32+08:00",
        "balance_status":"ACTIVE"}"#,
        &["/balance_id", "/create_time", "/last_trade_time"],
    );

    // NeoX: token, then the sub-merchant balance query (the merchant itself).
    let c = common::credentials(&creds, "neox");
    let t: Value = http
        .post(format!("{root}/v2/auth/oauth2/token"))
        .json(&json!({ "grant_type": "client_credentials", "client_id": c["key_id"], "client_secret": c["secret"],
            "scope": "global-collection" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((t["code"].as_i64(), t["state"].as_i64()), (Some(1), Some(2)), "{t}");
    let token = t["data"]["access_token"].as_str().unwrap();
    let r = http
        .get(format!(
            "{root}/v2/gc/accounts/balance/query?subMerchantId={}&accountType=&currency=",
            c["merchant"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("seed_neox_balance_query", v, {
        ".data[].accountNo" => "[id]", ".data[].time" => "[time]"
    });
    assert_seed(
        v,
        r#"{"code":"1","msg":"Successful","success":true,"data":[{"accountNo":"x","accountType":"FUND_ACCOUNT",
        "currency":"USD","balance":"200.05","availableBalance":"100.01","frozenAmount":"100.04","time":"x"}]}"#,
        &["/data/0/accountNo", "/data/0/time"],
    );

    // PayerMax: a signed request; the response's signature checked with openssl.
    let c = common::credentials(&creds, "payermax");
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(c["private_key_pem"].as_str().unwrap()).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(private);
    let body = serde_json::to_vec(&json!({
        "appId": c["key_id"], "version": "1.3", "merchantNo": c["merchant"],
        "requestTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
        "keyVersion": "1", "data": { "plainSign": false, "accountType": [], "accountCurrency": [] }
    }))
    .unwrap();
    let sign = base64::engine::general_purpose::STANDARD.encode(signer.sign(&body).to_bytes());
    let r = http
        .post(format!("{root}/aggregate-pay/api/gateway/currentBalanceQuery"))
        .header("content-type", "application/json")
        .header("sign", sign)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let response_sign = r.headers().get("sign").expect("a signed response").to_str().unwrap().to_string();
    let raw = r.bytes().await.unwrap();
    server_public_key_verifies(&data, &creds, &raw, &response_sign, root).await;
    let v: Value = serde_json::from_slice(&raw).unwrap();
    insta::assert_json_snapshot!("seed_payermax_balance", v, { ".data.inquiryTime" => "[time]" });
    assert_seed(
        v,
        r#"{"msg":"","code":"APPLY_SUCCESS","data":{"accountRealTimeTypes":[
        {"balance":0.59,"accountType":"DISBURSEMENT","currency":"AED"},
        {"balance":776.34,"accountType":"DISBURSEMENT","currency":"USD"},
        {"balance":16.08,"accountType":"DISBURSEMENT","currency":"PHP"},
        {"balance":100265403,"accountType":"FREEZE","currency":"IDR"},
        {"balance":11.41,"accountType":"FREEZE","currency":"USD"},
        {"balance":449172,"accountType":"SETTLE","currency":"IDR"},
        {"balance":9248.93,"accountType":"SETTLE","currency":"USD"}],
        "inquiryTime":"2023-03-30T06:15:22.096Z"}}"#,
        &["/data/inquiryTime"],
    );
    // The numbers are written as the seed writes them, not through a float.
    let text = String::from_utf8(raw.to_vec()).unwrap();
    assert!(text.contains(r#"{"balance":100265403,"accountType":"FREEZE","currency":"IDR"}"#), "{text}");
    assert!(text.starts_with(r#"{"msg":"","code":"APPLY_SUCCESS","data":{"accountRealTimeTypes":["#), "{text}");

    // EngageLab: Basic dev_key:dev_secret.
    let c = common::credentials(&creds, "engagelab");
    let r = http
        .get(format!("{root}/v1/balance"))
        .basic_auth(c["key_id"].as_str().unwrap(), c["secret"].as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"balance10000":123456,"gift_balance10000":20000,"balance":12.3456,"gift_balance":2,"total_balance10000":143456,"total_balance":14.3456}"#
    );
    drop(server);
    let out = Command::new(env!("CARGO_BIN_EXE_coffer")).args(["verify", "--data", data.to_str().unwrap()]).output();
    assert!(out.unwrap().status.success());
}

/// Fetch the platform's public key from the native API and check `sign` over `body` with
/// `openssl dgst -sha256 -verify`.
async fn server_public_key_verifies(dir: &Path, creds: &Value, body: &[u8], sign: &str, root: &str) {
    let c = common::credentials(creds, "payermax");
    let k: Value = reqwest::Client::new()
        .get(format!("{root}/coffer/v1/signing-key"))
        .bearer_auth(c["key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let work = dir.parent().unwrap();
    let (pem, sig, msg) = (work.join("platform.pem"), work.join("response.sig"), work.join("response.json"));
    std::fs::write(&pem, k["public_key_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&sig, base64::engine::general_purpose::STANDARD.decode(sign).unwrap()).unwrap();
    std::fs::write(&msg, body).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .expect("openssl is installed");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stdout));
    // A changed byte no longer verifies.
    let mut tampered = body.to_vec();
    tampered[2] ^= 1;
    std::fs::write(&msg, tampered).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a tampered body must not verify");
}
