//! The edge of the server over real sockets: refusals the framework makes are answered in the
//! envelope of the API a path belongs to; bodies over their limit are refused at once; slow or
//! idle clients are cut off by the timeouts and cannot lock others out.

mod support;

use std::time::{Duration, Instant};

use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::{code, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").trim_end_matches("/coffer/v1").to_string()
}

/// Send `head` (and `body`) on a new connection; the answer's status line and body, or None
/// if the server closed without answering within `wait`.
async fn raw(s: &Server, head: &str, body: &[u8], wait: Duration) -> Option<(u16, String)> {
    let mut c = TcpStream::connect(addr(s)).await.unwrap();
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((h, b)) = text.split_once("\r\n\r\n") {
                    let len = h
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    if len.is_some_and(|n| b.len() >= n) {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

#[tokio::test]
async fn framework_refusals_are_in_the_envelope_of_their_api() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let w = {
        let (_, m) = s.post(&format!("/owners/{p}/children"), &key, None, json!({"name": "M"})).await;
        let o = m["id"].as_str().unwrap().to_string();
        let (_, w) = s.post("/wallets", &key, None, json!({"owner": o, "type": "OPERATING", "currency": "USD"})).await;
        w["id"].as_str().unwrap().to_string()
    };
    let root = addr(&s);
    let native = |st: u16, body: &Value, want: &str| {
        assert_eq!(code(body), want, "{st}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    };
    // A path that does not decode, methods a route does not take, unknown routes.
    for (method, path, status, want) in [
        ("GET", "/coffer/v1/wallets/%FF%FE".to_string(), 400, "invalid_request"),
        ("PATCH", "/coffer/v1/deposits".to_string(), 405, "method_not_allowed"),
        ("DELETE", format!("/coffer/v1/wallets/{w}"), 405, "method_not_allowed"),
        ("GET", "/coffer/v1/nowhere".to_string(), 404, "no_such_route"),
        ("GET", "/nowhere".to_string(), 404, "no_such_route"),
    ] {
        let r = s
            .http
            .request(method.parse().unwrap(), format!("http://{root}{path}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        if status == 405 {
            assert!(r.headers().contains_key("allow"), "405 says what is allowed");
        }
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        native(status, &r.json().await.unwrap(), want);
    }
    // The dialects' own envelopes.
    let get = |path: &str| s.http.get(format!("http://{root}{path}")).send();
    let r = get("/account/v1/balance/query").await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "40004");
    let r = get("/api/v1/nowhere").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "not_found");
    let r = s.http.post(format!("http://{root}/v1/balance")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 1000);
    let r = s.http.post(format!("http://{root}/v2/gc/accounts/balance/query")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "4");
    // PayerMax answers HTTP 200 and a code, also to a body over its limit.
    let r = get("/aggregate-pay/api/gateway/currentBalanceQuery").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PARAMS_INVALID");
    let big = format!("{{\"appId\":\"{}\"}}", "x".repeat(70 * 1024));
    let r = s
        .http
        .post(format!("http://{root}/aggregate-pay/api/gateway/currentBalanceQuery"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PARAMS_INVALID");
    // Over-limit bodies on the native API: declared, and sent chunked without a length.
    let r = s.http.post(format!("{}/deposits", s.base)).bearer_auth(&key).body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    native(413, &r.json().await.unwrap(), "body_too_large");
    let csv = "x".repeat(coffer_http::rates::MAX_IMPORT_BODY + 1);
    let r = s.http.post(format!("{}/fx/rates/import", s.base)).bearer_auth(&key).body(csv).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    native(413, &r.json().await.unwrap(), "body_too_large");
    let chunk = "x".repeat(16 * 1024);
    let mut chunked = Vec::new();
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /coffer/v1/deposits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (st, body) = raw(&s, &head, &chunked, Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(st, 413, "{body}");
    native(413, &serde_json::from_str(&body).unwrap(), "body_too_large");
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_at_once() {
    let s = Server::start().await;
    let head = "POST /coffer/v1/deposits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 10000000000\r\n\r\n";
    let t = Instant::now();
    let (st, body) = raw(&s, head, b"{}", Duration::from_secs(5)).await.expect("an answer, not a wait");
    assert!(t.elapsed() < Duration::from_secs(1), "answered in {:?}", t.elapsed());
    assert_eq!(st, 413);
    assert_eq!(code(&serde_json::from_str(&body).unwrap()), "body_too_large");
    // The same in PayerMax's way.
    let head = "POST /aggregate-pay/api/gateway/currentBalanceQuery HTTP/1.1\r\nHost: x\r\n\
                Content-Length: 10000000000\r\n\r\n";
    let (st, body) = raw(&s, head, b"{}", Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(st, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], "PARAMS_INVALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_lock_nobody_out_and_are_cut_off() {
    // 2,000 client sockets and as many on the server's side.
    rlimit::increase_nofile_limit(8192).unwrap();
    let http = coffer_http::edge::HttpLimits {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let s = Server::with_limits(coffer_http::Limits { http, ..Default::default() }).await;
    let target = addr(&s);
    let mut held = Vec::new();
    for i in 0..2000 {
        let mut c = TcpStream::connect(&target).await.unwrap();
        match i % 3 {
            0 => {} // connected, silent
            1 => c.write_all(b"POST /coffer/v1/deposits HTTP/1.1\r\nHost: x\r\n").await.unwrap(),
            _ => c
                .write_all(b"POST /coffer/v1/deposits HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"wal")
                .await
                .unwrap(),
        }
        held.push(c);
    }
    // A normal client is answered at once, again and again, while they hang on.
    let client = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let r = client.get(format!("http://{target}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < Duration::from_millis(100), "slowest answer {slowest:?}");
    // Past the timeouts every one of them has been closed by the server.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut open = 0;
    for c in &mut held {
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break, // closed
                Ok(Ok(_)) => continue,           // a 408 before the close
                Err(_) => {
                    open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(open, 0, "connections left open past the timeouts");
}

/// A route that takes megabytes (batches) reads no body for a caller without a valid key: the
/// refusal comes at once, before the body, so strangers cannot make a node hold megabytes.
#[tokio::test]
async fn large_bodies_are_read_only_for_a_valid_key() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let key = s.key(p, KeyScope::ReadWrite).await;
    let big = 3 * 1024 * 1024;
    for auth in ["", "Authorization: Bearer ck_00000000000000000000.nope\r\n"] {
        let head = format!(
            "POST /coffer/v1/transfers/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}\
             Content-Length: {big}\r\n\r\n"
        );
        let t = Instant::now();
        let (st, body) = raw(&s, &head, b"{", Duration::from_secs(5)).await.expect("an answer, not a wait");
        assert!(t.elapsed() < Duration::from_secs(1), "answered in {:?}", t.elapsed());
        assert_eq!(st, 401, "{body}");
        assert_eq!(code(&serde_json::from_str(&body).unwrap()), "unauthenticated");
    }
    // With a valid key the server waits for the body (and then judges it).
    let head = format!(
        "POST /coffer/v1/transfers/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {key}\r\nContent-Length: {big}\r\n\r\n"
    );
    let answer = raw(&s, &head, b"{", Duration::from_millis(500)).await;
    assert_eq!(answer, None, "the body is awaited for a valid key");
    // A small body on the same route is read first and authenticated by the handler.
    let head = "POST /coffer/v1/transfers/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 2\r\n\r\n";
    let (st, _) = raw(&s, head, b"{}", Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(st, 401);
}
