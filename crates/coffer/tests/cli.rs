//! The `coffer` command line, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn coffer(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("COFFER_LOG", "error")
        .env_remove("COFFER_CONFIG")
        .output()
        .unwrap()
}

/// A `coffer serve` killed when dropped: a failing test leaves no server behind (holding the
/// test harness's output open).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok_json(data: &Path, args: &[&str]) -> Value {
    let out = coffer(data, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A refusal: non-zero exit and exactly one line on stderr, containing `needle`.
fn refused(data: &Path, args: &[&str], needle: &str) {
    let out = coffer(data, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

/// Arguments clap refuses: exit code 2 and clap's full message, containing `needle`.
fn misused(data: &Path, args: &[&str], needle: &str) {
    let out = coffer(data, args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn admin_commands_move_money_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let p = ok_json(&d, &["platform", "create", "--name", "Acme", "--currency", "USD"]);
    let m = ok_json(&d, &["merchant", "create", "--parent", p["id"].as_str().unwrap(), "--name", "Shop"]);
    let w = ok_json(
        &d,
        &["wallet", "open", "--owner", m["id"].as_str().unwrap(), "--type", "OPERATING", "--currency", "JPY"],
    );
    let w = w["id"].as_str().unwrap().to_string();
    let dep = ok_json(&d, &["tx", "deposit", "--wallet", &w, "--amount", "1500", "--key", "k1"]);
    assert_eq!(dep["replayed"], false);
    let again = ok_json(&d, &["tx", "deposit", "--wallet", &w, "--amount", "1500", "--key", "k1"]);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["transaction"]["seq"], dep["transaction"]["seq"]);
    let b = ok_json(&d, &["balance", "--wallet", &w]);
    assert_eq!(b["posted"], "1500");

    refused(&d, &["tx", "deposit", "--wallet", &w, "--amount", "1.5"], "more than 0 decimal places");
    refused(&d, &["tx", "deposit", "--wallet", &w, "--amount", "1500", "--key", "k1", "--meta", "a=b"], "already used");
    refused(&d, &["tx", "payout", "--wallet", &w, "--amount", "1501"], "insufficient funds");
    misused(
        &d,
        &["wallet", "open", "--owner", "not-a-uuid", "--type", "OPERATING", "--currency", "USD"],
        "invalid value 'not-a-uuid' for '--owner",
    );
    // clap's own messages: what is missing, by name; the closest command to a typo.
    misused(&d, &["tx", "deposit", "--amount", "10"], "--wallet <WALLET_ID>");
    misused(&d, &["platfrom", "create", "--name", "X"], "similar subcommand exists: 'platform'");
    // A key given for a remote node, but no node: refused, not ignored. Exported, it is fine.
    misused(&d, &["--api-key", "ck_x.y", "balance", "--wallet", &w], "add --server URL");
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["balance", "--wallet", &w, "--data"])
        .arg(&d)
        .env("COFFER_LOG", "error")
        .env("COFFER_API_KEY", "ck_x.y")
        .env_remove("COFFER_SERVER")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    refused(
        &d,
        &["wallet", "open", "--owner", m["id"].as_str().unwrap(), "--type", "CHECKING", "--currency", "USD"],
        "expected one of OPERATING, ACQUIRING",
    );
    refused(
        &d,
        &["wallet", "open", "--owner", m["id"].as_str().unwrap(), "--type", "PIGGY", "--currency", "USD"],
        "PIGGY",
    );
    refused(
        &d,
        &["wallet", "open", "--owner", m["id"].as_str().unwrap(), "--type", "GIFT", "--currency", "ABC"],
        "unknown currency",
    );
    refused(&d, &["tx", "deposit", "--wallet", "00000000-0000-0000-0000-000000000001", "--amount", "1"], "not found");
    let b = ok_json(&d, &["balance", "--wallet", &w]);
    assert_eq!(b["posted"], "1500", "refusals changed nothing");

    let out = coffer(&d, &["verify"]);
    assert!(out.status.success());
    let v = ok_json(&d, &["verify", "--json"]);
    assert_eq!((v["ok"].as_bool(), v["differences"].as_array().map(Vec::len)), (Some(true), Some(0)), "{v}");
    assert!(v["entries"].as_u64().unwrap() >= 1 && v["lines"].as_u64().unwrap() >= 2, "{v}");
}

#[test]
fn bench_reports_its_figures_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["bench", "--json", "--writers", "1,4", "--seconds", "1", "--wallets", "50", "--read-seconds", "1"];
    let v = ok_json(&dir.path().join("unused"), &args);
    assert_eq!(v["store"], "sqlite");
    let runs = v["transfers"].as_array().unwrap();
    assert_eq!(runs.iter().map(|r| r["writers"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 4]);
    assert!(runs.iter().all(|r| r["accepted"].as_u64().unwrap() > 0), "{v}");
    assert!(v["balance_reads_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(v["verify"]["problems"], 0);
}

#[test]
fn demo_reproduces_the_seed_examples_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let first = ok_json(&d, &["demo"]);
    let second = ok_json(&d, &["demo"]);
    let balances = |v: &Value| -> Vec<(String, String, String, String, String, String)> {
        let mut out = vec![];
        for m in v["merchants"].as_array().unwrap() {
            for w in m["wallets"].as_array().unwrap() {
                let s = |k: &str| w[k].as_str().unwrap_or("").to_string();
                out.push((
                    m["dialect"].as_str().unwrap().to_string(),
                    s("type"),
                    s("currency"),
                    s("available"),
                    s("held"),
                    s("posted"),
                ));
            }
        }
        out
    };
    assert_eq!(balances(&first), balances(&second), "a second demo run changes nothing");
    let b = balances(&first);
    let find = |dialect: &str, t: &str, cur: &str| {
        b.iter()
            .find(|x| x.0 == dialect && x.1 == t && x.2 == cur)
            .unwrap_or_else(|| panic!("{dialect} {t} {cur}"))
            .clone()
    };
    // UQPay: available 5000.25, frozen 2353.25
    let u = find("uqpay", "OPERATING", "USD");
    assert_eq!((u.3.as_str(), u.4.as_str()), ("5000.25", "2353.25"));
    assert_eq!(find("uqpay", "PREPAID", "USD").5, "3600.12");
    assert_eq!(find("uqpay", "RESERVE", "USD").5, "10000.00");
    // Onerway: available 1500.00 (withdrawable 1000.00 via min_balance 500.00)
    assert_eq!(find("onerway", "OPERATING", "USD").3, "1500.00");
    assert_eq!(find("onerway", "OPERATING", "EUR").3, "2500.00");
    // NeoX: available 100.01, frozen 100.04, balance 200.05
    let n = find("neox", "OPERATING", "USD");
    assert_eq!((n.3.as_str(), n.4.as_str(), n.5.as_str()), ("100.01", "100.04", "200.05"));
    // PayerMax: DISBURSEMENT USD 776.34, FREEZE USD 11.41, FREEZE IDR 100265403, SETTLE USD 9248.93
    let pm = find("payermax", "OPERATING", "USD");
    assert_eq!((pm.3.as_str(), pm.4.as_str()), ("776.34", "11.41"));
    assert_eq!(find("payermax", "OPERATING", "IDR").4, "100265403.00");
    assert_eq!(find("payermax", "SETTLEMENT", "USD").5, "9248.93");
    // EngageLab: 12.3456 and gift 2 on a platform with 4-decimal USD
    assert_eq!(find("engagelab", "OPERATING", "USD").3, "12.3456");
    assert_eq!(find("engagelab", "GIFT", "USD").3, "2.0000");
    assert!(coffer(&d, &["verify"]).status.success());

    // --credentials writes a working key per demo merchant.
    let file = dir.path().join("creds.json");
    ok_json(&d, &["demo", "--credentials", file.to_str().unwrap()]);
    let creds: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let list = creds["merchants"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    for c in list {
        let key = c["key"].as_str().unwrap();
        assert_eq!(key, format!("{}.{}", c["key_id"].as_str().unwrap(), c["secret"].as_str().unwrap()));
    }
}

#[test]
fn configuration_file_and_verify_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-config");
    let cfg = dir.path().join("coffer.toml");
    std::fs::write(&cfg, format!("data = {:?}\n", data.to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["platform", "create", "--name", "X", "--config"])
        .arg(&cfg)
        .env("COFFER_LOG", "error")
        .env_remove("COFFER_DATA")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("coffer.db").exists(), "the data directory came from the config file");

    std::fs::write(&cfg, "dta = \"typo\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffer")).args(["verify", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));

    // verify on a directory without a ledger fails instead of creating one.
    let missing = dir.path().join("nothing-here");
    let out = coffer(&missing, &["verify"]);
    assert!(!out.status.success());
    assert!(!missing.exists());
}

#[test]
fn serve_holds_the_directory_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&d)
            .env("COFFER_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("ledger open") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve exited early");
    }
    // A second process may not open the ledger to write (operator commands go through the
    // server: tests/local.rs)...
    refused(&d, &["migrate"], "in use by another Coffer process");
    // ...but may verify it.
    assert!(coffer(&d, &["verify"]).status.success());
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "serve did not stop cleanly: {status}");
}

