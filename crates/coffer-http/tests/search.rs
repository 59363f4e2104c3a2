//! Searching transactions: by an external reference or any metadata key and value (through the
//! stores' index), by kind, and by amount bounds on a wallet; refusals for what cannot be asked.

mod support;

use coffer_core::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::{code, Server};

fn seqs(v: &Value) -> Vec<u64> {
    v["data"].as_array().unwrap().iter().map(|t| t["seq"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_found_by_reference_metadata_kind_and_amount() {
    let s = Server::start().await;
    let p = s.platform("P").await;
    let pk = s.key(p, KeyScope::ReadWrite).await;
    let (m, n) = (s.merchant(p, "M").await, s.merchant(p, "N").await);
    let (a, b) = (s.wallet(m, WalletType::Operating, "USD").await, s.wallet(n, WalletType::Operating, "USD").await);
    let mk = s.key(m, KeyScope::ReadOnly).await;
    let mut inv7 = Vec::new();
    for i in 0..30u64 {
        let reference = format!("INV-{}", i % 10);
        let body = json!({"wallet": if i % 2 == 0 { &a } else { &b }, "amount": format!("{}.00", i + 1),
            "metadata": {"reference": reference, "order": format!("O-{}", i % 3)}});
        let (st, v) = s.post("/deposits", &pk, Some(&format!("d{i}")), body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        if i % 10 == 7 {
            inv7.push(v["transaction"]["seq"].as_u64().unwrap());
        }
    }
    let (_, v) =
        s.post("/payouts", &pk, Some("p"), json!({"wallet": a, "amount": "5.00", "metadata": {"order": "O-0"}})).await;
    let payout = v["transaction"]["seq"].as_u64().unwrap();
    inv7.reverse();
    // By reference, platform-wide, newest first, paged.
    let (st, v) = s.get("/transactions?reference=INV-7", &pk).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(seqs(&v), inv7);
    let (_, first) = s.get("/transactions?reference=INV-7&limit=2", &pk).await;
    assert_eq!(seqs(&first), inv7[..2]);
    let c = first["next_cursor"].as_str().unwrap();
    let (_, rest) = s.get(&format!("/transactions?reference=INV-7&limit=2&cursor={c}"), &pk).await;
    assert_eq!(seqs(&rest), inv7[2..]);
    // Any key and value; with kind; on one wallet (a merchant's own key may ask for its wallet).
    let (_, v) = s.get("/transactions?metadata_key=order&metadata_value=O-0&kind=PAYOUT", &pk).await;
    assert_eq!(seqs(&v), vec![payout]);
    let (_, v) = s.get(&format!("/transactions?metadata_key=order&metadata_value=O-0&wallet={a}"), &mk).await;
    let got = seqs(&v);
    assert_eq!(got.len(), 6, "O-0 on wallet a: deposits 0, 6, 12, 18, 24 and the payout: {v}");
    // Amount bounds on a wallet's change (its absolute value), both included.
    let (_, v) = s.get(&format!("/transactions?wallet={a}&min_amount=5&max_amount=9.00"), &pk).await;
    let amounts: Vec<String> =
        v["data"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(amounts, vec!["PAYOUT", "DEPOSIT", "DEPOSIT", "DEPOSIT"], "5.00 out; 9.00, 7.00 and 5.00 in: {v}");

    for (q, key, param) in [
        ("reference=INV-7", &mk, "wallet"),
        ("reference=INV-7&metadata_key=order&metadata_value=O-1", &pk, "metadata_key"),
        ("metadata_key=order", &pk, "metadata_key"),
        ("min_amount=5", &pk, "min_amount"),
        (&format!("wallet={a}&max_amount=abc") as &str, &pk, "max_amount"),
    ] {
        let (st, v) = s.get(&format!("/transactions?{q}"), key).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["param"], param, "{q}: {v}");
    }
    let long = "x".repeat(5000);
    let (st, v) = s.get(&format!("/transactions?reference={long}"), &pk).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_argument"), "{v}");
    // Another merchant's wallet is not found.
    let (st, _) = s.get(&format!("/transactions?reference=INV-7&wallet={b}"), &mk).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
