//! Providers' own SDKs against a served demo ledger, unchanged but for their base URL.
//!
//! Needs the SDK installed in `python3`'s environment (`.ci/run` installs `uqpay==4.0.0`). With
//! `COFFER_REQUIRE_SDK=1` (set by CI) a missing SDK fails the test; otherwise the test says it
//! did not run and passes, so that `cargo test` works on a machine without Python packages.

mod common;

use std::process::Command;

use serde_json::Value;

fn sdk_present(module: &str) -> bool {
    let ok = Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("COFFER_REQUIRE_SDK").is_none(), "COFFER_REQUIRE_SDK is set but {module} is missing");
        eprintln!("NOT RUN: the Python package {module} is not installed");
    }
    ok
}

#[test]
fn uqpay_python_sdk_lists_balance_transactions() {
    if !sdk_present("uqpay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, creds) = common::demo(dir.path());
    let c = common::credentials(&creds, "uqpay");
    let server = common::serve(&["--data".as_ref(), data.as_os_str()]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/uqpay_list_transactions.py");
    let out = Command::new("python3")
        .args([script, &server.root, c["key_id"].as_str().unwrap(), c["secret"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (plain, filtered) = (&v["plain"], &v["filtered"]);
    let n = plain["total_items"].as_u64().unwrap();
    assert!(n >= 1, "the demo has movements: {plain}");
    assert_eq!(plain["total_pages"].as_u64().unwrap(), n.div_ceil(10));
    let rows = filtered["data"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["currency"] == "USD"), "{filtered}");
    for r in rows {
        for f in ["transaction_id", "balance_id", "transaction_type", "amount", "credit_debit_type", "create_time"] {
            assert!(r[f].is_string(), "{f} in {r}");
        }
        assert!(["C", "D"].contains(&r["credit_debit_type"].as_str().unwrap()));
    }
    // The demo's round trips: a deposit, money to the reserve and back, a payout refunded.
    let types: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["transaction_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["DEPOSIT", "PAYOUT", "REFUND", "TRANSFER"].into(), "{filtered}");
}