#[test]
fn alerts_and_the_event_feed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let p = ok_json(&d, &["platform", "create", "--name", "Acme"]);
    let p = p["id"].as_str().unwrap();
    let m = ok_json(&d, &["merchant", "create", "--parent", p, "--name", "Shop"]);
    let w = ok_json(
        &d,
        &["wallet", "open", "--owner", m["id"].as_str().unwrap(), "--type", "OPERATING", "--currency", "USD"],
    );
    let w = w["id"].as_str().unwrap();
    ok_json(&d, &["tx", "deposit", "--wallet", w, "--amount", "100"]);
    let a = ok_json(&d, &["alert", "create", "--wallet", w, "--threshold", "50"]);
    assert_eq!(
        (a["field"].as_str(), a["direction"].as_str(), a["threshold"].as_str()),
        (Some("available"), Some("below"), Some("50.00"))
    );
    refused(&d, &["alert", "create", "--wallet", w, "--threshold", "5", "--direction", "sideways"], "--direction");
    ok_json(&d, &["tx", "payout", "--wallet", w, "--amount", "60"]);
    let feed = ok_json(&d, &["events", "--platform", p, "--types", "alert.triggered"]);
    assert_eq!(feed["data"].as_array().unwrap().len(), 1, "{feed}");
    assert_eq!(feed["data"][0]["alert"], a["id"]);
    let next = feed["next_cursor"].as_str().unwrap();
    let rest = ok_json(&d, &["events", "--platform", p, "--cursor", next]);
    assert_eq!(rest["data"].as_array().unwrap().len(), 0, "resumed at the end: {rest}");
    refused(&d, &["events", "--platform", p, "--cursor", "nope"], "--cursor");
    assert_eq!(ok_json(&d, &["alert", "list", "--wallet", w])["data"].as_array().unwrap().len(), 1);
    let gone = ok_json(&d, &["alert", "delete", "--platform", p, a["id"].as_str().unwrap()]);
    assert!(gone["deleted_after"].is_u64());
    assert_eq!(ok_json(&d, &["alert", "list", "--wallet", w])["data"].as_array().unwrap().len(), 0);
}

