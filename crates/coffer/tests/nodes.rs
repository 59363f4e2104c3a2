//! Three `coffer serve` processes on one PostgreSQL database (a schema of this test's own),
//! with concurrent clients spread over them racing payouts and reusing idempotency keys.
//! Afterwards `coffer verify --database` passes, no wallet is below its limit, and each key had
//! exactly one effect. Skipped (with a message) where no PostgreSQL server is reachable, unless
//! `COFFER_REQUIRE_POSTGRES=1`.

use std::collections::{HashMap, HashSet};
use std::process::Command;

mod common;

use coffer_store::testdb::TestDatabase;
use serde_json::{json, Value};

fn admin(url: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["--database", url])
        .args(args)
        .env("COFFER_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "coffer {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_race_payouts_on_one_database() {
    let Some(db) = TestDatabase::create("nodes_cli").await else { return };
    let url = db.url();
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let platform = id(&admin(&url, &["platform", "create", "--name", "P"]));
    let merchant = id(&admin(&url, &["merchant", "create", "--parent", &platform, "--name", "M"]));
    let wallet = id(&admin(
        &url,
        &[
            "wallet",
            "open",
            "--owner",
            &merchant,
            "--type",
            "OPERATING",
            "--currency",
            "USD",
            "--min-balance",
            "100.00",
        ],
    ));
    admin(&url, &["tx", "deposit", "--wallet", &wallet, "--amount", "1000.00"]);
    let key = admin(&url, &["key", "create", "--owner", &platform])["key"].as_str().unwrap().to_string();

    let nodes: Vec<common::Server> = (0..3).map(|_| common::serve(&["--database".as_ref(), url.as_ref()])).collect();
    let roots: Vec<String> = nodes.iter().map(|n| format!("{}/coffer/v1", n.root)).collect();
    // 24 clients (8 per node); each sends 15 payouts of 7.00 under 30 keys that every client
    // reuses: 30 payouts would need 210.00 of the 900.00 withdrawable, so every key succeeds
    // once; then each client drains with payouts of its own until refused.
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..24usize {
        let (http, root, key, wallet) = (http.clone(), roots[c % 3].clone(), key.clone(), wallet.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let pay = |k: String, amount: &str| {
                http.post(format!("{root}/payouts"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", k)
                    .json(&json!({"wallet": wallet, "amount": amount}))
                    .send()
            };
            for i in 0..15 {
                let k = format!("shared-{}", (c + i) % 30);
                let r = pay(k.clone(), "7.00").await.unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                assert!(status == 200 || status == 201, "{k}: {status} {v}");
                seen.push((k, v["transaction"]["seq"].as_u64().unwrap(), status == 201));
            }
            let mut drained = 0;
            for i in 0..100 {
                let r = pay(format!("own-{c}-{i}"), "5.00").await.unwrap();
                match r.status().as_u16() {
                    201 => drained += 1,
                    422 => break,
                    s => panic!("drain: {s} {}", r.text().await.unwrap()),
                }
            }
            (seen, drained)
        }));
    }
    let mut by_key: HashMap<String, HashSet<u64>> = HashMap::new();
    let (mut created, mut drained) = (0, 0);
    for t in tasks {
        let (seen, d) = t.await.unwrap();
        drained += d;
        for (k, seq, first) in seen {
            by_key.entry(k).or_default().insert(seq);
            created += usize::from(first);
        }
    }
    assert_eq!(by_key.len(), 30);
    assert!(by_key.values().all(|s| s.len() == 1), "every answer under a key names one entry: {by_key:?}");
    assert_eq!(created, 30, "each shared key took effect exactly once");
    // Withdrawable was 900.00: 30 x 7.00 shared, then 5.00 payouts until refused.
    assert_eq!(drained, (90_000 - 30 * 700) / 500);
    drop(nodes);
    let out = Command::new(env!("CARGO_BIN_EXE_coffer")).args(["verify", "--database", &url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify: {text}");
    let balance = admin(&url, &["balance", "--wallet", &wallet]);
    assert_eq!(balance["posted"], "100.00", "the wallet stops at its minimum balance: {balance}");
}
