//! Bad bytes from callers (NUL, control characters, invalid UTF-8, over-long values) in every
//! field of the native API and the five dialects, sent while good deposits run: every bad
//! request is refused with a 4xx (PayerMax: HTTP 200 and a code) in its API's envelope, no
//! answer is a 5xx, and no good write fails. Runs on SQLite, and on PostgreSQL with
//! `COFFER_TEST_BACKEND=postgres`.

mod support;

use base64::Engine;
use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::Server;

/// A request as (method, path, headers, body).
type Req = (&'static str, String, Vec<(&'static str, Vec<u8>)>, Option<Vec<u8>>);

fn bad_requests(key: &str, p: OwnerId, wallet: &str) -> Vec<Req> {
    let (kid, _) = key.split_once('.').unwrap();
    let long = "x".repeat(100_000);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let json_body = |v: Value| Some(v.to_string().into_bytes());
    let auth = || {
        vec![("authorization", format!("Bearer {key}").into_bytes()), ("content-type", b"application/json".to_vec())]
    };
    let with = |extra: (&'static str, Vec<u8>)| {
        let mut h = auth();
        h.push(extra);
        h
    };
    let basic = |user: &str| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:secret"));
        vec![("authorization", format!("Basic {b64}").into_bytes())]
    };
    let mut r: Vec<Req> = vec![
        // Native: names, metadata, idempotency keys, ids in paths and bodies.
        ("POST", format!("/coffer/v1/owners/{p}/children"), auth(), json_body(json!({"name": "a\u{0}b"}))),
        ("POST", format!("/coffer/v1/owners/{p}/children"), auth(), json_body(json!({"name": "x".repeat(5000)}))),
        (
            "POST",
            "/coffer/v1/deposits".into(),
            with(("idempotency-key", b"k1".to_vec())),
            json_body(json!({"wallet": wallet, "amount": "1", "metadata": {"k": "v\u{0}"}})),
        ),
        (
            "POST",
            "/coffer/v1/deposits".into(),
            with(("idempotency-key", b"k2".to_vec())),
            json_body(json!({"wallet": wallet, "amount": "1", "metadata": {"k\u{0}": "v"}})),
        ),
        (
            "POST",
            "/coffer/v1/deposits".into(),
            with(("idempotency-key", b"k\xff".to_vec())),
            json_body(json!({"wallet": wallet, "amount": "1"})),
        ),
        (
            "POST",
            "/coffer/v1/deposits".into(),
            with(("idempotency-key", "k".repeat(300).into_bytes())),
            json_body(json!({"wallet": wallet, "amount": "1"})),
        ),
        (
            "POST",
            "/coffer/v1/deposits".into(),
            with(("idempotency-key", b"k3".to_vec())),
            json_body(json!({"wallet": format!("{wallet}\u{0}"), "amount": "1\u{0}"})),
        ),
        (
            "POST",
            "/coffer/v1/deposits".into(),
            with(("idempotency-key", b"k4".to_vec())),
            Some(b"{\"wallet\": \"\xff\xfe\", \"amount\": \"1\"}".to_vec()),
        ),
        (
            "POST",
            "/coffer/v1/transfers/batch".into(),
            auth(),
            json_body(
                json!({"transfers": [{"idempotency_key": "a\u{0}b", "from": wallet, "to": wallet, "amount": "1"}]}),
            ),
        ),
        ("POST", "/coffer/v1/api-keys/ck_%00/revoke".into(), auth(), None),
        ("PUT", "/coffer/v1/api-keys/ck_%00x/public-key".into(), auth(), json_body(json!({"public_key": null}))),
        ("GET", "/coffer/v1/wallets/%00".into(), auth(), None),
        ("GET", format!("/coffer/v1/wallets/{}", "x".repeat(5000)), auth(), None),
        (
            "GET",
            "/coffer/v1/me".into(),
            vec![("authorization", format!("Bearer {kid}x.{}", "s".repeat(5000)).into_bytes())],
            None,
        ),
        ("GET", "/coffer/v1/me".into(), vec![("authorization", b"Bearer ck_\xff.x".to_vec())], None),
        ("GET", "/coffer/v1/me".into(), with(("coffer-on-behalf-of", b"\xff\xfe".to_vec())), None),
        (
            "POST",
            "/coffer/v1/fx/rates".into(),
            auth(),
            json_body(json!({"base": "EUR", "quote": "USD", "rate": "1.1", "source": "a\u{0}b"})),
        ),
        // Onerway: request ids and the key header.
        (
            "POST",
            "/account/v1/balance/query".into(),
            vec![("apikey", key.as_bytes().to_vec())],
            json_body(json!({"requestId": "r\u{0}1", "requestTime": now_ms, "currency": "USD"})),
        ),
        (
            "POST",
            "/account/v1/balance/query".into(),
            vec![("apikey", key.as_bytes().to_vec())],
            json_body(json!({"requestId": long.clone(), "requestTime": now_ms, "currency": "USD"})),
        ),
        (
            "POST",
            "/account/v1/balance/query".into(),
            vec![("apikey", b"ck_\xff.\xfe".to_vec())],
            json_body(json!({"requestId": "r2", "requestTime": now_ms, "currency": "USD"})),
        ),
        (
            "POST",
            "/account/v1/balance/query".into(),
            vec![("apikey", key.as_bytes().to_vec())],
            json_body(json!({"requestId": "r3", "requestTime": now_ms, "currency": "U\u{0}D"})),
        ),
        // UQPay: credentials and on-behalf-of.
        (
            "POST",
            "/api/v1/connect/token".into(),
            vec![("x-client-id", b"ck_\xff".to_vec()), ("x-api-key", b"x".to_vec())],
            None,
        ),
        (
            "POST",
            "/api/v1/connect/token".into(),
            vec![("x-client-id", long.clone().into_bytes()), ("x-api-key", b"x".to_vec())],
            None,
        ),
        ("GET", "/api/v1/balances/US%00".into(), vec![("x-auth-token", b"Bearer \xff".to_vec())], None),
        // EngageLab: Basic credentials.
        ("GET", "/v1/balance".into(), basic("ck_\u{0}abc"), None),
        ("GET", "/v1/balance".into(), basic(&long), None),
        ("GET", "/v1/balance".into(), vec![("authorization", b"Basic \xff\xfe".to_vec())], None),
        // NeoX: client credentials.
        (
            "POST",
            "/v2/auth/oauth2/token".into(),
            vec![("content-type", b"application/json".to_vec())],
            json_body(json!({"grant_type": "client_credentials", "client_id": "ck\u{0}", "client_secret": "s"})),
        ),
        (
            "POST",
            "/v2/auth/oauth2/token".into(),
            vec![("content-type", b"application/json".to_vec())],
            json_body(json!({"grant_type": "client_credentials", "client_id": long, "client_secret": "s"})),
        ),
        (
            "GET",
            "/v2/gc/accounts/balance/query?subMerchantId=%00".into(),
            vec![("authorization", b"Bearer \xff".to_vec())],
            None,
        ),
    ];
    // PayerMax: the app id, inside a body whose signature cannot be checked.
    for app in [json!("ck\u{0}"), json!("x".repeat(70_000)), json!(kid.to_string() + "\u{1}")] {
        let body = json!({"appId": app, "version": "1.1", "keyVersion": "1", "requestTime": "2026-01-01T00:00:00Z", "data": {}});
        r.push((
            "POST",
            "/aggregate-pay/api/gateway/currentBalanceQuery".into(),
            vec![("sign", b"AAAA".to_vec())],
            json_body(body),
        ));
    }
    r.push((
        "POST",
        "/aggregate-pay/api/gateway/currentBalanceQuery".into(),
        vec![],
        Some(b"{\"appId\": \"\xff\"}".to_vec()),
    ));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_are_refused_and_fail_no_good_write() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let (_, m) = s.post(&format!("/owners/{p}/children"), &key, None, json!({"name": "M"})).await;
    let m = m["id"].as_str().unwrap().to_string();
    let (_, w) = s.post("/wallets", &key, None, json!({"owner": m, "type": "OPERATING", "currency": "USD"})).await;
    let wallet = w["id"].as_str().unwrap().to_string();
    let root = s.base.trim_end_matches("/coffer/v1").to_string();

    // Good writes, all the while.
    let good = {
        let (http, base, key, wallet) = (s.http.clone(), s.base.clone(), key.clone(), wallet.clone());
        tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in 0..300 {
                let r = http
                    .post(format!("{base}/deposits"))
                    .bearer_auth(&key)
                    .header("idempotency-key", format!("good-{i}"))
                    .json(&json!({"wallet": wallet, "amount": "1.00"}))
                    .send()
                    .await
                    .unwrap();
                if r.status() != StatusCode::CREATED {
                    failed.push((i, r.status(), r.text().await.unwrap()));
                }
            }
            failed
        })
    };
    let requests = bad_requests(&key, p, &wallet);
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (i, (method, path, headers, body)) in requests.iter().cloned().enumerate() {
            let (http, root) = (s.http.clone(), root.clone());
            tasks.push(tokio::spawn(async move {
                let mut rb = http.request(method.parse().unwrap(), format!("{root}{path}"));
                for (h, v) in headers {
                    rb = rb.header(h, reqwest::header::HeaderValue::from_bytes(&v).unwrap());
                }
                if let Some(b) = body {
                    rb = rb.body(b);
                }
                let r = rb.send().await.unwrap();
                let status = r.status();
                let text = r.text().await.unwrap();
                (round, i, method, path, status, text)
            }));
        }
    }
    for t in tasks {
        let (round, i, method, path, status, text) = t.await.unwrap();
        let what = format!("round {round}, request {i}: {method} {}", path.chars().take(80).collect::<String>());
        assert!(!status.is_server_error(), "{what}: {status} {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {status} {text}"));
        if path.ends_with("/transfers/batch") {
            // A batch answers each transfer on its own.
            assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(0)), "{what}: {body}");
            assert_eq!(body["results"][0]["error"]["type"], "invalid_request_error", "{what}: {body}");
        } else if path.starts_with("/aggregate-pay") {
            assert_eq!(status, StatusCode::OK, "{what}");
            assert_ne!(body["code"], "APPLY_SUCCESS", "{what}: {body}");
        } else {
            assert!(status.is_client_error(), "{what}: {status} {body}");
        }
    }
    let failed = good.await.unwrap();
    assert!(failed.is_empty(), "good writes failed: {failed:?}");
    let (_, w) = s.get(&format!("/wallets/{wallet}"), &key).await;
    assert_eq!(w["posted"], "300.00", "{w}");
    let report = s.store.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}