#[test]
fn statements_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let p = ok_json(&d, &["platform", "create", "--name", "Acme", "--currency", "USD"]);
    let m = ok_json(&d, &["merchant", "create", "--parent", p["id"].as_str().unwrap(), "--name", "Shop"]);
    let m = m["id"].as_str().unwrap().to_string();
    let w = ok_json(&d, &["wallet", "open", "--owner", &m, "--type", "OPERATING", "--currency", "USD"]);
    let w = w["id"].as_str().unwrap().to_string();
    ok_json(&d, &["tx", "deposit", "--wallet", &w, "--amount", "10.50", "--key", "k1"]);
    ok_json(&d, &["tx", "payout", "--wallet", &w, "--amount", "0.25", "--key", "k2"]);
    let today = chrono::Utc::now().date_naive();
    let (yesterday, today) = (today.pred_opt().unwrap().to_string(), today.to_string());
    let s = ok_json(&d, &["statement", "--wallet", &w, "--from", &yesterday, "--to", &today, "--totals"]);
    assert_eq!((s["opening"]["posted"].as_str(), s["closing"]["posted"].as_str()), (Some("0.00"), Some("10.25")));
    assert_eq!(s["movements"].as_array().unwrap().len(), 2);
    assert_eq!(s["totals"].as_array().unwrap().len(), 2);
    let out = coffer(&d, &["statement", "--wallet", &w, "--from", &today, "--to", &today, "--csv"]);
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().last().unwrap().starts_with("closing,") && csv.contains(",10.25,"), "{csv}");
    let o = ok_json(&d, &["statement", "--owner", &m, "--currency", "USD", "--from", &today, "--to", &today]);
    assert_eq!(o["wallets"][0]["posted_change"], "10.25");
    refused(&d, &["statement", "--wallet", &w, "--from", &today, "--to", "2001-01-01"], "--to");
    refused(&d, &["statement", "--wallet", &w, "--from", &today, "--to", &today, "--tz", "Nowhere"], "time zone");
}

/// One request over a fresh connection; the status line.
fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (h, v) in headers {
        req.push_str(&format!("{h}: {v}\r\n"));
    }
    s.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn requests_are_logged_once_each_as_json_lines() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let p = ok_json(&d, &["platform", "create", "--name", "Acme"]);
    let key = ok_json(&d, &["key", "create", "--owner", p["id"].as_str().unwrap()]);
    let key = key["key"].as_str().unwrap().to_string();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data"])
            .arg(&d)
            .env_remove("COFFER_LOG")
            .env_remove("COFFER_CONFIG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let mut next = || -> Value {
        let l = lines.next().expect("serve exited early").unwrap();
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
    };
    let addr = loop {
        let v = next();
        if let Some(a) = v["addr"].as_str() {
            break a.to_string();
        }
    };
    let auth = format!("Bearer {key}");
    let ok = http_get(&addr, "/coffer/v1/me", &[("Authorization", &auth), ("X-Request-Id", "log-test-1")]);
    assert!(ok.contains("200"), "{ok}");
    let missing = format!("/coffer/v1/wallets/{}", uuid::Uuid::now_v7());
    let nf = http_get(&addr, &missing, &[("Authorization", &auth), ("X-Request-Id", "log-test-2")]);
    assert!(nf.contains("404"), "{nf}");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let v = next();
        if v["request_id"].as_str().is_some_and(|id| id.starts_with("log-test-")) {
            assert!(!v.to_string().contains(key.split_once('.').unwrap().1), "no secret in the log: {v}");
            assert!(v["latency_ms"].is_number(), "{v}");
            assert_eq!(v["key_id"].as_str(), key.split_once('.').map(|k| k.0), "the key's id: {v}");
            seen.push((v["request_id"].clone(), v["method"].clone(), v["route"].clone(), v["status"].clone()));
        }
    }
    assert_eq!(
        seen,
        vec![
            (json!("log-test-1"), json!("GET"), json!("/coffer/v1/me"), json!(200)),
            (json!("log-test-2"), json!("GET"), json!("/coffer/v1/wallets/{id}"), json!(404)),
        ]
    );
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let stopped = loop {
        let v = next();
        if v["message"] == "stopped" {
            break v;
        }
    };
    assert!(stopped["commits"].is_number() && stopped["commands"].is_number(), "a clean summary: {stopped}");
    assert!(child.0.wait().unwrap().success());
}
